package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/testproc"
	"github.com/wooevents/wooevents/tests/wcsim"
)

// `wooevents serve` with the real binary: the Cloud Elements /instances API,
// the seed bodies of tests/fixtures/cloud-elements pointed at the
// simulator, notifications checked by a receiver that verifies
// Elements-Webhook-Signature itself (callbackServer).

const (
	serveUser = "e2e-user-secret"
	serveOrg  = "e2e-organization-secret"
	serveAuth = "User " + serveUser + ", Organization " + serveOrg
)

type serveProc struct {
	*testproc.Proc
	addr, metricsAddr string
}

func (p *serveProc) base() string { return "http://" + p.addr }

// startServe runs `wooevents serve` in dir on addr (a fresh address when
// empty), with its own address as public URL.
func startServe(t *testing.T, dir, addr string) *serveProc {
	t.Helper()
	if addr == "" {
		addr = freeAddr(t)
	}
	p := &serveProc{addr: addr, metricsAddr: freeAddr(t)}
	p.Proc = testproc.Start(t, binPath, dir, map[string]string{
		"WOOEVENTS_USER_SECRET":              serveUser,
		"WOOEVENTS_ORGANIZATION_SECRET":      serveOrg,
		"WOOEVENTS_INSTANCES_KEY":            "Y2VzZXJ2ZS1lMmUtaW5zdGFuY2VzLWtleS0zMmJ5dGU=",
		"WOOEVENTS_CALLBACK_INITIAL_BACKOFF": "100ms",
	}, "serve", "--address", addr, "--data-dir", "./data", "--public-url", "http://"+addr,
		"--metrics-address", p.metricsAddr, "--log-level", "info")
	p.WaitReady(t, p.metricsAddr)
	return p
}

func (p *serveProc) call(t *testing.T, method, path string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.base()+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", serveAuth)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, b
}

type served struct {
	ID            int64                      `json:"id"`
	Token         string                     `json:"token"`
	Name          string                     `json:"name"`
	Configuration map[string]json.RawMessage `json:"configuration"`
	Status        struct {
		State  string `json:"state"`
		Reason string `json:"reason"`
		Events struct {
			Delivered int64 `json:"delivered"`
		} `json:"events"`
		Webhooks *struct {
			Registered bool `json:"registered"`
		} `json:"webhooks"`
	} `json:"status"`
}

func (p *serveProc) create(t *testing.T, body []byte) served {
	t.Helper()
	code, b := p.call(t, http.MethodPost, "/elements/api-v2/instances", body)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var out served
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func (p *serveProc) get(t *testing.T, id int64) served {
	t.Helper()
	code, b := p.call(t, http.MethodGet, "/elements/api-v2/instances/"+strconv.FormatInt(id, 10), nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var out served
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// seed reads a seed body and points it at the simulator and the callback.
func seed(t *testing.T, name string, conf map[string]any) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath("tests/fixtures/cloud-elements/" + name))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	c := m["configuration"].(map[string]any)
	for k, v := range conf {
		c[k] = v
	}
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func servePolling(t *testing.T, sim *wcsim.Store, cb string) []byte {
	return seed(t, "polling-instance.json", map[string]any{
		"store.url": sim.URL(), "oauth.api.key": wcsim.DefaultReadOnlyConsumerKey,
		"oauth.api.secret": wcsim.DefaultReadOnlyConsumerSecret, "event.notification.callback.url": cb,
		"event.poller.refresh_interval": "0.02", // the seed's 5 minutes, as 1.2 s
	})
}

func serveWebhook(t *testing.T, sim *wcsim.Store, cb string) []byte {
	return seed(t, "webhook-instance.json", map[string]any{
		"store.url": sim.URL(), "oauth.api.key": wcsim.DefaultConsumerKey,
		"oauth.api.secret": wcsim.DefaultConsumerSecret, "event.notification.callback.url": cb,
	})
}

// deliveredKeys counts notifications per objectType/objectId/eventType.
func deliveredKeys(cs *callbackServer) map[string]int {
	out := map[string]int{}
	for _, r := range cs.delivered() {
		e := r.n.Message.Events[0]
		out[e.ObjectType+"/"+e.ObjectID+"/"+e.EventType]++
	}
	return out
}

// Both seed bodies created through the API of the real binary deliver
// signed Cloud Elements notifications; the webhook body's hooks are in the
// store, pointing at the server, and deliver; /metrics carries every
// instance's pipeline metrics.
func TestServeCreateAndDeliver(t *testing.T) {
	sim := startSim(t)
	cs := newCallbackServer(t, ceKey, "")
	p := startServe(t, t.TempDir(), "")

	poll := p.create(t, servePolling(t, sim, cs.URL()))
	hook := p.create(t, serveWebhook(t, sim, cs.URL()))
	assert.JSONEq(t, `"********"`, string(poll.Configuration["oauth.api.secret"]))
	hooks := sim.Webhooks()
	require.Len(t, hooks, 16)
	for _, h := range hooks {
		assert.Equal(t, p.base()+"/elements/api-v2/events/woocommercerest/"+strconv.FormatInt(hook.ID, 10), h.DeliveryURL)
		assert.Equal(t, "active", h.Status)
		assert.True(t, strings.HasPrefix(h.Name, "wooevents [instance_"+strconv.FormatInt(hook.ID, 10)+"] "), h.Name)
	}

	o, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	c, err := sim.Create(wcsim.Customers, map[string]any{"email": "ada@example.com"})
	require.NoError(t, err)
	oKey := "orders/" + strconv.FormatInt(o, 10) + "/CREATED"
	cKey := "contacts/" + strconv.FormatInt(c, 10) + "/CREATED"
	require.Eventually(t, func() bool {
		k := deliveredKeys(cs)
		return k[oKey] >= 2 && k[cKey] >= 2
	}, 30*time.Second, 50*time.Millisecond, "both instances notify the order and the customer: %v, rejected %v", deliveredKeys(cs), cs.rejections())
	assert.Empty(t, cs.rejections(), "every notification verified")
	for _, r := range cs.delivered() {
		assert.Equal(t, "my-woocommerce-instance", r.n.Message.InstanceName)
	}

	st := p.get(t, hook.ID).Status
	require.NotNil(t, st.Webhooks)
	assert.True(t, st.Webhooks.Registered)
	assert.Equal(t, "running", st.State, st.Reason)
	// Counted once the output has the callback's answer, a moment after the
	// callback has the notification.
	for deadline := time.Now().Add(10 * time.Second); p.get(t, poll.ID).Status.Events.Delivered == 0; {
		require.False(t, time.Now().After(deadline), "the poll instance's status counts its deliveries")
		time.Sleep(20 * time.Millisecond) // polling the API, as a client would
	}

	res, err := http.Get("http://" + p.metricsAddr + "/metrics")
	require.NoError(t, err)
	m, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Contains(t, string(m), `wooevents_instance="`+strconv.FormatInt(poll.ID, 10)+`"`)
	assert.Contains(t, string(m), "woocommerce_poll_requests_total")
}

// Kill the server (SIGKILL) and start it again on the same data dir: the
// instances are back with their tokens, the change made while it was down
// arrives, nothing delivered is lost, and the webhook instance delivers
// again.
func TestServeRestartAfterKill(t *testing.T) {
	sim := startSim(t)
	// One receiver per instance: the poll and the webhook instance notify
	// the same change with the same event id.
	csPoll := newCallbackServer(t, ceKey, "")
	csHook := newCallbackServer(t, ceKey, "")
	dir := t.TempDir()
	p := startServe(t, dir, "")
	poll := p.create(t, servePolling(t, sim, csPoll.URL()))
	hook := p.create(t, serveWebhook(t, sim, csHook.URL()))

	var before []int64
	for range 5 {
		o, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
		require.NoError(t, err)
		before = append(before, o)
	}
	require.Eventually(t, func() bool {
		kp, kh := deliveredKeys(csPoll), deliveredKeys(csHook)
		for _, o := range before {
			k := "orders/" + strconv.FormatInt(o, 10) + "/CREATED"
			if kp[k] < 1 || kh[k] < 1 {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "%v %v", deliveredKeys(csPoll), deliveredKeys(csHook))
	p.Kill(t)
	beforeKill := map[*callbackServer]map[string]bool{}
	for _, cs := range []*callbackServer{csPoll, csHook} {
		beforeKill[cs] = map[string]bool{}
		for _, r := range cs.delivered() {
			beforeKill[cs][r.n.Message.EventID] = true
		}
	}

	down, err := sim.Create(wcsim.Orders, map[string]any{"status": "on-hold"})
	require.NoError(t, err)
	require.NoError(t, sim.Update(wcsim.Orders, before[0], map[string]any{"status": "completed"}))

	p2 := startServe(t, dir, p.addr)
	assert.Equal(t, poll.Token, p2.get(t, poll.ID).Token)
	assert.Equal(t, hook.Token, p2.get(t, hook.ID).Token)
	downKey := "orders/" + strconv.FormatInt(down, 10) + "/CREATED"
	// The update arrives as UPDATED, or as CREATED with the new state when
	// the poller's last checkpoint was stored before that order was created.
	updated := func() bool {
		for _, r := range csPoll.delivered() {
			e := r.n.Message.Events[0]
			if e.ObjectID == strconv.FormatInt(before[0], 10) && strings.Contains(string(r.n.Message.Raw), `"status":"completed"`) {
				return true
			}
		}
		return false
	}
	if !assert.Eventually(t, func() bool {
		return deliveredKeys(csPoll)[downKey] >= 1 && updated()
	}, 30*time.Second, 50*time.Millisecond) {
		_, st := p2.call(t, http.MethodGet, "/elements/api-v2/instances/"+strconv.FormatInt(poll.ID, 10), nil)
		t.Fatalf("the changes made while the server was down did not arrive: %v; rejected %v; status %s",
			deliveredKeys(csPoll), csPoll.rejections(), st)
	}

	after, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	afterKey := "orders/" + strconv.FormatInt(after, 10) + "/CREATED"
	require.Eventually(t, func() bool { return deliveredKeys(csPoll)[afterKey] >= 1 && deliveredKeys(csHook)[afterKey] >= 1 },
		30*time.Second, 50*time.Millisecond, "both instances deliver after the restart: %v %v", deliveredKeys(csPoll), deliveredKeys(csHook))

	// At least once: a notification may come again after the crash, with
	// the same event id, but only one that was delivered before it.
	for name, cs := range map[string]*callbackServer{"polling": csPoll, "webhook": csHook} {
		ids := map[string]int{}
		for _, r := range cs.delivered() {
			ids[r.n.Message.EventID]++
		}
		dups := 0
		for id, n := range ids {
			dups += n - 1
			if n > 1 {
				assert.True(t, beforeKill[cs][id], "%s: event %s sent twice, yet not delivered before the kill", name, id)
			}
		}
		t.Logf("%s instance: %d notifications before the kill, %d in all, %d sent again after the restart",
			name, len(beforeKill[cs]), len(cs.delivered()), dups)
		assert.Empty(t, cs.rejections())
	}
	assert.FileExists(t, filepath.Join(dir, "data", "instances.db"))
}

// The process refuses to start without the API credentials, and the API
// refuses calls without them.
func TestServeNeedsCredentials(t *testing.T) {
	dir := t.TempDir()
	_, stderr, err := runWooevents(t, dir, map[string]string{"WOOEVENTS_USER_SECRET": "", "WOOEVENTS_ORGANIZATION_SECRET": ""},
		"serve", "--address", freeAddr(t), "--metrics-address", "")
	require.Error(t, err)
	assert.Contains(t, stderr, "WOOEVENTS_USER_SECRET")

	_, stderr, err = runWooevents(t, dir, map[string]string{"WOOEVENTS_USER_SECRET": "u", "WOOEVENTS_ORGANIZATION_SECRET": "o",
		"WOOEVENTS_INSTANCES_KEY": "not a key"}, "serve", "--address", freeAddr(t), "--metrics-address", "")
	require.Error(t, err)
	assert.Contains(t, stderr, "WOOEVENTS_INSTANCES_KEY")
	assert.NotContains(t, stderr, "not a key")

	p := startServe(t, t.TempDir(), "")
	res, err := http.Get(p.base() + "/elements/api-v2/instances")
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, string(b), `"requestId"`)
}
