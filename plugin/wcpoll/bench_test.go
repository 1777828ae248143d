package wcpoll

import (
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

// BenchmarkBackfill measures a backfill of b.N orders from the simulator
// through the input (no pipeline): records/s of the poller's own work plus
// the simulator's.
func BenchmarkBackfill(b *testing.B) {
	sim := wcsim.New(wcsim.Options{TLS: true})
	require.NoError(b, sim.Start())
	defer sim.Close()
	sim.SetNow(t0)
	_, _, err := sim.SeedWith(wcsim.Orders, b.N, wcsim.SeedOptions{Start: t0.Add(-time.Duration(b.N+10) * time.Second), Status: "processing"})
	require.NoError(b, err)
	h := newHarnessTB(b, sim, "resources: [{name: orders, trash: false}]\nstart_from: beginning\n")
	n := 0
	h.discard = true
	h.perBatch = func(k int) { n += k }
	b.ResetTimer()
	h.poll()
	require.Equal(b, b.N, n)
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// soak selects the long variants (WOOEVENTS_SOAK=1, as `make soak` sets).
func soak() bool { return os.Getenv("WOOEVENTS_SOAK") != "" }

// backfillLiveHeap backfills n orders from an in-process simulator and
// returns how far the live heap (HeapInuse after a forced GC, sampled every
// 100 batches and at the end) rose above its level before the backfill, and
// the throughput. The simulator's own data is in the baseline.
// WCPOLL_HEAPPROF=<dir> writes heap profiles before and after (for pprof -base).
func backfillLiveHeap(t *testing.T, n int) (growth uint64, perSec float64) {
	if os.Getenv("WCPOLL_HEAPPROF") != "" {
		runtime.MemProfileRate = 1024
	}
	// Over TLS the client uses basic auth: an OAuth 1.0a simulator keeps
	// every nonce, which would grow its heap with the request count.
	sim := wcsim.New(wcsim.Options{TLS: true})
	require.NoError(t, sim.Start())
	defer sim.Close()
	sim.SetNow(t0)
	_, _, err := sim.SeedWith(wcsim.Orders, n, wcsim.SeedOptions{Start: t0.Add(-time.Duration(n+10) * time.Second), Status: "processing"})
	require.NoError(t, err)
	h := newHarnessTB(t, sim, "resources: [{name: orders}]\nstart_from: beginning\n")
	live := func() uint64 {
		sim.ResetRequests() // the simulator logs every request
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	base := live()
	if d := os.Getenv("WCPOLL_HEAPPROF"); d != "" {
		f, _ := os.Create(d + "/base.heap")
		_ = pprof.WriteHeapProfile(f)
		f.Close()
		defer func() {
			runtime.GC()
			f, _ := os.Create(d + "/end.heap")
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}()
	}
	peak := base
	start := time.Now()
	batches, got := 0, 0
	h.discard = true
	h.perBatch = func(n int) {
		got += n
		if batches++; batches%100 == 0 {
			peak = max(peak, live())
		}
	}
	h.poll()
	elapsed := time.Since(start)
	peak = max(peak, live())
	require.Equal(t, n, got)
	return peak - base, float64(n) / elapsed.Seconds()
}

// TestBackfillHeapIsFlat checks that a backfill's memory does not grow with
// the store: the live heap during a backfill ten times larger rises no more
// than 1.2 times as much (plus 8 MiB, see below). Both sizes are read as
// concurrent segments, whose buffers are bounded by max_concurrency, not by
// the store. Default: 20,000 vs 200,000 orders; WOOEVENTS_SOAK=1: 100,000
// vs 1,000,000.
func TestBackfillHeapIsFlat(t *testing.T) {
	small, large := 20_000, 200_000
	if v := os.Getenv("WCPOLL_HEAPN"); v != "" {
		large, _ = strconv.Atoi(v)
	}
	if soak() {
		small, large = 100_000, 1_000_000
	}
	gs, rs := backfillLiveHeap(t, small)
	gl, rl := backfillLiveHeap(t, large)
	t.Logf("live heap growth: %d orders %.2f MiB (%.0f records/s), %d orders %.2f MiB (%.0f records/s)",
		small, float64(gs)/(1<<20), rs, large, float64(gl)/(1<<20), rl)
	// The peak of more samples is higher (up to max_concurrency+2 segments
	// of pages in flight, TLS and render buffers): 8 MiB of slack, far below
	// what keeping 180,000 more ids (or bodies) would take.
	assert.LessOrEqual(t, float64(gl), 1.2*float64(gs)+8<<20, "live heap grows with the backfill's size")
}
