package doctor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcwebhook"
	"github.com/wooevents/wooevents/tests/wcsim"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func repoFile(p string) string { return filepath.Join("..", "..", p) }

// The hybrid pipeline names one store twice (the webhook input's register
// block and the poll input): one target with both roles.
func TestTargetsFromTheHybridPipeline(t *testing.T) {
	targets, missing, err := TargetsFromConfig(repoFile("config/hybrid_to_kafka.yaml"), env(map[string]string{
		"WOOEVENTS_STORE_URL":            "https://shop.example.com",
		"WOOEVENTS_CONSUMER_KEY":         "ck_abc",
		"WOOEVENTS_CONSUMER_SECRET":      "cs_def",
		"WOOEVENTS_WEBHOOK_DELIVERY_URL": "https://hooks.example.com/webhooks/woocommerce",
		"WOOEVENTS_POLL_INTERVAL":        "2m",
	}))
	require.NoError(t, err)
	assert.Empty(t, missing)
	require.Len(t, targets, 1)
	tg := targets[0]
	assert.Equal(t, "https://shop.example.com", tg.Client.StoreURL)
	assert.Equal(t, "ck_abc", tg.Client.ConsumerKey)
	assert.Equal(t, "cs_def", tg.Client.ConsumerSecret)
	assert.Empty(t, tg.ConfigProblem)
	require.Len(t, tg.From, 2)
	assert.Contains(t, tg.From[0], `woocommerce_webhook input "webhooks"`)
	assert.Contains(t, tg.From[1], `woocommerce_poll input "poll"`)
	require.NotNil(t, tg.Poll)
	assert.Equal(t, 2*time.Minute, tg.Poll.Interval)
	assert.Equal(t, time.Duration(0), tg.Poll.ScanInterval, "woocommerce_poll's default")
	assert.Equal(t, 100, tg.Poll.ScanMaxPages)
	assert.Equal(t, "now", tg.Poll.StartFrom)
	assert.Equal(t, ResourcesFromNames(DefaultResources), tg.Poll.Resources)
	require.NotNil(t, tg.Webhooks)
	assert.True(t, tg.Webhooks.Register)
	assert.Equal(t, []string{"https://hooks.example.com/webhooks/woocommerce"}, tg.Webhooks.DeliveryURLs)
	assert.Equal(t, wcwebhook.DefaultRegisterTopics, tg.Webhooks.Topics)
}

// poll_to_callback names Cloud Elements' poller keys with their own paths;
// unset keys are a config problem, not an error.
func TestTargetsFromThePollPipeline(t *testing.T) {
	targets, _, err := TargetsFromConfig(repoFile("config/poll_to_callback.yaml"), env(nil))
	require.NoError(t, err)
	require.Len(t, targets, 1)
	tg := targets[0]
	assert.Equal(t, "http://127.0.0.1:8480", tg.Client.StoreURL, "the pipeline's default")
	assert.Contains(t, tg.ConfigProblem, "consumer_key and consumer_secret are required")
	assert.Equal(t, []PollResource{
		{Name: "contacts", Route: "/wp-json/wc/v3/customers", Scan: true, Strategy: "scan"},
		{Name: "discounts", Route: "/wp-json/wc/v3/coupons", Strategy: "modified_after"},
		{Name: "orders", Route: "/wp-json/wc/v3/orders", Strategy: "modified_after"},
		{Name: "products", Route: "/wp-json/wc/v3/products", Strategy: "modified_after"},
	}, tg.Poll.Resources)
	assert.Equal(t, 5*time.Minute, tg.Poll.Interval)
}

// A receiver of several stores: every store with a register block becomes a
// target with its own keys and delivery URL (public_url + path + name).
func TestTargetsFromWebhookStores(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "stores.yaml")
	require.NoError(t, os.WriteFile(conf, []byte(`
input:
  woocommerce_webhook:
    public_url: https://hooks.example.com
    stores:
      - name: eu
        url: https://eu.example.com
        secrets: [ "${EU_SECRET}" ]
        register:
          consumer_key: ${EU_KEY}
          consumer_secret: ${EU_CS:cs_default}
          auth: oauth1
          topics: [ order.created, order.updated ]
      - name: us
        url: https://us.example.com
        secrets: [ s2 ]
output:
  drop: {}
`), 0o600))
	targets, missing, err := TargetsFromConfig(conf, env(map[string]string{"EU_KEY": "ck_eu", "EU_SECRET": "whsec"}))
	require.NoError(t, err)
	assert.Empty(t, missing)
	require.Len(t, targets, 2)
	eu, us := targets[0], targets[1]
	assert.Equal(t, "https://eu.example.com", eu.Client.StoreURL)
	assert.Equal(t, "ck_eu", eu.Client.ConsumerKey)
	assert.Equal(t, "cs_default", eu.Client.ConsumerSecret)
	assert.Equal(t, wcclient.AuthOAuth1, eu.Client.Auth)
	assert.Equal(t, []string{"https://hooks.example.com/webhooks/woocommerce/eu"}, eu.Webhooks.DeliveryURLs)
	assert.Equal(t, []string{"order.created", "order.updated"}, eu.Webhooks.Topics)
	assert.True(t, eu.Webhooks.Register)
	assert.Contains(t, eu.From[0], `stores[0] "eu"`)
	assert.Equal(t, "https://us.example.com", us.Client.StoreURL)
	assert.Empty(t, us.Client.ConsumerKey, "no register block: no keys")
	assert.False(t, us.Webhooks.Register)

	// A ${VAR} without default that is unset is reported.
	_, missing, err = TargetsFromConfig(conf, env(nil))
	require.NoError(t, err)
	assert.Equal(t, []string{"EU_SECRET", "EU_KEY"}, missing)
}

// config/default.yaml takes the store from X-WC-Webhook-Source: nothing to
// check, said as a warning.
func TestTargetWithoutStore(t *testing.T) {
	targets, _, err := TargetsFromConfig(repoFile("config/default.yaml"), env(nil))
	require.NoError(t, err)
	require.Len(t, targets, 1)
	rep := Run(context.Background(), targets, Options{})
	c := check(t, rep.Stores[0], checkConfig)
	assert.Equal(t, Warn, c.Status)
	assert.Contains(t, c.Found, "names no store_url")
	assert.False(t, rep.Failed())
}

// -c with a pipeline against the simulator: the config's resources, keys
// and read-only permission are what is checked.
func TestConfigAgainstTheSimulator(t *testing.T) {
	s := sim(t, wcsim.Options{})
	targets, _, err := TargetsFromConfig(repoFile("config/poll_to_callback.yaml"), env(map[string]string{
		"WOOEVENTS_STORE_URL":       s.URL(),
		"WOOEVENTS_CONSUMER_KEY":    wcsim.DefaultReadOnlyConsumerKey,
		"WOOEVENTS_CONSUMER_SECRET": wcsim.DefaultReadOnlyConsumerSecret,
	}))
	require.NoError(t, err)
	r := run(t, s, targets[0])
	assert.Zero(t, r.count(Fail))
	assert.Equal(t, "contacts 5, discounts 0, orders 30, products 3", check(t, r, checkObjects).Found)
	assert.Contains(t, check(t, r, checkScanCost).Found, "contacts: a pass over all of them reads 1 page")
	assert.Contains(t, check(t, r, checkBackfill).Found, "this config starts from now")
	assert.Contains(t, check(t, r, checkPermission).Found, "read:")
}

// docs/troubleshooting.md has an entry for every check the doctor prints.
func TestTroubleshootingCoversEveryCheck(t *testing.T) {
	doc, err := os.ReadFile(repoFile("docs/troubleshooting.md"))
	require.NoError(t, err)
	for _, name := range []string{checkConfig, checkReach, checkTLS, checkPermalinks, checkHome, checkNamespace,
		checkVersions, checkTimezone, checkClock, checkAuth, checkHTTPS, checkAuthHeader, checkPermission, checkObjects,
		checkFilter, checkPageTime, checkScanCost, checkBackfill, checkWebhooks, checkWebhook, checkOurWebhooks,
		checkTopics, checkDelivery} {
		assert.Contains(t, string(doc), "### `"+name+"`", "docs/troubleshooting.md has no entry for %s", name)
	}
	assert.Contains(t, string(doc), "## No events arrive")
	assert.Contains(t, string(doc), "## Webhooks disabled by WooCommerce")
}
