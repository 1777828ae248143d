// Package wcsim is a stand-in for a WooCommerce 11.0.1 store (WordPress 7.1,
// HPOS on) speaking the wc/v3 REST API, used by integration tests, the demo
// and the benchmarks. It reproduces what the captures in
// tests/fixtures/woocommerce show: response headers (X-WP-Total,
// X-WP-TotalPages, Link with rel prev/next built from the request's query
// including oauth_* parameters, Allow, no-cache headers), date formats
// (2006-01-02T15:04:05, plain fields site-local, _gmt UTC), error bodies,
// WooCommerce's authentication (Basic and query-string keys only over HTTPS,
// one-legged OAuth 1.0a verified like WC_REST_Authentication), trash
// semantics, and webhook deliveries (headers, signature, delivery id,
// payload built at delivery time, ping, failure counting and auto-disable,
// the product/coupon *.deleted twin).
//
// Use it from Go:
//
//	s := wcsim.New(wcsim.Options{TLS: true, UTCOffset: 2 * time.Hour})
//	if err := s.Start(); err != nil { ... }
//	defer s.Close()
//	id, _ := s.Create(wcsim.Orders, map[string]any{"status": "processing"})
//	resp, _ := s.Client().Get(s.URL() + "/wp-json/wc/v3/orders?consumer_key=" + wcsim.DefaultConsumerKey + ...)
//
// Ties: rows sharing the sort key of a non-unique order (orderby=modified,
// date, title, slug, a customer's registered_date) come back as MySQL returns
// them, the default for every test: not by id, in an order that depends on
// the query's LIMIT (offset+per_page) and is stable for a repeated identical
// query. Within each tie group touching the requested window, rows are ranked
// by a hash of (Options.TieSeed, offset+per_page, id), with another seed for
// order=desc; only the edge groups of the window are collected and ranked, so
// a page stays fast on 1M orders. So a page walk over ties is not a
// partition: it repeats some ids and never returns others, as the captures in
// tests/fixtures/woocommerce/rest/ties show on a real store. orderby=id,
// orderby=include and orderby=price (WooCommerce breaks price ties by id)
// stay exact. There is no switch back to id order; SetTieSeed varies it.
//
// Timing and faults: every REST request waits Options.Latency (default
// DefaultLatency, a 0-2 ms jitter; NoLatency turns it off), every list
// request also Options.PageDelay (a store's query time, e.g. 300 ms). Delays
// hold no lock: concurrent requests wait concurrently, and so do injected
// delay faults. InjectFault scripts faults; Options.RandomFaults answers a
// fraction of REST requests with a random 429 (Retry-After: 1), 500, 502,
// 503, WordPress' HTML critical-error page, a truncated body or a dropped
// connection, deterministic given its seed.
//
// Store quirks of real hosts, each an Options field, a setter, a wcsim flag
// and a /__sim/options field: ClockSkew (the store's clock is off: Date
// headers, new modification times and the OAuth timestamp window follow it),
// IgnoreModifiedAfter (modified_after/modified_before accepted but not
// applied), BehindProxy (TLS ends at a proxy without X-Forwarded-Proto:
// is_ssl() is false, so Basic and query-string keys are ignored and OAuth is
// signed for http://), StripAuthorization (the Authorization header never
// reaches PHP: Basic and header OAuth are unseen, query-string keys work) and
// NoPrettyPermalinks (/wp-json/... is WordPress' HTML 404 page, only
// /?rest_route=/... works). Key permissions (read, write, read_write) are
// checked per method as WC_REST_Authentication::check_permissions does. GET
// /wp-json/ answers the REST index (site data, namespaces, authentication,
// routes) and GET /wp-json/wc/v3/system_status a realistic subset of
// WooCommerce's system status (environment with version and wp_version,
// settings, security, plugins, post type counts); no capture of either
// exists, their fields follow WordPress' and WooCommerce's source.
//
// The clock is real time (plus ClockSkew) until SetNow/Advance freeze it. Mutations made
// through the Go API fire the same webhooks as the equivalent REST calls;
// Seed/SeedWith bulk-load records without webhooks. Webhook deliveries are
// synchronous (sent before the mutating call returns) unless
// Options.CoalesceWebhooks queues them until Flush.
//
// The same controls are served over HTTP under /__sim/ for the wcsim
// command (tests/wcsim/cmd/wcsim):
//
//	GET  /__sim/info                      url, keys, utc_offset, now, counts
//	GET  /__sim/clock                     {"now":RFC3339}
//	POST /__sim/clock                     {"set":RFC3339} or {"advance":"90s"}
//	POST /__sim/create                    {"resource":"orders","fields":{...}} -> {"id":N}
//	POST /__sim/update                    {"resource":"orders","id":N,"fields":{...}}
//	POST /__sim/bulk-update               {"resource":"orders","ids":[...],"fields":{...}}
//	POST /__sim/trash                     {"resource":"orders","id":N}
//	POST /__sim/restore                   {"resource":"orders","id":N}
//	POST /__sim/force-delete              {"resource":"orders","id":N}
//	POST /__sim/seed                      {"resource":"orders","count":N[,"start","step","same_second","status"]}
//	GET  /__sim/get?resource=orders&id=N  the object's wc/v3 JSON
//	GET  /__sim/webhooks                  subscriptions (secret, failure_count, pending_delivery)
//	POST /__sim/webhooks                  {"topic","delivery_url","secret"} -> {"id":N}
//	POST /__sim/webhooks/status           {"id":N,"status":"active|paused|disabled"}
//	POST /__sim/flush                     deliveries since the last flush (sends queued ones first)
//	POST /__sim/faults                    {"path_prefix","method","count","kind","status","retry_after","delay","body"}
//	DELETE /__sim/faults                  clear faults
//	GET  /__sim/requests?method=&prefix=  {"count":N}
//	GET  /__sim/request-log               logged REST requests
//	DELETE /__sim/requests                reset the request log
//	GET  /__sim/options                   run-time options (latency, page_delay, random_faults, tie_seed, quirks)
//	POST /__sim/options                   {"latency":"1ms-3ms","page_delay":"300ms","random_faults":{"rate":0.05,"seed":1},
//	                                       "tie_seed":7,"clock_skew":"-20m","ignore_modified_after":true,
//	                                       "behind_proxy":true,"strip_authorization":true,"no_pretty_permalinks":true}
//	                                      (only the fields sent change; a bad value changes nothing)
//
// Control requests are neither logged, delayed nor faulted and need no auth.
//
// Deliberate simplifications: products are always "simple" (no variations),
// there are no refunds/notes/batch endpoints, related_ids is empty, customers
// order by username for orderby=name, and the OAuth nonce store is strictly
// single-use per key for 15 minutes (WooCommerce keys it by timestamp, so a
// second nonce in the same second can evict the first). Webhook deliveries go
// to any port (WordPress limits them to 80/443/8080 by default).
package wcsim
