package ceserve

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/wcwebhook"
)

// Names of the pipeline metrics the status is read from. The poll input's
// are not exported by its package; the status tests fail if they change.
const (
	metricOutputSent   = "output_sent"
	metricPollRequests = "woocommerce_poll_requests_total"
	metricPollLag      = "woocommerce_watermark_lag_seconds"
	// Output labels of the pipeline ceimport writes.
	labelCallback   = "callback"
	labelDeadLetter = "dead_letter"
)

// Instance states.
const (
	StateRunning  = "running"
	StateFailing  = "failing"
	StateStarting = "starting"
	StateStopped  = "stopped"
)

// health is one part of an instance: its pipeline, its store side (polls,
// webhook registration) or its callback.
type health struct {
	failing bool
	reason  string
	since   time.Time
}

func (h *health) fail(reason string, now time.Time) {
	if !h.failing {
		h.since = now
	}
	h.failing, h.reason = true, reason
}

func (h *health) ok(now time.Time) {
	if h.failing {
		h.since = now
	}
	h.failing, h.reason = false, ""
}

// status follows one instance from its pipeline's metrics and log lines.
type status struct {
	mu      sync.Mutex
	now     func() time.Time
	mode    string
	running bool
	started time.Time

	pipeline, store, callback health
	inputLog, outputLog       string // the latest warning or error of each side

	lastPoll, lastPollOK time.Time
	lastPollStatus       string
	idleUntil            time.Time // the pipeline is stopped until then (idle)
	lag                  map[string]float64

	delivered, deadLettered         int64
	lastDelivered, lastDeadLettered time.Time

	hookChecks, hookErrors, hookErrorsLogged  int64
	hookAccepted, hookRejected, hookReenabled int64
	lastHookCheck, lastHookAccepted           time.Time

	// changed is closed and replaced on every change (waitFor).
	changed chan struct{}
}

func newStatus(mode string) *status {
	return &status{now: time.Now, mode: mode, lag: map[string]float64{}, changed: make(chan struct{})}
}

// update runs fn under the lock and wakes waitFor.
func (s *status) update(fn func(now time.Time)) {
	s.mu.Lock()
	fn(s.now())
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// waitFor waits until cond (called under the lock) returns done, or ctx
// ends.
func (s *status) waitFor(ctx context.Context, cond func() (done bool)) bool {
	for {
		s.mu.Lock()
		done := cond()
		ch := s.changed
		s.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// restart forgets what the previous configuration's pipeline reported;
// the event counts are kept.
func (s *status) restart(mode string) {
	s.update(func(time.Time) {
		s.mode = mode
		s.pipeline, s.store, s.callback = health{}, health{}, health{}
		s.inputLog, s.outputLog = "", ""
		s.lastPoll, s.lastPollOK, s.lastPollStatus = time.Time{}, time.Time{}, ""
		s.lag = map[string]float64{}
		s.hookChecks, s.hookErrors, s.hookErrorsLogged = 0, 0, 0
		s.lastHookCheck = time.Time{}
	})
}

func (s *status) pipelineStarted() {
	s.update(func(now time.Time) {
		if s.idleUntil.IsZero() {
			s.started = now // not a wake-up from idle: the instance (re)started
		}
		s.running, s.idleUntil = true, time.Time{}
		s.pipeline.ok(now)
	})
}

// pipelineIdle records that the pipeline was stopped, idle, until next.
func (s *status) pipelineIdle(next time.Time) {
	s.update(func(time.Time) { s.idleUntil = next })
}

func (s *status) pipelineFailed(reason string) {
	s.update(func(now time.Time) { s.pipeline.fail(reason, now) })
}

func (s *status) pipelineStopped() {
	s.update(func(time.Time) { s.running, s.idleUntil = false, time.Time{} })
}

// counter is called for every counter increment of the pipeline.
func (s *status) counter(name string, labels map[string]string, n int64) {
	switch name {
	case metricOutputSent:
		switch labels["label"] {
		case labelCallback:
			s.update(func(now time.Time) {
				s.delivered += n
				s.lastDelivered = now
				s.callback.ok(now)
			})
		case labelDeadLetter:
			s.update(func(now time.Time) {
				s.deadLettered += n
				s.lastDeadLettered = now
				reason := "notifications are dead-lettered"
				if s.outputLog != "" {
					reason += ": " + s.outputLog
				}
				s.callback.fail(reason, now)
			})
		}
	case metricPollRequests:
		code := labels["status"]
		s.update(func(now time.Time) {
			s.lastPoll, s.lastPollStatus = now, code
			if strings.HasPrefix(code, "2") {
				s.lastPollOK = now
				s.store.ok(now)
				return
			}
			reason := "the store answered " + code + " to a poll of " + labels["resource"]
			if code == "error" {
				reason = "the store did not answer a poll of " + labels["resource"]
			}
			if s.inputLog != "" {
				reason += ": " + s.inputLog
			}
			s.store.fail(reason, now)
		})
	case wcwebhook.MetricChecks:
		s.update(func(now time.Time) {
			s.hookChecks += n
			s.lastHookCheck = now
			s.store.ok(now)
		})
	case wcwebhook.MetricRegisterErrs:
		// The input logs the reason right after counting the error.
		s.update(func(now time.Time) {
			s.hookErrors += n
			s.lastHookCheck = now
			s.store.fail("webhook registration failed", now)
		})
	case wcwebhook.MetricAccepted:
		s.update(func(now time.Time) { s.hookAccepted += n; s.lastHookAccepted = now })
	case wcwebhook.MetricRejections:
		s.update(func(time.Time) { s.hookRejected += n })
	case wcwebhook.MetricReenabled:
		s.update(func(time.Time) { s.hookReenabled += n })
	}
}

// gauge is called for every gauge update of the pipeline.
func (s *status) gauge(name string, labels map[string]string, v float64) {
	if name == metricPollLag {
		s.update(func(time.Time) { s.lag[labels["resource"]] = v })
	}
}

// logged is called for every warning or error the pipeline logs; path is
// the component's path (root.input, root.output.fallback.0, ...).
func (s *status) logged(level slog.Level, path, msg string) {
	switch {
	case strings.HasPrefix(path, "root.input"):
		if level < slog.LevelError {
			return
		}
		s.update(func(now time.Time) {
			s.inputLog = msg
			if s.hookErrors > s.hookErrorsLogged {
				s.hookErrorsLogged = s.hookErrors
			}
			s.store.fail(msg, now)
		})
	case strings.HasPrefix(path, "root.output"):
		s.update(func(now time.Time) {
			s.outputLog = msg
			s.callback.fail(msg, now)
		})
	}
}

// firstRegistration waits for the webhook input's first registration
// check: nil when it succeeded, its logged reason when it failed. ok is
// false when ctx ended first.
func (s *status) firstRegistration(ctx context.Context) (reason string, ok bool) {
	var failedAt time.Time
	ok = s.waitFor(ctx, func() bool {
		switch {
		case s.hookChecks > 0:
			reason = ""
			return true
		case s.hookErrorsLogged > 0:
			reason = s.inputLog
			return true
		case s.hookErrors > 0:
			// Counted but not logged yet: the log line follows at once;
			// give up on it after a second.
			if failedAt.IsZero() {
				failedAt = s.now()
			}
			if s.now().Sub(failedAt) > time.Second {
				reason = s.store.reason
				return true
			}
		}
		return false
	})
	return reason, ok
}

// Status is an instance's state as the API shows it.
type Status struct {
	State               string     `json:"state"`
	Reason              string     `json:"reason,omitempty"`
	Since               *time.Time `json:"since,omitempty"`
	Mode                string     `json:"mode"`
	LastPoll            *time.Time `json:"lastPoll,omitempty"`
	LastPollStatus      string     `json:"lastPollStatus,omitempty"`
	LastSuccessfulPoll  *time.Time `json:"lastSuccessfulPoll,omitempty"`
	WatermarkLagSeconds *float64   `json:"watermarkLagSeconds,omitempty"`
	// IdleUntil is set while a polling instance's pipeline is stopped
	// because it has nothing to do until its next poll (Options.IdleStop).
	IdleUntil *time.Time      `json:"idleUntil,omitempty"`
	Webhooks  *WebhookHealth  `json:"webhooks,omitempty"`
	Events    EventCounts     `json:"events"`
	Parts     map[string]Part `json:"parts"`
}

// Part is the health of one side of an instance.
type Part struct {
	OK     bool       `json:"ok"`
	Reason string     `json:"reason,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
}

// WebhookHealth is a webhook instance's side of the store.
type WebhookHealth struct {
	Registered   bool       `json:"registered"`
	LastCheck    *time.Time `json:"lastCheck,omitempty"`
	Checks       int64      `json:"checks"`
	CheckErrors  int64      `json:"checkErrors"`
	Reenabled    int64      `json:"reenabled"`
	Received     int64      `json:"received"`
	LastReceived *time.Time `json:"lastReceived,omitempty"`
	Rejected     int64      `json:"rejected"`
}

// EventCounts are the notifications since the server started.
type EventCounts struct {
	Delivered        int64      `json:"delivered"`
	DeadLettered     int64      `json:"deadLettered"`
	LastDelivered    *time.Time `json:"lastDelivered,omitempty"`
	LastDeadLettered *time.Time `json:"lastDeadLettered,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Millisecond)
	return &t
}

func (h health) part() Part {
	return Part{OK: !h.failing, Reason: h.reason, Since: timePtr(h.since)}
}

func (s *status) snapshot() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Status{
		Mode: s.mode,
		Events: EventCounts{
			Delivered: s.delivered, DeadLettered: s.deadLettered,
			LastDelivered: timePtr(s.lastDelivered), LastDeadLettered: timePtr(s.lastDeadLettered),
		},
		Parts: map[string]Part{"pipeline": s.pipeline.part(), "store": s.store.part(), "callback": s.callback.part()},
	}
	switch {
	case s.pipeline.failing:
		out.State, out.Reason, out.Since = StateFailing, "pipeline: "+s.pipeline.reason, timePtr(s.pipeline.since)
	case s.store.failing:
		out.State, out.Reason, out.Since = StateFailing, "store: "+s.store.reason, timePtr(s.store.since)
	case s.callback.failing:
		out.State, out.Reason, out.Since = StateFailing, "callback: "+s.callback.reason, timePtr(s.callback.since)
	case !s.running:
		out.State = StateStopped
	case s.mode == ModeWebhook && s.hookChecks == 0, s.mode == ModePolling && s.lastPollOK.IsZero():
		out.State, out.Since = StateStarting, timePtr(s.started)
	default:
		out.State, out.Since = StateRunning, timePtr(s.started)
	}
	if s.mode == ModePolling {
		out.LastPoll, out.LastPollStatus, out.LastSuccessfulPoll = timePtr(s.lastPoll), s.lastPollStatus, timePtr(s.lastPollOK)
		out.IdleUntil = timePtr(s.idleUntil)
		if len(s.lag) > 0 {
			var m float64
			for _, v := range s.lag {
				m = max(m, v)
			}
			out.WatermarkLagSeconds = &m
		}
	} else {
		out.Webhooks = &WebhookHealth{
			Registered: s.hookChecks > 0 && !s.store.failing, LastCheck: timePtr(s.lastHookCheck),
			Checks: s.hookChecks, CheckErrors: s.hookErrors, Reenabled: s.hookReenabled,
			Received: s.hookAccepted, LastReceived: timePtr(s.lastHookAccepted), Rejected: s.hookRejected,
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Metrics: every pipeline metric goes to the status and, with the instance
// id as an extra label, to the server's shared exporter.

// instanceMetrics is the metrics exporter of one instance's stream.
type instanceMetrics struct {
	st     *status
	shared *service.Metrics // nil: no shared exporter
	id     string
}

// InstanceLabel is the label carrying the instance id on the shared
// metrics.
const InstanceLabel = "wooevents_instance"

func labelMap(keys, values []string) map[string]string {
	m := make(map[string]string, len(keys))
	for i, k := range keys {
		if i < len(values) {
			m[k] = values[i]
		}
	}
	return m
}

func withInstance(keys []string) []string {
	return append(append([]string(nil), keys...), InstanceLabel)
}

// watchedCounters and watchedGauges are the metrics the status reads.
var (
	watchedCounters = map[string]bool{
		metricOutputSent: true, metricPollRequests: true, wcwebhook.MetricChecks: true,
		wcwebhook.MetricRegisterErrs: true, wcwebhook.MetricAccepted: true, wcwebhook.MetricRejections: true,
		wcwebhook.MetricReenabled: true,
	}
	watchedGauges = map[string]bool{metricPollLag: true}
)

// noopMetric is every metric nobody reads (no shared exporter, not watched).
type noopMetric struct{}

func (noopMetric) Incr(int64)          {}
func (noopMetric) IncrFloat64(float64) {}
func (noopMetric) Set(int64)           {}
func (noopMetric) SetFloat64(float64)  {}
func (noopMetric) Timing(int64)        {}

func (m *instanceMetrics) NewCounterCtor(name string, labelKeys ...string) service.MetricsExporterCounterCtor {
	watched := watchedCounters[name]
	if !watched && m.shared == nil {
		return func(...string) service.MetricsExporterCounter { return noopMetric{} }
	}
	var shared *service.MetricCounter
	if m.shared != nil {
		shared = m.shared.NewCounter(name, withInstance(labelKeys)...)
	}
	return func(labelValues ...string) service.MetricsExporterCounter {
		c := &counter{name: name, shared: shared}
		if watched {
			c.st, c.labels = m.st, labelMap(labelKeys, labelValues)
		}
		if shared != nil {
			c.values = append(append([]string(nil), labelValues...), m.id)
		}
		return c
	}
}

func (m *instanceMetrics) NewTimerCtor(name string, labelKeys ...string) service.MetricsExporterTimerCtor {
	if m.shared == nil {
		return func(...string) service.MetricsExporterTimer { return noopMetric{} }
	}
	shared := m.shared.NewTimer(name, withInstance(labelKeys)...)
	return func(labelValues ...string) service.MetricsExporterTimer {
		return &timer{shared: shared, values: append(append([]string(nil), labelValues...), m.id)}
	}
}

func (m *instanceMetrics) NewGaugeCtor(name string, labelKeys ...string) service.MetricsExporterGaugeCtor {
	watched := watchedGauges[name]
	if !watched && m.shared == nil {
		return func(...string) service.MetricsExporterGauge { return noopMetric{} }
	}
	var shared *service.MetricGauge
	if m.shared != nil {
		shared = m.shared.NewGauge(name, withInstance(labelKeys)...)
	}
	return func(labelValues ...string) service.MetricsExporterGauge {
		g := &gauge{name: name, shared: shared}
		if watched {
			g.st, g.labels = m.st, labelMap(labelKeys, labelValues)
		}
		if shared != nil {
			g.values = append(append([]string(nil), labelValues...), m.id)
		}
		return g
	}
}

func (m *instanceMetrics) Close(context.Context) error { return nil }

type counter struct {
	st     *status // nil: not watched
	name   string
	labels map[string]string
	shared *service.MetricCounter
	values []string
}

func (c *counter) Incr(n int64) {
	if c.st != nil {
		c.st.counter(c.name, c.labels, n)
	}
	if c.shared != nil {
		c.shared.Incr(n, c.values...)
	}
}

func (c *counter) IncrFloat64(n float64) {
	if c.st != nil {
		c.st.counter(c.name, c.labels, int64(n))
	}
	if c.shared != nil {
		c.shared.IncrFloat64(n, c.values...)
	}
}

type gauge struct {
	st     *status // nil: not watched
	name   string
	labels map[string]string
	shared *service.MetricGauge
	values []string
}

func (g *gauge) Set(v int64) { g.SetFloat64(float64(v)) }

func (g *gauge) SetFloat64(v float64) {
	if g.st != nil {
		g.st.gauge(g.name, g.labels, v)
	}
	if g.shared != nil {
		g.shared.SetFloat64(v, g.values...)
	}
}

type timer struct {
	shared *service.MetricTimer
	values []string
}

func (t *timer) Timing(ns int64) { t.shared.Timing(ns, t.values...) }

// ---------------------------------------------------------------------------
// Logs: every line goes to the server's logger with the instance id; the
// status keeps the latest warning or error of each side.

type logHandler struct {
	next slog.Handler
	st   *status
	path string
	// attrs are added to each record handled, rather than through
	// next.WithAttrs, which would format them once per component logger of
	// every instance (memory for lines that are mostly never written).
	attrs []slog.Attr
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		path := h.path
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "path" {
				path = a.Value.String()
			}
			return true
		})
		h.st.logged(r.Level, path, r.Message)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	if len(h.attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(h.attrs...)
	}
	return h.next.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	for _, a := range attrs {
		if a.Key == "path" {
			c.path = a.Value.String()
		}
	}
	// A nested component sets path and label again: keep the innermost.
	c.attrs = append(make([]slog.Attr, 0, len(h.attrs)+len(attrs)), h.attrs...)
next:
	for _, a := range attrs {
		for i := range c.attrs {
			if c.attrs[i].Key == a.Key {
				c.attrs[i] = a
				continue next
			}
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	// Attributes gathered so far belong outside the group.
	c := *h
	c.next = h.next.WithAttrs(h.attrs).WithGroup(name)
	c.attrs = nil
	return &c
}
