package spool

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// recover reads the removal file and the segments back, starts a new head
// segment, migrates a bbolt spool and rewrites the removal file. It runs
// before the spool's goroutines start.
func (s *Spool) recover() error {
	_ = os.Remove(filepath.Join(s.dir, ackTmpName))
	acked, err := readAckFile(filepath.Join(s.dir, ackFileName))
	if err != nil {
		return fmt.Errorf("read %s: %w", ackFileName, err)
	}
	s.nextSeq = max(acked.low, acked.high+1, 1)
	s.nextSegID = 1
	dirents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var found []entry
	for _, de := range dirents { // sorted by name, so by id
		id, ok := parseSegName(de.Name())
		if !ok {
			continue
		}
		seg := &segment{id: id, path: filepath.Join(s.dir, de.Name()), seed: crcSeed(id), sealed: true}
		if seg.f, err = os.Open(seg.path); err != nil {
			return err
		}
		h, end, rest, err := scanSegment(seg.f, id, func(r scanned) {
			s.nextSeq = max(s.nextSeq, r.seq+1)
			seg.maxSeq = max(seg.maxSeq, r.seq)
			if !acked.acked(r.seq) {
				found = append(found, entry{seq: r.seq, seg: seg, off: r.off, n: r.n})
			}
		})
		if errors.Is(err, errStaleHeader) || (errors.Is(err, errBadHeader) && rest <= segHeaderSize) {
			// A file being recycled whose new header never made it to
			// disk, or a segment whose header never did: no record in it
			// was acknowledged (records go in only after the header is
			// synced), and those of its earlier use were all acked.
			_ = seg.f.Close()
			if err := os.Remove(seg.path); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			_ = seg.f.Close()
			return fmt.Errorf("%s: %w", de.Name(), err)
		}
		if rest > 0 && h.flags&segRecycled == 0 && s.opts.OnTornTail != nil {
			s.opts.OnTornTail(seg.path, end, rest)
		}
		s.nextSeq = max(s.nextSeq, h.base)
		seg.size = end
		s.segs = append(s.segs, seg)
		s.nextSegID = max(s.nextSegID, id+1)
	}
	// A record copied forward is in two segments until the old one goes:
	// keep one.
	slices.SortStableFunc(found, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	for _, e := range found {
		if n := len(s.idx); n > 0 && s.idx[n-1].seq == e.seq {
			continue
		}
		e.seg.live++
		e.seg.liveBytes += recHeaderSize + int64(e.n)
		s.bytes.Add(recHeaderSize + int64(e.n))
		s.idx = append(s.idx, e)
	}
	s.count.Store(int64(len(s.idx)))
	s.lastSeq = s.nextSeq - 1

	if s.head, err = createSegment(s.dir, s.nextSegID, s.nextSeq); err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	s.nextSegID++
	s.segs = append(s.segs, s.head)
	if err := s.migrateLegacy(); err != nil {
		return fmt.Errorf("migrate %s: %w", legacyFileName, err)
	}
	// Everything stored so far is read from the files.
	s.cache, s.cacheBytes, s.cacheFloor = nil, 0, s.nextSeq-1
	s.house.acks = &ackFile{dir: s.dir}
	if err := s.house.acks.rewrite(s.snapshot()); err != nil {
		return fmt.Errorf("write %s: %w", ackFileName, err)
	}
	s.dropEmpty()
	return nil
}
