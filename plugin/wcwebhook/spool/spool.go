// Package spool is the durable queue behind the woocommerce_webhook input's
// `ack: spooled` mode: records are appended to a bbolt file and fsynced before
// Append returns (and so before the HTTP 200 is sent), handed to the reader
// from memory (read back from the file only after a restart or when the reader
// lags far behind), and removed only once the pipeline acknowledged them.
//
// One writer goroutine does every write transaction. Appends that arrive while
// a commit is running share the next one, and before committing the writer
// yields so that requests ready to append can join (group commit without a
// fixed delay: a lone append commits at once). Removals are not durable on their
// own: they wait to ride along with the next append commit, or are committed
// by themselves after RemoveDelay or RemoveBatch of them. A removal lost in a
// crash only means the record is read again after the restart.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the bbolt file inside the spool directory.
const FileName = "webhook-spool.db"

// Defaults applied by Open when the corresponding Options field is zero.
const (
	DefaultOpenTimeout = 5 * time.Second
	DefaultRemoveDelay = 20 * time.Millisecond
	DefaultRemoveBatch = 1024
	DefaultCacheBytes  = 16 << 20
)

// maxGatherYields bounds how often the writer yields for a growing group.
const maxGatherYields = 8

var bucketName = []byte("deliveries")

// keyOverhead is what one entry costs beyond its value in the size accounting.
const keyOverhead = 8

// ErrFull is returned by Append when the record would take the spool over its
// size bound. Nothing was written.
var ErrFull = errors.New("spool is full")

// ErrClosed is returned by operations on a closed Spool.
var ErrClosed = errors.New("spool is closed")

// Options tune Open. The zero value is usable.
type Options struct {
	// MaxBytes bounds the summed size of the stored records (keys included);
	// zero or negative means unbounded. The bbolt file itself can grow beyond
	// it by its free pages and page overhead.
	MaxBytes int64
	// OpenTimeout is how long Open waits for the file lock held by another
	// process (DefaultOpenTimeout when zero).
	OpenTimeout time.Duration
	// RemoveDelay is the longest a removal waits to share an append's commit
	// before it is committed on its own (DefaultRemoveDelay when zero).
	RemoveDelay time.Duration
	// RemoveBatch is the number of waiting removals that are committed at
	// once without waiting for RemoveDelay (DefaultRemoveBatch when zero).
	RemoveBatch int
	// CacheBytes bounds the in-memory copies of appended records the reader
	// has not read yet (DefaultCacheBytes when zero, negative disables the
	// cache). Records beyond it are read back from the file.
	CacheBytes int64
	// OnRemoveError is told about a failed removal commit (its records stay
	// in the spool and are read again after a restart). Optional.
	OnRemoveError func(n int, err error)
	// OnCommit is told the depth after every commit (from the writer
	// goroutine, so it must not block). Optional.
	OnCommit func(depth int64)
}

// Record is one stored entry.
type Record struct {
	Seq   uint64
	Value []byte // owned by the reader, safe to keep
	// Note is what the appender passed along with the value; nil when the
	// record was read back from the file.
	Note any
}

// commitGroup is the appends that share one write transaction.
type commitGroup struct {
	values [][]byte
	notes  []any
	first  uint64 // sequence of values[0], set by the commit
	err    error
	done   chan struct{}
}

// Spool is a durable FIFO of byte records. Safe for concurrent use.
type Spool struct {
	db       *bolt.DB
	opts     Options
	maxBytes int64
	bytes    atomic.Int64
	count    atomic.Int64
	notify   chan struct{}

	// mu guards the work waiting for the writer.
	mu          sync.Mutex
	closed      bool
	isClosed    atomic.Bool // closed, readable without mu
	group       *commitGroup
	removals    []uint64
	spare       []uint64 // the removals slice of the previous commit, reused
	removeSince time.Time
	wake        chan struct{}
	stopped     chan struct{}

	// cacheMu guards the records handed to the reader from memory: every
	// committed record with a sequence above cacheFloor is in cache, in order.
	cacheMu    sync.Mutex
	cache      []Record
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
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.OpenTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("spool: open %s: locked by another process (gave up after %s)", path, opts.OpenTimeout)
		}
		return nil, fmt.Errorf("spool: open %s: %w", path, err)
	}
	s := &Spool{
		db: db, opts: opts, maxBytes: opts.MaxBytes,
		notify: make(chan struct{}, 1), wake: make(chan struct{}, 1), stopped: make(chan struct{}),
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName)
		if err != nil {
			return err
		}
		// Records already on disk are read from the file, not from the cache.
		s.cacheFloor = b.Sequence()
		return b.ForEach(func(k, v []byte) error {
			s.bytes.Add(int64(len(v) + keyOverhead))
			s.count.Add(1)
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("spool: read %s: %w", path, err)
	}
	go s.run()
	return s, nil
}

// Path is the bbolt file's path.
func (s *Spool) Path() string { return s.db.Path() }

// Depth is the number of stored records.
func (s *Spool) Depth() int64 { return s.count.Load() }

// Bytes is the accounted size of the stored records.
func (s *Spool) Bytes() int64 { return s.bytes.Load() }

// Notify receives a value after appends; a reader waiting for new records
// selects on it. One value may stand for several appends.
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// Append stores value durably (fsynced, possibly in a commit shared with
// concurrent appends) and returns its sequence number. The spool takes
// value over: the caller must not change it afterwards. note travels with
// the in-memory copy to the reader (Record.Note). It returns ErrFull without
// writing when the spool would exceed its bound.
func (s *Spool) Append(value []byte, note any) (uint64, error) {
	size := int64(len(value) + keyOverhead)
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
	s.kick()

	<-g.done
	if g.err != nil {
		s.bytes.Add(-size)
		if errors.Is(g.err, berrors.ErrDatabaseNotOpen) {
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("spool: append: %w", g.err)
	}
	return g.first + uint64(i), nil
}

// ReadAfter returns up to max records with a sequence number greater than
// after, in order: from memory when the reader is caught up, from the file
// otherwise. The in-memory copies are handed out once (with their Note);
// reading the same range again reads the file. One reader is expected.
func (s *Spool) ReadAfter(after uint64, max int) ([]Record, error) {
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	if after == ^uint64(0) || max <= 0 {
		return nil, nil
	}
	if out, ok := s.readCache(after, max); ok {
		return out, nil
	}
	var out []Record
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketName).Cursor()
		var start [8]byte
		binary.BigEndian.PutUint64(start[:], after+1)
		for k, v := c.Seek(start[:]); k != nil && len(out) < max; k, v = c.Next() {
			if len(k) != 8 {
				continue
			}
			out = append(out, Record{Seq: binary.BigEndian.Uint64(k), Value: append([]byte(nil), v...)})
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("spool: read: %w", err)
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
	start := sort.Search(len(s.cache), func(i int) bool { return s.cache[i].Seq > after })
	end := min(start+max, len(s.cache))
	var out []Record
	if end > start {
		out = append(out, s.cache[start:end]...)
	}
	if end > 0 {
		s.cacheFloor = s.cache[end-1].Seq
		s.dropCache(end)
	}
	return out, true
}

// dropCache removes the first n cached records. cacheMu is held.
func (s *Spool) dropCache(n int) {
	for i := range n {
		s.cacheBytes -= int64(len(s.cache[i].Value))
		s.cache[i] = Record{}
	}
	s.cache = s.cache[n:]
	if len(s.cache) == 0 {
		s.cache = s.cache[:0:0]
	}
}

// addCache puts just committed records in memory, evicting the oldest ones
// beyond the bound (the reader then finds them in the file).
func (s *Spool) addCache(g *commitGroup) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	for i, v := range g.values {
		s.cache = append(s.cache, Record{Seq: g.first + uint64(i), Value: v, Note: g.notes[i]})
		s.cacheBytes += int64(len(v))
	}
	n, over := 0, s.cacheBytes-s.opts.CacheBytes
	for n < len(s.cache) && over > 0 {
		over -= int64(len(s.cache[n].Value))
		n++
	}
	if n > 0 {
		s.cacheFloor = s.cache[n-1].Seq
		s.dropCache(n)
	}
}

// Remove deletes the record seq once its removal is committed: with the next
// append commit, or on its own after RemoveDelay or RemoveBatch removals.
// Until then Depth and Bytes still count it; after a crash it may be read
// again. Removing a missing record is not an error.
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
		s.kick() // the writer arms its RemoveDelay timer or commits
	}
	return nil
}

// Flush commits the waiting removals (and appends) now.
func (s *Spool) Flush() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	g := s.group
	if g == nil {
		g = &commitGroup{done: make(chan struct{})}
		s.group = g
	}
	s.mu.Unlock()
	s.kick()
	<-g.done
	return g.err
}

func (s *Spool) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the writer: it commits the waiting appends together with the
// waiting removals, or the removals alone once they are due.
func (s *Spool) run() {
	defer close(s.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		select {
		case <-s.wake:
		case <-timer.C:
			armed = false
		}
		for {
			s.gather()
			s.mu.Lock()
			g := s.group
			s.group = nil
			var rm []uint64
			pending := len(s.removals) > 0
			since := s.removeSince
			due := len(s.removals) >= s.opts.RemoveBatch || time.Since(since) >= s.opts.RemoveDelay
			if pending && (g != nil || due || s.closed) {
				rm = s.removals
				s.removals = s.spare[:0]
				pending = false
			}
			closed := s.closed
			s.mu.Unlock()
			if g == nil && rm == nil {
				if closed {
					timer.Stop()
					return
				}
				if pending && !armed {
					timer.Reset(time.Until(since.Add(s.opts.RemoveDelay)))
					armed = true
				}
				break
			}
			s.commit(g, rm)
			if rm != nil {
				s.mu.Lock()
				s.spare = rm
				s.mu.Unlock()
			}
		}
	}
}

// gather lets the goroutines that are ready to run (requests about to
// append) join the waiting group before it is committed: with one P, a
// writer woken by the first append would otherwise commit it alone and keep
// the P in its syscalls while the others wait, which degenerates into one
// commit per append. It yields while the group grows, a few times at most.
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

// commit writes one transaction: the removals, then the group's appends.
func (s *Spool) commit(g *commitGroup, rm []uint64) {
	var freed, removed int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		freed, removed = 0, 0
		b := tx.Bucket(bucketName)
		if err := deleteAll(b, rm, &freed, &removed); err != nil {
			return err
		}
		return putAll(b, g)
	})
	if err != nil && len(rm) > 0 && g != nil && len(g.values) > 0 {
		// Do not fail the appends for the removals' sake.
		if s.opts.OnRemoveError != nil {
			s.opts.OnRemoveError(len(rm), err)
		}
		freed, removed = 0, 0
		err = s.db.Update(func(tx *bolt.Tx) error { return putAll(tx.Bucket(bucketName), g) })
	} else if err != nil && len(rm) > 0 && s.opts.OnRemoveError != nil {
		s.opts.OnRemoveError(len(rm), err)
	}
	if err == nil {
		s.bytes.Add(-freed)
		s.count.Add(-removed)
		if g != nil {
			s.count.Add(int64(len(g.values)))
		}
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(s.count.Load())
		}
	}
	if g == nil {
		return
	}
	if err == nil {
		if s.opts.CacheBytes > 0 {
			s.addCache(g)
		} else if len(g.values) > 0 {
			s.cacheMu.Lock()
			s.cacheFloor = g.first + uint64(len(g.values)) - 1
			s.cacheMu.Unlock()
		}
	}
	g.err = err
	close(g.done)
	if err == nil && len(g.values) > 0 {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

func deleteAll(b *bolt.Bucket, rm []uint64, freed, removed *int64) error {
	var key [8]byte
	for _, seq := range rm {
		binary.BigEndian.PutUint64(key[:], seq)
		v := b.Get(key[:])
		if v == nil {
			continue
		}
		*freed += int64(len(v) + keyOverhead)
		*removed++
		if err := b.Delete(key[:]); err != nil {
			return err
		}
	}
	return nil
}

func putAll(b *bolt.Bucket, g *commitGroup) error {
	if g == nil || len(g.values) == 0 {
		return nil
	}
	first := b.Sequence() + 1
	var key [8]byte
	for i, v := range g.values {
		binary.BigEndian.PutUint64(key[:], first+uint64(i))
		if err := b.Put(key[:], v); err != nil {
			return err
		}
	}
	g.first = first
	return b.SetSequence(first + uint64(len(g.values)) - 1)
}

// Close commits the waiting appends and removals, then closes the file.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.isClosed.Store(true)
	s.mu.Unlock()
	s.kick()
	<-s.stopped
	return s.db.Close()
}
