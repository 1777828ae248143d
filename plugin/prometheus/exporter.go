// Package prometheus holds the `prometheus` metrics exporter: every benthos
// and plugin metric (counters, gauges, timers, with labels) in a Prometheus
// registry, served in the text exposition format at `/metrics` and `/stats` of
// the benthos HTTP server, optionally pushed to a Pushgateway and written to a
// file on shutdown.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	pmFieldUseHistogramTiming = "use_histogram_timing"
	pmFieldHistogramBuckets   = "histogram_buckets"
	pmFieldSummaryObjectives  = "summary_quantiles_objectives"
	pmFieldSummaryQuantile    = "quantile"
	pmFieldSummaryError       = "error"
	pmFieldAddProcessMetrics  = "add_process_metrics"
	pmFieldAddGoMetrics       = "add_go_metrics"
	pmFieldPushURL            = "push_url"
	pmFieldPushInterval       = "push_interval"
	pmFieldPushJobName        = "push_job_name"
	pmFieldPushBasicAuth      = "push_basic_auth"
	pmFieldPushUsername       = "username"
	pmFieldPushPassword       = "password"
	pmFieldFileOutputPath     = "file_output_path"
)

func exporterSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Summary("Hosts the endpoints `/metrics` and `/stats` for Prometheus scraping, optionally pushing to a Pushgateway.").
		Description(`
Metrics are served by the service-wide HTTP server (see the `+"`http`"+` section: `+"`http.address`"+`), in the
Prometheus text format.

Every series has a HELP text that says what it means: the metrics of wooevents' components (woocommerce_poll,
woocommerce_webhook, http_callback) and benthos' own (input_received, output_sent, ...) are described; any other
name gets a generic one naming its kind.

Metric and label names are made valid Prometheus names: characters other than letters, digits, `+"`_`"+` and `+"`:`"+`
(labels: letters, digits and `+"`_`"+`) become `+"`_`"+`, and a leading digit gets a `+"`_`"+` prefix. A name registered
again with another type or other label names is not exported (an error is logged once) rather than stopping the
service.

Timers (benthos measures them in nanoseconds, names ending in `+"`_ns`"+`) are exported as summaries of nanoseconds
by default, or with `+"`use_histogram_timing`"+` as histograms of seconds, the unit of `+"`histogram_buckets`"+`.`).
		Fields(
			service.NewBoolField(pmFieldUseHistogramTiming).
				Description("Export timers as histograms (observed in seconds) instead of summaries (observed in nanoseconds).").
				Default(false).
				Advanced(),
			service.NewFloatListField(pmFieldHistogramBuckets).
				Description("Histogram buckets for timers, in seconds, ascending. Empty means the client library's default buckets (5ms to 10s). Used with `use_histogram_timing`.").
				Example([]float64{0.001, 0.01, 0.1, 1, 10}).
				Default([]any{}).
				Advanced(),
			service.NewObjectListField(pmFieldSummaryObjectives,
				service.NewFloatField(pmFieldSummaryQuantile).
					Description("The quantile to estimate, between 0 and 1.").
					Example(0.99),
				service.NewFloatField(pmFieldSummaryError).
					Description("The allowed absolute error of the estimate.").
					Example(0.001),
			).
				Description("The quantiles summaries estimate, each with its allowed error. Used unless `use_histogram_timing` is set.").
				Default([]any{
					map[string]any{pmFieldSummaryQuantile: 0.5, pmFieldSummaryError: 0.05},
					map[string]any{pmFieldSummaryQuantile: 0.9, pmFieldSummaryError: 0.01},
					map[string]any{pmFieldSummaryQuantile: 0.99, pmFieldSummaryError: 0.001},
				}).
				Advanced(),
			service.NewBoolField(pmFieldAddProcessMetrics).
				Description("Also export process metrics (`process_*`: CPU, memory, open files).").
				Default(false).
				Advanced(),
			service.NewBoolField(pmFieldAddGoMetrics).
				Description("Also export Go runtime metrics (`go_*`: goroutines, GC, heap).").
				Default(false).
				Advanced(),
			service.NewURLField(pmFieldPushURL).
				Description("A Prometheus Pushgateway to push metrics to, every `push_interval` and once more on shutdown.").
				Example("http://pushgateway:9091").
				Optional().
				Advanced(),
			service.NewDurationField(pmFieldPushInterval).
				Description("How often to push to `push_url`. When unset metrics are pushed only on shutdown.").
				Example("10s").
				Optional().
				Advanced(),
			service.NewStringField(pmFieldPushJobName).
				Description("The `job` label of pushed metrics.").
				Default("wooevents_push").
				Advanced(),
			service.NewObjectField(pmFieldPushBasicAuth,
				service.NewStringField(pmFieldPushUsername).
					Description("The Basic Authentication username. Empty disables Basic Authentication.").
					Default(""),
				service.NewStringField(pmFieldPushPassword).
					Description("The Basic Authentication password.").
					Default("").
					Secret(),
			).
				Description("Basic Authentication credentials for the Pushgateway.").
				Advanced(),
			service.NewStringField(pmFieldFileOutputPath).
				Description("A file to write all metrics to, in the text format, on shutdown. Empty disables it.").
				Default("").
				Advanced(),
		).
		Example("Scrape", "Serve metrics at `http://<host>:4195/metrics`.", `
http:
  address: 0.0.0.0:4195
metrics:
  prometheus: {}
`).
		Example("Histograms and push", "Histogram timers, and push to a Pushgateway every 30s.", `
metrics:
  prometheus:
    use_histogram_timing: true
    histogram_buckets: [0.005, 0.05, 0.5, 5]
    push_url: http://pushgateway:9091
    push_interval: 30s
    push_basic_auth:
      username: wooevents
      password: ${PUSHGATEWAY_PASSWORD}
`)
}

func init() {
	service.MustRegisterMetricsExporter("prometheus", exporterSpec(),
		func(conf *service.ParsedConfig, log *service.Logger) (service.MetricsExporter, error) {
			return newExporterFromConfig(conf, log)
		})
}

//------------------------------------------------------------------------------

type metricKind int

const (
	kindCounter metricKind = iota
	kindGauge
	kindTimer
)

func (k metricKind) String() string {
	switch k {
	case kindCounter:
		return "counter"
	case kindGauge:
		return "gauge"
	default:
		return "timer"
	}
}

// family is one registered metric name.
type family struct {
	kind      metricKind
	labelKeys []string
	counter   *prom.CounterVec
	gauge     *prom.GaugeVec
	timer     prom.ObserverVec
}

type exporter struct {
	log *service.Logger
	reg *prom.Registry

	useHistogram bool
	buckets      []float64
	objectives   map[float64]float64

	mu       sync.Mutex
	families map[string]*family
	rejected map[string]bool // names already reported as conflicting

	pusher       *push.Pusher
	pushURL      string // as configured, for redaction
	pushRedacted string
	stopPush     chan struct{}
	pushDone     chan struct{}

	filePath string

	closeOnce sync.Once
	closeErr  error
}

func newExporterFromConfig(conf *service.ParsedConfig, log *service.Logger) (*exporter, error) {
	e := &exporter{
		log:      log,
		reg:      prom.NewRegistry(),
		families: map[string]*family{},
		rejected: map[string]bool{},
	}
	var err error
	if e.useHistogram, err = conf.FieldBool(pmFieldUseHistogramTiming); err != nil {
		return nil, err
	}
	if e.buckets, err = conf.FieldFloatList(pmFieldHistogramBuckets); err != nil {
		return nil, err
	}
	if len(e.buckets) == 0 {
		e.buckets = prom.DefBuckets
	} else if !slices.IsSorted(e.buckets) {
		return nil, fmt.Errorf("%s must be in ascending order, got %v", pmFieldHistogramBuckets, e.buckets)
	}
	objConfs, err := conf.FieldObjectList(pmFieldSummaryObjectives)
	if err != nil {
		return nil, err
	}
	e.objectives = make(map[float64]float64, len(objConfs))
	for i, oc := range objConfs {
		q, err := oc.FieldFloat(pmFieldSummaryQuantile)
		if err != nil {
			return nil, err
		}
		qErr, err := oc.FieldFloat(pmFieldSummaryError)
		if err != nil {
			return nil, err
		}
		if q < 0 || q > 1 || qErr < 0 || qErr > 1 {
			return nil, fmt.Errorf("%s[%d]: quantile and error must be between 0 and 1, got %v and %v", pmFieldSummaryObjectives, i, q, qErr)
		}
		e.objectives[q] = qErr
	}

	if addProc, err := conf.FieldBool(pmFieldAddProcessMetrics); err != nil {
		return nil, err
	} else if addProc {
		if err := e.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, fmt.Errorf("register process metrics: %w", err)
		}
	}
	if addGo, err := conf.FieldBool(pmFieldAddGoMetrics); err != nil {
		return nil, err
	} else if addGo {
		if err := e.reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, fmt.Errorf("register go metrics: %w", err)
		}
	}

	if e.filePath, err = conf.FieldString(pmFieldFileOutputPath); err != nil {
		return nil, err
	}

	if conf.Contains(pmFieldPushURL) {
		if err := e.initPush(conf); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *exporter) initPush(conf *service.ParsedConfig) error {
	u, err := conf.FieldURL(pmFieldPushURL)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s must be an http or https URL, got %q", pmFieldPushURL, u.Redacted())
	}
	job, err := conf.FieldString(pmFieldPushJobName)
	if err != nil {
		return err
	}
	if job == "" {
		return fmt.Errorf("%s must not be empty when %s is set", pmFieldPushJobName, pmFieldPushURL)
	}
	e.pushURL = u.String()
	e.pushRedacted = u.Redacted()
	e.pusher = push.New(e.pushURL, job).Gatherer(e.reg)

	user, err := conf.FieldString(pmFieldPushBasicAuth, pmFieldPushUsername)
	if err != nil {
		return err
	}
	pass, err := conf.FieldString(pmFieldPushBasicAuth, pmFieldPushPassword)
	if err != nil {
		return err
	}
	if user != "" {
		e.pusher = e.pusher.BasicAuth(user, pass)
	}

	if !conf.Contains(pmFieldPushInterval) {
		return nil
	}
	interval, err := conf.FieldDuration(pmFieldPushInterval)
	if err != nil {
		return err
	}
	if interval <= 0 {
		return fmt.Errorf("%s must be positive, got %s", pmFieldPushInterval, interval)
	}
	e.stopPush = make(chan struct{})
	e.pushDone = make(chan struct{})
	go e.pushLoop(interval)
	return nil
}

func (e *exporter) pushLoop(interval time.Duration) {
	defer close(e.pushDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.stopPush:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			if err := e.push(ctx); err != nil {
				e.log.Errorf("Failed to push metrics: %v", err)
			}
			cancel()
		}
	}
}

// push sends all metrics to the Pushgateway, with URL credentials redacted
// from errors.
func (e *exporter) push(ctx context.Context) error {
	err := e.pusher.PushContext(ctx)
	if err != nil && e.pushURL != e.pushRedacted {
		err = errors.New(strings.ReplaceAll(err.Error(), e.pushURL, e.pushRedacted))
	}
	return err
}

// HandlerFunc is picked up by benthos and served at /metrics and /stats.
func (e *exporter) HandlerFunc() http.HandlerFunc {
	return promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP
}

func (e *exporter) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		var errs []error
		if e.stopPush != nil {
			close(e.stopPush)
			<-e.pushDone
		}
		if e.pusher != nil {
			if err := e.push(ctx); err != nil {
				errs = append(errs, fmt.Errorf("final push of metrics: %w", err))
			}
		}
		if e.filePath != "" {
			if err := prom.WriteToTextfile(e.filePath, e.reg); err != nil {
				errs = append(errs, fmt.Errorf("write metrics to %s: %w", e.filePath, err))
			}
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

//------------------------------------------------------------------------------

// metricName makes name a valid Prometheus metric name.
func metricName(name string) string {
	return sanitizeName(name, true)
}

// labelName makes name a valid Prometheus label name; names starting with
// "__" are reserved by Prometheus, so extra leading underscores are dropped.
func labelName(name string) string {
	n := sanitizeName(name, false)
	for strings.HasPrefix(n, "__") {
		n = n[1:]
	}
	return n
}

func sanitizeName(name string, allowColon bool) string {
	if name == "" {
		return "_"
	}
	var b strings.Builder
	for i, r := range name {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') ||
			(i > 0 && r >= '0' && r <= '9') || (allowColon && r == ':')
		switch {
		case ok:
			b.WriteRune(r)
		case i == 0 && r >= '0' && r <= '9':
			b.WriteByte('_')
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// labelValues makes values valid UTF-8, as Prometheus requires.
func labelValues(values []string) []string {
	var out []string
	for i, v := range values {
		if utf8.ValidString(v) {
			continue
		}
		if out == nil {
			out = slices.Clone(values)
		}
		out[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	if out == nil {
		return values
	}
	return out
}

// family returns the registered family of name, registering it when new. It
// returns nil (after logging once) when name is already registered with
// another kind or other label keys, or cannot be registered.
func (e *exporter) family(kind metricKind, rawName string, rawKeys []string) *family {
	name := metricName(rawName)
	keys := make([]string, len(rawKeys))
	for i, k := range rawKeys {
		keys[i] = labelName(k)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.families[name]; ok {
		if f.kind == kind && slices.Equal(f.labelKeys, keys) {
			return f
		}
		e.reject(name, fmt.Errorf("already registered as a %s with labels %v, now requested as a %s with labels %v", f.kind, f.labelKeys, kind, keys))
		return nil
	}
	if e.rejected[name] {
		return nil
	}

	f := &family{kind: kind, labelKeys: keys}
	var c prom.Collector
	help := helpFor(kind, rawName)
	switch kind {
	case kindCounter:
		f.counter = prom.NewCounterVec(prom.CounterOpts{Name: name, Help: help}, keys)
		c = f.counter
	case kindGauge:
		f.gauge = prom.NewGaugeVec(prom.GaugeOpts{Name: name, Help: help}, keys)
		c = f.gauge
	case kindTimer:
		if e.useHistogram {
			h := prom.NewHistogramVec(prom.HistogramOpts{Name: name, Help: help + " (seconds)", Buckets: e.buckets}, keys)
			f.timer, c = h, h
		} else {
			s := prom.NewSummaryVec(prom.SummaryOpts{Name: name, Help: help + " (nanoseconds)", Objectives: e.objectives}, keys)
			f.timer, c = s, s
		}
	}
	if err := e.reg.Register(c); err != nil {
		e.reject(name, err)
		return nil
	}
	e.families[name] = f
	return f
}

// reject logs a metric that cannot be exported, once per name. Callers hold
// e.mu.
func (e *exporter) reject(name string, err error) {
	if e.rejected[name] {
		return
	}
	e.rejected[name] = true
	e.log.Errorf("Metric %s is not exported: %v", name, err)
}

func (e *exporter) rejectLabels(name string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reject(name+" (labels)", err)
}

func (e *exporter) NewCounterCtor(name string, labelKeys ...string) service.MetricsExporterCounterCtor {
	f := e.family(kindCounter, name, labelKeys)
	return func(values ...string) service.MetricsExporterCounter {
		if f == nil {
			return noop{}
		}
		c, err := f.counter.GetMetricWithLabelValues(labelValues(values)...)
		if err != nil {
			e.rejectLabels(metricName(name), err)
			return noop{}
		}
		return counter{c}
	}
}

func (e *exporter) NewGaugeCtor(name string, labelKeys ...string) service.MetricsExporterGaugeCtor {
	f := e.family(kindGauge, name, labelKeys)
	return func(values ...string) service.MetricsExporterGauge {
		if f == nil {
			return noop{}
		}
		g, err := f.gauge.GetMetricWithLabelValues(labelValues(values)...)
		if err != nil {
			e.rejectLabels(metricName(name), err)
			return noop{}
		}
		return gauge{g}
	}
}

func (e *exporter) NewTimerCtor(name string, labelKeys ...string) service.MetricsExporterTimerCtor {
	f := e.family(kindTimer, name, labelKeys)
	return func(values ...string) service.MetricsExporterTimer {
		if f == nil {
			return noop{}
		}
		o, err := f.timer.GetMetricWithLabelValues(labelValues(values)...)
		if err != nil {
			e.rejectLabels(metricName(name), err)
			return noop{}
		}
		return timer{o: o, seconds: e.useHistogram}
	}
}

//------------------------------------------------------------------------------

type counter struct{ c prom.Counter }

// Incr ignores negative counts: Prometheus counters only go up.
func (c counter) Incr(n int64) {
	if n > 0 {
		c.c.Add(float64(n))
	}
}

func (c counter) IncrFloat64(n float64) {
	if n > 0 {
		c.c.Add(n)
	}
}

type gauge struct{ g prom.Gauge }

func (g gauge) Set(v int64)          { g.g.Set(float64(v)) }
func (g gauge) SetFloat64(v float64) { g.g.Set(v) }

type timer struct {
	o       prom.Observer
	seconds bool
}

func (t timer) Timing(ns int64) {
	if t.seconds {
		t.o.Observe(float64(ns) / float64(time.Second))
		return
	}
	t.o.Observe(float64(ns))
}

// noop stands in for metrics that cannot be exported.
type noop struct{}

func (noop) Incr(int64)          {}
func (noop) IncrFloat64(float64) {}
func (noop) Set(int64)           {}
func (noop) SetFloat64(float64)  {}
func (noop) Timing(int64)        {}
