// Package spool is the durable queue behind the woocommerce_webhook input's
// `ack: spooled` mode: an append-only log of records in segment files. A
// record is on disk (written and fdatasynced) before Append returns, and so
// before the HTTP 200 is sent; it is handed to the reader from memory (read
// back from its segment only after a restart or when the reader lags far
// behind), and forgotten only once the pipeline acknowledged it.
//
// Appends are committed in groups by a commit lane (commit.go): it takes
// every append waiting and writes them with one write and one fdatasync,
// so that one group is written and synced while the next one gathers;
// groups (and the housekeeper's relocations) are released in log order. Removals (acks) are applied and
// written to a small side file (acklog.go) by a housekeeping goroutine
// (house.go) without a sync of their own: a removal lost in a crash only
// means the record is read again after the restart, never that a record is
// lost. The housekeeper also deletes a segment file once every record in it
// is acked, and copies forward the few records that keep an old segment
// alive long after it was read (records nacked again and again), so the
// files stay within a small multiple of the live data.
//
// On Open (recover.go) the segments are read back in order: a record cut
// short or failing its checksum ends its segment (a write torn by a crash,
// never acknowledged); the records before it are kept. A spool directory of
// the earlier bbolt format (webhook-spool.db) is migrated on Open: its
// records are appended to the log, synced, then the bbolt file is deleted.
package spool

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Files in the spool directory besides the segments and the removal file.
const (
	lockFileName   = "spool.lock"
	legacyFileName = "webhook-spool.db" // the bbolt spool of earlier versions
)

// Defaults applied by Open when the corresponding Options field is zero.
const (
	DefaultOpenTimeout = 5 * time.Second
	DefaultRemoveDelay = 20 * time.Millisecond
	DefaultRemoveBatch = 1024
	DefaultCacheBytes  = 16 << 20
)

const (
	// Segment size: a sixteenth of MaxBytes, within these bounds.
	minSegmentBytes = 1 << 20
	maxSegmentBytes = 32 << 20
)

// ErrFull is returned by Append when the record would take the spool over its
// size bound. Nothing was written.
var ErrFull = errors.New("spool is full")

// ErrTooLarge is returned by Append for a record over 1 GiB, the most a
// segment record holds. Nothing was written.
var ErrTooLarge = errors.New("record is larger than a spool record can be (1 GiB)")

// ErrClosed is returned by operations on a closed Spool.
var ErrClosed = errors.New("spool is closed")

var errLocked = errors.New("locked by another process")

// Options tune Open. The zero value is usable.
type Options struct {
	// MaxBytes bounds the summed size of the stored records (a 16-byte
	// header each included); zero or negative means unbounded. The files
	// hold more: acked records until their segment goes, by at most about
	// four times the live data plus a few segments.
	MaxBytes int64
	// OpenTimeout is how long Open waits for the directory's lock held by
	// another process (DefaultOpenTimeout when zero).
	OpenTimeout time.Duration
	// RemoveDelay is the longest a removal waits before it is applied and
	// written to the removal file (DefaultRemoveDelay when zero).
	RemoveDelay time.Duration
	// RemoveBatch is the number of waiting removals that are applied and
	// written at once without waiting for RemoveDelay (DefaultRemoveBatch
	// when zero).
	RemoveBatch int
	// CacheBytes bounds the in-memory copies of appended records the reader
	// has not read yet (DefaultCacheBytes when zero, negative disables the
	// cache). Records beyond it are read back from the files.
	CacheBytes int64
	// OnRemoveError is told about removals that could not be written (their
	// records are read again after a restart). Optional.
	OnRemoveError func(n int, err error)
	// OnCommit is told the depth after commits and removals (from the
	// spool's goroutines, so it must not block). Optional.
	OnCommit func(depth int64)
	// OnTornTail is told, during Open, about bytes at the end of a segment
	// that hold no valid record (a write torn by a crash; nothing in them
	// was acknowledged). Optional.
	OnTornTail func(file string, offset, bytes int64)

	// For tests: segment size, relocation delay, removal file compaction
	// threshold (defaults when zero).
	segmentBytes    int64
	relocateAfter   time.Duration
	ackCompactBytes int64
}

// Record is one stored entry.
type Record struct {
	Seq uint64
	// Value is the record, owned by the reader; nil when the record comes
	// from memory with a Note (which stands for it).
	Value []byte
	// Note is what the appender passed along with the value; nil when the
	// record was read back from the file.
	Note any
}

// cached is a record kept in memory for the reader, with its size.
type cached struct {
	rec  Record
	size int64
}

// entry locates one record that is in the log and not yet removed.
type entry struct {
	seq   uint64
	seg   *segment
	off   int64 // of the record header
	n     uint32
	acked bool // removed; the entry goes at the next trim
}

func cmpEntrySeq(e entry, seq uint64) int { return cmp.Compare(e.seq, seq) }

// slicesSearch finds the entry of seq in entries sorted by sequence.
func slicesSearch(entries []entry, seq uint64) (int, bool) {
	return slices.BinarySearchFunc(entries, seq, cmpEntrySeq)
}

// Spool is a durable FIFO of byte records. Safe for concurrent use.
type Spool struct {
	dir      string
	opts     Options
	lock     *os.File
	maxBytes int64
	bytes    atomic.Int64
	count    atomic.Int64
	notify   chan struct{}
	readHigh atomic.Uint64 // highest sequence handed to the reader

	// mu guards the work waiting for the lanes and the housekeeper.
	mu          sync.Mutex
	closed      bool
	isClosed    atomic.Bool // closed, readable without mu
	group       *commitGroup
	removals    []uint64
	spare       []uint64 // the removals slice of the previous round, reused
	removeSince time.Time

	wake      chan struct{} // an append waits for a lane
	houseWake chan struct{} // removals wait for the housekeeper
	flushReq  chan chan error
	closing   chan struct{} // closed by Close
	lanes     sync.WaitGroup
	houseDone chan struct{}
	busyLanes atomic.Int32
	aborted   atomic.Bool // tests: Close as a crash would (nothing more written)

	// wmu serializes the reservations of regions in the log (commit.go).
	wmu       sync.Mutex
	segBytes  int64
	nextSeq   uint64
	nextSegID uint64
	head      *segment
	lastJob   *job

	// segMu keeps segment files open while a reader reads them: the
	// housekeeper takes it exclusively to close one.
	segMu sync.RWMutex

	// idxMu guards idx (the records in the log that are not removed, in
	// sequence order, from idxStart on; acked ones wait for the next trim),
	// segs and the segments' counters.
	idxMu    sync.Mutex
	idx      []entry
	idxStart int
	idxAcked int
	lastSeq  uint64     // the highest sequence indexed so far
	segs     []*segment // in id order
	spares   []*segment // emptied, waiting to be recycled (not in segs)

	house housekeeping // owned by the housekeeper goroutine

	// cacheMu guards the records handed to the reader from memory: every
	// committed record with a sequence above cacheFloor is in cache, in order.
	cacheMu    sync.Mutex
	cache      []cached
	cacheBytes int64
	cacheFloor uint64
}

// Open opens (creating when missing) the spool in dir.
func Open(dir string, opts Options) (*Spool, error) {
	if dir == "" {
		return nil, errors.New("spool: directory must not be empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create directory: %w", err)
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}
	if opts.RemoveDelay <= 0 {
		opts.RemoveDelay = DefaultRemoveDelay
	}
	if opts.RemoveBatch <= 0 {
		opts.RemoveBatch = DefaultRemoveBatch
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.relocateAfter <= 0 {
		opts.relocateAfter = defaultRelocateAfter
	}
	if opts.ackCompactBytes <= 0 {
		opts.ackCompactBytes = defaultAckCompactBytes
	}
	segBytes := opts.segmentBytes
	if segBytes <= 0 {
		segBytes = maxSegmentBytes
		if opts.MaxBytes > 0 {
			segBytes = min(max(opts.MaxBytes/16, minSegmentBytes), maxSegmentBytes)
		}
	}
	lock, err := lockDir(filepath.Join(dir, lockFileName), opts.OpenTimeout)
	if err != nil {
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("spool: open %s: locked by another process (gave up after %s)", dir, opts.OpenTimeout)
		}
		return nil, fmt.Errorf("spool: open %s: %w", dir, err)
	}
	s := &Spool{
		dir: dir, opts: opts, lock: lock, maxBytes: opts.MaxBytes, segBytes: segBytes,
		notify: make(chan struct{}, 1), wake: make(chan struct{}, 1), houseWake: make(chan struct{}, 1),
		flushReq: make(chan chan error), closing: make(chan struct{}), houseDone: make(chan struct{}),
	}
	if err := s.recover(); err != nil {
		_ = s.closeFiles()
		return nil, fmt.Errorf("spool: open %s: %w", dir, err)
	}
	for range commitLanes {
		s.lanes.Add(1)
		go s.lane()
	}
	go s.housekeeper()
	return s, nil
}

// Depth is the number of stored records.
func (s *Spool) Depth() int64 { return s.count.Load() }

// Bytes is the accounted size of the stored records.
func (s *Spool) Bytes() int64 { return s.bytes.Load() }

// Notify receives a value after appends; a reader waiting for new records
// selects on it. One value may stand for several appends.
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// Append stores value durably (written and fdatasynced, possibly together
// with concurrent appends) and returns its sequence number. note stands for
// the record in memory: the reader gets it (Record.Note, Value nil) unless
// it reads the record back from a file. With a note the spool keeps no
// reference to value once Append returns, so the caller may reuse it;
// without one (nil) the spool keeps value for the reader and the caller
// must not change it. It returns ErrFull without writing when the spool
// would exceed its bound.
func (s *Spool) Append(value []byte, note any) (uint64, error) {
	if len(value) > maxRecordBytes {
		// Recovery would take it for a damaged length and stop there.
		return 0, ErrTooLarge
	}
	size := int64(len(value) + recHeaderSize)
	if used := s.bytes.Add(size); s.maxBytes > 0 && used > s.maxBytes {
		s.bytes.Add(-size)
		return 0, ErrFull
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.bytes.Add(-size)
		return 0, ErrClosed
	}
	g := s.group
	if g == nil {
		g = &commitGroup{done: make(chan struct{})}
		s.group = g
	}
	i := len(g.values)
	g.values = append(g.values, value)
	g.notes = append(g.notes, note)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}

	<-g.done
	if g.err != nil {
		s.bytes.Add(-size)
		return 0, fmt.Errorf("spool: append: %w", g.err)
	}
	return g.first + uint64(i), nil
}

// ReadAfter returns up to max records with a sequence number greater than
// after, in order: from memory when the reader is caught up, from the files
// otherwise. The in-memory copies are handed out once (with their Note);
// reading the same range again reads the files. One reader is expected.
func (s *Spool) ReadAfter(after uint64, max int) ([]Record, error) {
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	if after == ^uint64(0) || max <= 0 {
		return nil, nil
	}
	out, ok := s.readCache(after, max)
	if !ok {
		var err error
		if out, err = s.readFiles(after, max); err != nil {
			return nil, err
		}
	}
	if len(out) > 0 {
		if last := out[len(out)-1].Seq; last > s.readHigh.Load() {
			s.readHigh.Store(last)
		}
	}
	return out, nil
}

// readFiles reads up to max records after after from the segment files.
func (s *Spool) readFiles(after uint64, max int) ([]Record, error) {
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	s.idxMu.Lock()
	live := s.idx[s.idxStart:]
	i, _ := slicesSearch(live, after+1)
	var locs []entry
	for ; i < len(live) && len(locs) < max; i++ {
		if !live[i].acked {
			locs = append(locs, live[i])
		}
	}
	s.idxMu.Unlock()
	out := make([]Record, 0, len(locs))
	for _, e := range locs {
		v, err := readRecord(e.seg.f, e.off, e.n, e.seq)
		if err != nil {
			return nil, fmt.Errorf("spool: read: %w", err)
		}
		out = append(out, Record{Seq: e.seq, Value: v})
	}
	return out, nil
}

// readCache serves ReadAfter from memory when every record after after is
// there, handing the records over (they leave the cache).
func (s *Spool) readCache(after uint64, max int) ([]Record, bool) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if after < s.cacheFloor {
		return nil, false
	}
	start := sort.Search(len(s.cache), func(i int) bool { return s.cache[i].rec.Seq > after })
	end := min(start+max, len(s.cache))
	var out []Record
	if end > start {
		out = make([]Record, 0, end-start)
		for _, c := range s.cache[start:end] {
			out = append(out, c.rec)
		}
	}
	if end > 0 {
		s.cacheFloor = s.cache[end-1].rec.Seq
		s.dropCache(end)
	}
	return out, true
}

// dropCache removes the first n cached records. cacheMu is held.
func (s *Spool) dropCache(n int) {
	for i := range n {
		s.cacheBytes -= s.cache[i].size
		s.cache[i] = cached{}
	}
	s.cache = s.cache[n:]
	if len(s.cache) == 0 {
		s.cache = s.cache[:0:0]
	}
}

// addCache puts just committed records in memory, evicting the oldest ones
// beyond the bound (the reader then finds them in the files).
func (s *Spool) addCache(g *commitGroup) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.opts.CacheBytes < 0 {
		s.cacheFloor = g.first + uint64(len(g.values)) - 1
		return
	}
	for i, v := range g.values {
		c := cached{rec: Record{Seq: g.first + uint64(i), Note: g.notes[i]}, size: int64(len(v))}
		if c.rec.Note == nil {
			c.rec.Value = v
		}
		s.cache = append(s.cache, c)
		s.cacheBytes += c.size
	}
	n, over := 0, s.cacheBytes-s.opts.CacheBytes
	for n < len(s.cache) && over > 0 {
		over -= s.cache[n].size
		n++
	}
	if n > 0 {
		s.cacheFloor = s.cache[n-1].rec.Seq
		s.dropCache(n)
	}
}

// Remove forgets the record seq. The removal is applied (Depth and Bytes
// stop counting the record) and written to the removal file without a sync
// after RemoveDelay, or at once when RemoveBatch removals wait; after a
// crash the record may be read again. Removing a missing record is not an
// error.
func (s *Spool) Remove(seq uint64) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.removals = append(s.removals, seq)
	n := len(s.removals)
	if n == 1 {
		s.removeSince = time.Now()
	}
	s.mu.Unlock()
	if n == 1 || n >= s.opts.RemoveBatch {
		s.kickHouse() // arms the RemoveDelay timer or applies them
	}
	return nil
}

// Flush applies the waiting removals now, writes them and syncs the removal
// file. Appends are committed before Append returns: there are none to
// flush.
func (s *Spool) Flush() error {
	reply := make(chan error, 1)
	select {
	case s.flushReq <- reply:
		return <-reply
	case <-s.closing:
		return ErrClosed
	}
}

func (s *Spool) kickHouse() {
	select {
	case s.houseWake <- struct{}{}:
	default:
	}
}

// Close commits the waiting appends, applies and writes the waiting
// removals, syncs the removal file and closes the files.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.isClosed.Store(true)
	s.mu.Unlock()
	close(s.closing)
	s.lanes.Wait()
	<-s.houseDone
	return s.closeFiles()
}

// closeFiles closes the segments, the removal file and the lock.
func (s *Spool) closeFiles() error {
	var err error
	s.segMu.Lock()
	for _, seg := range s.segs {
		if cerr := seg.f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	for _, seg := range s.spares {
		_ = seg.f.Close()
		_ = os.Remove(seg.path)
	}
	s.segMu.Unlock()
	if s.house.acks != nil {
		if cerr := s.house.acks.close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if cerr := s.lock.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}
