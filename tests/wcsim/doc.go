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
// The clock is real time until SetNow/Advance freeze it. Mutations made
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
//
// Control requests are neither logged nor faulted and need no auth.
//
// Deliberate simplifications: products are always "simple" (no variations),
// there are no refunds/notes/batch endpoints, related_ids is empty, customers
// order by username for orderby=name, and the OAuth nonce store is strictly
// single-use per key for 15 minutes (WooCommerce keys it by timestamp, so a
// second nonce in the same second can evict the first). Webhook deliveries go
// to any port (WordPress limits them to 80/443/8080 by default).
package wcsim
