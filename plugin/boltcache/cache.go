package boltcache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	bcFieldPath          = "path"
	bcFieldBucket        = "bucket"
	bcFieldDefaultTTL    = "default_ttl"
	bcFieldSweepInterval = "sweep_interval"
	bcFieldOpenTimeout   = "open_timeout"
	bcFieldNoSync        = "no_sync"
)

func cacheSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Local").
		Summary("Stores items in a local bbolt file: a durable, embedded key/value cache for checkpoints and deduplication.").
		Description(`
Items survive restarts. Writes are fsynced before they are acknowledged unless `+"`no_sync`"+` is set.

`+"`add`"+` is atomic (a single bbolt write transaction), so this cache is safe for the `+"`dedupe`"+` processor: a
key that exists and has not expired makes `+"`add`"+` fail with "key already exists".

Each item is stored with its expiry. Expired items read as missing and are removed by a periodic sweep so the file
does not grow forever (bbolt reuses the freed pages; it never shrinks the file).

Caches in the same process that point at the same file share one bbolt handle (use different `+"`bucket`"+` values
to keep them apart); they must agree on `+"`no_sync`"+` (a conflicting open fails, naming both users, so that a
`+"`no_sync`"+` cache never turns off fsync for another user of the file such as the poll input's state). bbolt locks the file, so a second process opening it fails once `+"`open_timeout`"+` elapses.`).
		Fields(
			service.NewStringField(bcFieldPath).
				Description("The bbolt file to use, created when missing. Its directory must exist.").
				Example("./data/wooevents.db"),
			service.NewStringField(bcFieldBucket).
				Description("The bucket within the file that holds this cache's items.").
				Default(DefaultBucket),
			service.NewDurationField(bcFieldDefaultTTL).
				Description("The time items live when a write does not give its own TTL. When unset items never expire.").
				Example("24h").
				Optional(),
			service.NewDurationField(bcFieldSweepInterval).
				Description("How often expired items are removed from the file. `0s` disables the sweep (expired items still read as missing).").
				Default(DefaultSweepInterval.String()).
				Advanced(),
			service.NewDurationField(bcFieldOpenTimeout).
				Description("How long to wait for the file lock when another process has the file open, before failing.").
				Default(DefaultOpenTimeout.String()).
				Advanced(),
			service.NewBoolField(bcFieldNoSync).
				Description("Skip the fsync after each write. Faster, but recent writes can be lost on a crash or power failure.").
				Default(false).
				Advanced(),
		).
		Example("Deduplicate across restarts", "Drop events already seen in the last week, remembering them across restarts.", `
pipeline:
  processors:
    - dedupe:
        cache: seen
        key: ${! meta("woocommerce_event_id") }

cache_resources:
  - label: seen
    bbolt:
      path: ./data/dedupe.db
      default_ttl: 168h
`)
}

func init() {
	service.MustRegisterCache("bbolt", cacheSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Cache, error) {
			return newCacheFromConfig(conf, mgr)
		})
}

// cache adapts a Store to service.Cache.
type cache struct {
	store *Store
}

func newCacheFromConfig(conf *service.ParsedConfig, mgr *service.Resources) (*cache, error) {
	path, err := conf.FieldString(bcFieldPath)
	if err != nil {
		return nil, err
	}
	bucket, err := conf.FieldString(bcFieldBucket)
	if err != nil {
		return nil, err
	}
	var opts Options
	if conf.Contains(bcFieldDefaultTTL) {
		if opts.DefaultTTL, err = conf.FieldDuration(bcFieldDefaultTTL); err != nil {
			return nil, err
		}
		if opts.DefaultTTL <= 0 {
			return nil, fmt.Errorf("%s must be positive, got %s", bcFieldDefaultTTL, opts.DefaultTTL)
		}
	}
	if opts.SweepInterval, err = conf.FieldDuration(bcFieldSweepInterval); err != nil {
		return nil, err
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = -1 // disabled
	}
	if opts.OpenTimeout, err = conf.FieldDuration(bcFieldOpenTimeout); err != nil {
		return nil, err
	}
	if opts.OpenTimeout <= 0 {
		return nil, fmt.Errorf("%s must be positive, got %s", bcFieldOpenTimeout, opts.OpenTimeout)
	}
	if opts.NoSync, err = conf.FieldBool(bcFieldNoSync); err != nil {
		return nil, err
	}
	opts.Owner = "a bbolt cache"
	if mgr != nil {
		if l := mgr.Label(); l != "" {
			opts.Owner = fmt.Sprintf("bbolt cache %q", l)
		}
		log := mgr.Logger()
		opts.OnSweepError = func(err error) {
			log.Errorf("Failed to remove expired items from bbolt cache: %v", err)
		}
	}
	s, err := Open(path, bucket, opts)
	if err != nil {
		return nil, err
	}
	return &cache{store: s}, nil
}

func (c *cache) Get(_ context.Context, key string) ([]byte, error) {
	return c.store.Get(key)
}

func (c *cache) Set(_ context.Context, key string, value []byte, ttl *time.Duration) error {
	return c.store.Set(key, value, ttl)
}

func (c *cache) SetMulti(_ context.Context, items ...service.CacheItem) error {
	its := make([]Item, len(items))
	for i, it := range items {
		its[i] = Item{Key: it.Key, Value: it.Value, TTL: it.TTL}
	}
	return c.store.SetMulti(its...)
}

func (c *cache) Add(_ context.Context, key string, value []byte, ttl *time.Duration) error {
	return c.store.Add(key, value, ttl)
}

func (c *cache) Delete(_ context.Context, key string) error {
	return c.store.Delete(key)
}

func (c *cache) Close(context.Context) error {
	if err := c.store.Close(); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}
