package wcpoll

import (
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
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
// samples the live heap (HeapInuse after a forced GC) every 20 batches,
// with the share of the backfill done; it returns the samples above the
// level before the backfill, and the throughput. The simulator's own data
// is in the baseline. WCPOLL_HEAPPROF=<dir> writes heap profiles before and
// after (for pprof -base).
func backfillLiveHeap(t *testing.T, n int) (samples []heapSample, perSec float64) {
	if os.Getenv("WCPOLL_HEAPPROF") != "" {
		runtime.MemProfileRate = 1024
	}
	// Over TLS the client uses basic auth: an OAuth 1.0a simulator keeps
	// every nonce, which would grow its heap with the request count.
	sim := wcsim.New(wcsim.Options{TLS: true, Latency: wcsim.NoLatency})
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
	start := time.Now()
	batches, got := 0, 0
	h.discard = true
	h.perBatch = func(k int) {
		got += k
		if batches++; batches%20 == 0 {
			samples = append(samples, heapSample{done: float64(got) / float64(n), growth: int64(live()) - int64(base)})
		}
	}
	h.poll()
	elapsed := time.Since(start)
	require.Equal(t, n, got)
	return samples, float64(n) / elapsed.Seconds()
}

// heapSample is the live heap's growth when a share of a backfill was done.
type heapSample struct {
	done   float64
	growth int64
}

// medianGrowth is the median growth of the samples taken between from and
// to (shares of the backfill).
func medianGrowth(samples []heapSample, from, to float64) int64 {
	var xs []int64
	for _, s := range samples {
		if s.done >= from && s.done < to {
			xs = append(xs, s.growth)
		}
	}
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// TestBackfillHeapIsFlat checks that a backfill's memory does not grow with
// the store: during a backfill of 200,000 orders (WOOEVENTS_SOAK=1:
// 1,000,000), the live heap of the last quarter is no more than 4 MiB above
// that of the second quarter (medians of samples taken every 20 batches,
// so that the pages in flight, which vary from one moment to the next,
// average out). Keeping anything per object (an id, a body) for the rest
// of the backfill would grow it by 100,000 objects between the two.
func TestBackfillHeapIsFlat(t *testing.T) {
	n := 200_000
	if v := os.Getenv("WCPOLL_HEAPN"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	if soak() {
		n = 1_000_000
	}
	samples, rate := backfillLiveHeap(t, n)
	early, late := medianGrowth(samples, 0.25, 0.5), medianGrowth(samples, 0.75, 1)
	t.Logf("%d orders at %.0f records/s: live heap above the start %.2f MiB in the second quarter, %.2f MiB in the last (%d samples)",
		n, rate, float64(early)/(1<<20), float64(late)/(1<<20), len(samples))
	assert.LessOrEqual(t, late-early, int64(4<<20), "the live heap grows with the backfill")
	assert.Less(t, late, int64(48<<20), "in-flight buffers are bounded by max_concurrency, not by the store")
}
