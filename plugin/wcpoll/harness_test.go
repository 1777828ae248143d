package wcpoll

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

// t0 is the simulated stores' initial clock: near the real clock, because
// OAuth 1.0a timestamps must be within 15 minutes of the store's.
var t0 = time.Now().UTC().Truncate(time.Minute)

// newSim starts a simulator with a manual clock at t0.
func newSim(t *testing.T, opts wcsim.Options) *wcsim.Store {
	t.Helper()
	sim := wcsim.New(opts)
	require.NoError(t, sim.Start())
	t.Cleanup(sim.Close)
	sim.SetNow(t0)
	return sim
}

// event is an emitted message, decoded.
type event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Resource   string          `json:"resource"`
	Action     string          `json:"action"`
	ObjectID   string          `json:"object_id"`
	Store      string          `json:"store"`
	Source     string          `json:"source"`
	OccurredAt string          `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
	Key        string          `json:"-"` // woocommerce_resource_key metadata
}

func (e event) String() string { return e.Type + ":" + e.ObjectID }

func decodeBatch(t testing.TB, b service.MessageBatch) []event {
	t.Helper()
	out := make([]event, 0, len(b))
	for _, m := range b {
		raw, err := m.AsBytes()
		require.NoError(t, err)
		var e event
		require.NoError(t, json.Unmarshal(raw, &e), string(raw))
		e.Key, _ = m.MetaGet("woocommerce_resource_key")
		out = append(out, e)
	}
	return out
}

// hookTransport lets a test act between requests.
type hookTransport struct {
	base   http.RoundTripper
	mu     sync.Mutex
	before func(req *http.Request) // called before each request, may be nil
	count  atomic.Int64
}

func (h *hookTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h.count.Add(1)
	h.mu.Lock()
	fn := h.before
	h.mu.Unlock()
	if fn != nil {
		fn(req)
	}
	return h.base.RoundTrip(req)
}

func (h *hookTransport) set(fn func(*http.Request)) {
	h.mu.Lock()
	h.before = fn
	h.mu.Unlock()
}

// harness drives a pollInput directly: one poll at a time, acking each
// batch at once, with the input's clock tied to the simulator's.
type harness struct {
	t   testing.TB
	sim *wcsim.Store
	in  *pollInput
	mgr *service.Resources
	rt  *hookTransport
}

func newHarness(t *testing.T, sim *wcsim.Store, extra string) *harness {
	t.Helper()
	return newHarnessTB(t, sim, extra)
}

func newBenchHarness(b *testing.B, sim *wcsim.Store) *harness {
	return newHarnessTB(b, sim, "resources: [{name: orders, trash: false}]\nstart_from: beginning\n")
}

func newHarnessTB(t testing.TB, sim *wcsim.Store, extra string) *harness {
	yaml := fmt.Sprintf("store_url: %s\nconsumer_key: %s\nconsumer_secret: %s\nstate_path: %s\ncheckpoint_cache: ck\n%s",
		sim.URL(), wcsim.DefaultConsumerKey, wcsim.DefaultConsumerSecret, t.TempDir()+"/state.db", extra)
	conf, err := pollSpec().ParseYAML(yaml, nil)
	require.NoError(t, err)
	mgr := service.MockResources(service.MockResourcesOptAddCache("ck"))
	in, err := newPollInput(conf, mgr)
	require.NoError(t, err)
	h := &harness{t: t, sim: sim, in: in, mgr: mgr, rt: &hookTransport{base: sim.Client().Transport}}
	in.clientCfg.HTTPClient = &http.Client{Transport: h.rt}
	in.clientCfg.RetryInitialInterval = 2 * time.Millisecond
	in.clientCfg.RetryMaxInterval = 20 * time.Millisecond
	in.now = sim.Now
	require.NoError(t, in.Connect(context.Background()))
	t.Cleanup(func() { _ = in.Close(context.Background()) })
	return h
}

// poll runs one complete poll and returns its events in order.
func (h *harness) poll() []event {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.in.beginPoll()
	var out []event
	for {
		b, err := h.in.step(ctx)
		require.NoError(h.t, err)
		if b == nil {
			return out
		}
		msgs, ack, err := h.in.emit(ctx, b)
		require.NoError(h.t, err)
		out = append(out, decodeBatch(h.t, msgs)...)
		require.NoError(h.t, ack(ctx, nil))
	}
}

// storedCheckpoint reads the checkpoint from the cache.
func (h *harness) storedCheckpoint() *checkpointDoc {
	h.t.Helper()
	var raw []byte
	var gerr error
	require.NoError(h.t, h.mgr.AccessCache(context.Background(), "ck", func(c service.Cache) {
		raw, gerr = c.Get(context.Background(), h.in.ckptKey)
	}))
	if gerr != nil {
		return nil
	}
	ck, err := parseCheckpoint(raw, h.in.store)
	require.NoError(h.t, err)
	return ck
}

func types(evs []event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.String()
	}
	return out
}

func typesOf(prefix string, pairs ...any) []string {
	out := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, fmt.Sprintf("%s.%s:%v", prefix, pairs[i], pairs[i+1]))
	}
	return out
}

func requestCount(sim *wcsim.Store, path string) int {
	return sim.Requests(http.MethodGet, path)
}
