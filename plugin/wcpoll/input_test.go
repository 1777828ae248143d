package wcpoll

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/wcevent"
	"github.com/wooevents/wooevents/tests/wcsim"
)

func createFields(resource string, n int) map[string]any {
	switch resource {
	case wcsim.Orders:
		return map[string]any{"status": "processing", "billing": map[string]any{"first_name": fmt.Sprintf("Buyer%d", n)}}
	case wcsim.Products:
		return map[string]any{"name": fmt.Sprintf("Product %d", n), "regular_price": "9.99"}
	case wcsim.Coupons:
		return map[string]any{"code": fmt.Sprintf("code%d", n), "amount": "5"}
	case wcsim.Customers:
		return map[string]any{"email": fmt.Sprintf("c%d@example.test", n), "first_name": "C"}
	}
	panic(resource)
}

func updateFields(resource string, n int) map[string]any {
	switch resource {
	case wcsim.Orders:
		return map[string]any{"customer_note": fmt.Sprintf("note %d", n)}
	case wcsim.Products:
		return map[string]any{"regular_price": strconv.Itoa(10 + n)}
	case wcsim.Coupons:
		return map[string]any{"amount": strconv.Itoa(10 + n)}
	case wcsim.Customers:
		return map[string]any{"first_name": fmt.Sprintf("Name%d", n)}
	}
	panic(resource)
}

// Each resource with a trash: create, update, trash, restore and force
// delete each yield exactly the expected event, in order.
func TestLifecycleEvents(t *testing.T) {
	for _, res := range []string{wcsim.Orders, wcsim.Products, wcsim.Coupons} {
		t.Run(res, func(t *testing.T) {
			sim := newSim(t, wcsim.Options{})
			h := newHarness(t, sim, fmt.Sprintf("resources: [{name: %s}]\nreconcile_interval: 1s\n", res))
			require.Empty(t, h.poll())
			singular := wcevent.Singular(res)

			sim.Advance(5 * time.Second)
			id, err := sim.Create(res, createFields(res, 1))
			require.NoError(t, err)
			sim.Advance(5 * time.Second)
			evs := h.poll()
			require.Equal(t, typesOf(singular, "created", id), types(evs))
			e := evs[0]
			assert.Equal(t, wcevent.SourcePoll, e.Source)
			assert.Equal(t, wcevent.NormalizeStore(sim.URL()), e.Store)
			assert.Equal(t, res, e.Key)
			assert.Equal(t, strconv.FormatInt(id, 10), gjson.GetBytes(e.Data, "id").Raw)
			assert.Equal(t, t0.Add(5*time.Second).Format(time.RFC3339), e.OccurredAt)

			require.NoError(t, sim.Update(res, id, updateFields(res, 1)))
			sim.Advance(5 * time.Second)
			evs = h.poll()
			require.Equal(t, typesOf(singular, "updated", id), types(evs))
			assert.Equal(t, t0.Add(10*time.Second).Format(time.RFC3339), evs[0].OccurredAt)

			require.NoError(t, sim.Trash(res, id))
			sim.Advance(5 * time.Second)
			evs = h.poll()
			require.Equal(t, typesOf(singular, "deleted", id), types(evs))
			assert.Equal(t, "trash", gjson.GetBytes(evs[0].Data, "status").Str)

			require.NoError(t, sim.Restore(res, id))
			sim.Advance(5 * time.Second)
			evs = h.poll()
			require.Equal(t, typesOf(singular, "restored", id), types(evs))

			require.Empty(t, h.poll(), "nothing changed")

			require.NoError(t, sim.ForceDelete(res, id))
			sim.Advance(5 * time.Second)
			evs = h.poll()
			require.Equal(t, typesOf(singular, "deleted", id), types(evs))
			assert.JSONEq(t, fmt.Sprintf(`{"id":%d}`, id), string(evs[0].Data))

			sim.Advance(5 * time.Second)
			require.Empty(t, h.poll(), "a hard delete is reported once")
		})
	}
}

// Customers have no date filter: a new, a changed and a deleted customer
// are each found by the next poll (new ones by the new-id query, the rest
// by the pass over the whole list, which asks only for ids and dates).
func TestCustomersScan(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	first, last := sim.Seed(wcsim.Customers, 250)
	sim.Advance(10 * time.Second)
	h := newHarness(t, sim, "resources: [{name: customers}]\npage_size: 100\n")
	require.Empty(t, h.poll(), "start_from now: the baseline is recorded quietly")

	sim.Advance(5 * time.Second)
	newID, err := sim.Create(wcsim.Customers, createFields(wcsim.Customers, 1))
	require.NoError(t, err)
	sim.Advance(5 * time.Second)
	evs := h.poll()
	require.Equal(t, typesOf("customer", "created", newID), types(evs), "new customers are found on every poll")

	changed := first + 120
	require.NoError(t, sim.Update(wcsim.Customers, changed, updateFields(wcsim.Customers, 2)))
	require.NoError(t, sim.ForceDelete(wcsim.Customers, first+30))
	require.NoError(t, sim.ForceDelete(wcsim.Customers, last))
	sim.Advance(5 * time.Second)
	before := requestCount(sim, "/wp-json/wc/v3/customers")
	evs = h.poll()
	assert.ElementsMatch(t, []string{
		fmt.Sprintf("customer.deleted:%d", first+30),
		fmt.Sprintf("customer.updated:%d", changed),
		fmt.Sprintf("customer.deleted:%d", last),
	}, types(evs), "changes are found within one interval")
	for _, e := range evs {
		if e.Action == wcevent.ActionDeleted {
			assert.JSONEq(t, `{"id":`+e.ObjectID+`}`, string(e.Data))
		} else {
			assert.Equal(t, "Name2", gjson.GetBytes(e.Data, "first_name").Str, "the changed customer's whole object")
		}
	}
	// 1 new-id query, 3 light pages (249 customers), 1 include= for the
	// changed one, and include= lookups for the two missing ids.
	assert.LessOrEqual(t, requestCount(sim, "/wp-json/wc/v3/customers")-before, 8)

	sim.Advance(time.Minute)
	require.Empty(t, h.poll(), "a second pass finds nothing new")
}

// 250 objects stamped with the same second, and objects modified between
// two page requests of a walk: nothing skipped, nothing emitted twice.
func TestSameSecondAndConcurrentModification(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	h := newHarness(t, sim, "resources: [{name: orders}]\n")
	require.Empty(t, h.poll())

	sim.Advance(5 * time.Second)
	first, last, err := sim.SeedWith(wcsim.Orders, 250, wcsim.SeedOptions{Start: sim.Now(), SameSecond: true, Status: "processing"})
	require.NoError(t, err)
	sim.Advance(5 * time.Second)

	// The first list answer is one second: the poller reads that second by
	// id. Before its second page, modify an object of the first id page
	// (already read) and one not read yet: both leave the second.
	lists := 0
	h.rt.set(func(req *http.Request) {
		q := req.URL.Query()
		if req.URL.Path != "/wp-json/wc/v3/orders" || q.Get("status") == "trash" || q.Get("orderby") != "id" {
			return
		}
		lists++
		if lists == 2 {
			require.NoError(t, sim.Update(wcsim.Orders, first+10, updateFields(wcsim.Orders, 1)))
			require.NoError(t, sim.Update(wcsim.Orders, first+200, updateFields(wcsim.Orders, 2)))
		}
	})
	evs := h.poll()
	h.rt.set(nil)
	seen := map[string]int{}
	for _, e := range evs {
		seen[e.ObjectID]++
		assert.Equal(t, "order.created", e.Type)
	}
	// Every order is emitted once, except the one modified before the walk
	// reached it: it moved to a later second and comes with the next poll.
	for id := first; id <= last; id++ {
		want := 1
		if id == first+200 {
			want = 0
		}
		assert.Equal(t, want, seen[strconv.FormatInt(id, 10)], "order %d", id)
	}
	assert.Len(t, evs, 249)
	for i := 1; i < len(evs); i++ {
		assert.Less(t, mustInt(t, evs[i-1].ObjectID), mustInt(t, evs[i].ObjectID), "a second is emitted in id order")
	}

	// The two modified orders carry a later second: the next poll reports
	// them. first+200 was never emitted: created; first+10 was: updated.
	sim.Advance(5 * time.Second)
	evs = h.poll()
	require.Equal(t, typesOf("order", "updated", first+10, "created", first+200), types(evs))

	// A bulk edit of all 250 in one second.
	ids := make([]int64, 0, 250)
	for id := first; id <= last; id++ {
		ids = append(ids, id)
	}
	require.NoError(t, sim.BulkUpdate(wcsim.Orders, ids, map[string]any{"status": "completed"}))
	sim.Advance(5 * time.Second)
	before := requestCount(sim, "/wp-json/wc/v3/orders")
	evs = h.poll()
	require.Len(t, evs, 250)
	ev := map[string]bool{}
	for i, e := range evs {
		assert.Equal(t, "order.updated", e.Type)
		assert.False(t, ev[e.ID], "duplicate %s", e)
		ev[e.ID] = true
		assert.Equal(t, strconv.FormatInt(first+int64(i), 10), e.ObjectID, "ordered by (modified, id)")
	}
	// one list page (a single second), 3 id pages of that second (99 new
	// objects each after the first), one page after it, and the trash
	assert.Equal(t, 1+3+1+1, requestCount(sim, "/wp-json/wc/v3/orders")-before)

	// Idle: one request for the list and one for the trash, on every poll.
	for i := 0; i < 3; i++ {
		before := requestCount(sim, "/wp-json/wc/v3/orders")
		sim.Advance(time.Minute)
		require.Empty(t, h.poll())
		assert.Equal(t, 2, requestCount(sim, "/wp-json/wc/v3/orders")-before, "an idle poll costs one request plus the trash query")
	}
}

// Sites east and west of UTC: the bound is naive UTC with dates_are_gmt,
// so no change is missed or repeated across polls.
func TestSiteUTCOffsets(t *testing.T) {
	for _, off := range []time.Duration{10 * time.Hour, -7 * time.Hour} {
		t.Run(off.String(), func(t *testing.T) {
			sim := newSim(t, wcsim.Options{UTCOffset: off})
			h := newHarness(t, sim, "resources: [{name: orders}]\npage_size: 20\n")
			require.Empty(t, h.poll())
			seen := map[string]bool{}
			var ids []int64
			for round := 0; round < 6; round++ {
				var want []string
				for i := 0; i < 7; i++ {
					sim.Advance(time.Second)
					id, err := sim.Create(wcsim.Orders, createFields(wcsim.Orders, i))
					require.NoError(t, err)
					ids = append(ids, id)
					want = append(want, fmt.Sprintf("order.created:%d", id))
				}
				if round > 0 {
					upd := ids[round*3]
					sim.Advance(time.Second)
					require.NoError(t, sim.Update(wcsim.Orders, upd, updateFields(wcsim.Orders, round)))
					want = append(want, fmt.Sprintf("order.updated:%d", upd))
				}
				sim.Advance(3 * time.Second)
				evs := h.poll()
				require.Equal(t, want, types(evs), "round %d", round)
				for _, e := range evs {
					require.False(t, seen[e.ID], "repeated %s", e)
					seen[e.ID] = true
					raw, ok := sim.Get(wcsim.Orders, mustInt(t, e.ObjectID))
					require.True(t, ok)
					assert.Equal(t, gjson.GetBytes(raw, "date_modified_gmt").Str+"Z", e.OccurredAt)
				}
			}
		})
	}
}

func mustInt(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

// A backfill from the beginning emits every object once as created, in
// (modified, id) order, and stores a watermark past the last one.
func TestBackfillFromBeginning(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	first, last, err := sim.SeedWith(wcsim.Orders, 1000, wcsim.SeedOptions{Start: t0.Add(-time.Hour), Step: 2 * time.Second, Status: "processing"})
	require.NoError(t, err)
	h := newHarness(t, sim, "resources: [{name: orders}]\nstart_from: beginning\n")
	evs := h.poll()
	require.Len(t, evs, 1000)
	for i, e := range evs {
		require.Equal(t, fmt.Sprintf("order.created:%d", first+int64(i)), e.String())
	}
	ck := h.storedCheckpoint()
	require.NotNil(t, ck)
	st := ck.Resources["orders"]
	require.NotNil(t, st.Watermark)
	lastRaw, _ := sim.Get(wcsim.Orders, last)
	lastMod, err := wcevent.ParseWooTime(gjson.GetBytes(lastRaw, "date_modified_gmt").Str)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, *st.Watermark, lastMod.Unix(), "the watermark is past the last order")
	assert.Equal(t, t0.Unix()-2, *st.Watermark, "settled up to the store's clock minus the 1s overlap")
	assert.Nil(t, st.Since, "from the beginning: every object not emitted before is created")
}

// A store that ignores modified_after is detected, and the resource is
// scanned in id order from then on.
func TestStoreIgnoringModifiedAfter(t *testing.T) {
	sim := newSim(t, wcsim.Options{TLS: true}) // basic auth: the query can be altered without breaking a signature
	_, _, err := sim.SeedWith(wcsim.Orders, 150, wcsim.SeedOptions{Start: t0.Add(-time.Hour), Status: "processing"})
	require.NoError(t, err)
	h := newHarness(t, sim, "resources: [{name: orders, trash: false}]\n")
	// Strip the date filters from every request: the store "ignores" them.
	h.rt.set(func(req *http.Request) {
		q := req.URL.Query()
		if q.Has("modified_after") || q.Has("modified_before") {
			q.Del("modified_after")
			q.Del("modified_before")
			req.URL.RawQuery = q.Encode()
		}
	})
	require.Empty(t, h.poll())
	assert.True(t, h.in.doc.Resources["orders"].Scanning)
	sim.Advance(5 * time.Second)
	id, err := sim.Create(wcsim.Orders, createFields(wcsim.Orders, 1))
	require.NoError(t, err)
	sim.Advance(5 * time.Second)
	require.Equal(t, typesOf("order", "created", id), types(h.poll()))
	require.NoError(t, sim.Update(wcsim.Orders, id, updateFields(wcsim.Orders, 1)))
	sim.Advance(5 * time.Second)
	require.Equal(t, typesOf("order", "updated", id), types(h.poll()))
	sim.Advance(5 * time.Second)
	require.Empty(t, h.poll())
}

// Faults injected mid-walk over real HTTP (429 with Retry-After, 503, an
// HTML error page, a truncated body, a dropped connection) are retried and
// the run completes with nothing missing and nothing repeated.
func TestStoreFaultsMidWalk(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	first, last, err := sim.SeedWith(wcsim.Orders, 1000, wcsim.SeedOptions{Start: t0.Add(-time.Hour), Status: "processing"})
	require.NoError(t, err)
	h := newHarness(t, sim, "resources: [{name: orders, trash: false}]\nstart_from: beginning\n")
	const path = "/wp-json/wc/v3/orders"
	faults := map[int]wcsim.Fault{
		2:  {PathPrefix: path, Count: 1, Status: http.StatusTooManyRequests, RetryAfter: "1"},
		4:  {PathPrefix: path, Count: 2, Status: http.StatusServiceUnavailable},
		8:  {PathPrefix: path, Count: 1, Kind: wcsim.FaultHTML, Status: http.StatusBadGateway},
		10: {PathPrefix: path, Count: 1, Kind: wcsim.FaultHTML, Status: http.StatusOK},
		12: {PathPrefix: path, Count: 1, Kind: wcsim.FaultTruncated},
		14: {PathPrefix: path, Count: 1, Kind: wcsim.FaultDrop},
	}
	n := 0
	h.rt.set(func(*http.Request) {
		n++
		if f, ok := faults[n]; ok {
			sim.InjectFault(f)
		}
	})
	evs := h.poll()
	seen := map[int64]int{}
	for _, e := range evs {
		seen[mustInt(t, e.ObjectID)]++
	}
	for id := first; id <= last; id++ {
		require.Equal(t, 1, seen[id], "order %d", id)
	}
	assert.Len(t, evs, 1000)
	assert.Greater(t, n, 14, "every fault was hit and retried")
	assert.GreaterOrEqual(t, sim.Requests(http.MethodGet, path), 11+7)
}

// Authentication failures are logged once per attempt and retried with a
// growing backoff; the secret never appears in the error.
func TestAuthFailure(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	h := newHarness(t, sim, "resources: [{name: orders}]\n")
	h.in.Close(context.Background())
	h.yaml = strings.Replace(h.yaml, "consumer_secret: "+wcsim.DefaultConsumerSecret, "consumer_secret: cs_wrong_secret", 1)
	h.start()
	_, errs := h.pollErrs()
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "401")
	assert.NotContains(t, errs[0].Error(), "cs_wrong_secret")
	assert.Equal(t, 5*time.Second, h.in.producers[0].failWait)
	_, errs = h.pollErrs()
	require.Len(t, errs, 1)
	assert.Equal(t, 10*time.Second, h.in.producers[0].failWait, "the backoff grows")
}

func TestConfigErrors(t *testing.T) {
	base := "store_url: https://shop.example.com\nconsumer_key: ck\nconsumer_secret: cs\n"
	for name, extra := range map[string]string{
		"page size":       "page_size: 101\n",
		"start":           "start_from: yesterday\n",
		"duplicate":       "resources: [{name: orders}, {name: orders}]\n",
		"reserved param":  "resources: [{name: orders, params: {orderby: date}}]\n",
		"bad date format": "resources: [{name: orders, date_format: \"yyyy-ww\"}]\n",
		"missing cache":   "checkpoint_cache: nope\n",
		"concurrency":     "max_concurrency: 0\n",
		"scan pages":      "scan_max_pages: 0\n",
	} {
		conf, err := pollSpec().ParseYAML(base+extra, nil)
		if err != nil {
			continue
		}
		_, err = newPollInput(conf, service.MockResources())
		assert.Error(t, err, name)
	}
	conf, err := pollSpec().ParseYAML(base, nil)
	require.NoError(t, err)
	in, err := newPollInput(conf, service.MockResources())
	require.NoError(t, err)
	var names []string
	for _, r := range in.resources {
		names = append(names, r.name+"/"+r.strategy+"/"+r.resource)
	}
	assert.Equal(t, []string{"orders/modified_after/order", "products/modified_after/product", "customers/scan/customer", "coupons/modified_after/coupon"}, names)
}

// Restoring a trashed order with a status update fires no webhook in
// WooCommerce: the poller reports it as restored.
func TestOrderRestoredByStatusUpdate(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	h := newHarness(t, sim, "resources: [{name: orders}]\n")
	require.Empty(t, h.poll())
	sim.Advance(2 * time.Second)
	id, err := sim.Create(wcsim.Orders, createFields(wcsim.Orders, 1))
	require.NoError(t, err)
	sim.Advance(3 * time.Second)
	require.Equal(t, typesOf("order", "created", id), types(h.poll()))

	// list and trash are merged in modification order
	require.NoError(t, sim.Trash(wcsim.Orders, id))
	sim.Advance(time.Second)
	other, err := sim.Create(wcsim.Orders, createFields(wcsim.Orders, 2))
	require.NoError(t, err)
	sim.Advance(3 * time.Second)
	require.Equal(t, typesOf("order", "deleted", id, "created", other), types(h.poll()))

	require.NoError(t, sim.Update(wcsim.Orders, id, map[string]any{"status": "completed"}))
	sim.Advance(3 * time.Second)
	evs := h.poll()
	require.Equal(t, typesOf("order", "restored", id), types(evs))
	assert.Equal(t, "completed", gjson.GetBytes(evs[0].Data, "status").Str)
}

// start_from a time: objects modified since then are emitted, as created
// when they were also created since then, as updated otherwise.
func TestStartFromTime(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	first, _, err := sim.SeedWith(wcsim.Orders, 10, wcsim.SeedOptions{Start: t0.Add(-100 * time.Second), Status: "processing"})
	require.NoError(t, err)
	require.NoError(t, sim.Update(wcsim.Orders, first+2, updateFields(wcsim.Orders, 1)))
	sim.Advance(5 * time.Second)
	start := t0.Add(-95 * time.Second).Format(time.RFC3339)
	h := newHarness(t, sim, "resources: [{name: orders}]\nstart_from: "+start+"\n")
	require.Equal(t, typesOf("order",
		"created", first+5, "created", first+6, "created", first+7, "created", first+8, "created", first+9,
		"updated", first+2), types(h.poll()))
}
