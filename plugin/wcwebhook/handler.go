package wcwebhook

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/wcevent"
)

// WooCommerce's webhook headers in Go's canonical form (the server
// canonicalises incoming names, so direct map access avoids re-canonicalising).
const (
	HeaderSource     = "X-Wc-Webhook-Source"
	HeaderTopic      = "X-Wc-Webhook-Topic"
	HeaderResource   = "X-Wc-Webhook-Resource"
	HeaderEvent      = "X-Wc-Webhook-Event"
	HeaderSignature  = "X-Wc-Webhook-Signature"
	HeaderWebhookID  = "X-Wc-Webhook-Id"
	HeaderDeliveryID = "X-Wc-Webhook-Delivery-Id"
)

// Rejection reasons: the `reason` label of woocommerce_webhook_rejections_total.
const (
	ReasonNotFound         = "not_found"
	ReasonMethod           = "method_not_allowed"
	ReasonRateLimited      = "rate_limited"
	ReasonOverloaded       = "overloaded"
	ReasonTooLarge         = "too_large"
	ReasonReadError        = "read_error"
	ReasonUnknownStore     = "unknown_store"
	ReasonMissingSignature = "missing_signature"
	ReasonBadSignature     = "bad_signature"
	ReasonBadTopic         = "bad_topic"
	ReasonBadHeader        = "bad_header"
	ReasonBadObjectID      = "bad_object_id"
	ReasonTopicNotAccepted = "topic_not_accepted"
	ReasonNotJSON          = "not_json"
	ReasonMissingID        = "missing_id"
	ReasonTimeout          = "timeout"
	ReasonNacked           = "nacked"
	ReasonShuttingDown     = "shutting_down"
	ReasonClientGone       = "client_gone"
	ReasonSpoolFull        = "spool_full"
	ReasonSpoolError       = "spool_error"
	ReasonConfirmFailed    = "confirm_failed"
	// ReasonSpuriousDelete is not an HTTP rejection: a signed *.deleted
	// delivery whose id is not of the topic's resource (WooCommerce's twin
	// delete), answered 200 and dropped.
	ReasonSpuriousDelete = "spurious_delete"
)

// Metric names.
const (
	MetricRejections   = "woocommerce_webhook_rejections_total"
	MetricAccepted     = "woocommerce_webhook_accepted_total"
	MetricPings        = "woocommerce_webhook_pings_total"
	MetricDeleteChecks = "woocommerce_webhook_delete_checks_total"
	MetricSpoolDepth   = "woocommerce_spool_depth"
	MetricReenabled    = "woocommerce_webhooks_reenabled_total"
	MetricRegisterErrs = "woocommerce_webhook_register_errors_total"
	MetricChecks       = "woocommerce_webhook_register_checks_total"
)

type metrics struct {
	rejections   *service.MetricCounter
	accepted     *batchedCounter
	pings        *service.MetricCounter
	deleteChecks *service.MetricCounter
	spoolDepth   *service.MetricGauge
	reenabled    *service.MetricCounter
	registerErrs *service.MetricCounter
	checks       *service.MetricCounter
}

func newMetrics(m *service.Metrics) *metrics {
	return &metrics{
		rejections:   m.NewCounter(MetricRejections, "reason"),
		accepted:     &batchedCounter{c: m.NewCounter(MetricAccepted), every: acceptedFlushInterval},
		pings:        m.NewCounter(MetricPings),
		deleteChecks: m.NewCounter(MetricDeleteChecks, "result"),
		spoolDepth:   m.NewGauge(MetricSpoolDepth),
		reenabled:    m.NewCounter(MetricReenabled),
		registerErrs: m.NewCounter(MetricRegisterErrs),
		checks:       m.NewCounter(MetricChecks),
	}
}

// acceptedFlushInterval is how long woocommerce_webhook_accepted_total may
// lag behind the deliveries it counts (a variable for tests).
var acceptedFlushInterval = 100 * time.Millisecond

// batchedCounter adds to a counter once per interval instead of once per
// delivery: an Incr through benthos' metrics costs about 1 µs (it builds the
// label values on every call), 2 % of a whole delivery. Every increment is
// published within `every`, and by flush.
type batchedCounter struct {
	c       *service.MetricCounter
	every   time.Duration
	pending atomic.Int64
}

func (b *batchedCounter) incr() {
	if b.pending.Add(1) == 1 {
		// The first increment since the last flush arms the one flush
		// that publishes it and every increment until then.
		time.AfterFunc(b.every, b.flush)
	}
}

func (b *batchedCounter) flush() {
	if n := b.pending.Swap(0); n > 0 {
		b.c.Incr(n)
	}
}

// storeRoute is one configured store.
type storeRoute struct {
	name     string // path segment; "" for the single-store shortcut
	url      string // normalized; "" means "take X-WC-Webhook-Source"
	verifier *verifier
	// sources are raw X-WC-Webhook-Source values that map to this store
	// without normalising (url and url + "/").
	sources [2]string
}

// topicFilter accepts topics by exact name, `resource.*`, `*.event` or `*`.
// An empty filter accepts everything.
type topicFilter struct {
	all   bool
	exact map[string]struct{}
	res   map[string]struct{}
	event map[string]struct{}
}

func newTopicFilter(patterns []string) topicFilter {
	f := topicFilter{all: len(patterns) == 0,
		exact: map[string]struct{}{}, res: map[string]struct{}{}, event: map[string]struct{}{}}
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		switch {
		case p == "*" || p == "*.*":
			f.all = true
		case strings.HasSuffix(p, ".*"):
			f.res[wcevent.Singular(strings.TrimSuffix(p, ".*"))] = struct{}{}
		case strings.HasPrefix(p, "*."):
			f.event[strings.TrimPrefix(p, "*.")] = struct{}{}
		default:
			f.exact[p] = struct{}{}
		}
	}
	return f
}

func (f *topicFilter) accepts(topic, resource, action string) bool {
	if f.all {
		return true
	}
	if _, ok := f.exact[topic]; ok {
		return true
	}
	if _, ok := f.exact[resource+"."+action]; ok {
		return true
	}
	if _, ok := f.res[resource]; ok {
		return true
	}
	_, ok := f.event[action]
	return ok
}

// handler is the HTTP side of the input: routing, limits, verification and
// normalization; accepted deliveries go to the sink it was built with.
type handler struct {
	path        string // without trailing slash
	byName      map[string]*storeRoute
	bySource    map[string]*storeRoute
	single      *storeRoute // the single-store shortcut, nil with `stores`
	topics      topicFilter
	maxBody     int64
	maxInFlight int64 // 0: unbounded
	inFlight    atomic.Int64
	rateLimit   func(context.Context) (time.Duration, error)
	sink        sink
	log         *service.Logger
	m           *metrics
	now         func() time.Time

	lastSource atomic.Pointer[[2]string] // raw and normalized X-WC-Webhook-Source
}

// handlerConfig is what the handler takes of the input's config.
type handlerConfig struct {
	path        string
	stores      []storeConfig
	topics      []string
	maxBody     int64
	maxInFlight int // 0: unbounded
	rateLimit   func(context.Context) (time.Duration, error)
}

func newHandler(c handlerConfig, sk sink, log *service.Logger, m *metrics) *handler {
	h := &handler{
		path:        strings.TrimRight(c.path, "/"),
		byName:      map[string]*storeRoute{},
		bySource:    map[string]*storeRoute{},
		topics:      newTopicFilter(c.topics),
		maxBody:     c.maxBody,
		maxInFlight: int64(c.maxInFlight),
		rateLimit:   c.rateLimit,
		sink:        sk,
		log:         log,
		m:           m,
		now:         time.Now,
	}
	for _, s := range c.stores {
		r := &storeRoute{name: s.name, verifier: newVerifier(s.secrets)}
		if s.url != "" {
			r.url = wcevent.NormalizeStore(s.url)
			r.sources = [2]string{r.url, r.url + "/"}
		}
		if s.name == "" {
			h.single = r
			continue
		}
		h.byName[s.name] = r
		if r.url != "" {
			h.bySource[r.url] = r
		}
	}
	return h
}

// route splits the request path into "ours, bare" or "ours, store segment".
func (h *handler) route(p string) (segment string, ok bool) {
	if !strings.HasPrefix(p, h.path) {
		return "", false
	}
	rest := p[len(h.path):]
	if rest == "" || rest == "/" {
		return "", true
	}
	if rest[0] != '/' {
		return "", false
	}
	rest = strings.TrimSuffix(rest[1:], "/")
	if rest == "" || strings.Contains(rest, "/") {
		return "", false
	}
	return rest, true
}

var (
	textPlain = []string{"text/plain; charset=utf-8"}
	allowPost = []string{http.MethodPost}
	noSniff   = []string{"nosniff"}
)

func header(r *http.Request, key string) string {
	if v := r.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segment, ok := h.route(r.URL.Path)
	if !ok {
		h.reject(w, r, nil, outcome{status: http.StatusNotFound, reason: ReasonNotFound})
		return
	}
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = allowPost
		h.reject(w, r, nil, outcome{status: http.StatusMethodNotAllowed, reason: ReasonMethod})
		return
	}
	var st *storeRoute
	if segment != "" {
		if st = h.byName[segment]; st == nil {
			h.reject(w, r, nil, outcome{status: http.StatusNotFound, reason: ReasonUnknownStore})
			return
		}
	}
	if h.rateLimit != nil {
		wait, err := h.rateLimit(r.Context())
		if err != nil {
			h.log.Errorf("woocommerce_webhook: rate limit: %v", err)
			h.reject(w, r, st, outcome{status: http.StatusServiceUnavailable, reason: ReasonRateLimited, retryAfter: 1})
			return
		}
		if wait > 0 {
			h.reject(w, r, st, outcome{status: http.StatusTooManyRequests, reason: ReasonRateLimited, retryAfter: ceilSeconds(wait)})
			return
		}
	}
	if n := h.inFlight.Add(1); h.maxInFlight > 0 && n > h.maxInFlight {
		h.inFlight.Add(-1)
		h.reject(w, r, st, outcome{status: http.StatusServiceUnavailable, reason: ReasonOverloaded, retryAfter: 1})
		return
	}
	defer h.inFlight.Add(-1)

	if r.ContentLength > h.maxBody {
		h.reject(w, r, st, outcome{status: http.StatusRequestEntityTooLarge, reason: ReasonTooLarge})
		return
	}
	bp, err := readBody(r.Body, r.ContentLength, h.maxBody)
	if bp != nil {
		defer putBuf(bp)
	}
	if err != nil {
		if errors.Is(err, errTooLarge) {
			h.reject(w, r, st, outcome{status: http.StatusRequestEntityTooLarge, reason: ReasonTooLarge})
		} else {
			h.reject(w, r, st, outcome{status: http.StatusBadRequest, reason: ReasonReadError})
		}
		return
	}
	h.serveBody(w, r, st, *bp)
}

// serveBody handles a request whose body has been read: ping, store
// selection, signature, topic, JSON, then the sink.
func (h *handler) serveBody(w http.ResponseWriter, r *http.Request, st *storeRoute, body []byte) {
	sig := header(r, HeaderSignature)
	topic := header(r, HeaderTopic)
	if sig == "" && topic == "" && isPing(body) {
		h.m.pings.Incr(1)
		h.log.Debugf("woocommerce_webhook: ping answered (path %s)", r.URL.Path)
		w.WriteHeader(http.StatusOK)
		return
	}
	source := header(r, HeaderSource)
	if st == nil {
		st = h.single
		if st == nil {
			st = h.storeForSource(source)
		}
		if st == nil {
			h.reject(w, r, nil, outcome{status: http.StatusUnauthorized, reason: ReasonUnknownStore})
			return
		}
	}
	if sig == "" {
		h.reject(w, r, st, outcome{status: http.StatusUnauthorized, reason: ReasonMissingSignature})
		return
	}
	if !st.verifier.verify(body, sig) {
		h.reject(w, r, st, outcome{status: http.StatusUnauthorized, reason: ReasonBadSignature})
		return
	}
	resource, action, ok := splitTopic(topic, header(r, HeaderResource), header(r, HeaderEvent))
	if !ok {
		h.reject(w, r, st, outcome{status: http.StatusBadRequest, reason: ReasonBadTopic})
		return
	}
	if topic == "" {
		topic = resource + "." + action
	}
	if !printable(topic) || !printable(resource) || !printable(action) {
		h.reject(w, r, st, outcome{status: http.StatusBadRequest, reason: ReasonBadHeader})
		return
	}
	if !h.topics.accepts(topic, resource, action) {
		// 200 so that WooCommerce does not count it towards disabling the hook.
		h.m.rejections.Incr(1, ReasonTopicNotAccepted)
		h.log.Debugf("woocommerce_webhook: topic %q not accepted, dropped (webhook %s)", topic, header(r, HeaderWebhookID))
		w.WriteHeader(http.StatusOK)
		return
	}
	f, err := wcevent.ExtractFields(body)
	if err != nil {
		h.reject(w, r, st, outcome{status: http.StatusBadRequest, reason: ReasonNotJSON})
		return
	}
	if f.ID == "" && resource != ResourceAction {
		// Signed by the store, so answering an error would only count towards
		// disabling the webhook: WooCommerce sends an error object instead of
		// the resource when building the payload failed (e.g. a customer
		// deleted before the delivery ran).
		h.m.rejections.Incr(1, ReasonMissingID)
		h.log.Warnf("woocommerce_webhook: signed %s delivery without an object id dropped (webhook %s, error code %q)",
			topic, header(r, HeaderWebhookID), gjson.GetBytes(body, "code").Str)
		w.WriteHeader(http.StatusOK)
		return
	}
	d := delivery{
		StoreName:  st.name,
		Store:      st.url,
		Topic:      topic,
		Resource:   resource,
		Action:     action,
		WebhookID:  header(r, HeaderWebhookID),
		DeliveryID: header(r, HeaderDeliveryID),
		ReceivedAt: h.now(),
		Body:       body,
	}
	if d.Store == "" {
		d.Store = h.normalizeSource(source)
		if !printable(d.Store) {
			h.reject(w, r, st, outcome{status: http.StatusBadRequest, reason: ReasonBadHeader})
			return
		}
	}
	if d.Resource == ResourceAction {
		f.ID = actionObjectID(body)
	}
	if !printable(f.ID) {
		h.reject(w, r, st, outcome{status: http.StatusBadRequest, reason: ReasonBadObjectID})
		return
	}
	out := h.sink.accept(r.Context(), &d, f)
	if out.reason != "" {
		h.reject(w, r, st, out)
		return
	}
	h.m.accepted.incr()
	w.WriteHeader(out.status)
}

// storeForSource selects a store by X-WC-Webhook-Source (multi-store, bare path).
func (h *handler) storeForSource(source string) *storeRoute {
	if source == "" {
		return nil
	}
	for _, st := range h.bySource {
		if source == st.sources[0] || source == st.sources[1] {
			return st
		}
	}
	return h.bySource[wcevent.NormalizeStore(source)]
}

// normalizeSource normalizes X-WC-Webhook-Source, remembering the last value
// (one store sends the same header on every delivery).
func (h *handler) normalizeSource(source string) string {
	if last := h.lastSource.Load(); last != nil && last[0] == source {
		return last[1]
	}
	n := wcevent.NormalizeStore(source)
	h.lastSource.Store(&[2]string{source, n})
	return n
}

// reject answers a refused request, counts it and logs it without the body
// or any secret.
func (h *handler) reject(w http.ResponseWriter, r *http.Request, st *storeRoute, out outcome) {
	h.m.rejections.Incr(1, out.reason)
	store := "-"
	if st != nil {
		store = st.name
		if store == "" {
			store = st.url
		}
	}
	msg := "woocommerce_webhook: rejected %s %s from %s with %d (%s): store %q, topic %q, webhook %q, %d bytes"
	args := []any{r.Method, r.URL.Path, r.RemoteAddr, out.status, out.reason, store,
		header(r, HeaderTopic), header(r, HeaderWebhookID), r.ContentLength}
	switch out.reason {
	case ReasonBadSignature, ReasonMissingSignature, ReasonUnknownStore, ReasonTimeout, ReasonNacked,
		ReasonSpoolFull, ReasonSpoolError, ReasonOverloaded, ReasonConfirmFailed:
		h.log.Warnf(msg, args...)
	default:
		h.log.Debugf(msg, args...)
	}
	hdr := w.Header()
	hdr["Content-Type"] = textPlain
	hdr["X-Content-Type-Options"] = noSniff
	if out.retryAfter > 0 {
		hdr["Retry-After"] = []string{strconv.Itoa(out.retryAfter)}
	}
	w.WriteHeader(out.status)
	_, _ = io.WriteString(w, out.reason+"\n")
}

func ceilSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// printable reports whether s is valid UTF-8 made of printable characters
// only: the strings that go into the event's JSON must not need escapes
// beyond \" and \\ (topic headers, store URL, object id).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) < 0
		}
	}
	return true
}

// isPing reports whether body is WooCommerce's ping: `webhook_id=<digits>`.
func isPing(body []byte) bool {
	const prefix = "webhook_id="
	if len(body) <= len(prefix) || len(body) > len(prefix)+20 || string(body[:len(prefix)]) != prefix {
		return false
	}
	for _, c := range body[len(prefix):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Pooled request-body buffers.

var errTooLarge = errors.New("request body too large")

const (
	initialBufSize = 8 << 10
	maxPooledBuf   = 1 << 20
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, initialBufSize); return &b }}

func putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBuf {
		*bp = (*bp)[:0]
		bufPool.Put(bp)
	}
}

// readBody reads r into a pooled buffer, failing with errTooLarge beyond max
// bytes. The returned buffer must be given back with putBuf (also on error).
func readBody(r io.Reader, contentLength, max int64) (*[]byte, error) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if contentLength > 0 && int64(cap(b)) < contentLength+1 {
		b = make([]byte, 0, contentLength+1)
	}
	for {
		if len(b) == cap(b) {
			if int64(len(b)) > max {
				*bp = b[:0]
				return bp, errTooLarge
			}
			n := int64(cap(b)) * 2
			if n > max+1 {
				n = max + 1
			}
			nb := make([]byte, len(b), n)
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > max {
			*bp = b[:0]
			return bp, errTooLarge
		}
		if err == io.EOF {
			*bp = b
			return bp, nil
		}
		if err != nil {
			*bp = b[:0]
			return bp, err
		}
	}
}
