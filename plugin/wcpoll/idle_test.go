package wcpoll

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

type idleRecorder struct {
	mu    sync.Mutex
	calls []time.Time
}

func (r *idleRecorder) Idle(next time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, next)
}

func (r *idleRecorder) got() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.calls...)
}

// The input tells its IdleNotifier that it has nothing to do only once
// every resource has polled and every event it emitted is acknowledged,
// with the next poll's time; a held-back second waiting for its recheck
// and a failing poll are work.
func TestIdleNotified(t *testing.T) {
	ctx := context.Background()
	sim := newSim(t, wcsim.Options{})
	id, err := sim.Create(wcsim.Orders, createFields(wcsim.Orders, 1))
	require.NoError(t, err)
	sim.Advance(5 * time.Second)
	h := newHarness(t, sim, "resources: [{name: orders}, {name: products}]\ninterval: 10s\nstart_from: beginning\n")
	idle := &idleRecorder{}
	SetIdleNotifier(h.mgr, idle)
	require.NoError(t, h.in.Close(ctx))
	h.start() // built again: the input looks for the notifier when it connects

	// An event not acknowledged yet: not idle.
	h.hold = true
	require.Equal(t, typesOf("order", "created", id), types(h.poll()))
	assert.Empty(t, idle.got(), "idle while an event is in flight")
	for _, ack := range h.held {
		require.NoError(t, ack(ctx, nil))
	}
	h.held, h.hold = nil, false
	require.Equal(t, []time.Time{sim.Now().Add(10 * time.Second)}, idle.got(),
		"idle once the event is acknowledged, until the next poll")

	// An idle poll: told again (once per resource whose poll ends), the
	// last time with the new next poll.
	sim.Advance(time.Second)
	require.Empty(t, h.poll())
	calls := idle.got()
	require.Greater(t, len(calls), 1)
	assert.Equal(t, sim.Now().Add(10*time.Second), calls[len(calls)-1])

	// A change in the store's current second is held back for a recheck
	// 2 s later: work, not idle.
	id2, err := sim.Create(wcsim.Orders, createFields(wcsim.Orders, 2))
	require.NoError(t, err)
	n := len(idle.got())
	require.Empty(t, h.poll(), "held back")
	require.Len(t, idle.got(), n, "not idle while a held-back second waits for its recheck")
	sim.Advance(2 * time.Second)
	require.Equal(t, 1, h.clk.Fire(), "the recheck is due")
	evs, errs := h.readUntil(func(ends []*chunk) bool { return len(ends) > 0 })
	require.Empty(t, errs)
	require.Equal(t, typesOf("order", "created", id2), types(evs))
	require.Len(t, idle.got(), n+1, "idle after the recheck emitted the order")

	// A failing poll is work: not idle until a poll succeeds.
	n = len(idle.got())
	sim.InjectFault(wcsim.Fault{PathPrefix: "/wp-json/wc/v3/products", Count: 1, Status: http.StatusBadRequest})
	_, errs = h.pollErrs()
	require.Len(t, errs, 1)
	require.Len(t, idle.got(), n, "a failed poll is not idle")
}

// Without a notifier the input keeps no idle bookkeeping.
func TestNoIdleWatchWithoutNotifier(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	h := newHarness(t, sim, "resources: [{name: orders}]\n")
	require.Nil(t, h.in.idle)
}
