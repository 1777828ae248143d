// Package boltcache holds the `bbolt` cache component and a small Go API
// (Store) over a bbolt file, so that other plugins (the webhook input's
// spool, the poll input's state) reuse the same durable key/value storage
// instead of duplicating bbolt code.
//
// Every value is stored with an optional expiry. Expired keys read as missing
// and are removed by Sweep, which a Store runs periodically.
//
// Within one process, Stores opened on the same file share one bbolt handle
// (bbolt holds an exclusive file lock, so a second handle in the same process
// would otherwise wait for the first). The handle's options are the file's,
// so openers must agree on them: an Open whose NoSync differs from the
// handle's fails with ErrConflictingOptions naming both openers, rather than
// letting a no_sync cache silently turn off fsync for another user of the
// file (the poll input's state, say). A second process opening the same file
// gets a clear error once the open timeout elapses.
package boltcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Defaults applied by Open when the corresponding Options field is zero.
const (
	DefaultBucket        = "wooevents"
	DefaultOpenTimeout   = 5 * time.Second
	DefaultSweepInterval = time.Minute
)

// Errors returned by Store. ErrNotFound and ErrKeyExists are the benthos cache
// errors, so Store results can be returned from a service.Cache unchanged.
var (
	ErrNotFound  = service.ErrKeyNotFound
	ErrKeyExists = service.ErrKeyAlreadyExists
	// ErrClosed is returned by operations on a closed Store.
	ErrClosed = errors.New("bbolt store is closed")
	// ErrStop may be returned by a ForEach callback to end the iteration
	// early without an error.
	ErrStop = errors.New("stop iteration")
	// ErrLocked wraps the error of an Open that gave up waiting for the file
	// lock held by another process.
	ErrLocked = errors.New("bbolt file is locked by another process")
	// ErrConflictingOptions wraps the error of an Open whose options
	// disagree with those of the handle already open on the file.
	ErrConflictingOptions = errors.New("bbolt file is already open with other options")
)

// Options tune Open. The zero value is usable.
type Options struct {
	// OpenTimeout is how long Open waits for the file lock held by another
	// process. Zero means DefaultOpenTimeout.
	OpenTimeout time.Duration
	// NoSync skips fsync after each write: faster, but the last writes may be
	// lost on a crash or power failure.
	NoSync bool
	// DefaultTTL applies to writes with a nil TTL. Zero means keys never
	// expire.
	DefaultTTL time.Duration
	// SweepInterval is the period of the background removal of expired keys.
	// Zero means DefaultSweepInterval, negative disables the background sweep
	// (Sweep can still be called).
	SweepInterval time.Duration
	// OnSweepError receives errors of the background sweep; nil drops them.
	OnSweepError func(error)
	// Now is the clock used for expiry; nil means time.Now.
	Now func() time.Time
	// Owner names the opener in errors about a file shared with another
	// opener of this process, e.g. `bbolt cache "dedupe"` or
	// `woocommerce_poll state_path`. Empty: "an unnamed opener".
	Owner string
}

// Item is one entry for SetMulti.
type Item struct {
	Key   string
	Value []byte
	// TTL: nil applies the Store's default TTL, a pointer to zero or a
	// negative duration means the key never expires.
	TTL *time.Duration
}

// Store is one bucket of a bbolt file. It is safe for concurrent use.
type Store struct {
	file       *sharedFile
	bucket     []byte
	opts       Options
	defaultTTL time.Duration
	now        func() time.Time

	closed    atomic.Bool
	closeOnce sync.Once
	stopSweep chan struct{}
	sweepDone chan struct{}
}

// sharedFile is a bbolt handle shared by all Stores of one file in this
// process.
type sharedFile struct {
	db     *bolt.DB
	path   string
	refs   int
	noSync bool   // the handle's NoSync: every opener must ask for the same
	owner  string // the first opener, for conflict errors
}

var (
	openMu    sync.Mutex
	openFiles = map[string]*sharedFile{}
)

// Open opens (creating when missing) the bbolt file at path and the bucket
// within it. Close the Store when done; the file is closed when its last
// Store is. When the file is already open in this process the handle is
// shared: opts.OpenTimeout of the first opener applies, and an opts.NoSync
// other than the first opener's is refused with ErrConflictingOptions.
func Open(path, bucket string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("bbolt: path must not be empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("bbolt: resolve path %q: %w", path, err)
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}

	openMu.Lock()
	f, ok := openFiles[abs]
	if !ok {
		// Like a log file, the state file's directory is created on demand, so
		// a pipeline pointing at ./data/x.db runs on a fresh checkout.
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			openMu.Unlock()
			return nil, fmt.Errorf("bbolt: create directory of %q: %w", path, err)
		}
		db, err := bolt.Open(abs, 0o600, &bolt.Options{Timeout: opts.OpenTimeout, NoSync: opts.NoSync})
		if err != nil {
			openMu.Unlock()
			if errors.Is(err, berrors.ErrTimeout) {
				return nil, fmt.Errorf("bbolt: open %s: %w (gave up after %s): %w", abs, ErrLocked, opts.OpenTimeout, err)
			}
			return nil, fmt.Errorf("bbolt: open %s: %w", abs, err)
		}
		f = &sharedFile{db: db, path: abs, noSync: opts.NoSync, owner: ownerName(opts.Owner)}
		openFiles[abs] = f
	} else if f.noSync != opts.NoSync {
		openMu.Unlock()
		return nil, fmt.Errorf("bbolt: %w: %s opened %s with no_sync: %t, %s asks for no_sync: %t; one handle serves both and must not drop fsync for either: give them the same no_sync or separate files",
			ErrConflictingOptions, f.owner, abs, f.noSync, ownerName(opts.Owner), opts.NoSync)
	}
	f.refs++
	openMu.Unlock()

	s, err := newStore(f, bucket, opts)
	if err != nil {
		return nil, errors.Join(err, f.release())
	}
	return s, nil
}

func ownerName(o string) string {
	if o == "" {
		return "an unnamed opener"
	}
	return o
}

func (f *sharedFile) release() error {
	openMu.Lock()
	defer openMu.Unlock()
	f.refs--
	if f.refs > 0 {
		return nil
	}
	delete(openFiles, f.path)
	return f.db.Close()
}

func newStore(f *sharedFile, bucket string, opts Options) (*Store, error) {
	if bucket == "" {
		return nil, errors.New("bbolt: bucket name must not be empty")
	}
	if err := f.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(bucket))
		return err
	}); err != nil {
		return nil, fmt.Errorf("bbolt: create bucket %q in %s: %w", bucket, f.path, err)
	}
	s := &Store{
		file:       f,
		bucket:     []byte(bucket),
		opts:       opts,
		defaultTTL: opts.DefaultTTL,
		now:        opts.Now,
		stopSweep:  make(chan struct{}),
		sweepDone:  make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	if interval > 0 {
		go s.sweepLoop(interval)
	} else {
		close(s.sweepDone)
	}
	return s, nil
}

// Bucket opens another bucket of the same file with the same options. The
// returned Store must be closed as well.
func (s *Store) Bucket(name string) (*Store, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	openMu.Lock()
	s.file.refs++
	openMu.Unlock()
	b, err := newStore(s.file, name, s.opts)
	if err != nil {
		return nil, errors.Join(err, s.file.release())
	}
	return b, nil
}

// Path is the absolute path of the bbolt file.
func (s *Store) Path() string { return s.file.path }

// BucketName is the name of the Store's bucket.
func (s *Store) BucketName() string { return string(s.bucket) }

// Close stops the sweep and releases the file (closed with its last Store).
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stopSweep)
		<-s.sweepDone
		err = s.file.release()
	})
	return err
}

//------------------------------------------------------------------------------

// Record layout: 1 format byte, 8 bytes big-endian expiry in Unix nanoseconds
// (0 = never), then the value.
const (
	recordFormat = 1
	headerLen    = 9
)

func encodeRecord(value []byte, expiry int64) []byte {
	rec := make([]byte, headerLen+len(value))
	rec[0] = recordFormat
	binary.BigEndian.PutUint64(rec[1:headerLen], uint64(expiry))
	copy(rec[headerLen:], value)
	return rec
}

// decodeRecord returns the value (aliasing rec) and expiry of a record.
func decodeRecord(rec []byte) ([]byte, int64, error) {
	if len(rec) < headerLen || rec[0] != recordFormat {
		return nil, 0, errors.New("bbolt: unrecognised record format (was the bucket written by another program?)")
	}
	return rec[headerLen:], int64(binary.BigEndian.Uint64(rec[1:headerLen])), nil
}

func expired(expiry int64, now time.Time) bool {
	return expiry != 0 && now.UnixNano() >= expiry
}

func (s *Store) expiryFor(ttl *time.Duration) int64 {
	d := s.defaultTTL
	if ttl != nil {
		d = *ttl
	}
	if d <= 0 {
		return 0
	}
	return s.now().Add(d).UnixNano()
}

func (s *Store) view(fn func(b *bolt.Bucket) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.file.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return fmt.Errorf("bbolt: bucket %q missing from %s", s.bucket, s.file.path)
		}
		return fn(b)
	})
}

func (s *Store) update(fn func(b *bolt.Bucket) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.file.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return fmt.Errorf("bbolt: bucket %q missing from %s", s.bucket, s.file.path)
		}
		return fn(b)
	})
}

func checkKey(key string) error {
	if key == "" {
		return errors.New("bbolt: key must not be empty")
	}
	if len(key) > bolt.MaxKeySize {
		return fmt.Errorf("bbolt: key of %d bytes exceeds the maximum of %d", len(key), bolt.MaxKeySize)
	}
	return nil
}

// Get returns a copy of the value of key, or ErrNotFound when the key is
// missing or expired.
func (s *Store) Get(key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	var out []byte
	err := s.view(func(b *bolt.Bucket) error {
		rec := b.Get([]byte(key))
		if rec == nil {
			return ErrNotFound
		}
		v, exp, err := decodeRecord(rec)
		if err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		if expired(exp, s.now()) {
			return ErrNotFound
		}
		out = append([]byte{}, v...)
		return nil
	})
	return out, err
}

// GetMulti reads several keys in one read transaction and calls fn with the
// index of each key that is present and not expired and a copy-free view of
// its value, valid only during the call.
func (s *Store) GetMulti(keys []string, fn func(i int, value []byte)) error {
	return s.view(func(b *bolt.Bucket) error {
		now := s.now()
		for i, key := range keys {
			if key == "" || len(key) > bolt.MaxKeySize {
				continue
			}
			rec := b.Get([]byte(key))
			if rec == nil {
				continue
			}
			v, exp, err := decodeRecord(rec)
			if err != nil {
				return fmt.Errorf("key %q: %w", key, err)
			}
			if !expired(exp, now) {
				fn(i, v)
			}
		}
		return nil
	})
}

// Set writes key. ttl nil applies the default TTL; a pointer to zero or a
// negative duration means the key never expires.
func (s *Store) Set(key string, value []byte, ttl *time.Duration) error {
	return s.SetMulti(Item{Key: key, Value: value, TTL: ttl})
}

// SetMulti writes all items in one transaction.
func (s *Store) SetMulti(items ...Item) error {
	for _, it := range items {
		if err := checkKey(it.Key); err != nil {
			return err
		}
	}
	return s.update(func(b *bolt.Bucket) error {
		for _, it := range items {
			if err := b.Put([]byte(it.Key), encodeRecord(it.Value, s.expiryFor(it.TTL))); err != nil {
				return fmt.Errorf("bbolt: put %q: %w", it.Key, err)
			}
		}
		return nil
	})
}

// Add writes key only when it is missing or expired, atomically; otherwise it
// returns ErrKeyExists. ttl as for Set.
func (s *Store) Add(key string, value []byte, ttl *time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return s.update(func(b *bolt.Bucket) error {
		if rec := b.Get([]byte(key)); rec != nil {
			_, exp, err := decodeRecord(rec)
			if err == nil && !expired(exp, s.now()) {
				return ErrKeyExists
			}
		}
		if err := b.Put([]byte(key), encodeRecord(value, s.expiryFor(ttl))); err != nil {
			return fmt.Errorf("bbolt: put %q: %w", key, err)
		}
		return nil
	})
}

// Delete removes key. Deleting a missing key is not an error.
func (s *Store) Delete(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return s.update(func(b *bolt.Bucket) error {
		return b.Delete([]byte(key))
	})
}

// NextSequence returns the bucket's next autoincrement integer (starting at
// 1), durable like any write; useful for ordered keys such as spool entries
// (format them fixed-width, e.g. %020d, so key order is numeric order).
func (s *Store) NextSequence() (uint64, error) {
	var n uint64
	err := s.update(func(b *bolt.Bucket) (err error) {
		n, err = b.NextSequence()
		return err
	})
	return n, err
}

// scanPage is how many entries ForEach and Sweep read per transaction.
const scanPage = 256

// ForEach calls fn for every unexpired entry in key byte order. See
// ForEachFrom.
func (s *Store) ForEach(fn func(key string, value []byte) error) error {
	return s.ForEachFrom("", fn)
}

// ForEachFrom calls fn for every unexpired entry with a key >= from, in key
// byte order. fn gets copies and may modify the Store (entries are read in
// pages, outside of fn, so changes made meanwhile may or may not be seen).
// Returning ErrStop ends the iteration with a nil error; any other error ends
// it and is returned.
func (s *Store) ForEachFrom(from string, fn func(key string, value []byte) error) error {
	type entry struct {
		key   string
		value []byte
	}
	next := []byte(from)
	inclusive := true
	for {
		var page []entry
		var last []byte
		err := s.view(func(b *bolt.Bucket) error {
			c := b.Cursor()
			k, rec := c.Seek(next)
			if !inclusive && k != nil && string(k) == string(next) {
				k, rec = c.Next()
			}
			now := s.now()
			for ; k != nil && len(page) < scanPage; k, rec = c.Next() {
				last = append(last[:0], k...)
				v, exp, err := decodeRecord(rec)
				if err != nil {
					return fmt.Errorf("key %q: %w", k, err)
				}
				if expired(exp, now) {
					continue
				}
				page = append(page, entry{key: string(k), value: append([]byte{}, v...)})
			}
			if k == nil {
				last = nil
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e.key, e.value); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
		if last == nil {
			return nil
		}
		next, inclusive = last, false
	}
}

// Count returns the number of unexpired entries.
func (s *Store) Count() (int, error) {
	n := 0
	err := s.view(func(b *bolt.Bucket) error {
		now := s.now()
		return b.ForEach(func(_, rec []byte) error {
			if _, exp, err := decodeRecord(rec); err == nil && !expired(exp, now) {
				n++
			}
			return nil
		})
	})
	return n, err
}

// Sweep removes expired entries and returns how many it removed. Reads and
// deletes happen in pages so writers are never blocked for long.
func (s *Store) Sweep() (int, error) {
	removed := 0
	var from []byte
	for {
		var keys [][]byte
		var more bool
		err := s.view(func(b *bolt.Bucket) error {
			c := b.Cursor()
			now := s.now()
			var k, rec []byte
			if from == nil {
				k, rec = c.First()
			} else {
				k, rec = c.Seek(from)
			}
			for ; k != nil; k, rec = c.Next() {
				if _, exp, err := decodeRecord(rec); err == nil && expired(exp, now) {
					if len(keys) == scanPage {
						from, more = append([]byte{}, k...), true
						return nil
					}
					keys = append(keys, append([]byte{}, k...))
				}
			}
			return nil
		})
		if err != nil {
			return removed, err
		}
		if len(keys) > 0 {
			err = s.update(func(b *bolt.Bucket) error {
				now := s.now()
				for _, k := range keys {
					// Re-check: the key may have been rewritten since the read.
					rec := b.Get(k)
					if rec == nil {
						continue
					}
					if _, exp, err := decodeRecord(rec); err != nil || !expired(exp, now) {
						continue
					}
					if err := b.Delete(k); err != nil {
						return err
					}
					removed++
				}
				return nil
			})
			if err != nil {
				return removed, err
			}
		}
		if !more {
			return removed, nil
		}
	}
}

func (s *Store) sweepLoop(interval time.Duration) {
	defer close(s.sweepDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
			if _, err := s.Sweep(); err != nil && !errors.Is(err, ErrClosed) && s.opts.OnSweepError != nil {
				s.opts.OnSweepError(err)
			}
		}
	}
}
