package spool

import (
	"errors"
	"fmt"
	"runtime"
)

const (
	// commitLanes is how many groups can be written and synced at once.
	// One lane already overlaps the disk and the CPU: while its fdatasync
	// runs (in the kernel, see aio_linux.go), the next group gathers. A
	// second lane measured 0-10% more in BenchmarkAppendConsume, within
	// the noise of the end-to-end bench, so the simpler order is kept.
	commitLanes = 1
	// maxGatherYields bounds how often a lane yields for a growing group.
	maxGatherYields = 8
	// A lane's encode buffer is dropped after a group bigger than this.
	maxKeptBuffer = 4 << 20
)

// commitGroup is the appends that share one write and one fdatasync.
type commitGroup struct {
	values [][]byte
	notes  []any
	first  uint64 // sequence of values[0], set by the commit
	err    error
	done   chan struct{}
}

// job is one region of the log being written: a group's records, records
// copied forward from old segments, or both. Jobs are reserved in log order
// and released in that order (prev), whatever order their syncs end in: a
// reader after a restart reads a segment up to the first bad record, so a
// region is only acknowledged once every region before it in the same
// segment is on disk.
type job struct {
	g         *commitGroup // nil for a relocation
	relocs    []relocation
	valuesOff int64 // where g's records start, relative to off
	seg       *segment
	off       int64
	prev      *job
	failed    bool
	released  chan struct{}
}

// relocation is a record copied forward into the head segment.
type relocation struct {
	seq   uint64
	value []byte
	from  *segment
	off   int64 // in the job's segment
}

var errEarlierFailed = errors.New("an earlier write to the same segment failed")

// lane commits the waiting appends, one group at a time, until the spool
// is closed and no append waits.
func (s *Spool) lane() {
	defer s.lanes.Done()
	sy := newSyncer()
	defer sy.close()
	var buf []byte
	for {
		if s.busyLanes.Load() > 0 {
			// The disk is busy with the other lane's group: let the
			// requests that are ready to append join this one.
			s.gather()
		}
		s.mu.Lock()
		g := s.group
		s.group = nil
		closed := s.closed
		s.mu.Unlock()
		if g == nil {
			if closed {
				return
			}
			select {
			case <-s.wake:
			case <-s.closing:
			}
			continue
		}
		buf = s.commit(g, nil, buf, sy)
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(s.count.Load())
		}
	}
}

// gather lets the goroutines that are ready to run (requests about to
// append) join the waiting group before it is taken: with one P, a lane
// woken by the first append would otherwise commit it alone. It yields while
// the group grows, a few times at most.
func (s *Spool) gather() {
	n := s.groupLen()
	for range maxGatherYields {
		runtime.Gosched()
		m := s.groupLen()
		if m == n {
			return
		}
		n = m
	}
}

func (s *Spool) groupLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.group == nil {
		return 0
	}
	return len(s.group.values)
}

// commit writes a group's records (g may be nil) and the relocated records
// to the head segment with one write and one fdatasync, then releases them
// in log order. buf is the caller's encode buffer, returned for reuse; sy
// syncs.
func (s *Spool) commit(g *commitGroup, relocs []relocation, buf []byte, sy *aioSyncer) []byte {
	s.busyLanes.Add(1)
	defer s.busyLanes.Add(-1)
	j := &job{g: g, relocs: relocs, released: make(chan struct{})}
	size := int64(0)
	for _, r := range relocs {
		size += recHeaderSize + int64(len(r.value))
	}
	j.valuesOff = size
	if g != nil {
		for _, v := range g.values {
			size += recHeaderSize + int64(len(v))
		}
	}

	s.wmu.Lock()
	err := s.ensureRoom(size)
	if err == nil {
		if g != nil {
			// Used up even when the write fails: the records may be on
			// disk all the same, and must never share a number.
			g.first = s.nextSeq
			s.nextSeq += uint64(len(g.values))
		}
		j.seg, j.off = s.head, s.head.size
		s.head.size += size
		j.prev, s.lastJob = s.lastJob, j
		s.idxMu.Lock()
		j.seg.pending++
		s.idxMu.Unlock()
	}
	s.wmu.Unlock()
	if err != nil {
		if g != nil {
			g.err = err
			close(g.done)
		}
		return buf
	}

	buf = buf[:0]
	for i := range relocs {
		relocs[i].off = j.off + int64(len(buf))
		buf = appendRecord(buf, j.seg.seed, relocs[i].seq, relocs[i].value)
	}
	if g != nil {
		for i, v := range g.values {
			buf = appendRecord(buf, j.seg.seed, g.first+uint64(i), v)
		}
	}
	_, err = j.seg.f.WriteAt(buf, j.off)
	if err == nil {
		err = sy.sync(j.seg.f)
	}
	if cap(buf) > maxKeptBuffer {
		buf = nil
	}
	if prev := j.prev; prev != nil {
		<-prev.released
		if err == nil && prev.failed && prev.seg == j.seg {
			err = errEarlierFailed
		}
		j.prev = nil
	}
	if err != nil {
		j.failed = true
		s.wmu.Lock()
		j.seg.broken = true // the next reservation starts a new segment
		s.wmu.Unlock()
	}
	s.release(j, err)
	return buf
}

// release indexes a written job's records, hands the group to the reader
// and its appenders, then lets the next job go.
func (s *Spool) release(j *job, err error) {
	g := j.g
	s.idxMu.Lock()
	j.seg.pending--
	if err == nil {
		s.placeRelocated(j)
		if g != nil && len(g.values) > 0 {
			off := j.off + j.valuesOff
			for i, v := range g.values {
				s.idx = append(s.idx, entry{seq: g.first + uint64(i), seg: j.seg, off: off, n: uint32(len(v))})
				off += recHeaderSize + int64(len(v))
				j.seg.liveBytes += recHeaderSize + int64(len(v))
			}
			j.seg.live += len(g.values)
			s.lastSeq = g.first + uint64(len(g.values)) - 1
			j.seg.maxSeq = s.lastSeq
		}
	}
	s.idxMu.Unlock()
	if g != nil {
		if err == nil {
			s.count.Add(int64(len(g.values)))
			if len(g.values) > 0 {
				s.addCache(g)
			}
		} else {
			g.err = err
		}
		close(g.done)
		if err == nil && len(g.values) > 0 {
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
	}
	close(j.released)
}

// placeRelocated points the index at the copies a job wrote. idxMu is held.
func (s *Spool) placeRelocated(j *job) {
	live := s.idx[s.idxStart:]
	for _, r := range j.relocs {
		i, ok := slicesSearch(live, r.seq)
		if !ok || live[i].acked || live[i].seg != r.from {
			continue // acked meanwhile: the copy is dead on arrival
		}
		e := &live[i]
		size := recHeaderSize + int64(e.n)
		e.seg, e.off = j.seg, r.off
		r.from.live--
		r.from.liveBytes -= size
		j.seg.live++
		j.seg.liveBytes += size
	}
}

// ensureRoom starts a new head segment when the head is broken or the
// next write would take it past the segment size: a recycled one when a
// spare is there. wmu is held.
func (s *Spool) ensureRoom(size int64) error {
	head := s.head
	if !head.broken && (head.size+size <= s.segBytes || head.size == segHeaderSize) {
		return nil
	}
	s.idxMu.Lock()
	var spare *segment
	if n := len(s.spares); n > 0 {
		spare = s.spares[n-1]
		s.spares = s.spares[:n-1]
	}
	s.idxMu.Unlock()
	var seg *segment
	var err error
	if spare != nil {
		seg, err = recycleSegment(s.dir, spare, s.nextSegID, s.nextSeq)
	}
	if seg == nil {
		seg, err = createSegment(s.dir, s.nextSegID, s.nextSeq)
	}
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	s.nextSegID++
	s.head = seg
	s.idxMu.Lock()
	head.sealed = true
	s.segs = append(s.segs, seg)
	s.idxMu.Unlock()
	return nil
}
