package wcpoll

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

// State changes are applied in the order their events were emitted, not
// in the order they are acknowledged: "X trashed" acknowledged after the
// later "X restored" must not write the trashed id back (else X's next
// update would be reported as restored).
func TestStateAppliedInEmissionOrder(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	h := newHarness(t, sim, "resources: [{name: orders}]\n")
	require.Empty(t, h.poll())
	sim.Advance(2 * time.Second)
	id, err := sim.Create(wcsim.Orders, createFields(wcsim.Orders, 1))
	require.NoError(t, err)
	sim.Advance(3 * time.Second)
	require.Equal(t, typesOf("order", "created", id), types(h.poll()))

	h.hold = true
	require.NoError(t, sim.Trash(wcsim.Orders, id))
	sim.Advance(3 * time.Second)
	require.Equal(t, typesOf("order", "deleted", id), types(h.poll()))
	require.NoError(t, sim.Restore(wcsim.Orders, id))
	sim.Advance(3 * time.Second)
	require.Equal(t, typesOf("order", "restored", id), types(h.poll()))
	require.Len(t, h.held, 2)
	ctx := context.Background()
	require.NoError(t, h.held[1](ctx, nil), "restored acknowledged first")
	require.NoError(t, h.held[0](ctx, nil))
	h.hold, h.held = false, nil
	require.NoError(t, h.in.flush(ctx))

	_, trashed, err := h.in.state.get(bucketTrashed+"orders", strconv.FormatInt(id, 10))
	require.NoError(t, err)
	assert.False(t, trashed, "the restore is the last state")
	require.NoError(t, sim.Update(wcsim.Orders, id, updateFields(wcsim.Orders, 2)))
	sim.Advance(3 * time.Second)
	require.Equal(t, typesOf("order", "updated", id), types(h.poll()))
}

// A Connect that fails leaves nothing half-built: the next one builds a
// producer for every resource.
func TestConnectFailureKeepsNothing(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	h := newHarness(t, sim, "resources: [{name: orders}, {name: products}, {name: coupons}]\n")
	require.Empty(t, h.poll())
	h.in.Close(context.Background())

	ctx := context.Background()
	require.NoError(t, h.mgr.AccessCache(ctx, "ck", func(c service.Cache) {
		require.NoError(t, c.Set(ctx, "woocommerce_poll", []byte("{not json"), nil))
	}))
	conf, err := pollSpec().ParseYAML(h.yaml, nil)
	require.NoError(t, err)
	in, err := newPollInput(conf, h.mgr)
	require.NoError(t, err)
	in.clock, in.manual = h.clk, true
	err = in.Connect(ctx)
	require.ErrorContains(t, err, "not valid JSON")
	assert.False(t, in.connected.Load())
	assert.Empty(t, in.producers)

	require.NoError(t, h.mgr.AccessCache(ctx, "ck", func(c service.Cache) {
		require.NoError(t, c.Delete(ctx, "woocommerce_poll"))
	}))
	require.NoError(t, in.Connect(ctx))
	defer in.Close(ctx)
	assert.Len(t, in.producers, 3, "every resource is polled")
}

// A store URL that answers an HTML 404 (a static file server, a wrong
// path) is a permanent error: each attempt is logged once and the next
// waits 5 s, then 10 s, ... up to 5 minutes; nothing is requested while
// it waits.
func TestPermanentErrorBacksOff(t *testing.T) {
	var hits atomic.Int64
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<!DOCTYPE HTML><html><head><title>Error response</title></head><body><h1>Error response</h1><p>Error code: 404</p></body></html>"))
	}))
	defer html.Close()
	sim := newSim(t, wcsim.Options{})
	h := newHarness(t, sim, "resources: [{name: orders}]\nmax_retry_elapsed: 0s\n")
	h.in.Close(context.Background())
	h.yaml = strings.Replace(h.yaml, "store_url: "+sim.URL(), "store_url: "+html.URL, 1)
	h.start()

	_, errs := h.pollErrs()
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "404")
	p := h.in.producers[0]
	assert.Equal(t, 5*time.Second, p.failWait)
	n := hits.Load()
	h.advance(4 * time.Second)
	assert.Equal(t, n, hits.Load(), "no request before the backoff has passed")
	waits := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second}
	for _, want := range waits {
		h.advance(p.failWait)
		_, errs := h.readUntil(func(ends []*chunk) bool { return len(ends) > 0 })
		require.Len(t, errs, 1)
		assert.Equal(t, want, p.failWait)
	}
	assert.Equal(t, n+int64(len(waits)), hits.Load(), "one request per attempt")
	for range 20 {
		p.failed(errs[0])
	}
	assert.Equal(t, 5*time.Minute, p.failWait, "capped at 5 minutes")
}
