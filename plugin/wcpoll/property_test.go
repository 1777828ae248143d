package wcpoll

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/wcevent"
	"github.com/wooevents/wooevents/tests/wcsim"
)

// TestPropertyRandomWorkloads runs random workloads against the simulator
// (whose ties come back in no fixed order, with random faults): bulk
// creates and updates sharing a second, updates while a walk is under way
// (made from inside the HTTP transport), trash, restore and hard delete of
// orders, customers created, changed and deleted, page sizes from 1 to 100,
// 1 to 4 requests at once, acknowledgements delayed and out of order, and
// crashes (the input stopped as by SIGKILL, nothing unsaved kept) with a
// restart on the same state file and checkpoint cache.
//
// Invariants, checked after every poll:
//   - no stored checkpoint passes an unemitted change: every order modified
//     at or before the stored watermark is delivered in that version, and
//     every entry of the per-id state (customers, orders) is a delivered
//     version;
//
// and once the workload stops and the poller has caught up:
//   - every object's final state is delivered (created/updated/restored with
//     its last date_modified_gmt, deleted for a trashed order), and every
//     object deleted for good after it was delivered gets a deleted event.
//
// WCPOLL_SEED=<n> replays one run; WOOEVENTS_SOAK=1 runs many more.
func TestPropertyRandomWorkloads(t *testing.T) {
	runs, seed := 8, time.Now().UnixNano()
	if soak() {
		runs = 150
	}
	if v := os.Getenv("WCPOLL_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		require.NoError(t, err)
		runs, seed = 1, s
	}
	for i := range runs {
		s := seed + int64(i)
		if !t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) { runWorkload(t, s) }) {
			t.Logf("replay with WCPOLL_SEED=%d go test -run TestPropertyRandomWorkloads ./plugin/wcpoll", s)
			return
		}
	}
}

// delivery is the record of acknowledged events.
type delivery struct {
	mu  sync.Mutex
	evs map[string][]event // resource key + "/" + object id → delivered events
}

func (d *delivery) add(t *testing.T, evs []event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range evs {
		// the object the event carries is the event's (a page buffer
		// reused too early would show here)
		require.Equal(t, e.ObjectID, gjson.GetBytes(e.Data, "id").Raw, "event %s carries %.200s", e, e.Data)
		k := e.Key + "/" + e.ObjectID
		d.evs[k] = append(d.evs[k], e)
	}
}

func (d *delivery) of(res string, id int64) []event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.evs[res+"/"+strconv.FormatInt(id, 10)]
}

// hasVersion reports whether an event of one of actions delivered id with
// modification time mod (RFC 3339; "" for a permanent delete: data {"id":N}).
func (d *delivery) hasVersion(res string, id int64, mod string, actions ...string) bool {
	for _, e := range d.of(res, id) {
		for _, a := range actions {
			if e.Action != a {
				continue
			}
			if mod == "" && string(e.Data) == `{"id":`+strconv.FormatInt(id, 10)+`}` || mod != "" && e.OccurredAt == mod {
				return true
			}
		}
	}
	return false
}

func runWorkload(t *testing.T, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	sim := newSim(t, wcsim.Options{TieSeed: seed, RandomFaults: wcsim.RandomFaults{Rate: 0.01, Seed: seed}})
	pageSize := 1 + rng.IntN(100)
	if rng.IntN(2) == 0 {
		pageSize = 1 + rng.IntN(12) // small pages cross seconds and ties often
	}
	conc := 1 + rng.IntN(4)
	h := newHarness(t, sim, fmt.Sprintf("resources: [{name: orders}, {name: customers}]\nstart_from: beginning\npage_size: %d\nmax_concurrency: %d\nreconcile_interval: 1s\n", pageSize, conc))
	// backfill segments of a few pages, so that small stores use them too
	segPagesForTest(h, 2)
	t.Logf("page_size %d, max_concurrency %d", pageSize, conc)
	d := &delivery{evs: map[string][]event{}}

	// Small pages cost a request or more per object: keep their stores small
	// so a run stays within seconds.
	burst := min(40, 2+3*pageSize)
	maxCustomers := 10 + 8*pageSize
	var mu sync.Mutex // serialises the workload's own bookkeeping
	orders, customers := []int64{}, []int64{}
	pick := func(r *rand.Rand, ids []int64, n int) []int64 {
		var out []int64
		for range n {
			if len(ids) == 0 {
				break
			}
			out = append(out, ids[r.IntN(len(ids))])
		}
		return out
	}
	mutate := func(r *rand.Rand) {
		mu.Lock()
		defer mu.Unlock()
		switch r.IntN(9) {
		case 0, 1: // a bulk create in one second
			for range 1 + r.IntN(burst) {
				id, err := sim.Create(wcsim.Orders, createFields(wcsim.Orders, r.IntN(1000)))
				require.NoError(t, err)
				orders = append(orders, id)
			}
		case 2, 3: // a bulk update in one second
			ids := pick(r, orders, 1+r.IntN(burst))
			if len(ids) > 0 {
				_ = sim.BulkUpdate(wcsim.Orders, ids, map[string]any{"customer_note": fmt.Sprintf("n%d", r.IntN(1e6))})
			}
		case 4:
			for _, id := range pick(r, orders, 1+r.IntN(4)) {
				_ = sim.Trash(wcsim.Orders, id)
			}
		case 5:
			for _, id := range pick(r, orders, 1+r.IntN(4)) {
				_ = sim.Restore(wcsim.Orders, id)
			}
		case 6:
			for _, id := range pick(r, orders, 1+r.IntN(2)) {
				_ = sim.ForceDelete(wcsim.Orders, id)
			}
		case 7:
			if len(customers) >= maxCustomers {
				return
			}
			for range 1 + r.IntN(8) {
				id, err := sim.Create(wcsim.Customers, createFields(wcsim.Customers, r.IntN(1e6)))
				require.NoError(t, err)
				customers = append(customers, id)
			}
		case 8:
			for _, id := range pick(r, customers, 1+r.IntN(5)) {
				if r.IntN(4) == 0 {
					_ = sim.ForceDelete(wcsim.Customers, id)
				} else {
					_ = sim.Update(wcsim.Customers, id, updateFields(wcsim.Customers, r.IntN(1e6)))
				}
			}
		}
	}
	// Changes while a walk is under way, from inside the transport.
	hookRng := rand.New(rand.NewPCG(uint64(seed), 7))
	var hookMu sync.Mutex
	h.rt.set(func(req *http.Request) {
		hookMu.Lock()
		defer hookMu.Unlock()
		if hookRng.IntN(25) == 0 {
			mutate(hookRng)
		}
	})

	steps := 15 + rng.IntN(15)
	for step := range steps {
		for range rng.IntN(4) {
			hookMu.Lock()
			mutate(rng)
			hookMu.Unlock()
		}
		sim.Advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
		if rng.IntN(8) == 0 {
			h.crash()
			h.start()
			segPagesForTest(h, 2)
			continue
		}
		pollDelayedAcks(t, h, rng, d)
		checkWatermark(t, h, sim, d, step)
	}
	// Settle: no more changes; poll until two polls in a row deliver nothing.
	h.rt.set(nil)
	sim.SetRandomFaults(wcsim.RandomFaults{})
	quiet := 0
	for i := 0; quiet < 2; i++ {
		require.Less(t, i, 50, "the poller does not settle")
		sim.Advance(3 * time.Second)
		if pollDelayedAcks(t, h, rng, d) == 0 {
			quiet++
		} else {
			quiet = 0
		}
		checkWatermark(t, h, sim, d, -1)
	}
	checkFinal(t, sim, d, orders, customers)
}

// segPagesForTest sets the backfill segment size of a running input.
func segPagesForTest(h *harness, pages int) {
	for _, p := range h.in.producers {
		p.d.segPages = pages
	}
}

// pollDelayedAcks runs one poll, acknowledging batches late and out of
// order (as an output with several batches in flight, or retried nacks,
// would), and returns how many events were delivered.
func pollDelayedAcks(t *testing.T, h *harness, rng *rand.Rand, d *delivery) int {
	t.Helper()
	type pending struct {
		evs []event
		ack service.AckFunc
	}
	var queue []pending
	delivered := 0
	ackOne := func(i int) {
		p := queue[i]
		queue = append(queue[:i], queue[i+1:]...)
		require.NoError(t, p.ack(context.Background(), nil))
		d.add(t, p.evs)
		delivered += len(p.evs)
	}
	h.discard = true
	defer func() { h.discard = false }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	n := len(h.in.producers)
	h.mu.Lock()
	h.ends = nil
	h.onEnd = func() {
		k := 0
		for _, c := range h.ends {
			if c.kicked {
				k++
			}
		}
		if k >= n {
			stop()
		}
	}
	h.mu.Unlock()
	for _, p := range h.in.producers {
		p.kick <- struct{}{}
	}
	for {
		b, err := h.in.next(readCtx)
		if err != nil {
			require.NoError(t, ctx.Err(), "timed out waiting for the polls to end")
			break
		}
		msgs, ack, err := h.in.emit(ctx, b)
		require.NoError(t, err)
		queue = append(queue, pending{evs: decodeBatch(t, msgs), ack: ack})
		for len(queue) > 4 || (len(queue) > 0 && rng.IntN(3) == 0) {
			ackOne(rng.IntN(len(queue)))
		}
	}
	for len(queue) > 0 {
		ackOne(rng.IntN(len(queue)))
	}
	h.mu.Lock()
	h.onEnd = nil
	h.mu.Unlock()
	require.NoError(t, h.in.flush(ctx))
	return delivered
}

// checkWatermark checks that the stored position and the per-id state
// pass no change that was not delivered.
func checkWatermark(t *testing.T, h *harness, sim *wcsim.Store, d *delivery, step int) {
	t.Helper()
	ck := h.storedCheckpoint()
	if ck == nil || ck.Resources["orders"] == nil || ck.Resources["orders"].Watermark == nil {
		return
	}
	w := *ck.Resources["orders"].Watermark
	for _, id := range sim.IDs(wcsim.Orders) {
		raw, ok := sim.Get(wcsim.Orders, id)
		if !ok {
			continue
		}
		mod, sec := modOf(t, raw)
		if sec > w {
			continue
		}
		if gjson.GetBytes(raw, "status").Str == "trash" {
			require.True(t, d.hasVersion("orders", id, mod, wcevent.ActionDeleted),
				"step %d: stored watermark %s passes trashed order %d (%s), whose trash was not delivered: %v", step, time.Unix(w, 0).UTC(), id, mod, d.of("orders", id))
		} else {
			require.True(t, d.hasVersion("orders", id, mod, wcevent.ActionCreated, wcevent.ActionUpdated, wcevent.ActionRestored),
				"step %d: stored watermark %s passes order %d (%s), not delivered in that version: %v", step, time.Unix(w, 0).UTC(), id, mod, d.of("orders", id))
		}
	}
	for _, res := range []string{"orders", "customers"} {
		require.NoError(t, h.in.state.rangeIDs(bucketKnown+res, "", func(id string, sec int64) error {
			n, _ := strconv.ParseInt(id, 10, 64)
			mod := time.Unix(sec, 0).UTC().Format(time.RFC3339)
			require.True(t, d.hasVersion(res, n, mod, wcevent.ActionCreated, wcevent.ActionUpdated, wcevent.ActionRestored, wcevent.ActionDeleted),
				"step %d: the state records %s %s at %s, which was not delivered: %v", step, res, id, mod, d.of(res, n))
			return nil
		}))
	}
}

// checkFinal checks that every object's final state was delivered.
func checkFinal(t *testing.T, sim *wcsim.Store, d *delivery, orders, customers []int64) {
	t.Helper()
	for _, c := range []struct {
		res, key string
		ids      []int64
	}{{wcsim.Orders, "orders", orders}, {wcsim.Customers, "customers", customers}} {
		seen := map[int64]bool{}
		for _, id := range c.ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			raw, ok := sim.Get(c.res, id)
			if !ok {
				if len(d.of(c.key, id)) > 0 {
					require.True(t, d.hasVersion(c.key, id, "", wcevent.ActionDeleted),
						"%s %d was deleted for good after it was delivered, but no deleted event came: %v", c.key, id, d.of(c.key, id))
				}
				continue
			}
			mod, _ := modOf(t, raw)
			if gjson.GetBytes(raw, "status").Str == "trash" {
				require.True(t, d.hasVersion(c.key, id, mod, wcevent.ActionDeleted), "%s %d: trashed at %s, not delivered: %v", c.key, id, mod, d.of(c.key, id))
			} else {
				require.True(t, d.hasVersion(c.key, id, mod, wcevent.ActionCreated, wcevent.ActionUpdated, wcevent.ActionRestored),
					"%s %d: final version %s not delivered: %v", c.key, id, mod, d.of(c.key, id))
			}
		}
	}
}

func modOf(t *testing.T, raw []byte) (string, int64) {
	mt, err := wcevent.ParseWooTime(gjson.GetBytes(raw, "date_modified_gmt").Str)
	require.NoError(t, err)
	return mt.UTC().Format(time.RFC3339), mt.Unix()
}
