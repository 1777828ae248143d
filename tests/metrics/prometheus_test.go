package metrics

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/testproc"
	"github.com/wooevents/wooevents/tests/wcsim"
)

const (
	hookSecret = "metrics-test-webhook-secret"
	hookPath   = "/webhooks/woocommerce"
)

// Our metric names, as plugin/wcpoll and plugin/wcwebhook register them.
const (
	mPollRequests   = "woocommerce_poll_requests_total"
	mEvents         = "woocommerce_events_total"
	mLag            = "woocommerce_watermark_lag_seconds"
	mRejections     = "woocommerce_webhook_rejections_total"
	mAccepted       = "woocommerce_webhook_accepted_total"
	mSpoolDepth     = "woocommerce_spool_depth"
	mReenabled      = "woocommerce_webhooks_reenabled_total"
	mRegisterChecks = "woocommerce_webhook_register_checks_total"
	mInputReceived  = "input_received"
	mOutputSent     = "output_sent"
)

var registeredTopics = []string{"order.created", "order.updated", "order.deleted"}

const configTemplate = `
http:
  address: %[1]s
logger:
  level: INFO
metrics:
  prometheus: {}
input:
  broker:
    inputs:
      - label: poll
        woocommerce_poll:
          store_url: %[2]s
          consumer_key: %[3]s
          consumer_secret: %[4]s
          interval: 500ms
          start_from: beginning
          state_path: %[5]s
          resources:
            - name: orders
            - name: products
      - label: webhook
        woocommerce_webhook:
          address: %[6]s
          path: %[7]s
          secret: %[8]s
          ack: spooled
          spool_dir: %[9]s
          register:
            store_url: %[2]s
            consumer_key: %[3]s
            consumer_secret: %[4]s
            delivery_url: %[10]s
            topics: [%[11]s]
            check_interval: 1s
output:
  label: sink
  drop: {}
`

// TestPrometheusSeries runs wooevents with `metrics: prometheus: {}`, a
// woocommerce_poll and a woocommerce_webhook input (spooled, registering its
// webhooks) against the simulator, and asserts the scraped series.
func TestPrometheusSeries(t *testing.T) {
	start := time.Now()
	sim := wcsim.New(wcsim.Options{})
	require.NoError(t, sim.Start())
	t.Cleanup(sim.Close)

	orderA, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	orderB, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	_, err = sim.Create(wcsim.Products, map[string]any{"name": "Mug", "regular_price": "9.50"})
	require.NoError(t, err)

	dir := t.TempDir()
	httpAddr, hookAddr := testproc.FreeAddr(t), testproc.FreeAddr(t)
	hookURL := "http://" + hookAddr + hookPath
	conf := fmt.Sprintf(configTemplate,
		httpAddr, sim.URL(), wcsim.DefaultConsumerKey, wcsim.DefaultConsumerSecret,
		filepath.Join(dir, "poll-state.db"),
		hookAddr, hookPath, hookSecret, filepath.Join(dir, "spool"), hookURL,
		strings.Join(registeredTopics, ", "))
	confPath := filepath.Join(dir, "wooevents.yaml")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))

	p := testproc.Start(t, binPath, dir, nil, "-c", confPath)
	p.WaitReady(t, httpAddr)
	var lastErr atomic.Value // the last scrape's error, as a string
	lastErr.Store("none")
	scrape := func() families {
		f, err := scrapeMetrics(httpAddr)
		if err != nil {
			lastErr.Store(err.Error())
		}
		return f
	}
	scrapeErr := func(what string) func() string {
		return func() string { return fmt.Sprintf("%s (last scrape error: %s)", what, lastErr.Load()) }
	}

	// The registrar creates one active webhook per topic, delivering here.
	hookOf := map[string]int64{}
	p.Eventually(t, func() bool {
		clear(hookOf)
		for _, h := range sim.Webhooks() {
			if h.DeliveryURL == hookURL && h.Status == "active" {
				hookOf[h.Topic] = h.ID
			}
		}
		return len(hookOf) == len(registeredTopics)
	}, func() string { return fmt.Sprintf("webhooks not registered: %v", sim.Webhooks()) })

	// The backfill: both orders and the product, as created.
	p.Eventually(t, func() bool {
		f := scrape()
		return f.sum(mEvents, lbl{"resource": "orders", "action": "created"}) >= 2 &&
			f.sum(mEvents, lbl{"resource": "products", "action": "created"}) >= 1
	}, scrapeErr("backfill not counted"))

	// Changes after the backfill: delivered by webhook and found by the poll.
	require.NoError(t, sim.Update(wcsim.Orders, orderA, map[string]any{"status": "completed"}))
	require.NoError(t, sim.Trash(wcsim.Orders, orderB))
	delivered := map[string]int{}
	for _, d := range sim.Flush() {
		if d.Ping {
			continue
		}
		require.Truef(t, d.Success, "delivery %s of %d: %d %s", d.Topic, d.ObjectID, d.StatusCode, d.Error)
		require.Equal(t, http.StatusOK, d.StatusCode, d.Topic)
		delivered[d.Topic]++
	}
	require.Equal(t, 1, delivered["order.updated"], "deliveries: %v", delivered)
	require.Equal(t, 1, delivered["order.deleted"], "deliveries: %v", delivered)

	// A forged delivery and a signed body that is not JSON are refused.
	body := fmt.Sprintf(`{"id":%d,"status":"completed","date_modified_gmt":"2026-01-02T03:04:05"}`, orderA)
	require.Equal(t, http.StatusUnauthorized, postDelivery(t, hookURL, sim.URL(), body, sign(body, "not-the-secret")))
	require.Equal(t, http.StatusBadRequest, postDelivery(t, hookURL, sim.URL(), "<html>oops</html>", sign("<html>oops</html>", hookSecret)))

	// WooCommerce disables a webhook after failed deliveries; the next check
	// re-activates it.
	disabled := hookOf["order.updated"]
	require.NoError(t, sim.SetWebhookStatus(disabled, "disabled"))
	p.Eventually(t, func() bool {
		h, ok := sim.Webhook(disabled)
		return ok && h.Status == "active"
	}, func() string { return fmt.Sprintf("webhook %d not re-activated: %v", disabled, sim.Webhooks()) })

	var last atomic.Pointer[families]
	p.Eventually(t, func() bool {
		f := scrape()
		last.Store(&f)
		return f.sum(mEvents, lbl{"resource": "orders", "action": "updated"}) >= 1 &&
			f.sum(mEvents, lbl{"resource": "orders", "action": "deleted"}) >= 1 &&
			f.sum(mReenabled, nil) >= 1 &&
			f.sum(mAccepted, nil) >= 2 &&
			f.count(mSpoolDepth, nil) == 1 && f.sum(mSpoolDepth, nil) == 0 &&
			f.sum(mOutputSent, nil) >= f.sum(mEvents, nil)+f.sum(mAccepted, nil)
	}, func() string {
		msg := scrapeErr("series never reached the expected values")()
		if f := last.Load(); f != nil {
			for _, name := range []string{mEvents, mReenabled, mAccepted, mSpoolDepth, mInputReceived, mOutputSent} {
				msg += fmt.Sprintf("\n%s: %v", name, f.series(name))
			}
		}
		return msg
	})
	f := *last.Load()

	poll := lbl{"label": "poll"}
	hook := lbl{"label": "webhook"}

	// woocommerce_poll: requests by resource and status, events by action,
	// watermark lag per resource; the label and path benthos adds.
	assert.Equal(t, dto.MetricType_COUNTER, f.typeOf(mPollRequests))
	assert.Positive(t, f.sum(mPollRequests, poll.with("resource", "orders").with("status", "200")))
	assert.Positive(t, f.sum(mPollRequests, poll.with("resource", "products").with("status", "200")))
	assert.Zero(t, f.count(mPollRequests, lbl{"status": "error"}), "no failed requests: %v", f.series(mPollRequests))
	assert.Equal(t, []string{"root.input.broker.inputs.0"}, f.labelValues(mPollRequests, "path"))

	assert.Equal(t, dto.MetricType_COUNTER, f.typeOf(mEvents))
	assert.Equal(t, 2.0, f.sum(mEvents, poll.with("resource", "orders").with("action", "created")))
	assert.Equal(t, 1.0, f.sum(mEvents, poll.with("resource", "products").with("action", "created")))
	assert.Equal(t, 1.0, f.sum(mEvents, poll.with("resource", "orders").with("action", "updated")))
	assert.Equal(t, 1.0, f.sum(mEvents, poll.with("resource", "orders").with("action", "deleted")))
	assert.Equal(t, 5.0, f.sum(mEvents, nil), "each change counted once: %v", f.series(mEvents))

	assert.Equal(t, dto.MetricType_GAUGE, f.typeOf(mLag))
	for _, res := range []string{"orders", "products"} {
		require.Equal(t, 1, f.count(mLag, poll.with("resource", res)), "lag of %s: %v", res, f.series(mLag))
		lag := f.sum(mLag, poll.with("resource", res))
		assert.GreaterOrEqual(t, lag, 0.0, res)
		// The watermark is at most as old as the store's objects.
		assert.LessOrEqual(t, lag, time.Since(start).Seconds()+1, res)
	}

	// woocommerce_webhook: rejections by reason, accepted, spool depth,
	// re-enabled hooks, registration checks.
	assert.Equal(t, dto.MetricType_COUNTER, f.typeOf(mRejections))
	assert.Equal(t, 1.0, f.sum(mRejections, hook.with("reason", "bad_signature")), "%v", f.series(mRejections))
	assert.Equal(t, 1.0, f.sum(mRejections, hook.with("reason", "not_json")), "%v", f.series(mRejections))
	assert.Equal(t, []string{"root.input.broker.inputs.1"}, f.labelValues(mRejections, "path"))

	assert.Equal(t, dto.MetricType_COUNTER, f.typeOf(mAccepted))
	assert.Equal(t, 2.0, f.sum(mAccepted, hook), "order.updated and order.deleted")

	assert.Equal(t, dto.MetricType_GAUGE, f.typeOf(mSpoolDepth))
	require.Equal(t, 1, f.count(mSpoolDepth, hook), "%v", f.series(mSpoolDepth))
	assert.Zero(t, f.sum(mSpoolDepth, hook), "the spool drained: a gauge set, not incremented")

	assert.Equal(t, dto.MetricType_COUNTER, f.typeOf(mReenabled))
	assert.Equal(t, 1.0, f.sum(mReenabled, hook), "one disabled hook re-activated once")
	assert.GreaterOrEqual(t, f.sum(mRegisterChecks, hook), 2.0, "the first check and the one that re-enabled")

	// benthos' own series, through the same exporter.
	assert.Equal(t, dto.MetricType_COUNTER, f.typeOf(mInputReceived))
	assert.Equal(t, f.sum(mEvents, poll), f.sum(mInputReceived, poll), "%v", f.series(mInputReceived))
	assert.Equal(t, f.sum(mAccepted, hook), f.sum(mInputReceived, hook), "%v", f.series(mInputReceived))
	assert.Equal(t, dto.MetricType_COUNTER, f.typeOf(mOutputSent))
	assert.Equal(t, f.sum(mInputReceived, nil), f.sum(mOutputSent, lbl{"label": "sink", "path": "root.output"}),
		"everything received was sent: %v", f.series(mOutputSent))

	out := p.Out.String()
	for _, secret := range []string{hookSecret, wcsim.DefaultConsumerSecret} {
		assert.NotContains(t, out, secret, "a secret in the logs")
	}
}

// sign is WooCommerce's X-WC-Webhook-Signature: base64 HMAC-SHA256 of the body.
func sign(body, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// postDelivery POSTs an order.updated delivery and returns the status code.
func postDelivery(t *testing.T, url, source, body, signature string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-WC-Webhook-Source", source+"/")
	req.Header.Set("X-WC-Webhook-Topic", "order.updated")
	req.Header.Set("X-WC-Webhook-Resource", "order")
	req.Header.Set("X-WC-Webhook-Event", "updated")
	req.Header.Set("X-WC-Webhook-Signature", signature)
	req.Header.Set("X-WC-Webhook-ID", "999")
	req.Header.Set("X-WC-Webhook-Delivery-ID", "forged-1")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

//------------------------------------------------------------------------------

// families is one scrape, parsed.
type families map[string]*dto.MetricFamily

// lbl selects series whose labels include all of its pairs.
type lbl map[string]string

func (l lbl) with(k, v string) lbl {
	out := lbl{k: v}
	for lk, lv := range l {
		out[lk] = lv
	}
	return out
}

// scrapeMetrics GETs /metrics and parses the text exposition format.
func scrapeMetrics(httpAddr string) (families, error) {
	res, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", res.Status)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("GET /metrics: content type %q, want the text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	return fams, nil
}

func matches(m *dto.Metric, want lbl) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// sum adds the values of the matching series of name (0 when none).
func (f families) sum(name string, want lbl) float64 {
	var s float64
	for _, m := range f[name].GetMetric() {
		if matches(m, want) {
			s += value(m)
		}
	}
	return s
}

// count is the number of matching series of name.
func (f families) count(name string, want lbl) int {
	n := 0
	for _, m := range f[name].GetMetric() {
		if matches(m, want) {
			n++
		}
	}
	return n
}

// typeOf is the type of name; -1 when name is not exported.
func (f families) typeOf(name string) dto.MetricType {
	if fam, ok := f[name]; ok {
		return fam.GetType()
	}
	return -1
}

// labelValues are the distinct values of label key among name's series.
func (f families) labelValues(name, key string) []string {
	seen := map[string]bool{}
	for _, m := range f[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == key {
				seen[lp.GetValue()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// series renders name's series for failure messages.
func (f families) series(name string) []string {
	var out []string
	for _, m := range f[name].GetMetric() {
		var ls []string
		for _, lp := range m.GetLabel() {
			ls = append(ls, lp.GetName()+"="+lp.GetValue())
		}
		out = append(out, fmt.Sprintf("{%s} %g", strings.Join(ls, ","), value(m)))
	}
	return out
}
