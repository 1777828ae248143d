package ceserve

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

// Both seed bodies through the API against the simulator: the answer's
// shape, a polled change and a webhook delivery reaching a callback that
// verifies Elements-Webhook-Signature itself, and the status.
func TestCreateAndDeliver(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	ts := newTestServer(t, "", nil)

	poll := ts.create(t, pollingBody(t, sim, cb.URL()))
	assert.Positive(t, poll.ID)
	assert.NotEmpty(t, poll.Token)
	assert.Equal(t, "my-woocommerce-instance", poll.Name)
	assert.Equal(t, []string{"my-tag"}, poll.Tags)
	assert.Equal(t, "woocommercerest", poll.Element.Key)
	assert.NotEmpty(t, poll.CreatedDate)
	for _, k := range []string{"oauth.api.key", "oauth.api.secret", "event.notification.signature.key"} {
		assert.JSONEq(t, `"********"`, string(poll.Configuration[k]), k)
	}
	assert.JSONEq(t, `"0.02"`, string(poll.Configuration["event.poller.refresh_interval"]))

	hook := ts.create(t, webhookBody(t, sim, cb.URL()))
	assert.Greater(t, hook.ID, poll.ID)
	hooks := sim.Webhooks()
	require.NotEmpty(t, hooks, "the webhook instance registered its hooks before answering")
	for _, h := range hooks {
		assert.Equal(t, ts.base+EventsPath+strconv.FormatInt(hook.ID, 10), h.DeliveryURL)
		assert.Equal(t, "active", h.Status)
	}

	order, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	oid := strconv.FormatInt(order, 10)
	require.Eventually(t, func() bool { return cb.keys()["orders/"+oid+"/CREATED"] >= 2 }, waitFor, tick,
		"both instances notify the order: got %v, rejected %v", cb.keys(), cb.rejections())
	assert.Empty(t, cb.rejections())

	// The counts follow the callback's answer (the output counts a
	// delivery once it has the response) and the accepted-deliveries
	// counter (published every 0.1 s).
	st := ts.waitStatus(t, poll.ID, "the delivery counted", func(st Status) bool { return st.Events.Delivered >= 1 })
	assert.Equal(t, StateRunning, st.State, "%+v", st)
	assert.NotNil(t, st.LastPoll)
	hst := ts.waitStatus(t, hook.ID, "the delivery received counted", func(st Status) bool {
		return st.Webhooks != nil && st.Webhooks.Received >= 1
	})
	assert.True(t, hst.Webhooks.Registered)

	code, _ := ts.call(t, http.MethodGet, InstancesPath, accountKey, nil)
	assert.Equal(t, http.StatusOK, code)
}
