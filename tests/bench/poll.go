package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Scenario names of the poller's benchmarks beyond the backfill.
const (
	ScenarioPollParallel = "poll_parallel"
	ScenarioPollLatency  = "poll_latency"
)

// PollParallelRun is one backfill against a slow store at one
// max_concurrency.
type PollParallelRun struct {
	Orders         int     `json:"orders"`
	PageDelayMs    int     `json:"page_delay_ms"`
	MaxConcurrency int     `json:"max_concurrency"`
	Seconds        float64 `json:"seconds"`
	Requests       int64   `json:"requests"`
}

// PollLatencyRun is the change-to-event latency of a poll pipeline.
type PollLatencyRun struct {
	IntervalS float64   `json:"interval_s"`
	Changes   int       `json:"changes"`
	Received  int       `json:"received"`
	P50S      float64   `json:"p50_s"`
	P99S      float64   `json:"p99_s"`
	MaxS      float64   `json:"max_s"`
	Latencies []float64 `json:"latencies_s"`
}

// PollLatencyConfig polls orders every interval and posts each event to
// sink.
func PollLatencyConfig(storeURL, httpAddr, statePath, sink string, interval time.Duration) string {
	return fmt.Sprintf(`
input:
  woocommerce_poll:
    store_url: %q
    consumer_key: %q
    consumer_secret: %q
    resources:
      - name: orders
    start_from: now
    interval: %s
    state_path: %q
output:
  http_client:
    url: %q
    verb: POST
    max_in_flight: 16
`, storeURL, SimConsumerKey, SimConsumerSecret, interval, statePath, sink) + observability(httpAddr)
}

// startSimWith runs the wcsim command with extra flags.
func startSimWith(o BackfillOptions, dir string, n int, extra ...string) (*Sim, error) {
	addr, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := StartProc(ProcOptions{Name: "wcsim", Path: o.SimBinary, CPUs: o.SimCPUs, LogDir: dir,
		Args: append(SimArgs(addr, n), extra...)})
	if err != nil {
		return nil, err
	}
	if err := p.WaitTCP(addr, 3*time.Minute); err != nil {
		p.Kill()
		return nil, err
	}
	return &Sim{Proc: p, URL: "http://" + addr}, nil
}

// BenchPollParallel backfills n orders from a store that takes pageDelay
// per page, once at max_concurrency 1 and once at conc, and returns both.
func BenchPollParallel(ctx context.Context, o BackfillOptions, n int, pageDelay time.Duration, conc int) ([]*PollParallelRun, error) {
	dir := filepath.Join(o.WorkDir, "poll-parallel")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sim, err := startSimWith(o, dir, n, "-page-delay", pageDelay.String())
	if err != nil {
		return nil, err
	}
	defer func() { _ = sim.Stop(10 * time.Second) }()
	client := &http.Client{Timeout: 5 * time.Second}
	var runs []*PollParallelRun
	for _, c := range []int{1, conc} {
		before, err := SimRequests(ctx, client, sim.URL)
		if err != nil {
			return nil, sim.Failed(err)
		}
		httpAddr, err := FreePort()
		if err != nil {
			return nil, err
		}
		state := filepath.Join(dir, fmt.Sprintf("state-%d.db", c))
		_ = os.Remove(state)
		start := time.Now()
		p, err := StartWooevents(o.Binary, dir, fmt.Sprintf("wooevents-parallel-%d", c), PollConfig(sim.URL, SimConsumerKey, SimConsumerSecret, httpAddr, state, o.PageSize, c), o.ServerCPUs, nil)
		if err != nil {
			return nil, err
		}
		err = waitSent(ctx, p, client, httpAddr, n, o.Timeout)
		elapsed := time.Since(start)
		_ = p.Stop(20 * time.Second)
		if err != nil {
			return nil, err
		}
		after, err := SimRequests(ctx, client, sim.URL)
		if err != nil {
			return nil, sim.Failed(err)
		}
		run := &PollParallelRun{Orders: n, PageDelayMs: int(pageDelay / time.Millisecond), MaxConcurrency: c, Seconds: elapsed.Seconds(), Requests: after - before}
		if o.Log != nil {
			o.Log("  backfill %d orders, %s per page, max_concurrency %d: %.1fs, %d requests", n, pageDelay, c, run.Seconds, run.Requests)
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// waitSent waits until the process' output has sent n messages.
func waitSent(ctx context.Context, p *Proc, client *http.Client, httpAddr string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.Done():
			return p.Failed(fmt.Errorf("wooevents exited before sending %d events", n))
		case <-tick.C:
		}
		if m, err := JSONMetrics(ctx, client, httpAddr); err == nil {
			if sent, _ := SumMetric(m, "output_sent"); sent >= float64(n) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return p.Failed(fmt.Errorf("fewer than %d events sent after %s", n, timeout))
		}
	}
}

// BenchPollLatency creates changes orders at random times over window
// against a store on the real clock, polled every interval, and measures
// from each create to its event reaching the output.
func BenchPollLatency(ctx context.Context, o BackfillOptions, interval, window time.Duration, changes int, seed uint64) (*PollLatencyRun, error) {
	dir := filepath.Join(o.WorkDir, "poll-latency")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sim, err := startSimWith(o, dir, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sim.Stop(10 * time.Second) }()

	var mu sync.Mutex
	arrived := map[string]time.Time{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			ObjectID string `json:"object_id"`
		}
		if json.Unmarshal(body, &ev) == nil && ev.ObjectID != "" {
			mu.Lock()
			if _, seen := arrived[ev.ObjectID]; !seen {
				arrived[ev.ObjectID] = time.Now()
			}
			mu.Unlock()
		}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	httpAddr, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := PollLatencyConfig(sim.URL, httpAddr, filepath.Join(dir, "state.db"), "http://"+ln.Addr().String()+"/events", interval)
	p, err := StartWooevents(o.Binary, dir, "wooevents-latency", conf, o.ServerCPUs, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = p.Stop(20 * time.Second) }()
	client := &http.Client{Timeout: 5 * time.Second}
	// Let the input start (start_from: now) before the first change.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m, err := JSONMetrics(ctx, client, httpAddr); err == nil {
			if n, _ := SumMetric(m, "woocommerce_poll_requests_total"); n > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, p.Failed(fmt.Errorf("the poll input did not start"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	rng := rand.New(rand.NewPCG(seed, 1))
	offsets := make([]time.Duration, changes)
	for i := range offsets {
		offsets[i] = time.Duration(rng.Int64N(int64(window)))
	}
	slices.Sort(offsets)
	created := map[string]time.Time{}
	begin := time.Now()
	for _, off := range offsets {
		if d := time.Until(begin.Add(off)); d > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
			}
		}
		id, err := simCreateOrder(ctx, client, sim.URL)
		if err != nil {
			return nil, sim.Failed(err)
		}
		created[id] = time.Now()
	}
	// Wait for every change (at most interval + overlap + a margin).
	deadline := time.Now().Add(interval + 30*time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		if n >= changes {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	run := &PollLatencyRun{IntervalS: interval.Seconds(), Changes: changes}
	mu.Lock()
	for id, c := range created {
		if a, ok := arrived[id]; ok {
			run.Latencies = append(run.Latencies, a.Sub(c).Seconds())
		}
	}
	mu.Unlock()
	run.Received = len(run.Latencies)
	slices.Sort(run.Latencies)
	if len(run.Latencies) > 0 {
		run.P50S = quantile(run.Latencies, 0.50)
		run.P99S = quantile(run.Latencies, 0.99)
		run.MaxS = run.Latencies[len(run.Latencies)-1]
	}
	if o.Log != nil {
		o.Log("  poll latency, interval %s: %d/%d changes arrived, p50 %.2fs p99 %.2fs max %.2fs", interval, run.Received, changes, run.P50S, run.P99S, run.MaxS)
	}
	if run.Received < changes {
		return run, fmt.Errorf("only %d of %d changes arrived", run.Received, changes)
	}
	return run, nil
}

// quantile of sorted xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// simCreateOrder creates an order through the simulator's control API.
func simCreateOrder(ctx context.Context, client *http.Client, base string) (string, error) {
	body := []byte(`{"resource":"orders","fields":{"status":"processing"}}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/__sim/create", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		ID json.Number `json:"id"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.ID == "" {
		return "", fmt.Errorf("simulator create: HTTP %d: %s", resp.StatusCode, raw)
	}
	return out.ID.String(), nil
}

// runPollScenarios runs the parallel-backfill and latency benchmarks.
func runPollScenarios(ctx context.Context, o SuiteOptions, r *Report) {
	if o.SimBinary == "" || !BinaryHas(o.Binary, "inputs", "woocommerce_poll") {
		r.Errors[ScenarioPollParallel] = "wcsim command or woocommerce_poll input not available"
		return
	}
	bo := BackfillOptions{Binary: o.Binary, SimBinary: o.SimBinary, WorkDir: o.WorkDir, ServerCPUs: o.ServerCPUs,
		SimCPUs: o.LoadgenCPUs, PageSize: 100, Timeout: 5 * time.Minute, Log: o.Log}
	if o.runs(ScenarioPollParallel) {
		logf(o, "poll backfill against a slow store: 20000 orders, 300ms per page, max_concurrency 1 then 4")
		runs, err := BenchPollParallel(ctx, bo, 20000, 300*time.Millisecond, 4)
		if err != nil {
			r.Errors[ScenarioPollParallel] = err.Error()
		} else {
			r.PollParallelRuns = runs
			r.BackfillParallelSpeedup = ptr(runs[0].Seconds / runs[1].Seconds)
		}
	}
	if o.runs(ScenarioPollLatency) {
		logf(o, "poll latency: 60 orders created at random times over 100s, interval 10s")
		run, err := BenchPollLatency(ctx, bo, 10*time.Second, 100*time.Second, 60, uint64(time.Now().UnixNano()))
		if run != nil {
			r.PollLatencyRun = run
			r.PollLatencyP50S, r.PollLatencyP99S = ptr(run.P50S), ptr(run.P99S)
		}
		if err != nil {
			r.Errors[ScenarioPollLatency] = err.Error()
		}
	}
}
