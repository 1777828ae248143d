package wcpoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/Jeffail/checkpoint"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// checkpointVersion is bumped on incompatible changes of the stored JSON;
// version 1 (a (second, id) position per list) is read and converted.
const checkpointVersion = 2

// checkpointDoc is what is stored under checkpoint_key.
type checkpointDoc struct {
	Version   int                       `json:"version"`
	Store     string                    `json:"store"`
	Resources map[string]*resourceState `json:"resources"`
}

// resourceState is the durable position of one configured resource.
type resourceState struct {
	// Started is set once start_from has been applied.
	Started bool `json:"started,omitempty"`

	// modified_after resources.

	// Watermark: every object of the list and of the trash whose
	// modification second is at or before it has been emitted (nil: nothing
	// yet, a backfill from the beginning).
	Watermark *int64 `json:"watermark,omitempty"`
	// Since is the watermark start_from set (nil: the beginning): objects
	// created at or before it were not seen being created, so their first
	// event is updated, not created.
	Since *int64 `json:"since,omitempty"`

	// Scanning is set when the store was found ignoring modified_after on
	// this route: the resource is then scanned like customers.
	Scanning bool `json:"scanning,omitempty"`

	// scan resources (and Scanning ones).
	Scan scanState `json:"scan,omitempty"`

	// LastReconcile is when the last hard-delete reconciliation ended.
	LastReconcile int64 `json:"last_reconcile,omitempty"`
}

// scanState is the position of a resource that is scanned in id order.
type scanState struct {
	// Baseline is set once the first complete pass has recorded every object.
	Baseline bool `json:"baseline,omitempty"`
	// MaxID is the highest id seen: new objects are looked for above it.
	MaxID string `json:"max_id,omitempty"`
	// Page is the next page of the pass in progress (0: none in progress),
	// PrevLast the highest id of the page before it, List which list the
	// pass is on (0 the list, 1 the trash), PassStart when the pass began.
	Page      int    `json:"page,omitempty"`
	PrevLast  string `json:"prev_last,omitempty"`
	List      int    `json:"list,omitempty"`
	PassStart int64  `json:"pass_start,omitempty"`
	// LastPass is when the last complete pass began (Unix seconds).
	LastPass int64 `json:"last_pass,omitempty"`
}

func (r *resourceState) clone() *resourceState {
	c := *r
	c.Watermark = cloneInt(r.Watermark)
	c.Since = cloneInt(r.Since)
	return &c
}

func cloneInt(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func intp(v int64) *int64 { return &v }

func (c *checkpointDoc) marshal() []byte {
	b, _ := json.Marshal(c) // plain structs: cannot fail
	return b
}

// v1Pos is a list position of checkpoint version 1.
type v1Pos struct {
	Has bool   `json:"has,omitempty"`
	Sec int64  `json:"sec"`
	ID  string `json:"id,omitempty"`
}

type v1Resource struct {
	Main          v1Pos  `json:"main"`
	Trash         v1Pos  `json:"trash"`
	MaxID         string `json:"max_id,omitempty"`
	Baseline      bool   `json:"baseline,omitempty"`
	LastScan      int64  `json:"last_scan,omitempty"`
	LastReconcile int64  `json:"last_reconcile,omitempty"`
	Started       bool   `json:"started,omitempty"`
}

func parseCheckpoint(b []byte, store string) (*checkpointDoc, error) {
	var head struct {
		Version int    `json:"version"`
		Store   string `json:"store"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("stored checkpoint is not valid JSON: %w", err)
	}
	if head.Store != store {
		return nil, fmt.Errorf("stored checkpoint belongs to store %q, not %q: use another checkpoint_key", head.Store, store)
	}
	switch head.Version {
	case checkpointVersion:
		var c checkpointDoc
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("stored checkpoint is not valid: %w", err)
		}
		if c.Resources == nil {
			c.Resources = map[string]*resourceState{}
		}
		return &c, nil
	case 1:
		// A (second, id) position may have passed objects of its second
		// with lower ids that were not returned yet: resume one second
		// before it (some events are repeated, none lost).
		var old struct {
			Resources map[string]*v1Resource `json:"resources"`
		}
		if err := json.Unmarshal(b, &old); err != nil {
			return nil, fmt.Errorf("stored checkpoint (version 1) is not valid: %w", err)
		}
		c := &checkpointDoc{Version: checkpointVersion, Store: store, Resources: map[string]*resourceState{}}
		for name, o := range old.Resources {
			st := &resourceState{Started: o.Started, LastReconcile: o.LastReconcile,
				Scan: scanState{Baseline: o.Baseline, MaxID: o.MaxID, LastPass: o.LastScan}}
			if o.Main.Has {
				w := o.Main.Sec - 1
				if o.Trash.Has {
					w = min(w, o.Trash.Sec-1)
				}
				st.Watermark, st.Since = intp(w), intp(w)
			}
			c.Resources[name] = st
		}
		return c, nil
	}
	return nil, fmt.Errorf("stored checkpoint has version %d, this build reads versions 1 and %d", head.Version, checkpointVersion)
}

// checkpointStore is where the position is kept: a cache resource, the
// state file, or nowhere (memory only).
type checkpointStore interface {
	load(ctx context.Context) ([]byte, error) // nil, nil when none is stored
	save(ctx context.Context, b []byte) error
}

type cacheCheckpoints struct {
	mgr        *service.Resources
	cache, key string
}

func (c cacheCheckpoints) load(ctx context.Context) (raw []byte, err error) {
	if aerr := c.mgr.AccessCache(ctx, c.cache, func(cc service.Cache) {
		raw, err = cc.Get(ctx, c.key)
	}); aerr != nil {
		return nil, fmt.Errorf("%s: %w", fieldCheckpointCache, aerr)
	}
	if errors.Is(err, service.ErrKeyNotFound) {
		return nil, nil
	}
	return raw, err
}

func (c cacheCheckpoints) save(ctx context.Context, b []byte) (err error) {
	if aerr := c.mgr.AccessCache(ctx, c.cache, func(cc service.Cache) {
		err = cc.Set(ctx, c.key, b, nil)
	}); aerr != nil {
		return aerr
	}
	return err
}

type fileCheckpoints struct {
	state *stateStore
	key   string
}

func (f fileCheckpoints) load(context.Context) ([]byte, error) {
	raw, err := f.state.root.Get(f.key)
	if errors.Is(err, service.ErrKeyNotFound) {
		return nil, nil
	}
	return raw, err
}

func (f fileCheckpoints) save(_ context.Context, b []byte) error {
	return f.state.root.Set(f.key, b, nil)
}

type memoryCheckpoints struct{}

func (memoryCheckpoints) load(context.Context) ([]byte, error) { return nil, nil }
func (memoryCheckpoints) save(context.Context, []byte) error   { return nil }

// ackLog orders what acknowledgements release: batches are registered in
// emission order; once a batch and every batch before it are acknowledged
// (checkpoint.Capped decides), their state changes join the list to apply,
// in emission order, and the position snapshot taken after the last of them
// becomes the one to store. Changes and positions that carry no events (a
// quiet baseline, a watermark moved by an idle poll) ride on the last batch
// still in flight, or are released at once when none is. Released changes
// are written to the state file together, just before the position that
// covers them is stored (see pollInput.flush): one write per flush, not per
// batch, and never a position ahead of the state it relies on.
type ackLog struct {
	capped *checkpoint.Capped[*ackEntry]

	mu      sync.Mutex
	seq     uint64
	queue   []*ackEntry // registered, not yet released, in emission order
	ops     []stateOp   // released, not yet written
	unsaved []byte      // released snapshot not yet stored

	// released is signalled when something is released (the flusher waits
	// on it, so an idle input does not wake up).
	released chan struct{}
}

type ackEntry struct {
	seq  uint64
	snap []byte
	ops  []stateOp
}

func newAckLog(limit int) *ackLog {
	return &ackLog{capped: checkpoint.NewCapped[*ackEntry](int64(limit)), released: make(chan struct{}, 1)}
}

// track registers a batch of n events; it blocks while checkpoint_limit
// events are in flight. The returned func releases it on acknowledgement.
func (a *ackLog) track(ctx context.Context, snap []byte, ops []stateOp, n int) (func(), error) {
	a.mu.Lock()
	a.seq++
	e := &ackEntry{seq: a.seq, snap: snap, ops: ops}
	a.queue = append(a.queue, e)
	a.mu.Unlock()
	resolve, err := a.capped.Track(ctx, e, int64(n))
	if err != nil {
		a.mu.Lock()
		for i, q := range a.queue {
			if q == e {
				a.queue = append(a.queue[:i], a.queue[i+1:]...)
				break
			}
		}
		a.mu.Unlock()
		return nil, err
	}
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		h := resolve()
		if h == nil {
			return
		}
		upTo := (*h).seq
		i := 0
		for ; i < len(a.queue) && a.queue[i].seq <= upTo; i++ {
			a.ops = append(a.ops, a.queue[i].ops...)
			a.unsaved = a.queue[i].snap
		}
		a.queue = a.queue[i:]
		a.signal()
	}, nil
}

// note records state changes and a position that carry no events.
func (a *ackLog) note(snap []byte, ops []stateOp) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.queue); n > 0 {
		last := a.queue[n-1]
		last.ops = append(last.ops, ops...)
		last.snap = snap
		return
	}
	a.ops = append(a.ops, ops...)
	a.unsaved = snap
	a.signal()
}

func (a *ackLog) signal() {
	select {
	case a.released <- struct{}{}:
	default:
	}
}

// inFlight is the number of tracked batches not yet released.
func (a *ackLog) inFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue)
}

// take returns the released changes and snapshot not yet written.
func (a *ackLog) take() ([]stateOp, []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ops, snap := a.ops, a.unsaved
	a.ops, a.unsaved = nil, nil
	return ops, snap
}

// putBack returns what could not be written, ahead of anything released
// meanwhile.
func (a *ackLog) putBack(ops []stateOp, snap []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ops = append(ops, a.ops...)
	if a.unsaved == nil {
		a.unsaved = snap
	}
	a.signal()
}
