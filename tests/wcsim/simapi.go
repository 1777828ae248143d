package wcsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SimEndpoints documents the /__sim control API (also printed by the
// wcsim command's -help).
const SimEndpoints = `Control API (JSON, no auth, not logged, never delayed or faulted):
  GET  /__sim/info                      url, keys, utc_offset, now, counts
  GET  /__sim/clock                     {"now":RFC3339}
  POST /__sim/clock                     {"set":RFC3339} or {"advance":"90s"}
  POST /__sim/create                    {"resource":"orders","fields":{...}} -> {"id":N}
  POST /__sim/update                    {"resource":"orders","id":N,"fields":{...}}
  POST /__sim/bulk-update               {"resource":"orders","ids":[...],"fields":{...}}
  POST /__sim/trash                     {"resource":"orders","id":N}
  POST /__sim/restore                   {"resource":"orders","id":N}
  POST /__sim/force-delete              {"resource":"orders","id":N}
  POST /__sim/seed                      {"resource":"orders","count":N[,"start":RFC3339,"step":"1s","same_second":false,"status":"processing"]}
                                        -> {"first_id":A,"last_id":B}
  GET  /__sim/get?resource=orders&id=N  the object's wc/v3 JSON (404 if absent)
  GET  /__sim/webhooks                  subscriptions incl. secret, failure_count, pending_delivery
  POST /__sim/webhooks                  {"topic":"order.updated","delivery_url":"...","secret":"..."} -> {"id":N}
  POST /__sim/webhooks/status           {"id":N,"status":"active|paused|disabled"}
  POST /__sim/flush                     send queued deliveries; returns deliveries since the last flush
  POST /__sim/faults                    {"path_prefix":"/wp-json/wc/v3/orders","method":"GET","count":3,
                                         "kind":"json|html|truncated|drop|delay","status":429,
                                         "retry_after":"2","delay":"500ms","body":""}
  DELETE /__sim/faults                  clear faults
  GET  /__sim/requests?method=GET&prefix=/wp-json/wc/v3/orders   {"count":N}
  GET  /__sim/request-log               every logged REST request
  DELETE /__sim/requests                reset the request log
  GET  /__sim/options                   the run-time options below, current values
  POST /__sim/options                   change some of them (only the fields sent):
                                        {"latency":"0-2ms"|"5ms"|"off", "page_delay":"300ms",
                                         "random_faults":{"rate":0.05,"seed":1}, "tie_seed":7,
                                         "clock_skew":"-20m", "ignore_modified_after":true,
                                         "behind_proxy":true, "strip_authorization":true,
                                         "no_pretty_permalinks":true}

Run-time options (also Options fields and wcsim command flags):
  latency                 delay of every REST request: a range, a fixed duration or off (default 0-2ms)
  page_delay              added to every list request (orders, products, customers, coupons)
  random_faults           answer rate (0..1) of REST requests with a random 429 (Retry-After: 1),
                          500, 502, 503, HTML error page, truncated body or dropped connection;
                          deterministic given seed
  tie_seed                order of rows sharing a non-unique sort key (0 = fixed default)
  clock_skew              the store's clock minus real time (Date header, OAuth window)
  ignore_modified_after   modified_after/modified_before accepted but not applied
  behind_proxy            TLS ended at a proxy: is_ssl() false, Basic and query keys ignored,
                          OAuth signed for http://
  strip_authorization     the Authorization header never reaches WordPress
  no_pretty_permalinks    /wp-json/... is an HTML 404, only /?rest_route=/... works`

type simReq struct {
	Resource   string         `json:"resource"`
	ID         int64          `json:"id"`
	IDs        []int64        `json:"ids"`
	Fields     map[string]any `json:"fields"`
	Count      int            `json:"count"`
	Start      string         `json:"start"`
	Step       string         `json:"step"`
	SameSecond bool           `json:"same_second"`
	Status     string         `json:"status"`
	Set        string         `json:"set"`
	Advance    string         `json:"advance"`
	Topic      string         `json:"topic"`
	URL        string         `json:"delivery_url"`
	Secret     string         `json:"secret"`
}

type simFault struct {
	Fault
	Delay string `json:"delay"`
}

func simJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":"encode failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func simErr(w http.ResponseWriter, status int, err error) {
	if ae, ok := err.(*apiError); ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ae.status)
		_, _ = w.Write(ae.body())
		return
	}
	simJSON(w, status, map[string]string{"error": err.Error()})
}

func (s *Store) serveSim(w http.ResponseWriter, r *http.Request) {
	var in simReq
	var fin simFault
	var body []byte
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			simErr(w, 400, err)
			return
		}
		if len(strings.TrimSpace(string(body))) > 0 && !strings.HasPrefix(r.URL.Path, "/__sim/options") {
			var target any = &in
			if strings.HasPrefix(r.URL.Path, "/__sim/faults") {
				target = &fin
			}
			if err := json.Unmarshal(body, target); err != nil {
				simErr(w, 400, fmt.Errorf("bad JSON: %w", err))
				return
			}
		}
	}
	ok := func() { simJSON(w, 200, map[string]bool{"ok": true}) }
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch r.Method + " " + path {
	case "GET /__sim/info":
		s.mu.RLock()
		counts := map[string]int{}
		for n, c := range s.colls {
			counts[n] = c.count
		}
		s.mu.RUnlock()
		keys := []map[string]string{}
		for _, k := range s.opts.Keys {
			keys = append(keys, map[string]string{"consumer_key": k.ConsumerKey, "consumer_secret": k.ConsumerSecret, "permissions": k.Permissions})
		}
		simJSON(w, 200, map[string]any{"url": s.home, "tls": s.opts.TLS, "utc_offset": s.opts.UTCOffset.String(),
			"now": s.Now().UTC().Format(time.RFC3339), "keys": keys, "counts": counts, "coalesce_webhooks": s.opts.CoalesceWebhooks,
			"options": s.currentOptions()})
	case "GET /__sim/clock":
		simJSON(w, 200, map[string]string{"now": s.Now().UTC().Format(time.RFC3339Nano)})
	case "POST /__sim/clock":
		if in.Set != "" {
			t, err := time.Parse(time.RFC3339Nano, in.Set)
			if err != nil {
				simErr(w, 400, fmt.Errorf("set: %w", err))
				return
			}
			s.SetNow(t)
		}
		if in.Advance != "" {
			d, err := time.ParseDuration(in.Advance)
			if err != nil {
				simErr(w, 400, fmt.Errorf("advance: %w", err))
				return
			}
			s.Advance(d)
		}
		simJSON(w, 200, map[string]string{"now": s.Now().UTC().Format(time.RFC3339Nano)})
	case "POST /__sim/create":
		id, err := s.Create(in.Resource, in.Fields)
		if err != nil {
			simErr(w, 400, err)
			return
		}
		simJSON(w, 200, map[string]int64{"id": id})
	case "POST /__sim/update":
		if err := s.Update(in.Resource, in.ID, in.Fields); err != nil {
			simErr(w, 400, err)
			return
		}
		ok()
	case "POST /__sim/bulk-update":
		if err := s.BulkUpdate(in.Resource, in.IDs, in.Fields); err != nil {
			simErr(w, 400, err)
			return
		}
		ok()
	case "POST /__sim/trash", "POST /__sim/restore", "POST /__sim/force-delete":
		var err error
		switch path {
		case "/__sim/trash":
			err = s.Trash(in.Resource, in.ID)
		case "/__sim/restore":
			err = s.Restore(in.Resource, in.ID)
		default:
			err = s.ForceDelete(in.Resource, in.ID)
		}
		if err != nil {
			simErr(w, 400, err)
			return
		}
		ok()
	case "POST /__sim/seed":
		o := SeedOptions{SameSecond: in.SameSecond, Status: in.Status}
		if in.Start != "" {
			t, err := time.Parse(time.RFC3339, in.Start)
			if err != nil {
				simErr(w, 400, fmt.Errorf("start: %w", err))
				return
			}
			o.Start = t
		}
		if in.Step != "" {
			d, err := time.ParseDuration(in.Step)
			if err != nil {
				simErr(w, 400, fmt.Errorf("step: %w", err))
				return
			}
			o.Step = d
		}
		f, l, err := s.SeedWith(in.Resource, in.Count, o)
		if err != nil {
			simErr(w, 400, err)
			return
		}
		simJSON(w, 200, map[string]int64{"first_id": f, "last_id": l})
	case "GET /__sim/get":
		id, _ := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
		b, found := s.Get(r.URL.Query().Get("resource"), id)
		if !found {
			simJSON(w, 404, map[string]string{"error": "not found"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	case "GET /__sim/webhooks":
		simJSON(w, 200, s.Webhooks())
	case "POST /__sim/webhooks":
		id, err := s.AddWebhook(in.Topic, in.URL, in.Secret)
		if err != nil {
			simErr(w, 400, err)
			return
		}
		simJSON(w, 200, map[string]int64{"id": id})
	case "POST /__sim/webhooks/status":
		if err := s.SetWebhookStatus(in.ID, in.Status); err != nil {
			simErr(w, 400, err)
			return
		}
		ok()
	case "POST /__sim/flush":
		d := s.Flush()
		if d == nil {
			d = []Delivery{}
		}
		simJSON(w, 200, d)
	case "POST /__sim/faults":
		f := fin.Fault
		if fin.Delay != "" {
			d, err := time.ParseDuration(fin.Delay)
			if err != nil {
				simErr(w, 400, fmt.Errorf("delay: %w", err))
				return
			}
			f.Delay = d
		}
		switch f.Kind {
		case "", FaultJSON, FaultHTML, FaultTruncated, FaultDrop, FaultDelay:
		default:
			simErr(w, 400, fmt.Errorf("unknown fault kind %q", f.Kind))
			return
		}
		s.InjectFault(f)
		ok()
	case "DELETE /__sim/faults":
		s.ClearFaults()
		ok()
	case "GET /__sim/requests":
		q := r.URL.Query()
		simJSON(w, 200, map[string]int{"count": s.Requests(q.Get("method"), q.Get("prefix"))})
	case "GET /__sim/request-log":
		l := s.RequestLog()
		if l == nil {
			l = []Request{}
		}
		simJSON(w, 200, l)
	case "DELETE /__sim/requests":
		s.ResetRequests()
		ok()
	case "GET /__sim/options":
		simJSON(w, 200, s.currentOptions())
	case "POST /__sim/options":
		if err := s.applyOptions(body); err != nil {
			simErr(w, 400, err)
			return
		}
		simJSON(w, 200, s.currentOptions())
	default:
		simJSON(w, 404, map[string]string{"error": "unknown control endpoint; see SimEndpoints"})
	}
}
