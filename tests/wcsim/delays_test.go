package wcsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLatency(t *testing.T) {
	for in, want := range map[string]Latency{
		"off": NoLatency, "0": NoLatency, "none": NoLatency, "0s": NoLatency, "0-0ms": NoLatency,
		"default": DefaultLatency, "": DefaultLatency,
		"5ms": {Min: 5 * time.Millisecond, Max: 5 * time.Millisecond}, "0-2ms": {Max: 2 * time.Millisecond},
		"1ms-3ms": {Min: time.Millisecond, Max: 3 * time.Millisecond}, "1-3s": {Min: time.Second, Max: 3 * time.Second},
	} {
		got, err := ParseLatency(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		again, err := ParseLatency(got.String())
		require.NoError(t, err)
		assert.Equal(t, got.effective(), again.effective(), "String round-trips %q", in)
	}
	for _, bad := range []string{"fast", "-5ms", "3ms-1ms", "1ms-", "x-2ms"} {
		_, err := ParseLatency(bad)
		assert.Error(t, err, bad)
	}
	// draws stay in range; the zero Latency is the default jitter
	for _, l := range []Latency{{}, {Min: time.Millisecond, Max: 3 * time.Millisecond}} {
		e := l.effective()
		seen := map[time.Duration]bool{}
		for i := 0; i < 500; i++ {
			d := l.draw()
			assert.True(t, d >= e.Min && d <= e.Max, "%s drew %s", e, d)
			seen[d] = true
		}
		assert.Greater(t, len(seen), 100, "a spread, not a constant")
	}
	assert.Equal(t, time.Duration(0), NoLatency.draw())
	assert.Equal(t, 7*time.Millisecond, Latency{Min: 7 * time.Millisecond}.draw())
}

// concurrently runs n GETs of path at once and returns how long all took.
func concurrently(t *testing.T, s *Store, n int, path string) time.Duration {
	t.Helper()
	start := make(chan struct{})
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("GET", s.URL()+path, nil)
			req.SetBasicAuth(DefaultConsumerKey, DefaultConsumerSecret)
			<-start
			r, err := s.Client().Do(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			codes[i] = r.StatusCode
		}(i)
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	d := time.Since(t0)
	for _, c := range codes {
		require.Equal(t, 200, c)
	}
	return d
}

// Delays wait outside every lock: four list requests delayed 200 ms each
// finish together, not one after the other.
func TestDelaysDoNotSerializeRequests(t *testing.T) {
	s := startStore(t, Options{TLS: true, Latency: NoLatency, PageDelay: 200 * time.Millisecond})
	s.Seed(Orders, 20)
	d := concurrently(t, s, 4, "/wp-json/wc/v3/orders")
	t.Logf("4 concurrent list requests with PageDelay 200ms: %s", d)
	assert.GreaterOrEqual(t, d, 200*time.Millisecond)
	assert.Less(t, d, 650*time.Millisecond, "serialized would be >= 800ms")

	// the page delay applies to lists only: an item GET is not delayed
	start := time.Now()
	require.Equal(t, 200, basicDo(t, s, "GET", "/wp-json/wc/v3/orders/10", nil).code)
	assert.Less(t, time.Since(start), 150*time.Millisecond)

	// per-request latency, then an injected delay fault: also concurrent
	s.SetPageDelay(0)
	s.SetLatency(Latency{Min: 200 * time.Millisecond, Max: 200 * time.Millisecond})
	d = concurrently(t, s, 4, "/wp-json/wc/v3/orders/10")
	t.Logf("4 concurrent requests with Latency 200ms: %s", d)
	assert.GreaterOrEqual(t, d, 200*time.Millisecond)
	assert.Less(t, d, 650*time.Millisecond)

	s.SetLatency(NoLatency)
	s.InjectFault(Fault{Kind: FaultDelay, Delay: 200 * time.Millisecond})
	d = concurrently(t, s, 4, "/wp-json/wc/v3/products")
	t.Logf("4 concurrent requests with a 200ms delay fault: %s", d)
	assert.GreaterOrEqual(t, d, 200*time.Millisecond)
	assert.Less(t, d, 650*time.Millisecond)
	s.ClearFaults()

	// while a list request waits, the store keeps serving and mutating
	s.SetPageDelay(400 * time.Millisecond)
	slow := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		req, _ := http.NewRequest("GET", s.URL()+"/wp-json/wc/v3/orders", nil)
		req.SetBasicAuth(DefaultConsumerKey, DefaultConsumerSecret)
		if r, err := s.Client().Do(req); err == nil {
			r.Body.Close()
		}
		slow <- time.Since(t0)
	}()
	require.Eventually(t, func() bool { return s.Requests("GET", "/wp-json/wc/v3/orders") >= 1 }, time.Second, time.Millisecond)
	start = time.Now()
	_, err := s.Create(Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	assert.Equal(t, 200, basicDo(t, s, "GET", "/wp-json/wc/v3/orders/10", nil).code)
	assert.Less(t, time.Since(start), 300*time.Millisecond, "not blocked by the waiting list request")
	assert.GreaterOrEqual(t, <-slow, 400*time.Millisecond)
}

func TestLatencyOptionAndControl(t *testing.T) {
	s := startStore(t, Options{TLS: true, Latency: Latency{Min: 80 * time.Millisecond, Max: 80 * time.Millisecond}})
	start := time.Now()
	require.Equal(t, 200, basicDo(t, s, "GET", "/wp-json/wc/v3/orders", nil).code)
	assert.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)
	// /__sim requests are never delayed
	start = time.Now()
	code, _ := simCall(t, s, "GET", "/__sim/info", nil)
	require.Equal(t, 200, code)
	assert.Less(t, time.Since(start), 80*time.Millisecond)

	code, b := simCall(t, s, "POST", "/__sim/options", map[string]any{"latency": "off", "page_delay": "120ms"})
	require.Equal(t, 200, code, string(b))
	var o map[string]any
	require.NoError(t, json.Unmarshal(b, &o))
	assert.Equal(t, "off", o["latency"])
	assert.Equal(t, "120ms", o["page_delay"])
	start = time.Now()
	require.Equal(t, 200, basicDo(t, s, "GET", "/wp-json/wc/v3/orders", nil).code)
	assert.GreaterOrEqual(t, time.Since(start), 120*time.Millisecond)

	for _, bad := range []map[string]any{{"latency": "fast"}, {"page_delay": "-1s"}, {"random_faults": map[string]any{"rate": 2}}, {"nope": true}, {"clock_skew": "x"}} {
		code, b = simCall(t, s, "POST", "/__sim/options", bad)
		assert.Equal(t, 400, code, "%v: %s", bad, b)
	}
	code, b = simCall(t, s, "GET", "/__sim/options", nil)
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(b, &o))
	assert.Equal(t, "120ms", o["page_delay"], "a rejected update changes nothing")
	code, b = simCall(t, s, "POST", "/__sim/options", map[string]any{"latency": "1ms-3ms", "page_delay": "0s", "tie_seed": 5})
	require.Equal(t, 200, code, string(b))
	require.NoError(t, json.Unmarshal(b, &o))
	assert.Equal(t, "1ms-3ms", o["latency"])
	assert.Equal(t, float64(5), o["tie_seed"])
}

// outcome classifies one response for the random-fault tests.
func outcome(t *testing.T, s *Store, path string) string {
	t.Helper()
	tr := s.Client().Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true // a dropped connection is not retried on a new one
	req, _ := http.NewRequest("GET", s.URL()+path, nil)
	req.SetBasicAuth(DefaultConsumerKey, DefaultConsumerSecret)
	r, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "dropped"
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "read-error"
	}
	kind := "json"
	if !json.Valid(body) {
		kind = "invalid"
	}
	if ct := r.Header.Get("Content-Type"); len(ct) >= 9 && ct[:9] == "text/html" {
		kind = "html"
	}
	if r.StatusCode == 429 {
		assert.Equal(t, "1", r.Header.Get("Retry-After"))
	}
	return fmt.Sprintf("%d/%s", r.StatusCode, kind)
}

func TestRandomFaults(t *testing.T) {
	run := func(rf RandomFaults, n int) []string {
		s := startStore(t, Options{TLS: true, Latency: NoLatency, RandomFaults: rf})
		s.Seed(Orders, 5)
		out := make([]string, n)
		for i := range out {
			out[i] = outcome(t, s, "/wp-json/wc/v3/orders")
		}
		return out
	}
	a := run(RandomFaults{Rate: 0.3, Seed: 7}, 300)
	counts := map[string]int{}
	for _, o := range a {
		counts[o]++
	}
	t.Logf("outcomes: %v", counts)
	faulted := 300 - counts["200/json"]
	assert.InDelta(t, 90, faulted, 40, "about 30%% faulted")
	for _, want := range []string{"429/json", "500/json", "502/html", "503/json", "500/html", "200/invalid", "dropped"} {
		assert.Positive(t, counts[want], "fault %s drawn", want)
	}
	assert.Equal(t, a[:60], run(RandomFaults{Rate: 0.3, Seed: 7}, 60), "deterministic given the seed")
	assert.NotEqual(t, a[:60], run(RandomFaults{Rate: 0.3, Seed: 8}, 60))
	for _, o := range run(RandomFaults{}, 40) {
		assert.Equal(t, "200/json", o, "off by default")
	}
	for _, o := range run(RandomFaults{Rate: 1, Seed: 3}, 40) {
		assert.NotEqual(t, "200/json", o)
	}

	// switched at run time; explicit faults come first; /__sim is never faulted
	s := startStore(t, Options{TLS: true, Latency: NoLatency})
	code, b := simCall(t, s, "POST", "/__sim/options", map[string]any{"random_faults": map[string]any{"rate": 1, "seed": 1}})
	require.Equal(t, 200, code, string(b))
	assert.NotEqual(t, "200/json", outcome(t, s, "/wp-json/wc/v3/orders"))
	s.InjectFault(Fault{Count: 1, Status: 418})
	assert.Equal(t, "418/json", outcome(t, s, "/wp-json/wc/v3/orders"))
	code, _ = simCall(t, s, "GET", "/__sim/info", nil)
	assert.Equal(t, 200, code)
	s.SetRandomFaults(RandomFaults{})
	assert.Equal(t, "200/json", outcome(t, s, "/wp-json/wc/v3/orders"))
}
