package ceimport

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	_ "github.com/wooevents/wooevents/plugin/httpcallback"
	_ "github.com/wooevents/wooevents/plugin/signing"
	_ "github.com/wooevents/wooevents/plugin/wcpoll"
	_ "github.com/wooevents/wooevents/plugin/wcwebhook"
)

var fixtureSecrets = []string{"ck_example_consumer_key", "cs_example_consumer_secret", "example-signature-key"}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "tests", "fixtures", "cloud-elements", name))
	require.NoError(t, err)
	return b
}

// lint parses and lints a config the way `wooevents lint` does.
func lint(t testing.TB, cfg []byte) {
	t.Helper()
	require.NoError(t, service.NewStreamBuilder().SetYAML(string(cfg)), "%s", cfg)
}

type genConfig struct {
	Input struct {
		Poll *struct {
			StoreURL  string `yaml:"store_url"`
			Key       string `yaml:"consumer_key"`
			Secret    string `yaml:"consumer_secret"`
			Interval  string `yaml:"interval"`
			Resources []map[string]string
		} `yaml:"woocommerce_poll"`
		Webhook *struct {
			Secret   string `yaml:"secret"`
			StoreURL string `yaml:"store_url"`
			Register map[string]string
		} `yaml:"woocommerce_webhook"`
	}
	Pipeline struct {
		Processors []map[string]any
	}
	Output struct {
		Fallback []map[string]any
	}
}

func TestImportPollingFixture(t *testing.T) {
	res, err := Import(readFixture(t, "polling-instance.json"))
	require.NoError(t, err)
	assert.Equal(t, "polling", res.Mode)
	lint(t, res.Config)

	var g genConfig
	require.NoError(t, yaml.Unmarshal(res.Config, &g))
	require.NotNil(t, g.Input.Poll)
	assert.Nil(t, g.Input.Webhook)
	assert.Equal(t, "${WOOEVENTS_STORE_URL:https://store.example.org}", g.Input.Poll.StoreURL)
	assert.Equal(t, "${WOOEVENTS_CONSUMER_KEY:}", g.Input.Poll.Key)
	assert.Equal(t, "${WOOEVENTS_CONSUMER_SECRET:}", g.Input.Poll.Secret)
	assert.Equal(t, "${WOOEVENTS_POLL_INTERVAL:5m0s}", g.Input.Poll.Interval)
	assert.Equal(t, []map[string]string{
		{"name": "contacts", "path": "/wp-json/wc/v3/customers"},
		{"name": "discounts", "path": "/wp-json/wc/v3/coupons"},
		{"name": "orders", "path": "/wp-json/wc/v3/orders"},
		{"name": "products", "path": "/wp-json/wc/v3/products"},
	}, g.Input.Poll.Resources)

	cfg := string(res.Config)
	assert.Contains(t, cfg, `root.message.instanceName = "my-woocommerce-instance"`)
	assert.Contains(t, cfg, `root.message.instanceTags = ["my-tag"]`)
	assert.Contains(t, cfg, "url: ${WOOEVENTS_CALLBACK_URL:http://mycoolapp.com}")
	assert.Contains(t, cfg, "- resource: require_signature_key")
	for _, s := range fixtureSecrets {
		assert.NotContains(t, cfg, s)
		assert.NotContains(t, Instructions(res), s)
	}
	names := map[string]bool{}
	for _, e := range res.Env {
		if e.Required {
			names[e.Name] = true
		}
		if e.Secret {
			assert.Empty(t, e.Value, e.Name)
		}
	}
	assert.Equal(t, map[string]bool{EnvConsumerKey: true, EnvConsumerSecret: true, EnvSignatureKey: true}, names)
	assert.Len(t, res.Notes, 2, "date_modified/date_created → _gmt")
}

func TestImportWebhookFixture(t *testing.T) {
	res, err := Import(readFixture(t, "webhook-instance.json"))
	require.NoError(t, err)
	assert.Equal(t, "webhook", res.Mode)
	lint(t, res.Config)
	var g genConfig
	require.NoError(t, yaml.Unmarshal(res.Config, &g))
	require.NotNil(t, g.Input.Webhook)
	assert.Nil(t, g.Input.Poll)
	assert.Equal(t, "${WOOEVENTS_WEBHOOK_SECRET:}", g.Input.Webhook.Secret)
	assert.Equal(t, "${WOOEVENTS_CONSUMER_KEY:}", g.Input.Webhook.Register["consumer_key"])
	assert.Contains(t, string(res.Config), "url: ${WOOEVENTS_CALLBACK_URL:https://mycoolapp.com/events}")
	assert.Contains(t, string(res.Config), `let renames = {"coupons": "discounts", "customers": "contacts"}`)
	for _, s := range fixtureSecrets {
		assert.NotContains(t, string(res.Config), s)
	}
}

func TestImportConversions(t *testing.T) {
	body := `{"element":{"key":"woocommercerest"},"configuration":{
	  "store.url":"http://127.0.0.1:8480/","oauth.api.key":"k","oauth.api.secret":"s",
	  "event.notification.enabled":"true","event.vendor.type":"polling",
	  "event.notification.callback.url":"http://127.0.0.1:9/cb",
	  "event.poller.refresh_interval":0.5,
	  "event.poller.configuration":{"orders":{"url":"hubs/ecommerce/orders/","idField":"number",
	     "createdCheckTolerance":5,
	     "datesConfiguration":{"updatedDateField":"date_modified_gmt","updatedDateFormat":"yyyy-MM-dd HH:mm:ss","createdDateField":"date_created_gmt","updatedDateTimezone":"UTC"}}}}}`
	res, err := Import([]byte(body))
	require.NoError(t, err)
	lint(t, res.Config)
	var g genConfig
	require.NoError(t, yaml.Unmarshal(res.Config, &g))
	assert.Equal(t, "${WOOEVENTS_POLL_INTERVAL:30s}", g.Input.Poll.Interval)
	assert.Equal(t, []map[string]string{{
		"name": "orders", "path": "/wp-json/wc/v3/orders", "id_field": "number",
		"date_format": "2006-01-02 15:04:05", "created_tolerance": "5s",
	}}, g.Input.Poll.Resources)
	assert.NotContains(t, string(res.Config), "require_signature_key", "no signature key, no requirement")
	assert.Len(t, g.Pipeline.Processors, 1, "no name or tags: envelope only")
}

func TestImportErrorsNameTheKey(t *testing.T) {
	valid := func(edit func(conf map[string]any, top map[string]any)) []byte {
		var top map[string]any
		require.NoError(t, yaml.Unmarshal(readFixture(t, "polling-instance.json"), &top))
		edit(top["configuration"].(map[string]any), top)
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		require.NoError(t, enc.Encode(top))
		// yaml is a JSON superset only for reading; re-marshal as JSON.
		var v any
		require.NoError(t, yaml.Unmarshal(buf.Bytes(), &v))
		return mustJSON(t, v)
	}
	cases := map[string]struct {
		body []byte
		want string
	}{
		"not json":               {[]byte(`{"element":`), "not a JSON object"},
		"unknown top key":        {valid(func(c, top map[string]any) { top["instanceId"] = 3 }), "instanceId: unknown key"},
		"unknown conf key":       {valid(func(c, _ map[string]any) { c["event.poller.pageSize"] = 5 }), "configuration.event.poller.pageSize: unknown key"},
		"wrong element":          {valid(func(_, top map[string]any) { top["element"] = map[string]any{"key": "shopify"} }), "element.key"},
		"no store":               {valid(func(c, _ map[string]any) { delete(c, "store.url") }), "configuration.store.url: required URL"},
		"bad store":              {valid(func(c, _ map[string]any) { c["store.url"] = "ftp://x" }), "configuration.store.url"},
		"templated url":          {valid(func(c, _ map[string]any) { c["event.notification.callback.url"] = "https://x/${FOO}" }), "configuration.event.notification.callback.url"},
		"no secret":              {valid(func(c, _ map[string]any) { c["oauth.api.secret"] = "" }), "configuration.oauth.api.secret"},
		"disabled":               {valid(func(c, _ map[string]any) { c["event.notification.enabled"] = false }), "configuration.event.notification.enabled: is false"},
		"vendor":                 {valid(func(c, _ map[string]any) { c["event.vendor.type"] = "push" }), "configuration.event.vendor.type"},
		"contradictory":          {valid(func(c, _ map[string]any) { c["event.vendor.type"] = "webhook" }), "contradicts event.vendor.type"},
		"interval":               {valid(func(c, _ map[string]any) { c["event.poller.refresh_interval"] = "soon" }), "configuration.event.poller.refresh_interval"},
		"interval zero":          {valid(func(c, _ map[string]any) { c["event.poller.refresh_interval"] = 0 }), "configuration.event.poller.refresh_interval"},
		"hub url":                {valid(func(c, _ map[string]any) { pc(c)["orders"].(map[string]any)["url"] = "/hubs/crm/accounts" }), "configuration.event.poller.configuration.orders.url"},
		"where clause":           {valid(func(c, _ map[string]any) { pc(c)["orders"].(map[string]any)["url"] = "/hubs/ecommerce/orders?where=x" }), "configuration.event.poller.configuration.orders.url: query strings"},
		"duplicate route":        {valid(func(c, _ map[string]any) { pc(c)["customers"] = map[string]any{"url": "/hubs/ecommerce/customers"} }), "event.poller.configuration.customers.url"},
		"resource key":           {valid(func(c, _ map[string]any) { pc(c)["orders"].(map[string]any)["pageSize"] = 5 }), "event.poller.configuration.orders.pageSize: unsupported key"},
		"date format":            {valid(func(c, _ map[string]any) { dates(c)["updatedDateFormat"] = "yyyy-ww" }), "contacts.datesConfiguration.updatedDateFormat"},
		"timezone":               {valid(func(c, _ map[string]any) { dates(c)["updatedDateTimezone"] = "PST" }), "contacts.datesConfiguration.updatedDateTimezone"},
		"two formats":            {valid(func(c, _ map[string]any) { dates(c)["createdDateFormat"] = "yyyy-MM-dd" }), "contacts.datesConfiguration.createdDateFormat"},
		"tags":                   {valid(func(_, top map[string]any) { top["tags"] = []any{"a", 1} }), "tags[1]"},
		"resource name":          {valid(func(c, _ map[string]any) { pc(c)["or ders"] = map[string]any{"url": "/hubs/ecommerce/orders"} }), "event.poller.configuration.or ders"},
		"empty poller":           {valid(func(c, _ map[string]any) { c["event.poller.configuration"] = map[string]any{} }), "has no resources"},
		"bool":                   {valid(func(c, _ map[string]any) { c["event.notification.enabled"] = "yes" }), "must be true or false"},
		"signature key type":     {valid(func(c, _ map[string]any) { c["event.notification.signature.key"] = 3 }), "signature.key: must be a string"},
		"key YAML would misread": {valid(func(c, _ map[string]any) { c["oauth.api.key"] = "ck_x #y" }), "configuration.oauth.api.key: must be a WooCommerce REST API key"},
		"secret with a colon":    {valid(func(c, _ map[string]any) { c["oauth.api.secret"] = "cs: x" }), "configuration.oauth.api.secret: must be a WooCommerce REST API key"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Import(tc.body)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			for _, s := range fixtureSecrets {
				assert.NotContains(t, err.Error(), s)
			}
		})
	}
}

func pc(c map[string]any) map[string]any { return c["event.poller.configuration"].(map[string]any) }

func dates(c map[string]any) map[string]any {
	return pc(c)["contacts"].(map[string]any)["datesConfiguration"].(map[string]any)
}

func TestCommandWritesConfigAndInstructions(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, run("-", bytes.NewReader(readFixture(t, "webhook-instance.json")), &out, &errOut))
	lint(t, out.Bytes())
	assert.Contains(t, errOut.String(), "export WOOEVENTS_WEBHOOK_SECRET=...")
	assert.Contains(t, errOut.String(), "export WOOEVENTS_CALLBACK_SIGNATURE_KEY=...")
	for _, s := range fixtureSecrets {
		assert.NotContains(t, errOut.String()+out.String(), s)
	}

	out.Reset()
	err := run(filepath.Join(t.TempDir(), "missing.json"), nil, &out, &errOut)
	require.Error(t, err)
	assert.Empty(t, out.String())
	err = run("-", strings.NewReader(`{"element":{"key":"woocommercerest"}}`), &out, &errOut)
	require.ErrorContains(t, err, "configuration: required object")
	assert.Empty(t, out.String())
}

func FuzzImport(f *testing.F) {
	f.Add(readFixture(f, "polling-instance.json"))
	f.Add(readFixture(f, "webhook-instance.json"))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := Import(body)
		if err != nil {
			var ie *Error
			if !asError(err, &ie) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		var doc map[string]any
		if err := yaml.Unmarshal(res.Config, &doc); err != nil {
			t.Fatalf("generated config is not YAML: %v\n%s", err, res.Config)
		}
		if err := service.NewStreamBuilder().SetYAML(string(res.Config)); err != nil {
			t.Fatalf("generated config does not lint: %v\n%s", err, res.Config)
		}
		// Secrets of at least 12 characters that appear nowhere else in the body
		// must not leak into the config or the instructions.
		var top map[string]any
		_ = yaml.Unmarshal(body, &top)
		conf, _ := top["configuration"].(map[string]any)
		text := string(res.Config) + Instructions(res)
		for _, k := range []string{keyAPIKey, keyAPISecret, keySignatureKey} {
			s, _ := conf[k].(string)
			if len(s) >= 12 && bytes.Count(body, []byte(s)) == 1 && strings.Contains(text, s) {
				t.Fatalf("secret %s leaked", k)
			}
		}
	})
}

// The exported translation wooevents serve runs: the same pipeline as
// Import, with the host's label, state name and callback parallelism, and
// the body's values (secrets included) for the variables it reads.
func TestInstancePipelineAndEnv(t *testing.T) {
	inst, err := Parse(readFixture(t, "polling-instance.json"))
	require.NoError(t, err)
	assert.Equal(t, ModePolling, inst.Mode())
	assert.Equal(t, "my-woocommerce-instance", inst.Name())
	assert.Equal(t, []string{"my-tag"}, inst.Tags())
	assert.Equal(t, "https://store.example.org", inst.StoreURL())
	assert.Equal(t, "http://mycoolapp.com", inst.CallbackURL())
	assert.Equal(t, 5*time.Minute, inst.Interval())
	assert.Equal(t, []string{"/wc/v3/customers", "/wc/v3/coupons", "/wc/v3/orders", "/wc/v3/products"}, inst.PollRoutes())
	k, s := inst.Credentials()
	assert.Equal(t, "ck_example_consumer_key", k)
	assert.Equal(t, "cs_example_consumer_secret", s)
	assert.Equal(t, map[string]string{
		EnvStoreURL:       "https://store.example.org",
		EnvConsumerKey:    "ck_example_consumer_key",
		EnvConsumerSecret: "cs_example_consumer_secret",
		EnvCallbackURL:    "http://mycoolapp.com",
		EnvSignatureKey:   "example-signature-key",
		EnvPollInterval:   "5m0s",
	}, inst.Env())

	imported, err := Import(readFixture(t, "polling-instance.json"))
	require.NoError(t, err)
	plain, err := inst.Pipeline(PipelineOptions{})
	require.NoError(t, err)
	assert.Equal(t, string(imported.Config), string(plain), "Import writes Pipeline with no options")

	cfg, err := inst.Pipeline(PipelineOptions{InputLabel: "instance_7", StateName: "instance", CallbackMaxInFlight: 2})
	require.NoError(t, err)
	lint(t, cfg)
	var doc struct {
		Input struct {
			Label string
			Poll  map[string]any `yaml:"woocommerce_poll"`
		}
		Output struct {
			Fallback []map[string]any
		}
		ProcessorResources []struct{ Label string } `yaml:"processor_resources"`
	}
	require.NoError(t, yaml.Unmarshal(cfg, &doc))
	assert.Equal(t, "instance_7", doc.Input.Label)
	assert.Equal(t, "${WOOEVENTS_DATA_DIR:./data}/instance-poll.db", doc.Input.Poll["state_path"])
	assert.Equal(t, 2, doc.Output.Fallback[0]["http_callback"].(map[string]any)["max_in_flight"])
	var labels []string
	for _, p := range doc.ProcessorResources {
		labels = append(labels, p.Label)
	}
	assert.ElementsMatch(t, []string{"cloud_elements_envelope", "cloud_elements_signer", "standard_webhooks_signer", "dead_letter_record", "require_signature_key"}, labels,
		"only the resources the pipeline uses (no dead_letter_restore)")

	_, err = inst.Pipeline(PipelineOptions{InputLabel: "_no"})
	assert.ErrorContains(t, err, "input label")
	_, err = inst.Pipeline(PipelineOptions{StateName: "../x"})
	assert.ErrorContains(t, err, "state name")

	hook, err := Parse(readFixture(t, "webhook-instance.json"))
	require.NoError(t, err)
	assert.Equal(t, ModeWebhook, hook.Mode())
	assert.Empty(t, hook.PollRoutes())
	assert.NotContains(t, hook.Env(), EnvPollInterval)
	hcfg, err := hook.Pipeline(PipelineOptions{InputLabel: "instance_8", StateName: "instance"})
	require.NoError(t, err)
	assert.Contains(t, string(hcfg), "label: instance_8")
	assert.Contains(t, string(hcfg), "spool_dir: ${WOOEVENTS_DATA_DIR:./data}/spool-instance")
}
