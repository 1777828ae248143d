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

// hookTransport lets a test act before requests, and counts the requests
// in flight.
type hookTransport struct {
	base     http.RoundTripper
	mu       sync.Mutex
	before   func(req *http.Request) // called before each request, may be nil
	count    atomic.Int64
	inflight atomic.Int64
	peak     atomic.Int64
}

func (h *hookTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h.count.Add(1)
	n := h.inflight.Add(1)
	defer h.inflight.Add(-1)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
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

// harness drives a pollInput whose producers poll only when kicked, with
// the input's clock tied to the simulator's (timers fire in advance).
type harness struct {
	t     testing.TB
	sim   *wcsim.Store
	in    *pollInput
	mgr   *service.Resources
	rt    *hookTransport
	clk   *manualClock
	yaml  string
	state string

	mu    sync.Mutex
	ends  []*chunk // end-of-poll markers seen
	onEnd func()

	perBatch func(n int) // called after each batch is acknowledged (may be nil)
	discard  bool        // do not decode or keep events (poll returns none)
	hold     bool        // keep acknowledgements in held instead of acknowledging
	held     []service.AckFunc
}

func newHarness(t *testing.T, sim *wcsim.Store, extra string) *harness {
	t.Helper()
	return newHarnessTB(t, sim, extra)
}

func newHarnessTB(t testing.TB, sim *wcsim.Store, extra string) *harness {
	h := &harness{t: t, sim: sim, state: t.TempDir() + "/state.db",
		mgr: service.MockResources(service.MockResourcesOptAddCache("ck"))}
	h.yaml = fmt.Sprintf("store_url: %s\nconsumer_key: %s\nconsumer_secret: %s\nstate_path: %s\ncheckpoint_cache: ck\n%s",
		sim.URL(), wcsim.DefaultConsumerKey, wcsim.DefaultConsumerSecret, h.state, extra)
	h.rt = &hookTransport{base: sim.Client().Transport}
	h.clk = &manualClock{now: sim.Now}
	h.start()
	t.Cleanup(func() {
		if h.in != nil {
			_ = h.in.Close(context.Background())
		}
	})
	return h
}

// start builds and connects a new input on the harness' state and cache.
func (h *harness) start() {
	conf, err := pollSpec().ParseYAML(h.yaml, nil)
	require.NoError(h.t, err)
	in, err := newPollInput(conf, h.mgr)
	require.NoError(h.t, err)
	in.clientCfg.HTTPClient = &http.Client{Transport: h.rt}
	in.clientCfg.RetryInitialInterval = 2 * time.Millisecond
	in.clientCfg.RetryMaxInterval = 20 * time.Millisecond
	in.clock, in.manual = h.clk, true
	in.onChunk = func(c *chunk) {
		if c.kind != kindEndPoll {
			return
		}
		h.mu.Lock()
		h.ends = append(h.ends, c)
		fn := h.onEnd
		h.mu.Unlock()
		if fn != nil {
			fn()
		}
	}
	require.NoError(h.t, in.Connect(context.Background()))
	h.in = in
}

// crash stops the input as a SIGKILL would: the producers stop, nothing
// unsaved is stored, the state file is closed as it is on disk.
func (h *harness) crash() {
	in := h.in
	in.stop()
	in.wg.Wait()
	require.NoError(h.t, in.state.close())
	in.client.Close()
	in.connected.Store(false)
	h.in = nil
}

// advance moves the simulator's clock and fires the poller's due timers.
func (h *harness) advance(d time.Duration) {
	h.sim.Advance(d)
	h.clk.Fire()
}

// poll kicks every producer, reads (and acknowledges) until each has ended
// the poll it started, and returns the events in order. Polls must succeed.
func (h *harness) poll() []event {
	h.t.Helper()
	evs, errs := h.pollErrs()
	require.Empty(h.t, errs)
	return evs
}

// pollErrs is poll returning the errors of failed polls.
func (h *harness) pollErrs() ([]event, []error) {
	h.t.Helper()
	for _, p := range h.in.producers {
		p.kick <- struct{}{}
	}
	return h.readUntil(func(ends []*chunk) bool {
		n := 0
		for _, c := range ends {
			if c.kicked {
				n++
			}
		}
		return n >= len(h.in.producers)
	})
}

// readUntil reads and acknowledges batches until done holds for the
// end-of-poll markers seen since it was called.
func (h *harness) readUntil(done func([]*chunk) bool) ([]event, []error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	h.mu.Lock()
	h.ends = nil
	h.onEnd = func() {
		if done(h.ends) {
			stop()
		}
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.onEnd = nil
		h.mu.Unlock()
	}()
	var out []event
	for {
		b, err := h.in.next(readCtx)
		if err != nil {
			require.NoError(h.t, ctx.Err(), "timed out waiting for the polls to end")
			break
		}
		msgs, ack, err := h.in.emit(ctx, b)
		require.NoError(h.t, err)
		if !h.discard {
			out = append(out, decodeBatch(h.t, msgs)...)
		}
		if h.hold {
			h.held = append(h.held, ack)
			continue
		}
		require.NoError(h.t, ack(ctx, nil))
		if h.perBatch != nil {
			h.perBatch(len(msgs))
		}
	}
	require.NoError(h.t, h.in.flush(ctx))
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for _, c := range h.ends {
		if c.err != nil {
			errs = append(errs, c.err)
		}
	}
	return out, errs
}

// storedCheckpoint reads the checkpoint from the cache.
func (h *harness) storedCheckpoint() *checkpointDoc {
	h.t.Helper()
	var raw []byte
	var gerr error
	require.NoError(h.t, h.mgr.AccessCache(context.Background(), "ck", func(c service.Cache) {
		raw, gerr = c.Get(context.Background(), "woocommerce_poll")
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
