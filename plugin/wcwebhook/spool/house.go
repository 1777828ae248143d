package spool

import (
	"encoding/binary"
	"os"
	"time"
)

const (
	// A segment is copied forward once it holds less than a quarter live
	// data and every record in it was read at least relocateAfter ago.
	defaultRelocateAfter = 10 * time.Second
	relocateCheckEvery   = time.Second
	relocateMaxBytes     = 4 << 20 // copied per round at most
	// The removal file is compacted when it outgrows this (and twice its
	// last snapshot).
	defaultAckCompactBytes = 256 << 10
	// maxSpares is how many emptied segment files wait to be recycled.
	maxSpares = 2
)

// housekeeping is the state of the housekeeper goroutine.
type housekeeping struct {
	acks           *ackFile
	ackBroken      bool // a removal write failed: rewrite the file
	lastRelocCheck time.Time
	buf            []byte // encode buffer of relocations
	syncer         *aioSyncer
}

// housekeeper applies and writes removals, deletes the segments nothing
// is live in and copies forward the records that keep old segments alive.
func (s *Spool) housekeeper() {
	defer close(s.houseDone)
	s.house.syncer = newSyncer()
	defer s.house.syncer.close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var reply chan error
		select {
		case <-s.houseWake:
		case <-timer.C:
		case reply = <-s.flushReq:
		case <-s.closing:
			s.lanes.Wait() // the appends waiting at Close are committed
			if !s.aborted.Load() {
				_ = s.houseRound(true)
			}
			return
		}
		err := s.houseRound(reply != nil)
		if reply != nil {
			reply <- err
		}
		s.mu.Lock()
		n, since := len(s.removals), s.removeSince
		s.mu.Unlock()
		if n > 0 {
			timer.Reset(max(time.Until(since.Add(s.opts.RemoveDelay)), 0))
		}
	}
}

// houseRound applies the removals when they are due (all of them when
// force is set, which also syncs the removal file), deletes empty segments
// and relocates.
func (s *Spool) houseRound(force bool) error {
	now := time.Now()
	s.mu.Lock()
	var rm []uint64
	if n := len(s.removals); n > 0 && (force || s.closed || n >= s.opts.RemoveBatch || now.Sub(s.removeSince) >= s.opts.RemoveDelay) {
		rm = s.removals
		s.removals = s.spare[:0]
	}
	s.mu.Unlock()
	var applied []uint64
	if rm != nil {
		applied = s.applyRemovals(rm)
		s.mu.Lock()
		s.spare = rm[:0]
		s.mu.Unlock()
	}
	var err error
	if len(applied) > 0 || force || s.house.ackBroken {
		err = s.persistRemovals(applied, force)
	}
	s.dropEmpty()
	s.relocateOld(now)
	if rm != nil && s.opts.OnCommit != nil {
		s.opts.OnCommit(s.count.Load())
	}
	return err
}

// applyRemovals marks removed records and returns the sequence numbers
// that were in the log.
func (s *Spool) applyRemovals(rm []uint64) []uint64 {
	var freed, removed int64
	applied := rm[:0:0]
	s.idxMu.Lock()
	live := s.idx[s.idxStart:]
	for _, seq := range rm {
		i, ok := slicesSearch(live, seq)
		if !ok || live[i].acked {
			continue
		}
		e := &live[i]
		e.acked = true
		s.idxAcked++
		size := recHeaderSize + int64(e.n)
		freed += size
		removed++
		e.seg.live--
		e.seg.liveBytes -= size
		applied = append(applied, seq)
	}
	s.trimIndex()
	s.idxMu.Unlock()
	s.bytes.Add(-freed)
	s.count.Add(-removed)
	return applied
}

// trimIndex drops acked entries: from the front at once, from the middle
// when they are many. idxMu is held.
func (s *Spool) trimIndex() {
	for s.idxStart < len(s.idx) && s.idx[s.idxStart].acked {
		s.idx[s.idxStart] = entry{}
		s.idxStart++
		s.idxAcked--
	}
	if s.idxStart == len(s.idx) {
		s.idx, s.idxStart = s.idx[:0], 0
		return
	}
	n := len(s.idx) - s.idxStart
	if s.idxAcked > 1024 && s.idxAcked*2 > n {
		kept := s.idx[:0]
		for _, e := range s.idx[s.idxStart:] {
			if !e.acked {
				kept = append(kept, e)
			}
		}
		clear(s.idx[len(kept):])
		s.idx, s.idxStart, s.idxAcked = kept, 0, 0
	} else if s.idxStart > 1024 && s.idxStart > n {
		m := copy(s.idx, s.idx[s.idxStart:])
		clear(s.idx[m:])
		s.idx, s.idxStart = s.idx[:m], 0
	}
}

// persistRemovals writes applied removals to the removal file (and syncs
// it when sync is set), rewriting the file as a snapshot when it has grown
// or a write failed.
func (s *Spool) persistRemovals(applied []uint64, sync bool) error {
	h := &s.house
	var err error
	switch {
	case h.ackBroken || h.acks.size > max(s.opts.ackCompactBytes, 2*h.acks.snapSize):
		err = h.acks.rewrite(s.snapshot())
		h.ackBroken = err != nil
	case len(applied) > 0:
		if err = h.acks.writeRemovals(applied); err != nil {
			h.ackBroken = true
		}
	}
	if err == nil && sync {
		err = h.acks.sync()
	}
	if err != nil && s.opts.OnRemoveError != nil {
		s.opts.OnRemoveError(len(applied), err)
	}
	return err
}

// snapshot encodes the removal state of the index: every sequence number
// below the first live one, and between live ones up to the last indexed,
// is acked.
func (s *Spool) snapshot() []byte {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	high := s.lastSeq
	low := high + 1
	var ranges []byte
	count, first, prev, prevHi := uint64(0), true, uint64(0), uint64(0)
	for _, e := range s.idx[s.idxStart:] {
		if e.acked {
			continue
		}
		if first {
			low, first = e.seq, false
		} else if e.seq > prev+1 {
			ranges = binary.AppendUvarint(ranges, prev+1-prevHi)
			ranges = binary.AppendUvarint(ranges, e.seq-1-(prev+1))
			prevHi = e.seq - 1
			count++
		}
		prev = e.seq
	}
	if !first && prev < high {
		// Acked after the last live record.
		ranges = binary.AppendUvarint(ranges, prev+1-prevHi)
		ranges = binary.AppendUvarint(ranges, high-(prev+1))
		count++
	}
	b := binary.AppendUvarint(nil, low)
	b = binary.AppendUvarint(b, high)
	b = binary.AppendUvarint(b, count)
	return append(b, ranges...)
}

// dropEmpty retires the sealed segments nothing is live or pending in:
// kept as spares for recycling (up to maxSpares files this process wrote,
// at least half a segment long), closed and deleted otherwise. A crash
// before a deletion is durable brings acked records back, which the
// removal file filters out: duplicates at worst.
func (s *Spool) dropEmpty() {
	s.idxMu.Lock()
	var drop, spare []*segment
	kept := s.segs[:0]
	for _, seg := range s.segs {
		switch {
		case !seg.sealed || seg.live > 0 || seg.pending > 0:
			kept = append(kept, seg)
		case seg.writable && !seg.broken && seg.size >= s.segBytes/2 && len(s.spares)+len(spare) < maxSpares:
			spare = append(spare, seg)
		default:
			drop = append(drop, seg)
		}
	}
	clear(s.segs[len(kept):])
	s.segs = kept
	s.idxMu.Unlock()
	if len(drop) == 0 && len(spare) == 0 {
		return
	}
	// Readers hold segMu while they read: once it is ours, no one reads
	// these segments any more.
	s.segMu.Lock()
	for _, seg := range drop {
		_ = seg.f.Close()
	}
	s.segMu.Unlock()
	for _, seg := range drop {
		_ = os.Remove(seg.path)
	}
	if len(spare) > 0 {
		s.idxMu.Lock()
		s.spares = append(s.spares, spare...)
		s.idxMu.Unlock()
	}
}

// relocateOld copies forward the live records of the sealed segments that
// are mostly dead and were read a while ago (records nacked again and
// again, which alone would keep their whole segment on disk), at most
// relocateMaxBytes per round.
func (s *Spool) relocateOld(now time.Time) {
	h := &s.house
	if now.Sub(h.lastRelocCheck) < min(relocateCheckEvery, s.opts.relocateAfter) {
		return
	}
	h.lastRelocCheck = now
	readHigh := s.readHigh.Load()
	s.idxMu.Lock()
	var victims map[*segment]bool
	for _, seg := range s.segs {
		if !seg.sealed || seg.pending > 0 || seg.live == 0 {
			continue
		}
		if seg.readAt == 0 && seg.maxSeq <= readHigh {
			seg.readAt = now.UnixNano()
		}
		if seg.readAt != 0 && now.Sub(time.Unix(0, seg.readAt)) >= s.opts.relocateAfter &&
			seg.liveBytes*4 < seg.size-segHeaderSize {
			if victims == nil {
				victims = map[*segment]bool{}
			}
			victims[seg] = true
		}
	}
	var locs []entry
	if victims != nil {
		for _, e := range s.idx[s.idxStart:] {
			if !e.acked && victims[e.seg] {
				locs = append(locs, e)
			}
		}
	}
	s.idxMu.Unlock()
	var relocs []relocation
	copied := 0
	for _, e := range locs {
		if copied >= relocateMaxBytes {
			break
		}
		// Only the housekeeper closes segments: e.seg.f stays open.
		v, err := readRecord(e.seg.f, e.off, e.n, e.seq)
		if err != nil {
			continue // stays where it is
		}
		relocs = append(relocs, relocation{seq: e.seq, value: v, from: e.seg})
		copied += len(v)
	}
	if len(relocs) > 0 {
		h.buf = s.commit(nil, relocs, h.buf, h.syncer)
		s.dropEmpty()
	}
}
