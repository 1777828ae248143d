package ceserve

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/wooevents/wooevents/tests/wcsim"
)

func (ts *testServer) waitStatus(t *testing.T, id int64, what string, cond func(Status) bool) Status {
	t.Helper()
	var st Status
	require.Eventually(t, func() bool {
		code, b := ts.call(t, http.MethodGet, InstancesPath+"/"+itoa(id), accountKey, nil)
		if code != http.StatusOK {
			return false
		}
		var in instanceJSON
		if json.Unmarshal(b, &in) != nil {
			return false
		}
		st = in.Status
		return cond(st)
	}, waitFor, tick, "instance %d: %s; last status %+v", id, what, st)
	return st
}

func polled(st Status) bool { return st.LastSuccessfulPoll != nil }

// A PATCH of the refresh interval takes effect: an order changed while the
// instance polled every 5 minutes (its pipeline stopped until then) arrives
// once the PATCH makes it poll every 1.2 s, from the checkpoint (once: a later restart does not send it
// again). A bad PATCH changes nothing; secrets sent back redacted are kept.
func TestPatchRefreshInterval(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	// IdleStop makes the status say when the instance has nothing left
	// to do before its next poll: a second held back on the first poll
	// is fetched again after `overlap`, so an order created before that
	// recheck would arrive without the PATCH.
	ts := newTestServer(t, "", func(o *Options) { o.IdleStop = time.Second })
	body := seedBody(t, "polling-instance.json", map[string]any{
		"store.url": sim.URL(), "oauth.api.key": wcsim.DefaultReadOnlyConsumerKey,
		"oauth.api.secret": wcsim.DefaultReadOnlyConsumerSecret, "event.notification.callback.url": cb.URL(),
	}, nil) // the seed's 5 minutes
	in := ts.create(t, body)
	path := InstancesPath + "/" + itoa(in.ID)
	ts.waitStatus(t, in.ID, "idle after the first poll", func(st Status) bool { return polled(st) && st.IdleUntil != nil })

	a, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	keyA := "orders/" + strconv.FormatInt(a, 10) + "/CREATED"

	// Refused PATCHes leave the instance as it was.
	for _, bad := range []struct{ body, want string }{
		{`{"configuration":{"event.poller.refresh_interval":0}}`, "configuration.event.poller.refresh_interval"},
		{`{"configuration":{"event.poller.refresh_interval":"soon"}}`, "configuration.event.poller.refresh_interval"},
		{`{"configuration":{"store.url":null}}`, "configuration.store.url: required URL"},
		{`{"tags":"x"}`, "tags: must be an array of strings"},
		{`{"configuration":["x"]}`, "configuration: must be an object"},
		{`[]`, "not a JSON object"},
	} {
		code, b := ts.call(t, http.MethodPatch, path, accountKey, []byte(bad.body))
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", bad.body, b)
		assert.Contains(t, decodeError(t, b).Message, bad.want)
	}
	cur := ts.instance(t, in.ID)
	assert.JSONEq(t, `"5"`, string(cur.Configuration["event.poller.refresh_interval"]))
	assert.Equal(t, in.UpdatedDate, cur.UpdatedDate)
	require.Never(t, func() bool { return cb.has(keyA) }, 1500*time.Millisecond, tick,
		"polling every 5 minutes, the order is not found within 1.5 s (the PATCHed 1.2 s would)")

	code, b := ts.call(t, http.MethodPatch, path, accountKey, []byte(`{"configuration":{"event.poller.refresh_interval":"0.02"}}`))
	require.Equal(t, http.StatusOK, code, "%s", b)
	var patched instanceJSON
	require.NoError(t, json.Unmarshal(b, &patched))
	assert.Equal(t, in.ID, patched.ID)
	assert.Equal(t, in.Token, patched.Token)
	assert.JSONEq(t, `"0.02"`, string(patched.Configuration["event.poller.refresh_interval"]))
	require.Eventually(t, func() bool { return cb.has(keyA) }, waitFor, tick, "the order changed before the PATCH arrives: %v %v", cb.keys(), cb.rejections())

	// Send back what GET shows (secrets redacted) with a new name: the
	// secrets are kept (the callback still verifies the signature).
	var full map[string]any
	_, b = ts.call(t, http.MethodGet, path, accountKey, nil)
	require.NoError(t, json.Unmarshal(b, &full))
	full["name"] = "renamed"
	code, b = ts.call(t, http.MethodPatch, path, accountKey, mustJSON(full))
	require.Equal(t, http.StatusOK, code, "%s", b)
	bID, err := sim.Create(wcsim.Orders, map[string]any{"status": "on-hold"})
	require.NoError(t, err)
	keyB := "orders/" + strconv.FormatInt(bID, 10) + "/CREATED"
	require.Eventually(t, func() bool { return cb.has(keyB) }, waitFor, tick, "%v %v", cb.keys(), cb.rejections())
	assert.Equal(t, 1, cb.keys()[keyA], "the restart resumed from the checkpoint: the first order is not sent again")
	assert.Empty(t, cb.rejections(), "every notification carried a valid signature")
	cb.mu.Lock()
	last := cb.got[len(cb.got)-1]
	cb.mu.Unlock()
	assert.Equal(t, "renamed", last.Message.InstanceName)
}

// DELETE stops the instance and removes its webhooks from the store; the
// receiver is gone.
func TestDeleteRemovesHooks(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	ts := newTestServer(t, "", nil)
	in := ts.create(t, webhookBody(t, sim, cb.URL()))
	// A webhook of someone else on the same store stays.
	other, err := sim.AddWebhook("order.created", "https://elsewhere.example/hook", "other-secret")
	require.NoError(t, err)
	var ours []int64
	for _, h := range sim.Webhooks() {
		if h.ID != other {
			ours = append(ours, h.ID)
		}
	}
	require.Len(t, ours, 16, "order, product, customer, coupon × created, updated, deleted, restored")

	code, b := ts.call(t, http.MethodDelete, InstancesPath+"/"+itoa(in.ID), accountKey, nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var del deleteJSON
	require.NoError(t, json.Unmarshal(b, &del))
	assert.True(t, del.Deleted)
	require.NotNil(t, del.Webhooks)
	assert.ElementsMatch(t, ours, del.Webhooks.Removed)
	assert.Empty(t, del.Webhooks.NotRemoved)
	left := sim.Webhooks()
	require.Len(t, left, 1)
	assert.Equal(t, other, left[0].ID)

	code, _ = ts.call(t, http.MethodGet, InstancesPath+"/"+itoa(in.ID), accountKey, nil)
	assert.Equal(t, http.StatusNotFound, code)
	res, err := http.Post(ts.base+EventsPath+itoa(in.ID), "application/json", strings.NewReader(`{"id":1}`))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	ts.nothingCreated(t)
}

// When the store refuses to remove the webhooks, DELETE still deletes the
// instance and says what is left in the store.
func TestDeleteReportsHooksLeft(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	ts := newTestServer(t, "", nil)
	in := ts.create(t, webhookBody(t, sim, cb.URL()))
	sim.InjectFault(wcsim.Fault{PathPrefix: "/wp-json/wc/v3/webhooks", Status: http.StatusForbidden})
	t.Cleanup(sim.ClearFaults)

	code, b := ts.call(t, http.MethodDelete, InstancesPath+"/"+itoa(in.ID), accountKey, nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var del deleteJSON
	require.NoError(t, json.Unmarshal(b, &del))
	assert.Contains(t, del.Message, "not every webhook could be removed")
	require.NotNil(t, del.Webhooks)
	assert.Contains(t, del.Webhooks.Error, "403")
	assert.Len(t, sim.Webhooks(), 16, "the store kept them")
	ts.nothingCreated(t)
}

// One instance's store is down, another's callback is down: a third keeps
// delivering, and each status says what is wrong.
func TestIsolation(t *testing.T) {
	t.Setenv("WOOEVENTS_CALLBACK_MAX_ATTEMPTS", "2")
	t.Setenv("WOOEVENTS_CALLBACK_INITIAL_BACKOFF", "20ms")
	t.Setenv("WOOEVENTS_CALLBACK_MAX_ELAPSED", "1s")
	sim := startSim(t)
	downStore := wcsim.New(wcsim.Options{})
	require.NoError(t, downStore.Start())
	cbOK := newCallback(t, fixtureSigKey)
	cbDown := newCallback(t, fixtureSigKey)
	cbDown.setDown(true)
	ts := newTestServer(t, "", nil)

	healthy := ts.create(t, pollingBody(t, sim, cbOK.URL()))
	deadCallback := ts.create(t, pollingBody(t, sim, cbDown.URL()))
	deadStore := ts.create(t, pollingBody(t, downStore, cbOK.URL()))
	ts.waitStatus(t, deadStore.ID, "first poll", polled)
	downStore.Close()

	o, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	key := "orders/" + strconv.FormatInt(o, 10) + "/CREATED"
	require.Eventually(t, func() bool { return cbOK.has(key) }, waitFor, tick, "the healthy instance delivers: %v", cbOK.keys())

	st := ts.waitStatus(t, deadStore.ID, "failing on its store", func(s Status) bool { return s.State == StateFailing })
	assert.Contains(t, st.Reason, "store: the store did not answer")
	assert.False(t, st.Parts["store"].OK)

	st = ts.waitStatus(t, deadCallback.ID, "dead-lettering", func(s Status) bool { return s.Events.DeadLettered >= 1 })
	assert.Equal(t, StateFailing, st.State)
	assert.Contains(t, st.Reason, "callback: notifications are dead-lettered")
	assert.Contains(t, st.Reason, "503")
	assert.Zero(t, st.Events.Delivered)
	files, _ := filepath.Glob(filepath.Join(ts.opts.DataDir, instancesDir, itoa(deadCallback.ID), deadLetterDir, "*.jsonl"))
	require.Len(t, files, 1)
	dl, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.Contains(t, string(dl), `"woocommerce_object_id":"`+strconv.FormatInt(o, 10)+`"`)

	st = ts.waitStatus(t, healthy.ID, "running", func(s Status) bool { return s.State == StateRunning && s.Events.Delivered >= 1 })
	assert.True(t, st.Parts["callback"].OK)

	// The callback comes back: the next change is delivered and the status
	// recovers.
	cbDown.setDown(false)
	require.NoError(t, sim.Update(wcsim.Orders, o, map[string]any{"status": "completed"}))
	ts.waitStatus(t, deadCallback.ID, "recovered", func(s Status) bool { return s.State == StateRunning && s.Events.Delivered >= 1 })
}

// Instances survive a restart of the server: same ids and tokens, and a
// change made while it was down arrives; webhooks follow the new address.
func TestRestartResumes(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	dir := t.TempDir()
	ts := newTestServer(t, dir, nil)
	poll := ts.create(t, pollingBody(t, sim, cb.URL()))
	hook := ts.create(t, webhookBody(t, sim, cb.URL()))
	a, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	keyA := "orders/" + strconv.FormatInt(a, 10) + "/CREATED"
	require.Eventually(t, func() bool { return cb.keys()[keyA] == 2 }, waitFor, tick, "%v", cb.keys())
	require.NoError(t, ts.Close(t.Context()))

	// While it is down: the webhook delivery fails (WooCommerce does not
	// redeliver), the poller will find the change.
	b, err := sim.Create(wcsim.Orders, map[string]any{"status": "on-hold"})
	require.NoError(t, err)
	keyB := "orders/" + strconv.FormatInt(b, 10) + "/CREATED"

	ts2 := newTestServer(t, dir, nil)
	got := ts2.list()
	require.Len(t, got, 2)
	assert.Equal(t, poll.Token, ts2.instance(t, poll.ID).Token)
	assert.Equal(t, hook.Token, ts2.instance(t, hook.ID).Token)
	require.Eventually(t, func() bool { return cb.has(keyB) }, waitFor, tick, "the change made while down arrives: %v", cb.keys())

	// The webhooks now point at the new address and deliver there.
	ts2.waitStatus(t, hook.ID, "registered again", func(s Status) bool { return s.Webhooks != nil && s.Webhooks.Registered })
	for _, h := range sim.Webhooks() {
		assert.Equal(t, ts2.base+EventsPath+itoa(hook.ID), h.DeliveryURL)
	}
	c, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	keyC := "orders/" + strconv.FormatInt(c, 10) + "/CREATED"
	require.Eventually(t, func() bool { return cb.keys()[keyC] == 2 }, waitFor, tick, "both instances deliver after the restart: %v", cb.keys())
	assert.Equal(t, 2, cb.keys()[keyA], "nothing delivered before the restart is sent again")
	assert.Empty(t, cb.rejections())
}

// With Options.IdleStop, a polling instance with nothing to do stops its
// pipeline until its next poll (its status says until when, its state
// stays running) and builds it again for that poll: an order created
// while it is stopped reaches the callback once, from the checkpoint, and
// the instance goes idle again after delivering it.
func TestIdleInstanceStopsBetweenPolls(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	ts := newTestServer(t, "", func(o *Options) { o.IdleStop = time.Second })
	body := editBody(t, pollingBody(t, sim, cb.URL()), map[string]any{"event.poller.refresh_interval": "0.05"}, nil) // 3 s
	in := ts.create(t, body)

	st := ts.waitStatus(t, in.ID, "idle after its first poll", func(st Status) bool { return polled(st) && st.IdleUntil != nil })
	assert.Equal(t, StateRunning, st.State)
	first := *st.IdleUntil
	assert.WithinDuration(t, time.Now().Add(3*time.Second), first, 3*time.Second)
	in1 := ts.get(in.ID)
	require.NotNil(t, in1)
	in1.mu.Lock()
	assert.NotNil(t, in1.cur, "the instance is still started (its pipeline sleeps)")
	in1.mu.Unlock()
	// The stream is stopped: its poll input closed the state file, which
	// bbolt locks while it is open.
	db, err := bolt.Open(filepath.Join(in1.dir(), "instance-poll.db"), 0o600, &bolt.Options{Timeout: 200 * time.Millisecond})
	require.NoError(t, err, "the idle pipeline's poll state file is closed")
	require.NoError(t, db.Close())
	polls := sim.Requests(http.MethodGet, "/wp-json/wc/v3/orders")
	require.Never(t, func() bool { return sim.Requests(http.MethodGet, "/wp-json/wc/v3/orders") > polls },
		time.Until(first)-300*time.Millisecond, tick, "no poll while idle")

	oid, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	key := "orders/" + strconv.FormatInt(oid, 10) + "/CREATED"
	require.Eventually(t, func() bool { return cb.has(key) }, waitFor, tick, "the order arrives through the rebuilt pipeline")
	st = ts.waitStatus(t, in.ID, "idle again after delivering", func(st Status) bool {
		return st.IdleUntil != nil && st.IdleUntil.After(first) && st.Events.Delivered >= 1
	})
	assert.Equal(t, StateRunning, st.State)
	assert.Greater(t, sim.Requests(http.MethodGet, "/wp-json/wc/v3/orders"), polls)
	assert.Equal(t, 1, cb.keys()[key], "delivered once")
}

// A PATCH that moves an instance to another store must send that store's
// keys: the stored ones are never sent to the new URL (anyone holding the
// instance's Element token could otherwise collect them). An instance
// listed from a stored body that no longer parses gets its idle channel
// too, so that patching it back to polling works.
func TestPatchStoreURLNeedsNewKeys(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	ts := newTestServer(t, "", nil)
	in := ts.create(t, pollingBody(t, sim, cb.URL()))
	path := InstancesPath + "/" + itoa(in.ID)

	var mu sync.Mutex
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+" "+r.URL.RawQuery)
		mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(other.Close)
	for _, conf := range []string{
		`{"store.url":"` + other.URL + `"}`,
		`{"store.url":"` + other.URL + `","oauth.api.key":"********","oauth.api.secret":"********"}`,
		`{"store.url":"` + other.URL + `","oauth.api.key":"ck_new"}`,
	} {
		code, b := ts.call(t, http.MethodPatch, path, "Element "+in.Token, []byte(`{"configuration":`+conf+`}`))
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", conf, b)
		assert.Contains(t, decodeError(t, b).Message, "must send the new store's oauth.api.key and oauth.api.secret")
	}
	mu.Lock()
	assert.Empty(t, seen, "the other store was never called with the stored keys")
	mu.Unlock()
	assert.Equal(t, sim.URL(), strings.Trim(string(ts.instance(t, in.ID).Configuration["store.url"]), `"`))

	// A top-level key set to null is removed, as a configuration key is: a
	// stored body with a key a later version refuses can be repaired.
	merged, aerr := mergePatch([]byte(`{"name":"x","bogus":1,"configuration":{"a":1}}`), []byte(`{"bogus":null}`))
	require.Nil(t, aerr)
	assert.JSONEq(t, `{"name":"x","configuration":{"a":1}}`, string(merged))

	assert.NotNil(t, newInstance(ts.Server, &Record{ID: 99}, nil).idle, "an instance whose body does not parse")
}

// A PATCH to webhook mode with keys that may read but not write webhooks is
// refused as a create is, and the instance is left as it was (polling).
func TestPatchToWebhookWithReadOnlyKeyRefused(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	ts := newTestServer(t, "", nil)
	in := ts.create(t, pollingBody(t, sim, cb.URL())) // read-only keys
	ts.waitStatus(t, in.ID, "first poll", polled)
	path := InstancesPath + "/" + itoa(in.ID)
	code, b := ts.call(t, http.MethodPatch, path, accountKey, []byte(`{"configuration":{"event.vendor.type":"webhook","event.poller.refresh_interval":null,"event.poller.configuration":null}}`))
	require.Equal(t, http.StatusBadRequest, code, "%s", b)
	assert.Contains(t, decodeError(t, b).Message, "the store refused to register the webhooks")
	cur := ts.instance(t, in.ID)
	assert.Equal(t, in.UpdatedDate, cur.UpdatedDate)
	assert.JSONEq(t, string(in.Configuration["event.vendor.type"]), string(cur.Configuration["event.vendor.type"]))
	st := ts.waitStatus(t, in.ID, "polling again", polled)
	assert.Equal(t, ModePolling, st.Mode)
	assert.Empty(t, sim.Webhooks(), "nothing registered")
}

// A DELETE whose registry delete fails answers 500 and leaves the instance
// as it was: still listed, and running again (it was stopped first), so an
// order created afterwards is delivered.
func TestDeleteKeepsInstanceWhenRegistryFails(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	ts := newTestServer(t, "", nil)
	body := editBody(t, pollingBody(t, sim, cb.URL()), map[string]any{"event.poller.refresh_interval": "0.02"}, nil) // 1.2 s
	in := ts.create(t, body)
	ts.waitStatus(t, in.ID, "first poll", polled)

	require.NoError(t, ts.reg.store.Close()) // every registry write fails from now on
	code, b := ts.call(t, http.MethodDelete, InstancesPath+"/"+itoa(in.ID), accountKey, nil)
	require.Equal(t, http.StatusInternalServerError, code, "%s", b)
	assert.Contains(t, decodeError(t, b).Message, "removing the instance")

	assert.Equal(t, in.ID, ts.instance(t, in.ID).ID, "still listed")
	oid, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	key := "orders/" + strconv.FormatInt(oid, 10) + "/CREATED"
	require.Eventually(t, func() bool { return cb.has(key) }, waitFor, tick, "the instance runs again: %v", cb.keys())
	assert.Equal(t, StateRunning, ts.instance(t, in.ID).Status.State)
}
