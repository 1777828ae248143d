package wcsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Webhook statuses.
const (
	WebhookActive   = "active"
	WebhookPaused   = "paused"
	WebhookDisabled = "disabled"
)

// UserAgent is the Hookshot user agent of WooCommerce 11.0.1 on WordPress 7.1.
const UserAgent = "WooCommerce/11.0.1 Hookshot (WordPress/7.1)"

// maxDeliveryFailures is woocommerce_max_webhook_delivery_failures.
const maxDeliveryFailures = 5

// maxDeliveryHistory bounds the deliveries kept for Flush (oldest dropped).
const maxDeliveryHistory = 10000

func (s *Store) recordDelivery(d Delivery) {
	s.done = append(s.done, d)
	if len(s.done) > maxDeliveryHistory {
		s.done = append(s.done[:0:0], s.done[len(s.done)-maxDeliveryHistory:]...)
	}
}

var topicHooks = map[string][]string{
	"coupon.created":   {"woocommerce_process_shop_coupon_meta", "woocommerce_new_coupon"},
	"coupon.updated":   {"woocommerce_process_shop_coupon_meta", "woocommerce_update_coupon"},
	"coupon.deleted":   {"wp_trash_post"},
	"coupon.restored":  {"untrashed_post"},
	"customer.created": {"user_register", "woocommerce_created_customer", "woocommerce_new_customer"},
	"customer.updated": {"profile_update", "woocommerce_update_customer"},
	"customer.deleted": {"delete_user"},
	// Valid (wc_is_webhook_valid_topic accepts every resource × event) but no
	// hook ever fires it.
	"customer.restored": nil,
	"order.created":     {"woocommerce_new_order"},
	"order.updated":     {"woocommerce_update_order", "woocommerce_order_refunded"},
	"order.deleted":     {"wp_trash_post", "woocommerce_trash_order"},
	"order.restored":    {"untrashed_post", "woocommerce_untrash_order"},
	"product.created":   {"woocommerce_process_product_meta", "woocommerce_new_product", "woocommerce_new_product_variation"},
	"product.updated":   {"woocommerce_process_product_meta", "woocommerce_update_product", "woocommerce_update_product_variation"},
	"product.deleted":   {"wp_trash_post"},
	"product.restored":  {"untrashed_post"},
}

func validTopic(t string) bool {
	if _, ok := topicHooks[t]; ok {
		return true
	}
	if h, ok := strings.CutPrefix(t, "action."); ok {
		return strings.HasPrefix(h, "woocommerce_") || strings.HasPrefix(h, "wc_")
	}
	return false
}

func topicParts(t string) (resource, ev string, hooks []string) {
	resource, ev, _ = strings.Cut(t, ".")
	hooks = topicHooks[t]
	if resource == "action" {
		hooks = []string{ev}
	}
	return
}

type webhook struct {
	id                  int64
	name, status, topic string
	url, secret         string
	failures            int
	pending             bool
	created, modified   int64
}

// Webhook is a snapshot of a webhook subscription.
type Webhook struct {
	ID              int64     `json:"id"`
	Name            string    `json:"name"`
	Status          string    `json:"status"`
	Topic           string    `json:"topic"`
	DeliveryURL     string    `json:"delivery_url"`
	Secret          string    `json:"secret"`
	FailureCount    int       `json:"failure_count"`
	PendingDelivery bool      `json:"pending_delivery"`
	DateCreated     time.Time `json:"date_created_gmt"`
	DateModified    time.Time `json:"date_modified_gmt"`
}

func (w Webhook) String() string {
	return fmt.Sprintf("Webhook{%d %s %s %s failures=%d}", w.ID, w.Topic, w.Status, w.DeliveryURL, w.FailureCount)
}

// Delivery is the outcome of one webhook delivery or ping.
type Delivery struct {
	WebhookID  int64             `json:"webhook_id"`
	Topic      string            `json:"topic"`
	ObjectID   int64             `json:"object_id"`
	Ping       bool              `json:"ping"`
	DeliveryID string            `json:"delivery_id"`
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	StatusCode int               `json:"status_code"`
	Error      string            `json:"error,omitempty"`
	Success    bool              `json:"success"`
	At         time.Time         `json:"at"`
}

type pendingDelivery struct {
	hookID int64
	topic  string
	kind   uint8
	objID  int64
}

func (s *Store) snapshot(h *webhook) Webhook {
	return Webhook{ID: h.id, Name: h.name, Status: h.status, Topic: h.topic, DeliveryURL: h.url, Secret: h.secret,
		FailureCount: h.failures, PendingDelivery: h.pending,
		DateCreated: time.Unix(h.created, 0).UTC(), DateModified: time.Unix(h.modified, 0).UTC()}
}

func (s *Store) hook(id int64) *webhook {
	for _, h := range s.webhooks {
		if h.id == id {
			return h
		}
	}
	return nil
}

// AddWebhook subscribes an active webhook (pinging it like WooCommerce).
func (s *Store) AddWebhook(topic, deliveryURL, secret string) (int64, error) {
	id, aerr := s.addWebhook("", topic, deliveryURL, secret, WebhookActive)
	if aerr != nil {
		return 0, aerr
	}
	return id, nil
}

func checkDeliveryURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

func (s *Store) addWebhook(name, topic, deliveryURL, secret, status string) (int64, *apiError) {
	topic = strings.ToLower(topic)
	if topic == "" || !validTopic(topic) {
		return 0, &apiError{status: 400, code: "woocommerce_rest_shop_webhook_invalid_topic", message: "Webhook topic is required and must be valid."}
	}
	if !checkDeliveryURL(deliveryURL) {
		return 0, &apiError{status: 400, code: "woocommerce_rest_shop_webhook_invalid_delivery_url", message: "Webhook delivery URL must be a valid URL starting with http:// or https://."}
	}
	if status == "" {
		status = WebhookActive
	}
	now := s.nowUnix()
	if name == "" {
		name = "Webhook created on " + time.Unix(now, 0).UTC().Format("Jan 02, 2006 @ 03:04 PM")
	}
	if secret == "" {
		secret = randAlnum(50)
	}
	s.hooksMu.Lock()
	h := &webhook{id: s.nextHook, name: name, status: status, topic: topic, url: deliveryURL, secret: secret,
		pending: true, created: now, modified: now}
	s.nextHook++
	s.webhooks = append(s.webhooks, h)
	s.hooksMu.Unlock()
	if status == WebhookActive {
		s.ping(h.id)
	}
	return h.id, nil
}

// Webhooks lists subscriptions in id order.
func (s *Store) Webhooks() []Webhook {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	out := make([]Webhook, 0, len(s.webhooks))
	for _, h := range s.webhooks {
		out = append(out, s.snapshot(h))
	}
	return out
}

// Webhook returns one subscription.
func (s *Store) Webhook(id int64) (Webhook, bool) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	if h := s.hook(id); h != nil {
		return s.snapshot(h), true
	}
	return Webhook{}, false
}

// SetWebhookStatus changes a webhook's status (active, paused, disabled).
func (s *Store) SetWebhookStatus(id int64, status string) error {
	if status != WebhookActive && status != WebhookPaused && status != WebhookDisabled {
		return fmt.Errorf("wcsim: invalid webhook status %q", status)
	}
	s.hooksMu.Lock()
	h := s.hook(id)
	if h == nil {
		s.hooksMu.Unlock()
		return fmt.Errorf("wcsim: webhook %d not found", id)
	}
	h.status = status
	h.modified = s.nowUnix()
	needPing := status == WebhookActive && h.pending
	s.hooksMu.Unlock()
	if needPing {
		s.ping(id)
	}
	return nil
}

// DeleteWebhook removes a subscription.
func (s *Store) DeleteWebhook(id int64) error {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	for i, h := range s.webhooks {
		if h.id == id {
			s.webhooks = append(s.webhooks[:i], s.webhooks[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("wcsim: webhook %d not found", id)
}

// shouldDeliver filters drafts like WC_Webhook::should_deliver.
func (s *Store) shouldDeliver(ev event) bool {
	if strings.HasSuffix(ev.topic, ".deleted") {
		return true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.recByKind(ev.kind, ev.id)
	if r == nil {
		return true
	}
	switch ev.kind {
	case kindOrder:
		st := orderStatuses[r.status]
		return st != "checkout-draft" && st != "auto-draft"
	case kindProduct, kindCoupon:
		return postStatuses[r.status] != "auto-draft"
	}
	return true
}

// dispatch fires hooks: each active webhook on the topic handles an object
// at most once per call (one PHP request).
func (s *Store) dispatch(evs []event) {
	if len(evs) == 0 {
		return
	}
	var todo []pendingDelivery
	seen := map[[2]int64]bool{}
	for _, ev := range evs {
		if !s.shouldDeliver(ev) {
			continue
		}
		s.hooksMu.Lock()
		for _, h := range s.webhooks {
			if h.status != WebhookActive || h.topic != ev.topic {
				continue
			}
			k := [2]int64{h.id, ev.id}
			if seen[k] {
				continue
			}
			seen[k] = true
			pd := pendingDelivery{hookID: h.id, topic: ev.topic, kind: ev.kind, objID: ev.id}
			if !s.opts.CoalesceWebhooks {
				todo = append(todo, pd)
				continue
			}
			dup := false
			for _, q := range s.queue {
				if q.hookID == pd.hookID && q.objID == pd.objID {
					dup = true
					break
				}
			}
			if !dup {
				s.queue = append(s.queue, pd)
			}
		}
		s.hooksMu.Unlock()
	}
	for _, pd := range todo {
		s.deliver(pd)
	}
}

// Flush sends queued deliveries (coalescing mode) and returns every delivery
// and ping completed since the previous Flush, in order.
func (s *Store) Flush() []Delivery {
	s.hooksMu.Lock()
	q := s.queue
	s.queue = nil
	s.hooksMu.Unlock()
	for _, pd := range q {
		s.deliver(pd)
	}
	s.hooksMu.Lock()
	out := s.done
	s.done = nil
	s.hooksMu.Unlock()
	return out
}

// Pending is the number of queued (not yet flushed) deliveries.
func (s *Store) Pending() int {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	return len(s.queue)
}

func (s *Store) deliveryClient() *http.Client {
	if s.opts.DeliveryClient != nil {
		return s.opts.DeliveryClient
	}
	return &http.Client{Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Signature is X-WC-Webhook-Signature: base64(HMAC-SHA256(secret, body)).
func Signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// deliveryID mimics wp_hash(webhook_id . time()): equal within one second.
func deliveryID(hookID, unix int64) string {
	m := hmac.New(md5.New, []byte("wcsim-nonce-salt"))
	m.Write([]byte(strconv.FormatInt(hookID, 10) + strconv.FormatInt(unix, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// payload builds the body at delivery time, like WC_Webhook::build_payload:
// {"id":N} for deletes, otherwise GET /wc/v3/<resource>s/<id> of the
// webhook's resource (an error object when that lookup fails).
func (s *Store) payload(topic string, objID int64) []byte {
	res, ev, _ := topicParts(topic)
	if ev == "deleted" {
		return []byte(`{"id":` + strconv.FormatInt(objID, 10) + `}`)
	}
	if res == "action" {
		b := []byte(`{"action":`)
		b = appendStr(b, ev)
		return append(b, `,"arg":`+strconv.FormatInt(objID, 10)+`}`...)
	}
	def := resDefs[res+"s"]
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r := s.rec(def, objID); r != nil {
		return s.render(nil, def, r, nil)
	}
	if def.users {
		return []byte(`{"code":"wc_user_invalid_id","message":"Invalid user ID.","data":{"status":404}}`)
	}
	return notFound(def).body()
}

func (s *Store) deliver(pd pendingDelivery) {
	s.hooksMu.Lock()
	h := s.hook(pd.hookID)
	if h == nil || h.status != WebhookActive {
		s.hooksMu.Unlock()
		return
	}
	hookURL, secret, topic := h.url, h.secret, h.topic
	s.hooksMu.Unlock()

	body := s.payload(topic, pd.objID)
	now := s.Now()
	res, ev, _ := topicParts(topic)
	d := Delivery{WebhookID: pd.hookID, Topic: topic, ObjectID: pd.objID, URL: hookURL, Body: string(body), At: now,
		DeliveryID: deliveryID(pd.hookID, now.Unix())}
	d.Headers = map[string]string{
		"User-Agent":               UserAgent,
		"Accept":                   "*/*",
		"Accept-Encoding":          "deflate, gzip, br, zstd",
		"Content-Type":             "application/json",
		"X-WC-Webhook-Source":      s.home + "/",
		"X-WC-Webhook-Topic":       topic,
		"X-WC-Webhook-Resource":    res,
		"X-WC-Webhook-Event":       ev,
		"X-WC-Webhook-Signature":   Signature(secret, body),
		"X-WC-Webhook-ID":          strconv.FormatInt(pd.hookID, 10),
		"X-WC-Webhook-Delivery-ID": d.DeliveryID,
	}
	d.StatusCode, d.Error = s.post(hookURL, d.Headers, body)
	d.Success = d.Error == "" && d.StatusCode >= 200 && d.StatusCode <= 302
	s.hooksMu.Lock()
	if h := s.hook(pd.hookID); h != nil {
		if d.Success {
			h.failures = 0
		} else if h.failures > maxDeliveryFailures {
			h.status = WebhookDisabled
			s.logf("wcsim: webhook %d disabled after %d consecutive failures", h.id, h.failures+1)
		} else {
			h.failures++
		}
	}
	s.recordDelivery(d)
	s.hooksMu.Unlock()
}

func (s *Store) post(target string, headers map[string]string, body []byte) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	for k, v := range headers {
		req.Header[k] = []string{v} // keep the X-WC-Webhook-* spelling
	}
	req.Close = true
	resp, err := s.deliveryClient().Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, ""
}

// ping is WC_Webhook::deliver_ping: form body webhook_id=N, no X-WC headers,
// must get exactly 200 to clear pending_delivery.
func (s *Store) ping(id int64) {
	s.hooksMu.Lock()
	h := s.hook(id)
	if h == nil {
		s.hooksMu.Unlock()
		return
	}
	target := h.url
	s.hooksMu.Unlock()
	body := []byte("webhook_id=" + strconv.FormatInt(id, 10))
	headers := map[string]string{
		"User-Agent":      UserAgent,
		"Accept":          "*/*",
		"Accept-Encoding": "deflate, gzip, br, zstd",
		"Content-Type":    "application/x-www-form-urlencoded",
	}
	code, errStr := s.post(target, headers, body)
	d := Delivery{WebhookID: id, Topic: "ping", Ping: true, URL: target, Headers: headers, Body: string(body),
		StatusCode: code, Error: errStr, Success: errStr == "" && code == 200, At: s.Now()}
	if errStr == "" && code != 200 {
		d.Error = fmt.Sprintf("Error: Delivery URL returned response code: %d", code)
	} else if errStr != "" {
		d.Error = "Error: Delivery URL cannot be reached: " + errStr
	}
	s.hooksMu.Lock()
	if h := s.hook(id); h != nil && d.Success {
		h.pending = false
	}
	s.recordDelivery(d)
	s.hooksMu.Unlock()
}

// ---- REST: /wc/v3/webhooks ----

func (s *Store) renderWebhook(b []byte, h *webhook, mask fieldMask) []byte {
	res, ev, hooks := topicParts(h.topic)
	w := objw{b: b, mask: mask}
	w.open()
	if w.key("id") {
		w.b = strconv.AppendInt(w.b, h.id, 10)
	}
	if w.key("name") {
		w.b = appendStr(w.b, h.name)
	}
	if w.key("status") {
		w.b = appendStr(w.b, h.status)
	}
	if w.key("topic") {
		w.b = appendStr(w.b, h.topic)
	}
	if w.key("resource") {
		w.b = appendStr(w.b, res)
	}
	if w.key("event") {
		w.b = appendStr(w.b, ev)
	}
	if w.key("hooks") {
		w.b = append(w.b, '[')
		for i, x := range hooks {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendStr(w.b, x)
		}
		w.b = append(w.b, ']')
	}
	if w.key("delivery_url") {
		w.b = appendStr(w.b, h.url)
	}
	w.dates(h.created, h.modified, s.off)
	if w.key("_links") {
		w.b = appendLinks(w.b, s.escHome(), "webhooks", h.id, nil)
	}
	return w.close()
}

var webhookStatuses = []string{"active", "paused", "disabled"}

func (s *Store) serveWebhooks(w http.ResponseWriter, req *request, hasID bool, id int64) {
	if req.key == nil {
		code, msg := "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."
		switch {
		case req.method == http.MethodPost && !hasID:
			code, msg = "woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."
		case req.method == http.MethodDelete:
			code, msg = "woocommerce_rest_cannot_delete", "Sorry, you are not allowed to delete this resource."
		case hasID && req.method != http.MethodGet && req.method != http.MethodHead:
			code, msg = "woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."
		case hasID:
			msg = "Sorry, you cannot view this resource."
		}
		s.writeErr(w, permErr(code, msg), "")
		return
	}
	notFoundHook := &apiError{status: 404, code: "woocommerce_rest_shop_webhook_invalid_id", message: "Invalid ID."}
	str := func(name string) (string, bool) {
		v, ok := req.param(name)
		if !ok {
			return "", false
		}
		return rawString(v), true
	}
	if !hasID {
		switch req.method {
		case http.MethodGet, http.MethodHead:
			s.listWebhooks(w, req)
		case http.MethodPost:
			status, _ := str("status")
			if status != "" {
				if _, ok := statusIndex(webhookStatuses, status); !ok {
					s.writeErr(w, invalidParams([]fieldErr{{"status", "rest_not_in_enum", "status is not one of active, paused, and disabled."}}), allowCollection)
					return
				}
			}
			name, _ := str("name")
			topic, _ := str("topic")
			du, _ := str("delivery_url")
			secret, _ := str("secret")
			nid, aerr := s.addWebhook(name, topic, du, secret, status)
			if aerr != nil {
				s.writeErr(w, aerr, allowCollection)
				return
			}
			s.hooksMu.Lock()
			body := s.renderWebhook(nil, s.hook(nid), fieldsOf(req))
			s.hooksMu.Unlock()
			w.Header().Set("Location", s.itemLocation("webhooks", nid))
			s.writeOK(w, http.StatusCreated, body, allowCollection)
		default:
			s.writeErr(w, errNoRoute, "")
		}
		return
	}
	switch req.method {
	case http.MethodGet, http.MethodHead:
		s.hooksMu.Lock()
		h := s.hook(id)
		var body []byte
		if h != nil {
			body = s.renderWebhook(nil, h, fieldsOf(req))
		}
		s.hooksMu.Unlock()
		if h == nil {
			s.writeErr(w, notFoundHook, allowItem)
			return
		}
		s.writeOK(w, 200, body, allowItem)
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		status, hasStatus := str("status")
		if hasStatus {
			if _, ok := statusIndex(webhookStatuses, status); !ok {
				s.writeErr(w, invalidParams([]fieldErr{{"status", "rest_not_in_enum", "status is not one of active, paused, and disabled."}}), allowItem)
				return
			}
		}
		topic, hasTopic := str("topic")
		du, hasURL := str("delivery_url")
		if hasTopic && !validTopic(strings.ToLower(topic)) {
			s.writeErr(w, &apiError{status: 400, code: "woocommerce_rest_shop_webhook_invalid_topic", message: "Webhook topic must be valid."}, allowItem)
			return
		}
		if hasURL && !checkDeliveryURL(du) {
			s.writeErr(w, &apiError{status: 400, code: "woocommerce_rest_shop_webhook_invalid_delivery_url", message: "Webhook delivery URL must be a valid URL starting with http:// or https://."}, allowItem)
			return
		}
		s.hooksMu.Lock()
		h := s.hook(id)
		if h == nil {
			s.hooksMu.Unlock()
			s.writeErr(w, notFoundHook, allowItem)
			return
		}
		urlChanged := hasURL && du != h.url
		if hasStatus {
			h.status = status
		}
		if hasTopic {
			h.topic = strings.ToLower(topic)
		}
		if hasURL {
			h.url = du
		}
		if v, ok := str("secret"); ok {
			h.secret = v
		}
		if v, ok := str("name"); ok {
			h.name = v
		}
		h.modified = s.nowUnix()
		needPing := h.status == WebhookActive && (h.pending || urlChanged)
		s.hooksMu.Unlock()
		if needPing {
			s.ping(id)
		}
		s.hooksMu.Lock()
		body := s.renderWebhook(nil, s.hook(id), fieldsOf(req))
		s.hooksMu.Unlock()
		s.writeOK(w, 200, body, allowItem)
	case http.MethodDelete:
		force := false
		if v, ok := req.param("force"); ok {
			force, _ = rawBool(v)
		}
		s.hooksMu.Lock()
		h := s.hook(id)
		if h == nil {
			s.hooksMu.Unlock()
			s.writeErr(w, notFoundHook, allowItem)
			return
		}
		if !force {
			s.hooksMu.Unlock()
			s.writeErr(w, &apiError{status: 501, code: "woocommerce_rest_trash_not_supported", message: "Webhooks do not support trashing."}, allowItem)
			return
		}
		body := s.renderWebhook(nil, h, fieldsOf(req))
		s.hooksMu.Unlock()
		_ = s.DeleteWebhook(id)
		s.writeOK(w, 200, body, allowItem)
	default:
		s.writeErr(w, errNoRoute, "")
	}
}

func (s *Store) listWebhooks(w http.ResponseWriter, req *request) {
	q := &listQ{page: 1, perPage: 10, desc: true, orderby: "date"}
	var errs []fieldErr
	for _, p := range []struct {
		name     string
		min, max int64
		dst      *int
	}{{"page", 1, 0, &q.page}, {"per_page", 1, 100, &q.perPage}} {
		v, ok := req.get.get(p.name)
		if !ok {
			continue
		}
		n, valid := isIntString(v.s)
		switch {
		case v.arr != nil || !valid:
			errs = append(errs, fieldErr{p.name, "rest_invalid_type", p.name + " is not of type integer."})
		case p.max > 0 && (n < p.min || n > p.max):
			errs = append(errs, fieldErr{p.name, "rest_out_of_bounds", fmt.Sprintf("%s must be between %d (inclusive) and %d (inclusive)", p.name, p.min, p.max)})
		case n < p.min:
			errs = append(errs, fieldErr{p.name, "rest_out_of_bounds", fmt.Sprintf("%s must be greater than or equal to %d", p.name, p.min)})
		default:
			*p.dst = int(n)
		}
	}
	status := "all"
	if v, ok := req.get.get("status"); ok {
		if _, found := statusIndex([]string{"all", "active", "paused", "disabled"}, v.s); !found {
			errs = append(errs, fieldErr{"status", "rest_not_in_enum", "status is not one of all, active, paused, and disabled."})
		} else {
			status = v.s
		}
	}
	if v, ok := req.get.get("order"); ok {
		switch v.s {
		case "asc":
			q.desc = false
		case "desc":
		default:
			errs = append(errs, fieldErr{"order", "rest_not_in_enum", "order is not one of asc and desc."})
		}
	}
	if v, ok := req.get.get("orderby"); ok {
		if _, found := statusIndex([]string{"date", "id", "title"}, v.s); !found {
			errs = append(errs, fieldErr{"orderby", "rest_not_in_enum", "orderby is not one of date, id, and title."})
		} else {
			q.orderby = v.s
		}
	}
	if len(errs) > 0 {
		s.writeErr(w, invalidParams(errs), allowCollection)
		return
	}
	q.skip = (q.page - 1) * q.perPage
	if v, ok := req.get.get("offset"); ok {
		if n, valid := isIntString(v.s); valid && n >= 0 {
			q.skip = int(n)
		}
	}
	s.hooksMu.Lock()
	var hs []*webhook
	for _, h := range s.webhooks {
		if status == "all" || h.status == status {
			hs = append(hs, h)
		}
	}
	sort.SliceStable(hs, func(i, j int) bool {
		a, b := hs[i], hs[j]
		switch q.orderby {
		case "date":
			if a.created != b.created {
				return (a.created < b.created) != q.desc
			}
			return a.id < b.id // ties in physical (id) order, as captured
		case "title":
			if a.name != b.name {
				return (a.name < b.name) != q.desc
			}
		}
		return (a.id < b.id) != q.desc
	})
	total := len(hs)
	buf := []byte{'['}
	n := 0
	mask := fieldsOf(req)
	for i := q.skip; i < total && n < q.perPage; i++ {
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = s.renderWebhook(buf, hs[i], mask)
		n++
	}
	buf = append(buf, ']')
	s.hooksMu.Unlock()
	s.paginationHeaders(w.Header(), req, "webhooks", q, total)
	s.writeOK(w, 200, buf, allowCollection)
}
