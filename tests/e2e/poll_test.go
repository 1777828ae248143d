package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

func startSim(t *testing.T) *wcsim.Store {
	t.Helper()
	s := wcsim.New(wcsim.Options{})
	require.NoError(t, s.Start())
	t.Cleanup(s.Close)
	return s
}

func simEnv(s *wcsim.Store) map[string]string {
	return map[string]string{
		"WOOEVENTS_STORE_URL":       s.URL(),
		"WOOEVENTS_CONSUMER_KEY":    wcsim.DefaultReadOnlyConsumerKey,
		"WOOEVENTS_CONSUMER_SECRET": wcsim.DefaultReadOnlyConsumerSecret,
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// byKey indexes delivered notifications by objectType/objectId/eventType.
func byKey(rs []received) map[string]received {
	out := map[string]received{}
	for _, r := range rs {
		e := r.n.Message.Events[0]
		out[e.ObjectType+"/"+e.ObjectID+"/"+e.EventType] = r
	}
	return out
}

// config/poll_to_callback.yaml against the simulator: Cloud Elements' poller
// keys as objectType, created, updated and deleted, signed and verified.
func TestPollToCallback(t *testing.T) {
	sim := startSim(t)
	o1, o2 := sim.Seed(wcsim.Orders, 2)
	c1, _ := sim.Seed(wcsim.Customers, 1)
	k1, _ := sim.Seed(wcsim.Coupons, 1)
	p1, _ := sim.Seed(wcsim.Products, 1)

	dir := t.TempDir()
	cs := newCallbackServer(t, ceKey, swSecret1)
	p := startWooevents(t, dir, merge(simEnv(sim), map[string]string{
		"WOOEVENTS_POLL_INTERVAL":                      "500ms",
		"WOOEVENTS_POLL_START_FROM":                    "beginning",
		"WOOEVENTS_CALLBACK_URL":                       cs.URL(),
		"WOOEVENTS_CALLBACK_SIGNATURE_KEY":             ceKey,
		"WOOEVENTS_CALLBACK_STANDARD_WEBHOOKS_SECRETS": swSecret1,
	}), callbackArgs("config/poll_to_callback.yaml")...)
	p.waitReady(t)

	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	require.Eventually(t, func() bool { return len(cs.delivered()) >= 5 }, 30*time.Second, 50*time.Millisecond,
		"delivered %d, rejected %v, dead-lettered %d", len(cs.delivered()), cs.rejections(), countLines(filepath.Join(dir, "data", "dead-letter", "*.jsonl")))
	got := byKey(cs.delivered())
	for _, k := range []string{
		"orders/" + id(o1) + "/CREATED", "orders/" + id(o2) + "/CREATED",
		"contacts/" + id(c1) + "/CREATED", "discounts/" + id(k1) + "/CREATED", "products/" + id(p1) + "/CREATED",
	} {
		assert.Contains(t, got, k)
	}

	require.NoError(t, sim.Update(wcsim.Orders, o1, map[string]any{"status": "completed"}))
	require.NoError(t, sim.Trash(wcsim.Orders, o2))
	require.Eventually(t, func() bool {
		got = byKey(cs.delivered())
		_, upd := got["orders/"+id(o1)+"/UPDATED"]
		_, del := got["orders/"+id(o2)+"/DELETED"]
		return upd && del
	}, 30*time.Second, 50*time.Millisecond)
	assert.Contains(t, string(got["orders/"+id(o1)+"/UPDATED"].n.Message.Raw), `"status":"completed"`)
	assert.Empty(t, cs.rejections())
	assert.Len(t, cs.delivered(), 7, "each change notified once")
}

// config/poll_to_file.yaml: a backfill of the store into the day's file.
func TestPollToFile(t *testing.T) {
	sim := startSim(t)
	sim.Seed(wcsim.Orders, 3)
	sim.Seed(wcsim.Products, 2)
	sim.Seed(wcsim.Coupons, 1)
	sim.Seed(wcsim.Customers, 2)
	dir := t.TempDir()
	p := startWooevents(t, dir, merge(simEnv(sim), map[string]string{
		"WOOEVENTS_POLL_INTERVAL":   "500ms",
		"WOOEVENTS_POLL_START_FROM": "beginning",
	}), "-c", repoPath("config/poll_to_file.yaml"))
	p.waitReady(t)
	file := filepath.Join(dir, "data", "poll", time.Now().UTC().Format("2006-01-02")+".jsonl")
	require.Eventually(t, func() bool { return countLines(file) >= 8 }, 30*time.Second, 50*time.Millisecond)
	p.stop(t)
	lines := readJSONLines(t, file)
	require.Len(t, lines, 8)
	perType := map[string]int{}
	for _, l := range lines {
		assert.Equal(t, "poll", l["source"])
		assert.Equal(t, "created", l["action"])
		perType[l["resource"].(string)]++
	}
	assert.Equal(t, map[string]int{"order": 3, "product": 2, "coupon": 1, "customer": 2}, perType)
}

// The two Cloud Elements bodies of tests/fixtures/cloud-elements, imported
// with the binary, lint and, pointed at the simulator, deliver signed Cloud
// Elements notifications.
func TestImportCloudElements(t *testing.T) {
	t.Run("polling", func(t *testing.T) {
		dir := t.TempDir()
		stdout, stderr, err := runWooevents(t, dir, nil, "import-cloud-elements", repoPath("tests/fixtures/cloud-elements/polling-instance.json"))
		require.NoError(t, err, stderr)
		for _, secret := range []string{"ck_example_consumer_key", "cs_example_consumer_secret", "example-signature-key"} {
			assert.NotContains(t, stdout+stderr, secret)
		}
		assert.Contains(t, stderr, "export WOOEVENTS_CALLBACK_SIGNATURE_KEY=...")
		cfg := filepath.Join(dir, "pipeline.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(stdout), 0o600))
		_, lintOut, err := runWooevents(t, dir, nil, "lint", cfg)
		require.NoError(t, err, lintOut)

		sim := startSim(t)
		o, _ := sim.Seed(wcsim.Orders, 1)
		c, _ := sim.Seed(wcsim.Customers, 1)
		cs := newCallbackServer(t, "example-signature-key", "")
		p := startWooevents(t, dir, merge(simEnv(sim), map[string]string{
			"WOOEVENTS_CALLBACK_URL":           cs.URL(),
			"WOOEVENTS_CALLBACK_SIGNATURE_KEY": "example-signature-key",
			"WOOEVENTS_POLL_START_FROM":        "beginning",
			"WOOEVENTS_POLL_INTERVAL":          "500ms", // the body's 5 minutes, shortened
		}), "-c", cfg)
		p.waitReady(t)
		require.Eventually(t, func() bool { return len(cs.delivered()) >= 2 }, 30*time.Second, 50*time.Millisecond,
			"delivered %d, rejected %v, dead-lettered %d", len(cs.delivered()), cs.rejections(), countLines(filepath.Join(dir, "data", "dead-letter", "*.jsonl")))
		got := byKey(cs.delivered())
		require.Contains(t, got, "orders/"+strconv.FormatInt(o, 10)+"/CREATED")
		r := got["contacts/"+strconv.FormatInt(c, 10)+"/CREATED"]
		require.NotNil(t, r.header)
		assert.Equal(t, "my-woocommerce-instance", r.n.Message.InstanceName)
		assert.Equal(t, []string{"my-tag"}, r.n.Message.InstanceTags)
		assert.Empty(t, cs.rejections())
	})

	t.Run("webhook", func(t *testing.T) {
		dir := t.TempDir()
		stdout, stderr, err := runWooevents(t, dir, nil, "import-cloud-elements", repoPath("tests/fixtures/cloud-elements/webhook-instance.json"))
		require.NoError(t, err, stderr)
		assert.Contains(t, stderr, "export WOOEVENTS_WEBHOOK_SECRET=...")
		cfg := filepath.Join(dir, "pipeline.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(stdout), 0o600))
		_, lintOut, err := runWooevents(t, dir, nil, "lint", cfg)
		require.NoError(t, err, lintOut)

		sim := startSim(t)
		cs := newCallbackServer(t, "example-signature-key", "")
		addr := freeAddr(t)
		const hookSecret = "imported-webhook-secret"
		p := startWooevents(t, dir, merge(simEnv(sim), map[string]string{
			"WOOEVENTS_CALLBACK_URL":           cs.URL(),
			"WOOEVENTS_CALLBACK_SIGNATURE_KEY": "example-signature-key",
			"WOOEVENTS_WEBHOOK_SECRET":         hookSecret,
			"WOOEVENTS_WEBHOOK_ADDRESS":        addr,
		}), "-c", cfg)
		p.waitReady(t)
		for _, topic := range []string{"order.created", "customer.created"} {
			_, err := sim.AddWebhook(topic, "http://"+addr+"/webhooks/woocommerce", hookSecret)
			require.NoError(t, err)
		}
		o, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
		require.NoError(t, err)
		c, err := sim.Create(wcsim.Customers, map[string]any{"email": "ada@example.com"})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(cs.delivered()) >= 2 }, 30*time.Second, 50*time.Millisecond)
		got := byKey(cs.delivered())
		assert.Contains(t, got, "orders/"+strconv.FormatInt(o, 10)+"/CREATED")
		assert.Contains(t, got, "contacts/"+strconv.FormatInt(c, 10)+"/CREATED", "Cloud Elements' name for customers")
		assert.Empty(t, cs.rejections())
	})
}
