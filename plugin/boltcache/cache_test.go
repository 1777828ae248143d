package boltcache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// runDedupe runs a stream that generates ids, dedupes them through a bbolt
// cache resource at path and returns the ids that got through.
func runDedupe(t *testing.T, path string, ids []string) []string {
	t.Helper()
	quoted := ""
	for i, id := range ids {
		if i > 0 {
			quoted += ","
		}
		quoted += fmt.Sprintf("%q", id)
	}
	b := service.NewStreamBuilder()
	require.NoError(t, b.SetLoggerYAML(`level: none`))
	// One pipeline thread: benthos v4.60 initialises cache resources lazily
	// under a read lock, so concurrent first accesses race inside benthos.
	b.SetThreads(1)
	require.NoError(t, b.AddInputYAML(fmt.Sprintf(`
generate:
  count: %d
  interval: ""
  mapping: 'root.id = [%s].index(counter() - 1)'
`, len(ids), quoted)))
	require.NoError(t, b.AddProcessorYAML(`
dedupe:
  cache: seen
  key: ${! json("id") }
`))
	require.NoError(t, b.AddResourcesYAML(fmt.Sprintf(`
cache_resources:
  - label: seen
    bbolt:
      path: %q
      default_ttl: 24h
`, path)))
	var mu sync.Mutex
	var got []string
	require.NoError(t, b.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
		v, err := m.AsStructured()
		if err != nil {
			return err
		}
		mu.Lock()
		got = append(got, v.(map[string]any)["id"].(string))
		mu.Unlock()
		return nil
	}))
	s, err := b.Build()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, s.Run(ctx))
	mu.Lock()
	defer mu.Unlock()
	return got
}

func TestCacheDedupeAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dedupe.db")

	got := runDedupe(t, path, []string{"a", "b", "a", "c", "b", "a"})
	assert.Equal(t, []string{"a", "b", "c"}, got)

	// A new stream on the same file remembers what the first one saw.
	got = runDedupe(t, path, []string{"c", "d", "a", "d", "e"})
	assert.Equal(t, []string{"d", "e"}, got)

	// The file holds the keys with the configured bucket.
	s, err := Open(path, DefaultBucket, Options{SweepInterval: -1})
	require.NoError(t, err)
	defer s.Close()
	n, err := s.Count()
	require.NoError(t, err)
	assert.Equal(t, 5, n)
}

func TestCacheProcessorOperatorsAndTTL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	b := service.NewStreamBuilder()
	require.NoError(t, b.SetLoggerYAML(`level: none`))
	// One pipeline thread: benthos v4.60 initialises cache resources lazily
	// under a read lock, so concurrent first accesses race inside benthos.
	b.SetThreads(1)
	require.NoError(t, b.AddInputYAML(`
generate:
  count: 1
  interval: ""
  mapping: 'root = "payload"'
`))
	for _, proc := range []string{`
cache:
  resource: store
  operator: set
  key: short
  value: 'short-lived'
  ttl: 1ns
`, `
cache:
  resource: store
  operator: set
  key: long
  value: 'long-lived'
  ttl: 1h
`, `
cache:
  resource: store
  operator: add
  key: long
  value: 'second add'
`, `
catch:
  - mapping: 'meta add_error = error()'
`, `
branch:
  processors:
    - cache:
        resource: store
        operator: get
        key: long
  result_map: 'meta got_long = content().string()'
`} {
		require.NoError(t, b.AddProcessorYAML(proc))
	}
	require.NoError(t, b.AddResourcesYAML(fmt.Sprintf(`
cache_resources:
  - label: store
    bbolt:
      path: %q
      bucket: things
      sweep_interval: 0s
`, path)))
	var mu sync.Mutex
	var metas []map[string]any
	require.NoError(t, b.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
		mu.Lock()
		defer mu.Unlock()
		meta := map[string]any{}
		_ = m.MetaWalkMut(func(k string, v any) error {
			meta[k] = v
			return nil
		})
		metas = append(metas, meta)
		return nil
	}))
	s, err := b.Build()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, s.Run(ctx))

	require.Len(t, metas, 1)
	assert.Contains(t, metas[0]["add_error"], "key already exists")
	assert.Equal(t, "long-lived", metas[0]["got_long"])

	st, err := Open(path, "things", Options{SweepInterval: -1})
	require.NoError(t, err)
	defer st.Close()
	_, err = st.Get("short")
	require.ErrorIs(t, err, ErrNotFound, "the per-call 1ns ttl expired")
	v, err := st.Get("long")
	require.NoError(t, err)
	assert.Equal(t, "long-lived", string(v))
}

func TestCacheConfigErrors(t *testing.T) {
	dir := t.TempDir()
	fileInDir := filepath.Join(dir, "plain-file")
	require.NoError(t, os.WriteFile(fileInDir, nil, 0o600))
	for name, tc := range map[string]struct {
		yaml string
		want string
	}{
		"bad open_timeout": {
			yaml: fmt.Sprintf("path: %q\nopen_timeout: 0s", filepath.Join(dir, "a.db")),
			want: "open_timeout must be positive",
		},
		"bad default_ttl": {
			yaml: fmt.Sprintf("path: %q\ndefault_ttl: -1s", filepath.Join(dir, "a.db")),
			want: "default_ttl must be positive",
		},
		"parent is a file": {
			yaml: fmt.Sprintf("path: %q", filepath.Join(fileInDir, "a.db")),
			want: "not a directory",
		},
		"missing path": {
			yaml: "bucket: x",
			want: "path",
		},
	} {
		t.Run(name, func(t *testing.T) {
			conf, err := cacheSpec().ParseYAML(tc.yaml, nil)
			if err == nil {
				_, err = newCacheFromConfig(conf, nil)
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCacheAdapter(t *testing.T) {
	conf, err := cacheSpec().ParseYAML(fmt.Sprintf("path: %q\ndefault_ttl: 1h", filepath.Join(t.TempDir(), "a.db")), nil)
	require.NoError(t, err)
	c, err := newCacheFromConfig(conf, nil)
	require.NoError(t, err)
	ctx := context.Background()

	require.NoError(t, c.Add(ctx, "k", []byte("v"), nil))
	require.ErrorIs(t, c.Add(ctx, "k", []byte("v2"), nil), service.ErrKeyAlreadyExists)
	require.NoError(t, c.SetMulti(ctx, service.CacheItem{Key: "m1", Value: []byte("1")}, service.CacheItem{Key: "m2", Value: []byte("2")}))
	v, err := c.Get(ctx, "m2")
	require.NoError(t, err)
	assert.Equal(t, "2", string(v))
	require.NoError(t, c.Delete(ctx, "k"))
	_, err = c.Get(ctx, "k")
	require.ErrorIs(t, err, service.ErrKeyNotFound)
	assert.Equal(t, time.Hour, c.store.defaultTTL)
	require.NoError(t, c.Close(ctx))
	require.NoError(t, c.Close(ctx))
	_, err = c.Get(ctx, "m1")
	require.ErrorIs(t, err, ErrClosed)
}
