package prometheus

// benthos' metrics API carries no description, so the HELP line of each series
// comes from this table, keyed by the name the component registers (before
// sanitising). Plugin metrics carry benthos' `label` and `path` labels (the
// component's label and its place in the config) besides their own. A name
// missing here gets a generic HELP naming its kind; tests/e2e (TestMetricsHaveHelp)
// fails when a series of a shipped pipeline has none.
var helpTexts = map[string]string{
	// woocommerce_poll (plugin/wcpoll)
	"woocommerce_poll_requests_total": "HTTP requests the woocommerce_poll input sent to the store, by resource and answer status " +
		"(`error`: no answer, e.g. a refused connection or a timeout). Retries count once each.",
	"woocommerce_events_total": "Events the woocommerce_poll input emitted, by resource and action (created, updated, deleted, restored).",
	"woocommerce_watermark_lag_seconds": "For a resource polled by modification date: seconds between now and the modification time up to " +
		"which its changes have been emitted. Near `interval` plus a second when caught up; it grows during a backfill or " +
		"while the store fails. Scanned resources (customers) report woocommerce_scan_age_seconds instead.",
	"woocommerce_backfill_remaining": "Objects of the resource still to read in the current backfill or catch-up " +
		"(the store's X-WP-Total for the walk minus those read so far); 0 when caught up.",
	"woocommerce_last_poll_timestamp_seconds": "Unix time at which the last poll of the resource completed successfully. " +
		"Alert when now minus this exceeds a few intervals: the store is failing or the input is stuck.",
	"woocommerce_scan_age_seconds": "For a scanned resource (customers, which have no date filter): seconds since the last complete " +
		"scan began, i.e. how old the newest change it can have missed is. Climbs to scan_interval between scans.",

	"woocommerce_poll_concurrency": "Requests the woocommerce_poll input may have in flight against the store right now: max_concurrency, " +
		"halved on 429, 5xx and transport errors, lowered when pages slow down, raised again after healthy answers.",

	// woocommerce_webhook (plugin/wcwebhook)
	"woocommerce_webhook_accepted_total": "Signed webhook deliveries accepted: answered 200 and handed to the pipeline (or spooled).",
	"woocommerce_webhook_rejections_total": "Webhook requests not turned into an event, by reason: bad_signature, missing_signature, " +
		"unknown_store, not_json, missing_id, topic_not_accepted, too_large, overloaded, spool_full, timeout, nacked, " +
		"spurious_delete (answered 200 and dropped) and others (see the woocommerce_webhook reference).",
	"woocommerce_webhook_pings_total": "WooCommerce pings (the unsigned `webhook_id=N` form sent when a webhook is created or saved), answered 200.",
	"woocommerce_webhook_delete_checks_total": "Webhook *.deleted deliveries looked up over REST, by result: confirmed (in the trash), " +
		"spurious (404, WooCommerce's twin delete, dropped), timeout, error, skipped (emitted as received).",
	"woocommerce_spool_depth":                   "Deliveries accepted (fsynced, answered 200) and not yet acknowledged by the pipeline's output (ack: spooled).",
	"woocommerce_webhooks_reenabled_total":      "Webhooks WooCommerce had disabled after failed deliveries and the register block set active again.",
	"woocommerce_webhook_register_errors_total": "Failed checks of the store's webhooks by the register block (list, create or update failed).",
	"woocommerce_webhook_register_checks_total": "Completed checks of the store's webhooks by the register block (every check_interval).",

	// http_callback (plugin/httpcallback)
	"callback_delivered": "Messages the http_callback output delivered (a 2xx answer), after however many attempts.",
	"callback_failed":    "Messages the http_callback output gave up on (a permanent status, or max_attempts / max_elapsed_time spent): dead-lettered by the shipped pipelines.",
	"callback_retries":   "Callback attempts that failed and were retried (408, 429, 5xx, timeouts, connection errors).",

	// benthos: inputs
	"input_received":          "Messages received by the input.",
	"input_connection_up":     "Times the input connected.",
	"input_connection_failed": "Failed attempts of the input to connect (it retries).",
	"input_connection_lost":   "Times the input lost its connection.",
	"input_latency_ns":        "Nanoseconds from an input reading a message until the message was acknowledged (delivered) or rejected.",
	// benthos: processors
	"processor_received":       "Messages a processor received.",
	"processor_sent":           "Messages a processor passed on (filters drop the rest).",
	"processor_batch_received": "Batches a processor received.",
	"processor_batch_sent":     "Batches a processor passed on.",
	"processor_error":          "Messages a processor flagged as failed.",
	"processor_latency_ns":     "Nanoseconds a processor took per batch.",
	// benthos: outputs
	"output_sent":              "Messages the output wrote successfully.",
	"output_batch_sent":        "Batches the output wrote successfully.",
	"output_error":             "Failed writes of the output (the message is retried or nacked back to the input).",
	"output_connection_up":     "Times the output connected.",
	"output_connection_failed": "Failed attempts of the output to connect (it retries).",
	"output_connection_lost":   "Times the output lost its connection.",
	"output_latency_ns":        "Nanoseconds a write of the output took.",
	// benthos: caches, rate limits, buffers
	"cache_success":         "Successful cache operations, by operation (get, set, add, delete).",
	"cache_error":           "Failed cache operations, by operation.",
	"cache_not_found":       "Cache gets of a key that is not there.",
	"cache_duplicate":       "Cache adds of a key that already exists (dedupe drops the message).",
	"cache_latency_ns":      "Nanoseconds a cache operation took, by operation.",
	"rate_limit_checked":    "Times a rate limit was consulted.",
	"rate_limit_triggered":  "Times a rate limit made a caller wait.",
	"rate_limit_error":      "Failed rate limit checks.",
	"buffer_received":       "Messages written to the buffer.",
	"buffer_sent":           "Messages read from the buffer.",
	"buffer_batch_received": "Batches written to the buffer.",
	"buffer_batch_sent":     "Batches read from the buffer.",
	"buffer_latency_ns":     "Nanoseconds a message spent in the buffer.",
}

// helpFor is the HELP text of a metric registered as rawName.
func helpFor(kind metricKind, rawName string) string {
	if h, ok := helpTexts[rawName]; ok {
		return h
	}
	return "Benthos " + kind.String() + " " + rawName
}

// HasHelp reports whether the metric registered as rawName has a
// description of its own (not the generic one).
func HasHelp(rawName string) bool {
	_, ok := helpTexts[rawName]
	return ok
}
