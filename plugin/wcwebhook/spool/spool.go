// Package spool is the durable queue behind the woocommerce_webhook input's
// `ack: spooled` mode: records are appended to a bbolt file and fsynced before
// the HTTP 200 is sent, read back in order by the pipeline feeder, and removed
// only once the pipeline acknowledged them. Appends and removals are group
// committed with bbolt's DB.Batch, so concurrent requests share one fsync.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	DefaultBatchDelay  = 2 * time.Millisecond
)

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
	// BatchDelay is the longest an append or removal waits for others to
	// share its commit (DefaultBatchDelay when zero).
	BatchDelay time.Duration
}

// Record is one stored entry.
type Record struct {
	Seq   uint64
	Value []byte // a copy, safe to keep
}

// Spool is a durable FIFO of byte records. Safe for concurrent use.
type Spool struct {
	db       *bolt.DB
	maxBytes int64
	bytes    atomic.Int64
	count    atomic.Int64
	closed   atomic.Bool
	notify   chan struct{}
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
	if opts.BatchDelay <= 0 {
		opts.BatchDelay = DefaultBatchDelay
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.OpenTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("spool: open %s: locked by another process (gave up after %s)", path, opts.OpenTimeout)
		}
		return nil, fmt.Errorf("spool: open %s: %w", path, err)
	}
	db.MaxBatchDelay = opts.BatchDelay
	s := &Spool{db: db, maxBytes: opts.MaxBytes, notify: make(chan struct{}, 1)}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName)
		if err != nil {
			return err
		}
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
// concurrent appends) and returns its sequence number. value is not retained
// after Append returns. It returns ErrFull without writing when the spool
// would exceed its bound.
func (s *Spool) Append(value []byte) (uint64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	size := int64(len(value) + keyOverhead)
	if used := s.bytes.Add(size); s.maxBytes > 0 && used > s.maxBytes {
		s.bytes.Add(-size)
		return 0, ErrFull
	}
	var seq uint64
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		n, err := b.NextSequence()
		if err != nil {
			return err
		}
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], n)
		if err := b.Put(key[:], value); err != nil {
			return err
		}
		seq = n
		return nil
	})
	if err != nil {
		s.bytes.Add(-size)
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("spool: append: %w", err)
	}
	s.count.Add(1)
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return seq, nil
}

// ReadAfter returns up to max records with a sequence number greater than
// after, in order.
func (s *Spool) ReadAfter(after uint64, max int) ([]Record, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if after == ^uint64(0) {
		return nil, nil
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
		return nil, fmt.Errorf("spool: read: %w", err)
	}
	return out, nil
}

// Remove deletes the record seq (a commit possibly shared with concurrent
// removals and appends). Removing a missing record is not an error.
func (s *Spool) Remove(seq uint64) error {
	if s.closed.Load() {
		return ErrClosed
	}
	var removed int64
	err := s.db.Batch(func(tx *bolt.Tx) error {
		removed = 0
		b := tx.Bucket(bucketName)
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], seq)
		v := b.Get(key[:])
		if v == nil {
			return nil
		}
		removed = int64(len(v) + keyOverhead)
		return b.Delete(key[:])
	})
	if err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			return ErrClosed
		}
		return fmt.Errorf("spool: remove %d: %w", seq, err)
	}
	if removed > 0 {
		s.bytes.Add(-removed)
		s.count.Add(-1)
	}
	return nil
}

// Close closes the file. Pending Batch calls finish first.
func (s *Spool) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.db.Close()
}
