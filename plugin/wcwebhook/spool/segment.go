package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Segment file format (little endian):
//
//	header, 32 bytes:
//	  magic "WOOSPOOL" | version u16 | flags u16 | crc32c of the header with this field zeroed u32 |
//	  segment id u64 | base seq u64
//	records, one after the other:
//	  crc u32 | n u32 | seq u64 | payload (n bytes)
//
// A record's crc is the CRC-32C of the segment id (8 bytes) followed by the
// record from n on: a record left over from an earlier use of a recycled
// file fails it. base is the next sequence number when the segment was
// (re)started: a lower bound for the sequence numbers after a restart even
// when every record is gone. A record whose length runs past the end of the
// file or whose checksum does not match ends the segment: that is where a
// write was torn by a crash, or where a recycled file's old content starts
// (nothing after it was ever acknowledged, because an append is only
// acknowledged after the fdatasync that covers it and every region before it
// in the file).
const (
	segMagic      = "WOOSPOOL"
	segVersion    = 1
	segHeaderSize = 32
	recHeaderSize = 16
	segSuffix     = ".seg"
	// segRecycled marks a header written over an earlier segment's file:
	// what follows the last valid record is old content, not a torn write.
	segRecycled = 1
	// maxRecordBytes bounds one record's payload, so a damaged length never
	// makes a reader allocate gigabytes.
	maxRecordBytes = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segment is one file of the log. Readers use f (ReadAt) under
// Spool.segMu.
type segment struct {
	id       uint64
	path     string
	f        *os.File
	seed     uint32 // CRC-32C of the id: where every record's crc starts
	writable bool   // opened read-write (by this process): recyclable

	// Guarded by Spool.wmu.
	size int64 // end of the last record (reserved regions included)
	// broken is set after a failed write: the segment takes no more
	// records (what follows the last good one is a torn tail).
	broken bool

	// Guarded by Spool.idxMu.
	live      int   // index entries that point into this segment
	liveBytes int64 // their accounted size (payload + record header)
	pending   int   // regions reserved and not yet released
	maxSeq    uint64
	sealed    bool // no longer the head: dropped once nothing is live

	// readAt is when every record of the segment had been handed to the
	// reader (zero until then); relocation waits for a while after it.
	// Housekeeper only.
	readAt int64
}

func crcSeed(id uint64) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	return crc32.Checksum(b[:], castagnoli)
}

func segName(id uint64) string { return fmt.Sprintf("%020d%s", id, segSuffix) }

// parseSegName returns the id of a segment file name.
func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	return id, err == nil
}

func encodeSegHeader(id, base uint64, flags uint16) []byte {
	h := make([]byte, segHeaderSize)
	copy(h, segMagic)
	binary.LittleEndian.PutUint16(h[8:], segVersion)
	binary.LittleEndian.PutUint16(h[10:], flags)
	binary.LittleEndian.PutUint64(h[16:], id)
	binary.LittleEndian.PutUint64(h[24:], base)
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h, castagnoli))
	return h
}

var (
	errBadHeader   = errors.New("not a spool segment (bad header)")
	errStaleHeader = errors.New("segment header of another segment")
)

// segHeader is a decoded segment header.
type segHeader struct {
	id, base uint64
	flags    uint16
}

func decodeSegHeader(h []byte) (segHeader, error) {
	if len(h) < segHeaderSize || string(h[:8]) != segMagic {
		return segHeader{}, errBadHeader
	}
	c := make([]byte, segHeaderSize)
	copy(c, h)
	binary.LittleEndian.PutUint32(c[12:], 0)
	if binary.LittleEndian.Uint32(h[12:]) != crc32.Checksum(c, castagnoli) {
		return segHeader{}, errBadHeader
	}
	if v := binary.LittleEndian.Uint16(h[8:]); v != segVersion {
		return segHeader{}, fmt.Errorf("spool segment version %d is not supported (this build reads %d)", v, segVersion)
	}
	return segHeader{id: binary.LittleEndian.Uint64(h[16:]), base: binary.LittleEndian.Uint64(h[24:]),
		flags: binary.LittleEndian.Uint16(h[10:])}, nil
}

// appendRecord appends the encoding of one record of the segment whose
// crc seed is seed to dst.
func appendRecord(dst []byte, seed uint32, seq uint64, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, recHeaderSize)...)
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(dst[start+8:], seq)
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start:], crc32.Update(seed, castagnoli, dst[start+4:]))
	return dst
}

// createSegment creates segment id in dir with its header, durably: the
// file and its directory entry are synced before any record goes in, so a
// record acknowledged from it can never lose its file.
func createSegment(dir string, id, base uint64) (*segment, error) {
	path := filepath.Join(dir, segName(id))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteAt(encodeSegHeader(id, base, 0), 0)
	if err == nil {
		err = fdatasync(f)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return &segment{id: id, path: path, f: f, seed: crcSeed(id), writable: true, size: segHeaderSize}, nil
}

// recycleSegment turns the file of a segment whose records are all acked
// into segment id: renamed, its header rewritten, both synced. Writing over
// blocks that are already allocated and initialized needs no journal
// commit, so its fdatasyncs are cheaper than those of a file that grows. A
// crash between the rename and the new header leaves a file whose header
// names another segment: Open deletes it (its records were all acked).
func recycleSegment(dir string, old *segment, id, base uint64) (*segment, error) {
	path := filepath.Join(dir, segName(id))
	err := os.Rename(old.path, path)
	if err == nil {
		if _, err = old.f.WriteAt(encodeSegHeader(id, base, segRecycled), 0); err == nil {
			err = fdatasync(old.f)
		}
		if err == nil {
			err = syncDir(dir)
		}
	}
	if err != nil {
		_ = old.f.Close()
		_ = os.Remove(path)
		_ = os.Remove(old.path)
		return nil, err
	}
	return &segment{id: id, path: path, f: old.f, seed: crcSeed(id), writable: true, size: segHeaderSize}, nil
}

// scanned is one valid record found by scanSegment.
type scanned struct {
	seq uint64
	off int64
	n   uint32
}

// scanSegment reads segment id from the start and calls fn for each valid
// record, in file order. It stops at the end of the file or at the first
// record that is cut short or fails its checksum; rest is the number of
// bytes after the last valid record.
func scanSegment(f *os.File, id uint64, fn func(scanned)) (h segHeader, end, rest int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return h, 0, 0, err
	}
	size := st.Size()
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 1<<20)
	hb := make([]byte, segHeaderSize)
	if _, err := io.ReadFull(r, hb); err != nil {
		return h, 0, size, errBadHeader
	}
	if h, err = decodeSegHeader(hb); err != nil {
		return h, 0, size, err
	}
	if h.id != id {
		return h, 0, size, errStaleHeader
	}
	seed := crcSeed(id)
	off := int64(segHeaderSize)
	var rh [recHeaderSize]byte
	var payload []byte
	for off+recHeaderSize <= size {
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			return h, off, size - off, err
		}
		n := binary.LittleEndian.Uint32(rh[4:])
		if n > maxRecordBytes || off+recHeaderSize+int64(n) > size {
			break
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return h, off, size - off, err
		}
		crc := crc32.Update(crc32.Update(seed, castagnoli, rh[4:]), castagnoli, payload)
		if crc != binary.LittleEndian.Uint32(rh[:4]) {
			break
		}
		fn(scanned{seq: binary.LittleEndian.Uint64(rh[8:]), off: off, n: n})
		off += recHeaderSize + int64(n)
	}
	return h, off, size - off, nil
}

// readRecord reads the payload of the record seq at off.
func readRecord(f *os.File, off int64, n uint32, seq uint64) ([]byte, error) {
	buf := make([]byte, recHeaderSize+int(n))
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, err
	}
	if got := binary.LittleEndian.Uint64(buf[8:]); got != seq || binary.LittleEndian.Uint32(buf[4:]) != n {
		return nil, fmt.Errorf("record %d expected at offset %d of %s, found %d", seq, off, filepath.Base(f.Name()), got)
	}
	return buf[recHeaderSize:], nil
}
