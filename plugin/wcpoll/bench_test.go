package wcpoll

import (
	"context"
	"testing"
	"time"

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
	h := newBenchHarness(b, sim)
	b.ResetTimer()
	ctx := context.Background()
	n := 0
	h.in.beginPoll()
	for {
		bt, err := h.in.step(ctx)
		require.NoError(b, err)
		if bt == nil {
			break
		}
		msgs, ack, err := h.in.emit(ctx, bt)
		require.NoError(b, err)
		n += len(msgs)
		require.NoError(b, ack(ctx, nil))
	}
	require.Equal(b, b.N, n)
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
