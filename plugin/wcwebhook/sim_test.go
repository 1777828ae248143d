package wcwebhook

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/wcevent"
	"github.com/wooevents/wooevents/tests/wcsim"
)

func startSim(t *testing.T) *wcsim.Store {
	t.Helper()
	s := wcsim.New(wcsim.Options{})
	require.NoError(t, s.Start())
	t.Cleanup(s.Close)
	return s
}

// registerFields are input fields with registration against sim.
func simRegisterFields(sim *wcsim.Store, extra string) string {
	return fmt.Sprintf(`  secret: %s
  store_url: %s
  register:
    store_url: %s
    consumer_key: %s
    consumer_secret: %s
    delivery_url: "{{BASE}}%s"
    max_retry_elapsed: 2s
%s`, testSecret, sim.URL(), sim.URL(), wcsim.DefaultConsumerKey, wcsim.DefaultConsumerSecret, DefaultPath, extra)
}

// ourHooks are the sim's webhooks delivering to url, by topic.
func ourHooks(sim *wcsim.Store, url string) map[string][]wcsim.Webhook {
	out := map[string][]wcsim.Webhook{}
	for _, h := range sim.Webhooks() {
		if h.DeliveryURL == url {
			out[h.Topic] = append(out[h.Topic], h)
		}
	}
	return out
}

// simTopics are the topics registered by default; the simulator, like
// WooCommerce, accepts customer.restored although no hook ever fires it.
var simTopics = DefaultRegisterTopics

// allRegistered reports whether every default topic has exactly one active
// webhook to url with the test secret.
func allRegistered(sim *wcsim.Store, url string) bool { return registeredWith(sim, url, testSecret) }

// registeredWith reports whether every default topic has exactly one active
// webhook to url with secret.
func registeredWith(sim *wcsim.Store, url, secret string) bool {
	hooks := ourHooks(sim, url)
	if len(hooks) != len(simTopics) {
		return false
	}
	for _, topic := range simTopics {
		hs := hooks[topic]
		if len(hs) != 1 || hs[0].Status != wcsim.WebhookActive || hs[0].Secret != secret {
			return false
		}
	}
	return true
}

// drain collects the messages emitted so far (deliveries are synchronous in
// the simulator, and answered only after the ack, so they are all there).
func drain(run *streamRun) []*service.Message {
	var out []*service.Message
	for {
		select {
		case m := <-run.Msgs:
			out = append(out, m)
		default:
			return out
		}
	}
}

// TestSimulatorEndToEnd: the simulator delivers created, updated, deleted
// and restored for orders, products and coupons (customers: created,
// updated, deleted — WooCommerce has no customer.restored) to webhooks the
// input registered itself; each arrives once as a normalized event with the
// right fields and metadata. Deletes are confirmed over REST: trashing a
// product yields one product.deleted, and not the coupon.deleted twin.
func TestSimulatorEndToEnd(t *testing.T) {
	t.Run("ack delivered", func(t *testing.T) { simEndToEnd(t, "") })
	t.Run("ack spooled", func(t *testing.T) {
		simEndToEnd(t, fmt.Sprintf("  ack: spooled\n  spool_dir: %s\n", t.TempDir()))
	})
}

func simEndToEnd(t *testing.T, ackFields string) {
	sim := startSim(t)
	run := startStream(t, simRegisterFields(sim, "")+ackFields, nil, "")
	collect := func() []*service.Message { return drain(run) }
	if ackFields != "" {
		// Spooled: the 200 comes before the pipeline sees the delivery. The
		// spool feeds in order, so once a sentinel posted now comes out,
		// everything the simulator delivered before it was handled.
		sentinel := 990000
		collect = func() []*service.Message {
			sentinel++
			body := fmt.Appendf(nil, `{"id":%d}`, sentinel)
			status, _, _ := post(t, signedRequest(t, run.URL, testSecret, "order.updated", "", body))
			require.Equal(t, 200, status)
			var out []*service.Message
			for {
				m := run.next(t)
				if id, _ := m.MetaGet(wcevent.MetaObjectID); id == strconv.Itoa(sentinel) {
					return out
				}
				out = append(out, m)
			}
		}
	}
	require.Eventually(t, func() bool { return allRegistered(sim, run.URL) }, 20*time.Second, 20*time.Millisecond)
	hookIDs := map[string]string{}
	for topic, hs := range ourHooks(sim, run.URL) {
		hookIDs[topic] = strconv.FormatInt(hs[0].ID, 10)
	}
	for _, d := range sim.Flush() {
		require.True(t, d.Ping && d.Success, "only successful pings so far: %+v", d)
	}

	store := wcevent.NormalizeStore(sim.URL())
	check := func(t *testing.T, resource string, id int64, action string, msgs []*service.Message) {
		t.Helper()
		singular := wcevent.Singular(resource)
		topic := singular + "." + action
		var found []*service.Message
		for _, m := range msgs {
			typ, _ := m.MetaGet(wcevent.MetaType)
			oid, _ := m.MetaGet(wcevent.MetaObjectID)
			require.Equal(t, strconv.FormatInt(id, 10), oid, "event for another object: %s", typ)
			require.True(t, strings.HasPrefix(typ, singular+"."), "event of another resource: %s (spurious twin?)", typ)
			if typ == topic {
				found = append(found, m)
			}
		}
		require.Len(t, found, 1, "one %s for %s %d", topic, resource, id)
		m := found[0]
		raw, _ := m.AsBytes()
		ev := gjson.ParseBytes(raw)
		assert.Equal(t, singular, ev.Get("resource").Str)
		assert.Equal(t, action, ev.Get("action").Str)
		assert.Equal(t, strconv.FormatInt(id, 10), ev.Get("object_id").Str)
		assert.Equal(t, store, ev.Get("store").Str)
		assert.Equal(t, "webhook", ev.Get("source").Str)
		meta := func(k string) string { v, _ := m.MetaGet(k); return v }
		assert.Equal(t, topic, meta(MetaTopic))
		assert.Equal(t, hookIDs[topic], meta(MetaWebhookID))
		assert.Len(t, meta(MetaDeliveryID), 32)
		assert.Equal(t, resource, meta(wcevent.MetaResourceKey))
		assert.Equal(t, ev.Get("id").Str, meta(wcevent.MetaEventID))

		obj, ok := sim.Get(resource, id)
		if action == wcevent.ActionDeleted && resource == wcsim.Customers {
			require.False(t, ok)
			assert.Equal(t, fmt.Sprintf(`{"id":%d}`, id), ev.Get("data").Raw)
			return
		}
		require.True(t, ok)
		mod := gjson.GetBytes(obj, "date_modified_gmt").Str
		// Deletes carry {"id":N}; the REST check supplies the trashed
		// object's modification time, so the id matches the poll input's.
		assert.Equal(t, mod+"Z", ev.Get("occurred_at").Str, "occurred_at of %s", topic)
		modT, err := wcevent.ParseWooTime(mod)
		require.NoError(t, err)
		want := wcevent.Event{Store: store, Resource: singular, ObjectID: strconv.FormatInt(id, 10), Action: action, Modified: modT}
		assert.Equal(t, want.ID(), ev.Get("id").Str)
		if action == wcevent.ActionDeleted {
			assert.Equal(t, fmt.Sprintf(`{"id":%d}`, id), ev.Get("data").Raw)
		} else {
			assert.NotEqual(t, "trash", gjson.GetBytes(obj, "status").Str)
			assert.Equal(t, id, ev.Get("data.id").Int())
		}
	}

	create := map[string]map[string]any{
		wcsim.Orders:    {"status": "processing"},
		wcsim.Products:  {"name": "Widget", "regular_price": "9.99"},
		wcsim.Coupons:   {"code": "save10", "amount": "10"},
		wcsim.Customers: {"email": "jane@example.com", "first_name": "Jane"},
	}
	update := map[string]map[string]any{
		wcsim.Orders:    {"status": "completed"},
		wcsim.Products:  {"name": "Widget 2"},
		wcsim.Coupons:   {"amount": "15"},
		wcsim.Customers: {"first_name": "Janet"},
	}
	for _, resource := range []string{wcsim.Orders, wcsim.Products, wcsim.Coupons, wcsim.Customers} {
		t.Run(resource, func(t *testing.T) {
			id, err := sim.Create(resource, create[resource])
			require.NoError(t, err)
			msgs := collect()
			// A create may also fire .updated (WooCommerce does for orders).
			check(t, resource, id, wcevent.ActionCreated, msgs)

			sim.Advance(2 * time.Second)
			require.NoError(t, sim.Update(resource, id, update[resource]))
			check(t, resource, id, wcevent.ActionUpdated, collect())

			sim.Advance(2 * time.Second)
			if resource == wcsim.Customers {
				require.NoError(t, sim.ForceDelete(resource, id))
				check(t, resource, id, wcevent.ActionDeleted, collect())
				return
			}
			require.NoError(t, sim.Trash(resource, id))
			check(t, resource, id, wcevent.ActionDeleted, collect())

			sim.Advance(2 * time.Second)
			require.NoError(t, sim.Restore(resource, id))
			check(t, resource, id, wcevent.ActionRestored, collect())
		})
	}
	for _, d := range sim.Flush() {
		assert.True(t, d.Success, "delivery %s %d answered %d", d.Topic, d.ObjectID, d.StatusCode)
	}
	// The product and coupon trashes each fired the other type's twin too.
	assert.Equal(t, int64(2), run.Metrics.Get(MetricDeleteChecks, "result="+DeleteSpurious))
	assert.Equal(t, int64(3), run.Metrics.Get(MetricDeleteChecks, "result="+DeleteConfirmed))
}

// TestDeletesWithoutCredentials: without REST credentials both *.deleted
// deliveries of a product trash are emitted as received.
func TestDeletesWithoutCredentials(t *testing.T) {
	sim := startSim(t)
	run := startStream(t, "  secret: "+testSecret+"\n", nil, "")
	for _, topic := range []string{"product.deleted", "coupon.deleted"} {
		_, err := sim.AddWebhook(topic, run.URL, testSecret)
		require.NoError(t, err)
	}
	id, err := sim.Create(wcsim.Products, map[string]any{"name": "Widget"})
	require.NoError(t, err)
	require.NoError(t, sim.Trash(wcsim.Products, id))
	var types []string
	for _, m := range drain(run) {
		typ, _ := m.MetaGet(wcevent.MetaType)
		types = append(types, typ)
		raw, _ := m.AsBytes()
		assert.Empty(t, gjson.GetBytes(raw, "data.date_modified_gmt").Str)
	}
	sort.Strings(types)
	assert.Equal(t, []string{"coupon.deleted", "product.deleted"}, types)
}

// TestRegistration: missing webhooks are created with the secret (found
// past the first page of webhooks), a misdirected one of ours is pointed
// back, disabled ones are re-activated at start and on the next check, a
// second start creates no duplicates and adopts a webhook to its URL giving
// it its secret, and delete_on_close removes the ones it created only.
func TestRegistration(t *testing.T) {
	sim := startSim(t)
	// 105 webhooks of someone else: ours land on the second page.
	for i := range 105 {
		_, err := sim.AddWebhook("order.updated", fmt.Sprintf("http://127.0.0.1:1/other/%d", i), "their-secret")
		require.NoError(t, err)
	}
	others := len(sim.Webhooks())

	fields := simRegisterFields(sim, "    check_interval: 100ms\n")
	run := startStream(t, fields, nil, "")
	require.Eventually(t, func() bool { return allRegistered(sim, run.URL) }, 20*time.Second, 20*time.Millisecond)
	require.Len(t, sim.Webhooks(), others+len(simTopics))
	for _, h := range sim.Webhooks()[:others] {
		require.Equal(t, "their-secret", h.Secret, "others' webhooks untouched")
		require.True(t, strings.HasPrefix(h.DeliveryURL, "http://127.0.0.1:1/other/"))
	}
	for _, hs := range ourHooks(sim, run.URL) {
		assert.Equal(t, "wooevents "+hs[0].Topic, hs[0].Name)
	}

	// WooCommerce disables a hook after failed deliveries: the next check
	// re-activates it.
	target := ourHooks(sim, run.URL)["order.updated"][0]
	require.NoError(t, sim.SetWebhookStatus(target.ID, wcsim.WebhookDisabled))
	require.Eventually(t, func() bool {
		h, ok := sim.Webhook(target.ID)
		return ok && h.Status == wcsim.WebhookActive
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, int64(1), run.Metrics.Get(MetricReenabled))
	paused := ourHooks(sim, run.URL)["coupon.created"][0]
	require.NoError(t, sim.SetWebhookStatus(paused.ID, wcsim.WebhookPaused))
	require.Eventually(t, func() bool {
		h, ok := sim.Webhook(paused.ID)
		return ok && h.Status == wcsim.WebhookActive
	}, 10*time.Second, 10*time.Millisecond)
	run.Stop(t)

	// Between runs: one of ours is disabled, one is deleted, one points
	// elsewhere.
	hooks := ourHooks(sim, run.URL)
	require.NoError(t, sim.SetWebhookStatus(hooks["product.updated"][0].ID, wcsim.WebhookDisabled))
	require.NoError(t, sim.DeleteWebhook(hooks["customer.created"][0].ID))
	misdirected := hooks["order.created"][0]
	require.NoError(t, wcsimRedirect(sim, misdirected.ID))
	// Someone else made the order.deleted hook to our URL, with another
	// secret: it is adopted and given ours.
	require.NoError(t, sim.DeleteWebhook(hooks["order.deleted"][0].ID))
	foreign, err := sim.AddWebhook("order.deleted", run.URL, "someone-elses-secret")
	require.NoError(t, err)

	// Second start on the same address: no duplicates, everything healed.
	run2 := startStreamAt(t, run.Base, fields)
	require.Eventually(t, func() bool {
		return run2.Metrics.Get(MetricChecks) >= 3 && allRegistered(sim, run2.URL)
	}, 20*time.Second, 20*time.Millisecond)
	require.Len(t, sim.Webhooks(), others+len(simTopics), "no duplicates after a restart")
	h, ok := sim.Webhook(misdirected.ID)
	require.True(t, ok)
	assert.Equal(t, run2.URL, h.DeliveryURL, "the misdirected webhook is pointed back, not replaced")
	h, ok = sim.Webhook(foreign)
	require.True(t, ok)
	assert.Equal(t, testSecret, h.Secret, "an adopted webhook gets our secret")
	assert.Equal(t, int64(1), run2.Metrics.Get(MetricReenabled))
	run2.Stop(t)

	// delete_on_close removes ours, nobody else's.
	run3 := startStreamAt(t, run.Base, simRegisterFields(sim, "    delete_on_close: true\n"))
	require.Eventually(t, func() bool { return run3.Metrics.Get(MetricChecks) >= 1 }, 20*time.Second, 20*time.Millisecond)
	run3.Stop(t)
	assert.Len(t, sim.Webhooks(), others+1)
	left := ourHooks(sim, run.URL)
	require.Len(t, left, 1, "only the adopted webhook it did not create is left")
	assert.Equal(t, foreign, left["order.deleted"][0].ID)
}

// wcsimRedirect points a webhook elsewhere through the store's REST API
// (what a shop admin editing it would do).
func wcsimRedirect(sim *wcsim.Store, id int64) error {
	c, err := newSimClient(sim)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.UpdateWebhook(tctx(), id, webhookURLUpdate("http://127.0.0.1:1/moved"))
	return err
}
