package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// The removal state lives in its own small file, apart from the records, so
// that a segment can be deleted as soon as its own records are acked. It is
// a sequence of chunks (little endian):
//
//	crc32c(bytes 4..8+len) u32 | len u32 | kind u8 | body (len-1 bytes)
//
// kind snapshot: uvarint low, uvarint high, uvarint count, then count acked
// ranges as uvarint (lo - previous hi) and uvarint (hi - lo). Every sequence
// number below low is acked, and so is every one inside a range; a snapshot
// replaces what the chunks before it said.
//
// kind removals: uvarint count, then the acked sequence numbers in increasing
// order, the first as a uvarint and the others as uvarint deltas.
//
// Chunks are written without a sync of their own (Flush and Close sync
// them): a crash can lose the last ones, which only means their records are
// emitted again. A chunk cut short or failing its checksum ends the file.
// The file is rewritten as one snapshot when it grows (compaction: written
// to a temporary file, synced, renamed over the old one) and at every Open.
const (
	ackFileName    = "acks"
	ackTmpName     = "acks.tmp"
	ackKindSnap    = 1
	ackKindRemoved = 2
	ackChunkHeader = 8
)

// ackState is what the removal file says.
type ackState struct {
	low     uint64      // every sequence number below is acked
	high    uint64      // the highest sequence number the state knows of
	ranges  [][2]uint64 // acked, inclusive, sorted, disjoint
	removed []uint64    // acked one by one (sorted once loaded)
}

// acked reports whether seq was acked.
func (a *ackState) acked(seq uint64) bool {
	if seq < a.low {
		return true
	}
	if i, ok := slices.BinarySearchFunc(a.ranges, seq, func(r [2]uint64, s uint64) int {
		switch {
		case r[1] < s:
			return -1
		case r[0] > s:
			return 1
		}
		return 0
	}); ok && i >= 0 {
		return true
	}
	_, ok := slices.BinarySearch(a.removed, seq)
	return ok
}

// readAckFile loads the removal state; a missing file is an empty state.
func readAckFile(path string) (*ackState, error) {
	st := &ackState{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var hdr [ackChunkHeader]byte
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break // end, or a torn chunk header
		}
		n := binary.LittleEndian.Uint32(hdr[4:])
		if n == 0 || n > maxRecordBytes {
			break
		}
		body = slices.Grow(body[:0], int(n))[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			break
		}
		if crc32.Update(crc32.Checksum(hdr[4:], castagnoli), castagnoli, body) != binary.LittleEndian.Uint32(hdr[:4]) {
			break
		}
		if !st.apply(body) {
			break
		}
	}
	slices.Sort(st.removed)
	st.removed = slices.Compact(st.removed)
	return st, nil
}

// apply adds one chunk's body to the state; false when it does not decode.
func (a *ackState) apply(body []byte) bool {
	kind, b := body[0], body[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	switch kind {
	case ackKindSnap:
		low, ok1 := next()
		high, ok2 := next()
		count, ok3 := next()
		if !ok1 || !ok2 || !ok3 || count > uint64(len(b)) {
			return false
		}
		ranges := make([][2]uint64, 0, count)
		prev := uint64(0)
		for range count {
			d, ok1 := next()
			w, ok2 := next()
			if !ok1 || !ok2 {
				return false
			}
			lo := prev + d
			ranges = append(ranges, [2]uint64{lo, lo + w})
			prev = lo + w
		}
		*a = ackState{low: low, high: high, ranges: ranges}
	case ackKindRemoved:
		count, ok := next()
		if !ok || count > uint64(len(b)) {
			return false
		}
		seq := uint64(0)
		for i := range count {
			d, ok := next()
			if !ok {
				return false
			}
			if i == 0 {
				seq = d
			} else {
				seq += d
			}
			a.removed = append(a.removed, seq)
			a.high = max(a.high, seq)
		}
	default:
		return false
	}
	return true
}

// appendAckChunk appends one chunk with the given kind and body to dst.
func appendAckChunk(dst []byte, kind byte, body []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, ackChunkHeader)...)
	dst = append(dst, kind)
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(len(body)+1))
	binary.LittleEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

// appendRemovals encodes sorted, distinct sequence numbers as a removals
// body.
func appendRemovals(dst []byte, seqs []uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(seqs)))
	prev := uint64(0)
	for i, s := range seqs {
		if i == 0 {
			dst = binary.AppendUvarint(dst, s)
		} else {
			dst = binary.AppendUvarint(dst, s-prev)
		}
		prev = s
	}
	return dst
}

// ackFile is the open removal file (writer goroutine only).
type ackFile struct {
	dir      string
	f        *os.File
	size     int64
	snapSize int64 // size right after the last compaction
	buf      []byte
}

// writeRemovals appends a removals chunk (seqs is sorted in place).
func (a *ackFile) writeRemovals(seqs []uint64) error {
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	body := appendRemovals(a.buf[:0], seqs)
	chunk := appendAckChunk(make([]byte, 0, len(body)+ackChunkHeader+1), ackKindRemoved, body)
	a.buf = body[:0]
	if _, err := a.f.WriteAt(chunk, a.size); err != nil {
		return err
	}
	a.size += int64(len(chunk))
	return nil
}

// rewrite replaces the file by one snapshot chunk: a temporary file,
// synced, renamed over the old one, the directory synced.
func (a *ackFile) rewrite(snapshot []byte) error {
	chunk := appendAckChunk(nil, ackKindSnap, snapshot)
	tmp := filepath.Join(a.dir, ackTmpName)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(chunk); err == nil {
		err = fdatasync(f)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(a.dir, ackFileName))
	}
	if err == nil {
		// The rename itself must survive a power loss, or the old file
		// (and none of the removals written since) would be read back.
		err = syncDir(a.dir)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return err
	}
	if a.f != nil {
		_ = a.f.Close()
	}
	a.f, a.size, a.snapSize = f, int64(len(chunk)), int64(len(chunk))
	return nil
}

func (a *ackFile) sync() error { return fdatasync(a.f) }

func (a *ackFile) close() error {
	if a.f == nil {
		return nil
	}
	return a.f.Close()
}
