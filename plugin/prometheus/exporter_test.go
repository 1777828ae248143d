package prometheus

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// parseText parses the Prometheus text format.
func parseText(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(r)
	require.NoError(t, err)
	return mfs
}

func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, error) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("content type %q", ct)
	}
	return parseText(t, resp.Body), nil
}

// find returns the metric of family name whose labels are exactly labels.
func find(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	mf, ok := mfs[name]
	if !ok {
		return nil
	}
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	return nil
}

func counterValue(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	m := find(mfs, name, labels)
	if m == nil || m.Counter == nil {
		return -1
	}
	return m.Counter.GetValue()
}

func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// registerTestProcessor adds a processor that emits metrics the way the
// wooevents inputs do, through service.Resources.Metrics().
func registerTestProcessor(t *testing.T, env *service.Environment) {
	t.Helper()
	require.NoError(t, env.RegisterProcessor("wootest_metrics", service.NewConfigSpec(),
		func(_ *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
			m := mgr.Metrics()
			return &metricsProc{
				events:   m.NewCounter("woocommerce_events_total", "resource", "action"),
				lag:      m.NewGauge("woocommerce_watermark_lag_seconds", "resource"),
				spool:    m.NewGauge("woocommerce_spool_depth"),
				requests: m.NewTimer("woocommerce_request_latency_ns", "resource"),
				odd:      m.NewCounter("woocommerce.odd-name", "bad-label"),
			}, nil
		}))
}

type metricsProc struct {
	events   *service.MetricCounter
	lag      *service.MetricGauge
	spool    *service.MetricGauge
	requests *service.MetricTimer
	odd      *service.MetricCounter
}

func (p *metricsProc) Process(_ context.Context, m *service.Message) (service.MessageBatch, error) {
	v, err := m.AsStructured()
	if err != nil {
		return nil, err
	}
	resource := v.(map[string]any)["resource"].(string)
	p.events.Incr(1, resource, "updated")
	p.lag.SetFloat64(2.5, resource)
	p.spool.Set(7)
	p.requests.Timing(int64(3*time.Millisecond), resource)
	p.odd.Incr(1, "bad\xffvalue")
	return service.MessageBatch{m}, nil
}

func (p *metricsProc) Close(context.Context) error { return nil }

func TestStreamServesMetrics(t *testing.T) {
	env := service.NewEnvironment()
	registerTestProcessor(t, env)
	addr := freeAddress(t)
	outFile := filepath.Join(t.TempDir(), "metrics.prom")

	b := env.NewStreamBuilder()
	require.NoError(t, b.SetYAML(fmt.Sprintf(`
logger:
  level: none
http:
  enabled: true
  address: %s
metrics:
  prometheus:
    file_output_path: %q
input:
  generate:
    interval: 1h # the first batch is immediate, the next one never comes
    batch_size: 3
    mapping: 'root.resource = ["order", "product", "order"].index(counter() - 1)'
pipeline:
  processors:
    - wootest_metrics: {}
output:
  drop: {}
`, addr, outFile)))
	s, err := b.Build()
	require.NoError(t, err)

	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(context.Background()) }()

	var mfs map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		var err error
		mfs, err = scrape(t, "http://"+addr+"/metrics")
		return err == nil && counterValue(mfs, "output_sent", map[string]string{"label": "", "path": "root.output"}) == 3
	}, 10*time.Second, 20*time.Millisecond)

	assert.Equal(t, 3.0, counterValue(mfs, "input_received", map[string]string{"label": "", "path": "root.input"}))
	// Benthos adds the component's label and path to plugin metrics.
	proc := func(kv ...string) map[string]string {
		m := map[string]string{"label": "", "path": "root.pipeline.processors.0"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	assert.Equal(t, 2.0, counterValue(mfs, "woocommerce_events_total", proc("resource", "order", "action", "updated")))
	assert.Equal(t, 1.0, counterValue(mfs, "woocommerce_events_total", proc("resource", "product", "action", "updated")))
	assert.Len(t, mfs["woocommerce_events_total"].GetMetric(), 2)
	assert.Equal(t, dto.MetricType_COUNTER, mfs["woocommerce_events_total"].GetType())

	lag := find(mfs, "woocommerce_watermark_lag_seconds", proc("resource", "product"))
	require.NotNil(t, lag)
	assert.Equal(t, dto.MetricType_GAUGE, mfs["woocommerce_watermark_lag_seconds"].GetType())
	assert.Equal(t, 2.5, lag.GetGauge().GetValue(), "float gauges keep their fraction")
	depth := find(mfs, "woocommerce_spool_depth", proc())
	require.NotNil(t, depth)
	assert.Equal(t, 7.0, depth.GetGauge().GetValue())

	latency := find(mfs, "woocommerce_request_latency_ns", proc("resource", "order"))
	require.NotNil(t, latency)
	require.NotNil(t, latency.Summary)
	assert.Equal(t, uint64(2), latency.Summary.GetSampleCount())
	assert.Equal(t, float64(6*time.Millisecond), latency.Summary.GetSampleSum())

	// Names and labels are sanitized; invalid UTF-8 label values are repaired.
	assert.Equal(t, 3.0, counterValue(mfs, "woocommerce_odd_name", proc("bad_label", "bad\uFFFDvalue")))

	// Benthos' own timers are exported too.
	require.Contains(t, mfs, "processor_latency_ns")

	// /stats serves the same registry.
	stats, err := scrape(t, "http://"+addr+"/stats")
	require.NoError(t, err)
	assert.Equal(t, 3.0, counterValue(stats, "input_received", map[string]string{"label": "", "path": "root.input"}))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Stop(ctx))
	require.NoError(t, <-runErr)

	// On shutdown every metric is written to file_output_path.
	f, err := os.Open(outFile)
	require.NoError(t, err)
	defer f.Close()
	fromFile := parseText(t, f)
	assert.Equal(t, 2.0, counterValue(fromFile, "woocommerce_events_total", proc("resource", "order", "action", "updated")))
	assert.Equal(t, 3.0, counterValue(fromFile, "output_sent", map[string]string{"label": "", "path": "root.output"}))
}

func newTestExporter(t *testing.T, yaml string) *exporter {
	t.Helper()
	conf, err := exporterSpec().ParseYAML(yaml, nil)
	require.NoError(t, err)
	e, err := newExporterFromConfig(conf, service.MockResources().Logger())
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

func handlerScrape(t *testing.T, e *exporter) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	e.HandlerFunc()(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return parseText(t, rec.Body)
}

func TestHistogramTiming(t *testing.T) {
	e := newTestExporter(t, `
use_histogram_timing: true
histogram_buckets: [0.01, 0.1, 1]
`)
	ctor := e.NewTimerCtor("woocommerce_request_latency_ns", "resource")
	ctor("order").Timing(int64(5 * time.Millisecond))
	ctor("order").Timing(int64(50 * time.Millisecond))
	ctor("order").Timing(int64(2 * time.Second))

	m := find(handlerScrape(t, e), "woocommerce_request_latency_ns", map[string]string{"resource": "order"})
	require.NotNil(t, m)
	h := m.GetHistogram()
	require.NotNil(t, h)
	assert.Equal(t, uint64(3), h.GetSampleCount())
	assert.InDelta(t, 2.055, h.GetSampleSum(), 1e-9, "observed in seconds")
	var cumulative []uint64
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
		cumulative = append(cumulative, b.GetCumulativeCount())
	}
	assert.Equal(t, []float64{0.01, 0.1, 1, math.Inf(1)}, bounds)
	assert.Equal(t, []uint64{1, 2, 2, 3}, cumulative)
}

func TestSummaryObjectives(t *testing.T) {
	e := newTestExporter(t, `
summary_quantiles_objectives:
  - quantile: 0.5
    error: 0.01
`)
	ctor := e.NewTimerCtor("t_ns")
	for i := 1; i <= 100; i++ {
		ctor().Timing(int64(i))
	}
	m := find(handlerScrape(t, e), "t_ns", map[string]string{})
	require.NotNil(t, m)
	s := m.GetSummary()
	require.Len(t, s.GetQuantile(), 1)
	assert.Equal(t, 0.5, s.GetQuantile()[0].GetQuantile())
	assert.InDelta(t, 50, s.GetQuantile()[0].GetValue(), 2)
	assert.Equal(t, 5050.0, s.GetSampleSum())
}

func TestConflictsDoNotBreakExport(t *testing.T) {
	e := newTestExporter(t, `{}`)
	e.NewCounterCtor("dup", "a")("x").Incr(2)
	// Same name, other type or other labels: not exported, no panic.
	e.NewGaugeCtor("dup", "a")("x").Set(100)
	e.NewCounterCtor("dup", "b")("y").Incr(5)
	// The same name and labels again (benthos does this per component).
	e.NewCounterCtor("dup", "a")("x").Incr(3)
	// Wrong number of label values.
	e.NewCounterCtor("dup", "a")("x", "extra").Incr(7)
	e.NewCounterCtor("dup", "a")().Incr(7)
	// Negative counts cannot decrement a Prometheus counter.
	e.NewCounterCtor("dup", "a")("x").Incr(-4)
	// Label names that clash after sanitizing.
	e.NewCounterCtor("clash", "a-b", "a_b")("1", "2").Incr(1)

	mfs := handlerScrape(t, e)
	assert.Equal(t, 5.0, counterValue(mfs, "dup", map[string]string{"a": "x"}))
	assert.Len(t, mfs["dup"].GetMetric(), 1)
	assert.NotContains(t, mfs, "clash")
}

func TestNameSanitizing(t *testing.T) {
	for in, want := range map[string]string{
		"input_received":     "input_received",
		"a.b-c d":            "a_b_c_d",
		"9lives":             "_9lives",
		"ns:sub_metric":      "ns:sub_metric",
		"über":               "_ber",
		"":                   "_",
		"woocommerce_events": "woocommerce_events",
	} {
		assert.Equal(t, want, metricName(in), in)
	}
	assert.Equal(t, "a_b", labelName("a:b"))
	assert.Equal(t, "_reserved", labelName("__reserved"))
	assert.Equal(t, "_1x", labelName("1x"))
}

func TestRuntimeCollectors(t *testing.T) {
	e := newTestExporter(t, `
add_go_metrics: true
add_process_metrics: true
`)
	mfs := handlerScrape(t, e)
	require.Contains(t, mfs, "go_goroutines")
	require.Contains(t, mfs, "process_cpu_seconds_total")

	plain := handlerScrape(t, newTestExporter(t, `{}`))
	assert.NotContains(t, plain, "go_goroutines")
	assert.NotContains(t, plain, "process_cpu_seconds_total")
}

type pushRecord struct {
	method, path, user, pass string
	authOK                   bool
	contentType              string
	body                     []byte
}

func TestPushGateway(t *testing.T) {
	var mu sync.Mutex
	var pushes []pushRecord
	got := make(chan struct{}, 100)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, ok := r.BasicAuth()
		mu.Lock()
		pushes = append(pushes, pushRecord{r.Method, r.URL.Path, user, pass, ok, r.Header.Get("Content-Type"), body})
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
		got <- struct{}{}
	}))
	defer gw.Close()

	e := newTestExporter(t, fmt.Sprintf(`
push_url: %s
push_interval: 10ms
push_job_name: wooevents_test
push_basic_auth:
  username: pusher
  password: s3cret
`, gw.URL))
	e.NewCounterCtor("woocommerce_webhooks_reenabled_total")().Incr(4)

	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no periodic push")
	}
	require.NoError(t, e.Close(context.Background()))

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(pushes), 2, "periodic push plus the final push on close")
	last := pushes[len(pushes)-1]
	assert.Equal(t, http.MethodPut, last.method)
	assert.Equal(t, "/metrics/job/wooevents_test", last.path)
	assert.True(t, last.authOK)
	assert.Equal(t, "pusher", last.user)
	assert.Equal(t, "s3cret", last.pass)
	dec := expfmt.NewDecoder(bytes.NewReader(last.body), expfmt.Format(last.contentType))
	var mf dto.MetricFamily
	require.NoError(t, dec.Decode(&mf))
	assert.Equal(t, "woocommerce_webhooks_reenabled_total", mf.GetName())
	require.Len(t, mf.GetMetric(), 1)
	assert.Equal(t, 4.0, mf.GetMetric()[0].GetCounter().GetValue())
}

func TestPushOnlyOnCloseAndErrorsHideSecrets(t *testing.T) {
	var calls int
	var mu sync.Mutex
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "nope", http.StatusInternalServerError)
	}))
	defer gw.Close()

	withCreds := strings.Replace(gw.URL, "http://", "http://user:hunter2@", 1)
	e := newTestExporter(t, fmt.Sprintf(`push_url: %s`, withCreds))
	assert.Nil(t, e.stopPush, "no push loop without push_interval")
	e.NewCounterCtor("c")().Incr(1)

	err := e.Close(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "500")
	assert.NotContains(t, err.Error(), "hunter2")
	mu.Lock()
	assert.Equal(t, 1, calls)
	mu.Unlock()
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unsorted buckets":  {`histogram_buckets: [1, 0.1]`, "ascending"},
		"bad quantile":      {"summary_quantiles_objectives: [{quantile: 1.5, error: 0.1}]", "between 0 and 1"},
		"bad push scheme":   {`push_url: ftp://example.com`, "http or https"},
		"bad push interval": {"push_url: http://example.com\npush_interval: 0s", "push_interval must be positive"},
		"empty job":         {"push_url: http://example.com\npush_job_name: ''", "push_job_name must not be empty"},
	} {
		t.Run(name, func(t *testing.T) {
			conf, err := exporterSpec().ParseYAML(tc.yaml, nil)
			require.NoError(t, err)
			_, err = newExporterFromConfig(conf, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// Every series carries a HELP line: the description from helpTexts for the
// metrics wooevents and benthos register, a generic one naming the kind for
// any other.
func TestHelpTexts(t *testing.T) {
	e := newTestExporter(t, `{}`)
	e.NewCounterCtor("woocommerce_events_total", "resource", "action")("order", "created").Incr(1)
	e.NewGaugeCtor("woocommerce_backfill_remaining", "resource")("orders").Set(12)
	e.NewTimerCtor("processor_latency_ns")().Timing(5)
	e.NewCounterCtor("some_custom_count")().Incr(1)
	mfs := handlerScrape(t, e)

	assert.Equal(t, helpTexts["woocommerce_events_total"], mfs["woocommerce_events_total"].GetHelp())
	assert.Contains(t, mfs["woocommerce_events_total"].GetHelp(), "emitted, by resource and action")
	assert.Equal(t, helpTexts["woocommerce_backfill_remaining"], mfs["woocommerce_backfill_remaining"].GetHelp())
	assert.Equal(t, helpTexts["processor_latency_ns"]+" (nanoseconds)", mfs["processor_latency_ns"].GetHelp())
	assert.Equal(t, "Benthos counter some_custom_count", mfs["some_custom_count"].GetHelp())
	assert.True(t, HasHelp("woocommerce_scan_age_seconds"))
	assert.False(t, HasHelp("some_custom_count"))

	// The poller's, the webhook receiver's and the callback's series all have
	// a description of their own.
	for _, name := range []string{
		"woocommerce_poll_requests_total", "woocommerce_events_total", "woocommerce_watermark_lag_seconds",
		"woocommerce_backfill_remaining", "woocommerce_last_poll_timestamp_seconds", "woocommerce_scan_age_seconds",
		"woocommerce_webhook_accepted_total", "woocommerce_webhook_rejections_total", "woocommerce_webhook_pings_total",
		"woocommerce_webhook_delete_checks_total", "woocommerce_spool_depth", "woocommerce_webhooks_reenabled_total",
		"woocommerce_webhook_register_errors_total", "woocommerce_webhook_register_checks_total",
		"callback_delivered", "callback_failed", "callback_retries",
	} {
		assert.True(t, HasHelp(name), name)
	}
}
