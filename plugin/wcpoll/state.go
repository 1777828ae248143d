package wcpoll

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/wooevents/wooevents/plugin/boltcache"
)

// stateStore keeps per-id state in a bbolt file, so memory does not grow
// with the store. The reading goroutine stages the changes an emitted batch
// carries; they are applied when the batch and every batch emitted before it
// have been acknowledged, in emission order (so a "trashed" acknowledged
// after a later "restored" cannot write the trashed id back). Until then
// they sit in a small in-memory overlay (bounded by checkpoint_limit) that
// lookups consult first.
type stateStore struct {
	root    *boltcache.Store
	temp    string // removed on close when the file is temporary
	mu      sync.Mutex
	buckets map[string]*boltcache.Store
	pending map[pendKey]pendingVal // the latest staged change of a key
	seq     uint64
}

type pendKey struct{ bucket, key string }

type pendingVal struct {
	sec  int64
	mark byte
	del  bool
	seq  uint64
}

// stateOp is one change, applied on acknowledgement.
type stateOp struct {
	bucket string
	key    string // idKey(id)
	sec    int64
	mark   byte // stored after the second: what was emitted for it (0: nothing)
	del    bool
	seq    uint64
}

// A stored value is the modification second in decimal, optionally followed
// by one letter (a mark) saying which event was emitted for that version.
func encodeVal(sec int64, mark byte) []byte {
	b := strconv.AppendInt(nil, sec, 10)
	if mark != 0 {
		b = append(b, mark)
	}
	return b
}

func decodeVal(v []byte) (int64, byte, error) {
	var mark byte
	if n := len(v); n > 0 && (v[n-1] < '0' || v[n-1] > '9') {
		mark, v = v[n-1], v[:n-1]
	}
	sec, err := strconv.ParseInt(string(v), 10, 64)
	return sec, mark, err
}

func openStateStore(path string) (*stateStore, error) {
	s := &stateStore{buckets: map[string]*boltcache.Store{}, pending: map[pendKey]pendingVal{}}
	if path == "" {
		dir, err := os.MkdirTemp("", "wooevents-poll-")
		if err != nil {
			return nil, fmt.Errorf("state_path: creating a temporary state file: %w", err)
		}
		s.temp = dir
		path = filepath.Join(dir, "state.db")
	}
	root, err := boltcache.Open(path, bucketCkpt, boltcache.Options{SweepInterval: -1, Owner: "woocommerce_poll state_path"})
	if err != nil {
		if s.temp != "" {
			_ = os.RemoveAll(s.temp)
		}
		return nil, fmt.Errorf("state_path: %w", err)
	}
	s.root = root
	return s, nil
}

func (s *stateStore) bucket(name string) (*boltcache.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buckets[name]; ok {
		return b, nil
	}
	b, err := s.root.Bucket(name)
	if err != nil {
		return nil, err
	}
	s.buckets[name] = b
	return b, nil
}

func (s *stateStore) close() error {
	s.mu.Lock()
	var errs []error
	for _, b := range s.buckets {
		errs = append(errs, b.Close())
	}
	s.buckets = map[string]*boltcache.Store{}
	s.mu.Unlock()
	errs = append(errs, s.root.Close())
	if s.temp != "" {
		errs = append(errs, os.RemoveAll(s.temp))
	}
	return errors.Join(errs...)
}

// get returns the second stored for id, consulting pending changes first.
func (s *stateStore) get(bucket, id string) (int64, bool, error) {
	sec, _, ok, err := s.getMark(bucket, id)
	return sec, ok, err
}

// getMark is get that also returns the stored mark.
func (s *stateStore) getMark(bucket, id string) (int64, byte, bool, error) {
	key := idKey(id)
	s.mu.Lock()
	p, ok := s.pending[pendKey{bucket, key}]
	s.mu.Unlock()
	if ok {
		return p.sec, p.mark, !p.del, nil
	}
	b, err := s.bucket(bucket)
	if err != nil {
		return 0, 0, false, err
	}
	v, err := b.Get(key)
	if errors.Is(err, boltcache.ErrNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	sec, mark, err := decodeVal(v)
	if err != nil {
		return 0, 0, false, fmt.Errorf("state %s %s: %w", bucket, id, err)
	}
	return sec, mark, true, nil
}

// stateVal is a looked-up state entry.
type stateVal struct {
	sec  int64
	mark byte
	ok   bool
}

// getMany looks ids up in one read of the file (the overlay first): the
// reading goroutine reads a whole chunk's state at once instead of one
// transaction per record. Pair it with pendingOr, which sees changes
// staged after the lookup.
func (s *stateStore) getMany(bucket string, ids []string) ([]stateVal, error) {
	out := make([]stateVal, len(ids))
	keys := make([]string, len(ids))
	s.mu.Lock()
	for i, id := range ids {
		k := idKey(id)
		if p, ok := s.pending[pendKey{bucket, k}]; ok {
			out[i] = stateVal{sec: p.sec, mark: p.mark, ok: !p.del}
			continue
		}
		keys[i] = k
	}
	s.mu.Unlock()
	b, err := s.bucket(bucket)
	if err != nil {
		return nil, err
	}
	var decodeErr error
	err = b.GetMulti(keys, func(i int, v []byte) {
		sec, mark, err := decodeVal(v)
		if err != nil {
			decodeErr = fmt.Errorf("state %s %s: %w", bucket, ids[i], err)
			return
		}
		out[i] = stateVal{sec: sec, mark: mark, ok: true}
	})
	return out, errors.Join(err, decodeErr)
}

// pendingOr returns the change staged for id since v was looked up, or v.
func (s *stateStore) pendingOr(bucket, id string, v stateVal) stateVal {
	s.mu.Lock()
	p, ok := s.pending[pendKey{bucket, idKey(id)}]
	s.mu.Unlock()
	if ok {
		return stateVal{sec: p.sec, mark: p.mark, ok: !p.del}
	}
	return v
}

// stage records a change in the overlay and returns it for apply.
func (s *stateStore) stage(bucket, id string, sec int64, del bool) stateOp {
	return s.stageMark(bucket, id, sec, 0, del)
}

// stageMark is stage with a mark stored after the second.
func (s *stateStore) stageMark(bucket, id string, sec int64, mark byte, del bool) stateOp {
	key := idKey(id)
	s.mu.Lock()
	s.seq++
	op := stateOp{bucket: bucket, key: key, sec: sec, mark: mark, del: del, seq: s.seq}
	s.pending[pendKey{bucket, key}] = pendingVal{sec: sec, mark: mark, del: del, seq: op.seq}
	s.mu.Unlock()
	return op
}

// apply writes changes, which must come in the order they were staged,
// and drops them from the overlay unless a later change of the same key is
// staged. Per bucket, the last change of a key wins; puts are written in
// key order (appends to the B+tree's pages rather than inserts).
func (s *stateStore) apply(ops []stateOp) error {
	if len(ops) == 0 {
		return nil
	}
	per := make(map[string][]stateOp, 2)
	for _, op := range ops {
		if per[op.bucket] == nil {
			per[op.bucket] = make([]stateOp, 0, len(ops))
		}
		per[op.bucket] = append(per[op.bucket], op)
	}
	var errs []error
	for name, bops := range per {
		slices.SortStableFunc(bops, func(a, b stateOp) int { return strings.Compare(a.key, b.key) })
		puts := make([]boltcache.Item, 0, len(bops))
		var dels []string
		for i, op := range bops {
			if i+1 < len(bops) && bops[i+1].key == op.key {
				continue // a later change of the key wins
			}
			if op.del {
				dels = append(dels, op.key)
			} else {
				puts = append(puts, boltcache.Item{Key: op.key, Value: encodeVal(op.sec, op.mark)})
			}
		}
		b, err := s.bucket(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range dels {
			if err := b.Delete(k); err != nil && !errors.Is(err, boltcache.ErrNotFound) {
				errs = append(errs, err)
			}
		}
		if len(puts) > 0 {
			if err := b.SetMulti(puts...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.mu.Lock()
	for _, op := range ops {
		k := pendKey{op.bucket, op.key}
		if p, ok := s.pending[k]; ok && p.seq == op.seq {
			delete(s.pending, k)
		}
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// rangeIDs calls fn for stored ids with key >= from in id order (pending
// changes are not merged in). fn returning boltcache.ErrStop ends it.
func (s *stateStore) rangeIDs(bucket, fromID string, fn func(id string, sec int64) error) error {
	b, err := s.bucket(bucket)
	if err != nil {
		return err
	}
	from := ""
	if fromID != "" {
		from = idKey(fromID)
	}
	return b.ForEachFrom(from, func(k string, v []byte) error {
		sec, _, _ := decodeVal(v)
		return fn(keyID(k), sec)
	})
}

// empty reports whether a bucket has no entries (pending ones included).
func (s *stateStore) empty(bucket string) (bool, error) {
	s.mu.Lock()
	for k, p := range s.pending {
		if k.bucket == bucket && !p.del {
			s.mu.Unlock()
			return false, nil
		}
	}
	s.mu.Unlock()
	found := false
	err := s.rangeIDs(bucket, "", func(string, int64) error {
		found = true
		return boltcache.ErrStop
	})
	return !found, err
}
