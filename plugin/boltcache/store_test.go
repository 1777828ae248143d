package boltcache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// fakeClock is an injectable clock for expiry tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func dur(d time.Duration) *time.Duration { return &d }

func openTest(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	if opts.SweepInterval == 0 {
		opts.SweepInterval = -1
	}
	s, err := Open(path, DefaultBucket, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStoreSetGetAddDelete(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"), Options{})

	_, err := s.Get("missing")
	require.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, s.Set("a", []byte("one"), nil))
	v, err := s.Get("a")
	require.NoError(t, err)
	assert.Equal(t, "one", string(v))

	require.NoError(t, s.Set("a", []byte("two"), nil))
	v, err = s.Get("a")
	require.NoError(t, err)
	assert.Equal(t, "two", string(v))

	err = s.Add("a", []byte("three"), nil)
	require.ErrorIs(t, err, ErrKeyExists)
	v, err = s.Get("a")
	require.NoError(t, err)
	assert.Equal(t, "two", string(v), "a failed add must not overwrite")

	require.NoError(t, s.Add("b", []byte("bee"), nil))
	v, err = s.Get("b")
	require.NoError(t, err)
	assert.Equal(t, "bee", string(v))

	require.NoError(t, s.Delete("a"))
	_, err = s.Get("a")
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, s.Delete("a"), "deleting a missing key is not an error")
	require.NoError(t, s.Add("a", []byte("again"), nil))

	// Empty values are values, not absence.
	require.NoError(t, s.Set("empty", nil, nil))
	v, err = s.Get("empty")
	require.NoError(t, err)
	assert.Empty(t, v)

	require.ErrorContains(t, s.Set("", []byte("x"), nil), "key must not be empty")
	_, err = s.Get(string(make([]byte, 40000)))
	require.ErrorContains(t, err, "exceeds the maximum")
}

func TestStoreGetReturnsCopy(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"), Options{})
	require.NoError(t, s.Set("k", []byte("value"), nil))
	v, err := s.Get("k")
	require.NoError(t, err)
	v[0] = 'X'
	v2, err := s.Get("k")
	require.NoError(t, err)
	assert.Equal(t, "value", string(v2))
}

func TestStoreAddIsAtomicUnderConcurrency(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"), Options{NoSync: true})
	const workers = 16
	var wins, conflicts atomic.Int64
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Add("dedupe-key", []byte(fmt.Sprint(i)), nil)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ErrKeyExists):
				conflicts.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(1), wins.Load())
	assert.Equal(t, int64(workers-1), conflicts.Load())
}

func TestStoreTTLExpiry(t *testing.T) {
	clock := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"), Options{DefaultTTL: time.Hour, Now: clock.Now})

	require.NoError(t, s.Set("default", []byte("d"), nil))            // expires after 1h
	require.NoError(t, s.Set("short", []byte("s"), dur(time.Minute))) // expires after 1m
	require.NoError(t, s.Set("forever", []byte("f"), dur(0)))         // never expires
	require.NoError(t, s.Add("added", []byte("a"), dur(time.Minute)))

	n, err := s.Count()
	require.NoError(t, err)
	assert.Equal(t, 4, n)

	clock.Advance(time.Minute - time.Nanosecond)
	_, err = s.Get("short")
	require.NoError(t, err, "not yet expired")
	require.ErrorIs(t, s.Add("added", []byte("a2"), nil), ErrKeyExists)

	clock.Advance(time.Nanosecond)
	_, err = s.Get("short")
	require.ErrorIs(t, err, ErrNotFound)
	// Add over an expired key succeeds (dedupe window passed).
	require.NoError(t, s.Add("added", []byte("a2"), dur(time.Minute)))
	v, err := s.Get("added")
	require.NoError(t, err)
	assert.Equal(t, "a2", string(v))

	clock.Advance(time.Hour)
	_, err = s.Get("default")
	require.ErrorIs(t, err, ErrNotFound)
	v, err = s.Get("forever")
	require.NoError(t, err)
	assert.Equal(t, "f", string(v))

	var keys []string
	require.NoError(t, s.ForEach(func(k string, _ []byte) error {
		keys = append(keys, k)
		return nil
	}))
	assert.Equal(t, []string{"forever"}, keys, "expired keys are skipped by ForEach")

	// Expired records are still in the file until swept.
	raw := rawKeys(t, s)
	assert.ElementsMatch(t, []string{"added", "default", "forever", "short"}, raw)

	removed, err := s.Sweep()
	require.NoError(t, err)
	assert.Equal(t, 3, removed)
	assert.Equal(t, []string{"forever"}, rawKeys(t, s))
}

func TestStoreSweepManyPages(t *testing.T) {
	clock := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"), Options{Now: clock.Now, NoSync: true})
	items := make([]Item, 0, 1000)
	for i := range 1000 {
		ttl := dur(time.Minute)
		if i%10 == 0 {
			ttl = nil // no default TTL: never expires
		}
		items = append(items, Item{Key: fmt.Sprintf("k%04d", i), Value: []byte("v"), TTL: ttl})
	}
	require.NoError(t, s.SetMulti(items...))
	clock.Advance(2 * time.Minute)
	removed, err := s.Sweep()
	require.NoError(t, err)
	assert.Equal(t, 900, removed)
	n, err := s.Count()
	require.NoError(t, err)
	assert.Equal(t, 100, n)
	assert.Len(t, rawKeys(t, s), 100)
}

func TestStoreBackgroundSweep(t *testing.T) {
	clock := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"), Options{Now: clock.Now, SweepInterval: 5 * time.Millisecond})
	require.NoError(t, s.Set("gone", []byte("x"), dur(time.Second)))
	require.NoError(t, s.Set("kept", []byte("x"), nil))
	clock.Advance(time.Second)
	require.Eventually(t, func() bool {
		return len(rawKeys(t, s)) == 1
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, []string{"kept"}, rawKeys(t, s))
}

func TestStoreForEachFromPagesAndStop(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"), Options{NoSync: true})
	var items []Item
	for i := range 600 {
		items = append(items, Item{Key: fmt.Sprintf("%020d", i), Value: []byte(fmt.Sprint(i))})
	}
	require.NoError(t, s.SetMulti(items...))

	var got []string
	require.NoError(t, s.ForEach(func(k string, v []byte) error {
		assert.Equal(t, k, fmt.Sprintf("%020s", string(v)))
		got = append(got, k)
		return nil
	}))
	require.Len(t, got, 600)
	for i, k := range got {
		require.Equal(t, fmt.Sprintf("%020d", i), k)
	}

	// From a key, stopping early, deleting as we go (as a spool drain does).
	got = got[:0]
	require.NoError(t, s.ForEachFrom(fmt.Sprintf("%020d", 250), func(k string, _ []byte) error {
		got = append(got, k)
		if err := s.Delete(k); err != nil {
			return err
		}
		if len(got) == 300 {
			return ErrStop
		}
		return nil
	}))
	require.Len(t, got, 300)
	assert.Equal(t, fmt.Sprintf("%020d", 250), got[0])
	assert.Equal(t, fmt.Sprintf("%020d", 549), got[299])
	n, err := s.Count()
	require.NoError(t, err)
	assert.Equal(t, 300, n)

	boom := errors.New("boom")
	require.ErrorIs(t, s.ForEach(func(string, []byte) error { return boom }), boom)
}

func TestStoreDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	clock := newClock()
	s, err := Open(path, "state", Options{Now: clock.Now, SweepInterval: -1})
	require.NoError(t, err)
	require.NoError(t, s.Set("watermark", []byte("2026-01-02T03:04:05Z"), nil))
	require.NoError(t, s.Set("ttl", []byte("x"), dur(time.Hour)))
	seq, err := s.NextSequence()
	require.NoError(t, err)
	assert.Equal(t, uint64(1), seq)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Set("k", nil, nil), ErrClosed)
	require.NoError(t, s.Close(), "closing twice is harmless")

	s, err = Open(path, "state", Options{Now: clock.Now, SweepInterval: -1})
	require.NoError(t, err)
	defer s.Close()
	v, err := s.Get("watermark")
	require.NoError(t, err)
	assert.Equal(t, "2026-01-02T03:04:05Z", string(v))
	_, err = s.Get("ttl")
	require.NoError(t, err)
	seq, err = s.NextSequence()
	require.NoError(t, err)
	assert.Equal(t, uint64(2), seq, "sequence survives reopen")

	// The expiry is stored with the value, so it survives a reopen too.
	clock.Advance(time.Hour)
	_, err = s.Get("ttl")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestStoreBucketsShareFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	a := openTest(t, path, Options{})
	b, err := a.Bucket("spool")
	require.NoError(t, err)

	// A second Open of the same file in this process shares the handle rather
	// than waiting on bbolt's file lock.
	c, err := Open(path, "customers", Options{OpenTimeout: 50 * time.Millisecond, SweepInterval: -1})
	require.NoError(t, err)

	require.NoError(t, a.Set("k", []byte("a"), nil))
	require.NoError(t, b.Set("k", []byte("b"), nil))
	require.NoError(t, c.Set("k", []byte("c"), nil))
	for s, want := range map[*Store]string{a: "a", b: "b", c: "c"} {
		v, err := s.Get("k")
		require.NoError(t, err)
		assert.Equal(t, want, string(v), s.BucketName())
	}
	assert.Equal(t, a.Path(), b.Path())

	// Closing one Store leaves the others working.
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	v, err := c.Get("k")
	require.NoError(t, err)
	assert.Equal(t, "c", string(v))
	require.NoError(t, c.Close())

	_, err = a.Bucket("x")
	require.ErrorIs(t, err, ErrClosed)
	openMu.Lock()
	assert.NotContains(t, openFiles, a.Path(), "file closed with its last store")
	openMu.Unlock()
}

func TestStoreRejectsForeignRecords(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"), Options{})
	require.NoError(t, s.update(func(b *bolt.Bucket) error {
		return b.Put([]byte("foreign"), []byte("plain value"))
	}))
	_, err := s.Get("foreign")
	require.ErrorContains(t, err, "unrecognised record format")
	require.ErrorContains(t, s.ForEach(func(string, []byte) error { return nil }), "foreign")
	// Set replaces it with a proper record.
	require.NoError(t, s.Set("foreign", []byte("mine"), nil))
	v, err := s.Get("foreign")
	require.NoError(t, err)
	assert.Equal(t, "mine", string(v))
}

// rawKeys lists every key in the bucket, expired or not.
func rawKeys(t *testing.T, s *Store) []string {
	t.Helper()
	var keys []string
	require.NoError(t, s.view(func(b *bolt.Bucket) error {
		return b.ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	}))
	return keys
}

const lockHelperEnv = "BOLTCACHE_LOCK_HELPER_PATH"

// TestLockHelperProcess is not a test: it is run as a separate process by
// TestStoreSecondProcessTimesOut to hold the file lock.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv(lockHelperEnv)
	if path == "" {
		return
	}
	s, err := Open(path, DefaultBucket, Options{SweepInterval: -1})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	// Hold the lock until the parent closes our stdin.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = s.Close()
	os.Exit(0)
}

func TestStoreSecondProcessTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)

	start := time.Now()
	_, err = Open(path, DefaultBucket, Options{OpenTimeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrLocked)
	assert.ErrorIs(t, err, berrors.ErrTimeout)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "locked by another process")
	assert.Contains(t, err.Error(), "200ms")
	assert.GreaterOrEqual(t, elapsed, 100*time.Millisecond, "it waited for the lock (bbolt retries every 50ms)")
	assert.Less(t, elapsed, 5*time.Second)

	// Once the other process lets go the file opens and holds the data.
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait())
	s, err := Open(path, DefaultBucket, Options{OpenTimeout: time.Second, SweepInterval: -1})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

func TestOpenCreatesMissingDirectories(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "nested", "state.db")
	s, err := Open(path, "b", Options{SweepInterval: -1})
	require.NoError(t, err)
	require.NoError(t, s.Set("k", []byte("v"), nil))
	require.NoError(t, s.Close())
	_, err = os.Stat(path)
	require.NoError(t, err)
}

// A shared handle has one set of options: a no_sync cache on the poll
// input's state file used to turn fsync off for the state too (the first
// opener's NoSync won). A conflicting open is now refused, naming both
// openers, whichever opens first; agreeing openers still share the handle.
func TestSharedHandleRefusesConflictingNoSync(t *testing.T) {
	for _, first := range []bool{true, false} {
		t.Run(fmt.Sprintf("first no_sync %t", first), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "shared.db")
			a, err := Open(path, "state", Options{NoSync: first, SweepInterval: -1, Owner: "woocommerce_poll state_path"})
			require.NoError(t, err)
			defer a.Close()

			_, err = Open(path, "dedupe", Options{NoSync: !first, SweepInterval: -1, Owner: `bbolt cache "dedupe"`})
			require.ErrorIs(t, err, ErrConflictingOptions)
			assert.Contains(t, err.Error(), "woocommerce_poll state_path")
			assert.Contains(t, err.Error(), `bbolt cache "dedupe"`)
			assert.Contains(t, err.Error(), fmt.Sprintf("no_sync: %t", first))
			assert.Contains(t, err.Error(), path)
			assert.False(t, a.file.db.NoSync == !first, "the first opener's setting is untouched")

			b, err := Open(path, "dedupe", Options{NoSync: first, SweepInterval: -1})
			require.NoError(t, err, "the same setting shares the handle")
			assert.Same(t, a.file, b.file)
			require.NoError(t, b.Close())
		})
	}
}

// The cache component names itself by its resource label.
func TestCacheConflictNamesResource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	s, err := Open(path, "state", Options{SweepInterval: -1, Owner: "woocommerce_poll state_path"})
	require.NoError(t, err)
	defer s.Close()
	b := service.NewResourceBuilder()
	require.NoError(t, b.AddCacheYAML(fmt.Sprintf("label: dedupe\nbbolt:\n  path: %s\n  no_sync: true\n", path)))
	res, closeFn, err := b.Build()
	if err == nil {
		defer func() { _ = closeFn(context.Background()) }()
		err = res.AccessCache(context.Background(), "dedupe", func(c service.Cache) {
			err = c.Set(context.Background(), "k", []byte("v"), nil)
		})
	}
	require.ErrorIs(t, err, ErrConflictingOptions)
	assert.Contains(t, err.Error(), `bbolt cache "dedupe"`)
	assert.Contains(t, err.Error(), "woocommerce_poll state_path")
}
