package wcpoll

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

// The scenario of the real store's captures (tests/fixtures/woocommerce/
// rest/ties): 30 orders created in two seconds, read with pages of 10. On
// the store, a page walk over `orderby=modified` lost 5 of them (the
// simulator's naive-walk test in tests/wcsim shows the same loss). The
// poller emits each once, second by second, in id order within a second.
func TestTiesCaptureScenario(t *testing.T) {
	// Pages of 10 hold one second each (read by id); pages of 7 and 20 end
	// inside a second that continues on the next page.
	for _, c := range []struct {
		seed     int64
		pageSize int
		requests int
	}{
		// page of 10 (one second: 2 id pages of 10), the same from there,
		// then the rest (nothing), and the trash
		{1, 10, 1 + 2 + 1 + 2 + 1 + 1},
		{2, 10, 1 + 2 + 1 + 2 + 1 + 1},
		// a page of 15 + 5: the first second; a page of 15: the second; the trash
		{3, 20, 1 + 1 + 1},
		{4, 7, 0},
		{5, 7, 0},
	} {
		t.Run(fmt.Sprintf("orders/page_size=%d/tieseed=%d", c.pageSize, c.seed), func(t *testing.T) {
			sim := newSim(t, wcsim.Options{TieSeed: c.seed})
			h := newHarness(t, sim, fmt.Sprintf("resources: [{name: orders}]\npage_size: %d\n", c.pageSize))
			require.Empty(t, h.poll())
			sim.Advance(5 * time.Second)
			var ids []int64
			for i := range 30 {
				if i == 15 {
					sim.Advance(time.Second)
				}
				id, err := sim.Create(wcsim.Orders, createFields(wcsim.Orders, i))
				require.NoError(t, err)
				ids = append(ids, id)
			}
			sim.Advance(5 * time.Second)
			before := requestCount(sim, "/wp-json/wc/v3/orders")
			evs := h.poll()
			var want []string
			for _, id := range ids {
				want = append(want, fmt.Sprintf("order.created:%d", id))
			}
			require.Equal(t, want, types(evs), "every order once, by second then id")
			if c.requests > 0 {
				assert.Equal(t, c.requests, requestCount(sim, "/wp-json/wc/v3/orders")-before)
			}
		})
	}
	t.Run("products in one second", func(t *testing.T) {
		sim := newSim(t, wcsim.Options{})
		h := newHarness(t, sim, "resources: [{name: products}]\npage_size: 10\n")
		require.Empty(t, h.poll())
		sim.Advance(5 * time.Second)
		var want []string
		for i := range 30 {
			id, err := sim.Create(wcsim.Products, createFields(wcsim.Products, i))
			require.NoError(t, err)
			want = append(want, fmt.Sprintf("product.created:%d", id))
		}
		sim.Advance(5 * time.Second)
		require.Equal(t, want, types(h.poll()))
	})
}

// What the walk costs in requests when N objects share one second, with
// the default page size of 100: 1 object and 100 objects, in make test;
// 10,000 with WOOEVENTS_SOAK=1 as well (it is also logged by make bench's
// tie scenario). Each count includes one request for the empty trash.
func TestTieCost(t *testing.T) {
	cases := []struct{ n, requests int }{
		{1, 1 + 1},           // the page holds all: complete
		{100, 1 + 2 + 1 + 1}, // a full page of one second: 2 id pages, then the rest
		{250, 1 + 3 + 1 + 1},
	}
	if soak() {
		cases = append(cases, struct{ n, requests int }{10000, 1 + 102 + 1 + 1})
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.n), func(t *testing.T) {
			sim := newSim(t, wcsim.Options{Latency: wcsim.NoLatency})
			h := newHarness(t, sim, "resources: [{name: orders}]\n")
			require.Empty(t, h.poll())
			sim.Advance(5 * time.Second)
			first, last, err := sim.SeedWith(wcsim.Orders, c.n, wcsim.SeedOptions{Start: sim.Now(), SameSecond: true, Status: "processing"})
			require.NoError(t, err)
			sim.Advance(5 * time.Second)
			before := requestCount(sim, "/wp-json/wc/v3/orders")
			start := time.Now()
			evs := h.poll()
			took := time.Since(start)
			got := requestCount(sim, "/wp-json/wc/v3/orders") - before
			t.Logf("%d objects in one second: %d requests, %s", c.n, got, took.Round(time.Millisecond))
			require.Len(t, evs, c.n)
			assert.Equal(t, strconv.FormatInt(first, 10), evs[0].ObjectID)
			assert.Equal(t, strconv.FormatInt(last, 10), evs[len(evs)-1].ObjectID)
			assert.Equal(t, c.requests, got)
		})
	}
}

// A change younger than overlap is held back, and fetched again as soon
// as it is older, without waiting for the next interval.
func TestHeldBackFetchedWhenSettled(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	h := newHarness(t, sim, "resources: [{name: orders}]\ninterval: 10s\n")
	require.Empty(t, h.poll())
	sim.Advance(3 * time.Second)
	id, err := sim.Create(wcsim.Orders, createFields(wcsim.Orders, 1))
	require.NoError(t, err)
	require.Empty(t, h.poll(), "modified in the store's current second: held back")

	// The producer asked to be woken when the order's second has settled:
	// 2 seconds later (overlap 1s), long before the 10s interval.
	h.sim.Advance(1500 * time.Millisecond)
	require.Zero(t, h.clk.Fire(), "not yet settled")
	h.sim.Advance(500 * time.Millisecond)
	require.Equal(t, 1, h.clk.Fire(), "the recheck is due")
	evs, errs := h.readUntil(func(ends []*chunk) bool { return len(ends) > 0 })
	require.Empty(t, errs)
	require.Equal(t, typesOf("order", "created", id), types(evs), "fetched by the recheck, not by a kick")
}

// Objects of the first poll's page of a resource come out while another
// resource's long backfill is still running.
func TestResourcesDoNotStarve(t *testing.T) {
	sim := newSim(t, wcsim.Options{PageDelay: 5 * time.Millisecond})
	_, _, err := sim.SeedWith(wcsim.Orders, 3000, wcsim.SeedOptions{Start: t0.Add(-2 * time.Hour), Status: "processing"})
	require.NoError(t, err)
	pid, err := sim.Create(wcsim.Products, createFields(wcsim.Products, 1))
	require.NoError(t, err)
	sim.Advance(5 * time.Second)
	h := newHarness(t, sim, "resources: [{name: orders}, {name: products}]\nstart_from: beginning\npage_size: 20\nmax_concurrency: 1\n")
	evs := h.poll()
	require.Len(t, evs, 3001)
	at := -1
	for i, e := range evs {
		if e.String() == fmt.Sprintf("product.created:%d", pid) {
			at = i
		}
	}
	require.GreaterOrEqual(t, at, 0)
	assert.Less(t, at, 300, "the product came out early in the orders' backfill (at event %d of 3001)", at)
}

// A backfill far behind is read as segments, concurrently, up to
// max_concurrency requests at once, and still emitted in order, each
// object once, with the checkpoint past the last.
func TestBackfillSegmentsConcurrent(t *testing.T) {
	sim := newSim(t, wcsim.Options{PageDelay: 20 * time.Millisecond})
	first, last, err := sim.SeedWith(wcsim.Orders, 5000, wcsim.SeedOptions{Start: t0.Add(-3 * time.Hour), Step: 2 * time.Second, Status: "processing"})
	require.NoError(t, err)
	h := newHarness(t, sim, "resources: [{name: orders, trash: false}]\nstart_from: beginning\npage_size: 50\nmax_concurrency: 4\n")
	evs := h.poll()
	require.Len(t, evs, 5000)
	for i, e := range evs {
		require.Equal(t, fmt.Sprintf("order.created:%d", first+int64(i)), e.String())
	}
	assert.Equal(t, int64(4), h.rt.peak.Load(), "four requests at once")
	ck := h.storedCheckpoint()
	require.NotNil(t, ck)
	raw, _ := sim.Get(wcsim.Orders, last)
	_, lastSec := modOf(t, raw)
	assert.GreaterOrEqual(t, *ck.Resources["orders"].Watermark, lastSec)
	pages := requestCount(sim, "/wp-json/wc/v3/orders")
	t.Logf("5000 orders in %d requests", pages)
	assert.Less(t, pages, 130, "segments cost a few requests more than the 102 of a serial walk, not many")
}

// The limiter halves on 429 and 5xx answers and climbs back after
// healthy ones, never above max_concurrency.
func TestLimiterAdapts(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLimiter(8, nil)
	l.now = func() time.Time { return now }
	l.failure()
	assert.Equal(t, 4, l.current())
	l.failure()
	assert.Equal(t, 4, l.current(), "failures within the cooldown count once")
	now = now.Add(3 * time.Second)
	l.failure()
	assert.Equal(t, 2, l.current())
	now = now.Add(3 * time.Second)
	for range 8 {
		l.success(100 * time.Millisecond)
	}
	assert.Equal(t, 3, l.current(), "healthy answers: one more")
	// pages that answer three times slower than the fastest recent ones
	now = now.Add(3 * time.Second)
	for range 20 {
		l.success(time.Second)
	}
	assert.Less(t, l.current(), 3, "slow pages lower the limit")
	for range 400 {
		now = now.Add(3 * time.Second)
		l.success(time.Second)
	}
	assert.Equal(t, 8, l.current(), "back to max_concurrency once the store is steady")
}

// Against a store answering 429, a backfill lowers its concurrency and
// still completes, in order.
func TestBackfillBacksOffOn429(t *testing.T) {
	sim := newSim(t, wcsim.Options{PageDelay: 10 * time.Millisecond})
	_, _, err := sim.SeedWith(wcsim.Orders, 2000, wcsim.SeedOptions{Start: t0.Add(-2 * time.Hour), Status: "processing"})
	require.NoError(t, err)
	h := newHarness(t, sim, "resources: [{name: orders, trash: false}]\nstart_from: beginning\npage_size: 20\nmax_concurrency: 4\n")
	var n atomic.Int64
	h.rt.set(func(*http.Request) {
		if n.Add(1) == 30 {
			sim.InjectFault(wcsim.Fault{PathPrefix: "/wp-json/wc/v3/orders", Count: 3, Status: http.StatusTooManyRequests, RetryAfter: "0"})
		}
	})
	evs := h.poll()
	require.Len(t, evs, 2000)
	assert.True(t, sort.SliceIsSorted(evs, func(i, j int) bool { return mustInt(t, evs[i].ObjectID) < mustInt(t, evs[j].ObjectID) }))
	assert.Less(t, h.in.lim.current(), 4, "the 429s lowered the limit")
}
