package bench

import (
	"fmt"
	"strings"
)

// WebhookPath is the path every webhook benchmark posts to.
const WebhookPath = "/webhooks/woocommerce"

// observability is shared by every benchmark config: the service-wide HTTP
// server on its own port with json_api metrics (a stock exporter, so the
// baselines and our component pay the same metrics cost), warnings only.
func observability(httpAddr string) string {
	return fmt.Sprintf(`
http:
  enabled: true
  address: %q
metrics:
  json_api: {}
logger:
  level: WARN
  format: logfmt
`, httpAddr)
}

// WebhookConfig is our woocommerce_webhook input into a drop output. ack is
// "delivered" or "spooled" (then spoolDir is used).
func WebhookConfig(addr, httpAddr, secret, ack, spoolDir string) string {
	var spool string
	if ack == "spooled" {
		spool = fmt.Sprintf("\n    spool_dir: %q", spoolDir)
	}
	return fmt.Sprintf(`
input:
  woocommerce_webhook:
    address: %q
    path: %q
    secret: %q
    ack: %s%s
output:
  drop: {}
`, addr, WebhookPath, secret, ack, spool) + observability(httpAddr)
}

// WebhookKafkaConfig is our woocommerce_webhook input into kafka_franz.
func WebhookKafkaConfig(addr, httpAddr, secret string, brokers []string, topic string) string {
	return fmt.Sprintf(`
input:
  woocommerce_webhook:
    address: %q
    path: %q
    secret: %q
    ack: delivered
output:
  kafka_franz:
    seed_brokers: [ %s ]
    topic: %q
    key: '${! meta("woocommerce_object_id") }'
    max_in_flight: 64
`, addr, WebhookPath, secret, quoteList(brokers), topic) + observability(httpAddr)
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// CeilingConfig is the stock http_server input with no processing at all.
func CeilingConfig(addr, httpAddr string) string {
	return fmt.Sprintf(`
input:
  http_server:
    address: %q
    path: %q
    allowed_verbs: [ POST ]
output:
  drop: {}
`, addr, WebhookPath) + observability(httpAddr)
}

// BloblangNormalizeMapping is what a user would build with stock components
// instead of woocommerce_webhook: verify X-WC-Webhook-Signature with
// hash("hmac_sha256"), parse the body and build the same normalized event
// (deterministic id, type, store, occurred_at, metadata).
//
// Caveat kept on purpose (it is what that config does): throw() only flags
// the message as failed; with an output that acks anyway (drop, and most
// outputs without a switch on errored()), the sender still gets 200 for a
// forged signature.
const BloblangNormalizeMapping = `
let expected = content().hash("hmac_sha256", env("WC_WEBHOOK_SECRET")).encode("base64")
root = if (metadata("X-Wc-Webhook-Signature") | "") != $expected { throw("invalid webhook signature") }
let body = content().parse_json()
let topic = (metadata("X-Wc-Webhook-Topic") | "").split(".")
let src = (metadata("X-Wc-Webhook-Source") | "").parse_url()
let store = $src.scheme.lowercase() + "://" + $src.host.lowercase() + $src.path.trim_suffix("/")
let resource = $topic.index(0)
let action = $topic.index(1)
let object_id = $body.id.string()
let received = now().ts_format("2006-01-02T15:04:05.000Z", "UTC")
let version = if ($body.date_modified_gmt | "") != "" {
  $body.date_modified_gmt.ts_parse("2006-01-02T15:04:05").ts_format("2006-01-02T15:04:05Z", "UTC")
} else { "" }
let id = [$store, $resource, $object_id, $action, $version].join("\x1f").hash("sha256").encode("hex").slice(0, 32)
root.id = $id
root.type = $resource + "." + $action
root.resource = $resource
root.action = $action
root.object_id = $object_id
root.store = $store
root.source = "webhook"
root.occurred_at = if $version != "" { $version } else { $received.ts_parse("2006-01-02T15:04:05.000Z").ts_format("2006-01-02T15:04:05Z", "UTC") }
root.received_at = $received
root.data = $body
meta woocommerce_event_id = $id
meta woocommerce_type = $resource + "." + $action
meta woocommerce_resource = $resource
meta woocommerce_action = $action
meta woocommerce_object_id = $object_id
meta woocommerce_store = $store
meta woocommerce_source = "webhook"
meta woocommerce_version_key = [$store, $resource, $object_id, $version].join("|")
meta woocommerce_occurred_at = root.occurred_at
meta woocommerce_resource_key = $resource + "s"
`

// BloblangBaselineConfig is the stock http_server input with
// BloblangNormalizeMapping; the secret comes from WC_WEBHOOK_SECRET.
func BloblangBaselineConfig(addr, httpAddr string) string {
	return fmt.Sprintf(`
input:
  http_server:
    address: %q
    path: %q
    allowed_verbs: [ POST ]
pipeline:
  processors:
    - mapping: |
%s
output:
  drop: {}
`, addr, WebhookPath, indent(BloblangNormalizeMapping, "        ")) + observability(httpAddr)
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// PollConfig is the woocommerce_poll input backfilling orders from a store
// (the simulator) into a drop output, with its state (and checkpoint) in a
// bbolt file as in production; the json_api metrics count what the output
// sent.
func PollConfig(storeURL, key, secret, httpAddr, statePath string, pageSize, maxConcurrency int) string {
	return fmt.Sprintf(`
input:
  woocommerce_poll:
    store_url: %q
    consumer_key: %q
    consumer_secret: %q
    resources:
      - name: orders
    start_from: beginning
    page_size: %d
    max_concurrency: %d
    interval: 1h
    state_path: %q
output:
  drop: {}
`, storeURL, key, secret, pageSize, maxConcurrency, statePath) + observability(httpAddr)
}
