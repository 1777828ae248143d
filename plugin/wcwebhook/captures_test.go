package wcwebhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/wcevent"
)

// TestCapturedDeliveries replays every real delivery captured from
// WooCommerce 11.0.1 over HTTP: each verifies with the captured secret and
// comes out as a normalized event; pings are answered 200 and not emitted.
func TestCapturedDeliveries(t *testing.T) {
	run := startStream(t, "  secret: "+captureSecret+"\n", nil, "")
	for _, c := range loadCaptures(t) {
		t.Run(c.Name, func(t *testing.T) {
			status, _, body := post(t, c.request(t, run.URL))
			require.Equal(t, http.StatusOK, status, body)
			if c.Header.Get("X-WC-Webhook-Signature") == "" {
				require.True(t, strings.Contains(c.Name, "ping"))
				run.sentinel(t, captureSecret, "http://127.0.0.1:8480/", 90001)
				return
			}
			if !gjson.GetBytes(c.Body, "id").Exists() {
				// WooCommerce could not build the payload (the customer was
				// gone): signed, answered 200, nothing to emit.
				run.sentinel(t, captureSecret, "http://127.0.0.1:8480/", 90003)
				return
			}
			msg := run.next(t)
			raw, err := msg.AsBytes()
			require.NoError(t, err)
			require.True(t, json.Valid(raw), "event is not JSON: %s", raw)
			ev := gjson.ParseBytes(raw)

			topic := c.Header.Get("X-WC-Webhook-Topic")
			resource, action, _ := strings.Cut(topic, ".")
			objID := gjson.GetBytes(c.Body, "id").Raw
			assert.Equal(t, topic, ev.Get("type").Str)
			assert.Equal(t, resource, ev.Get("resource").Str)
			assert.Equal(t, action, ev.Get("action").Str)
			assert.Equal(t, objID, ev.Get("object_id").Str)
			assert.Equal(t, "http://127.0.0.1:8480", ev.Get("store").Str)
			assert.Equal(t, "webhook", ev.Get("source").Str)
			// data is the delivered body byte for byte (PHP's \/ escapes kept).
			assert.Equal(t, string(c.Body), ev.Get("data").Raw)

			if mod := gjson.GetBytes(c.Body, "date_modified_gmt").Str; mod != "" {
				assert.Equal(t, mod+"Z", ev.Get("occurred_at").Str)
			} else {
				// {"id":N} deletes carry no date: occurred_at is the receive time.
				occ, err := time.Parse(time.RFC3339, ev.Get("occurred_at").Str)
				require.NoError(t, err)
				assert.WithinDuration(t, time.Now(), occ, time.Minute)
			}

			want := map[string]string{
				MetaTopic:               topic,
				MetaWebhookID:           c.Header.Get("X-WC-Webhook-ID"),
				MetaDeliveryID:          c.Header.Get("X-WC-Webhook-Delivery-ID"),
				wcevent.MetaType:        topic,
				wcevent.MetaResource:    resource,
				wcevent.MetaAction:      action,
				wcevent.MetaObjectID:    objID,
				wcevent.MetaStore:       "http://127.0.0.1:8480",
				wcevent.MetaSource:      "webhook",
				wcevent.MetaResourceKey: wcevent.Plural(resource),
				wcevent.MetaEventID:     ev.Get("id").Str,
			}
			for k, v := range want {
				got, ok := msg.MetaGet(k)
				assert.True(t, ok, "metadata %s missing", k)
				assert.Equal(t, v, got, "metadata %s", k)
			}
			assert.Len(t, ev.Get("id").Str, 32)
		})
	}
	// Two captured pings plus at least one readiness ping.
	assert.GreaterOrEqual(t, run.Metrics.Get(MetricPings), int64(3))
	// The two customer deliveries carrying an error object.
	assert.Equal(t, int64(2), run.Metrics.Get(MetricRejections, "reason="+ReasonMissingID))
	assert.Equal(t, int64(0), run.Metrics.Get(MetricRejections, "reason="+ReasonBadSignature))
}

// TestCapturedTampered: one changed byte in the body or in the signature of
// a real delivery gets 401 and nothing is emitted; the rejection is counted.
func TestCapturedTampered(t *testing.T) {
	run := startStream(t, "  secret: "+captureSecret+"\n", nil, "")
	var n int64
	for _, c := range loadCaptures(t) {
		sig := c.Header.Get("X-WC-Webhook-Signature")
		if sig == "" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			body := bytes.Clone(c.Body)
			body[len(body)/2] ^= 0x01
			tampered := c
			tampered.Body = body
			status, _, _ := post(t, tampered.request(t, run.URL))
			require.Equal(t, http.StatusUnauthorized, status)

			badSig := []byte(sig)
			if badSig[3] == 'A' {
				badSig[3] = 'B'
			} else {
				badSig[3] = 'A'
			}
			tampered = c
			tampered.Header = c.Header.Clone()
			tampered.Header.Set("X-WC-Webhook-Signature", string(badSig))
			status, _, _ = post(t, tampered.request(t, run.URL))
			require.Equal(t, http.StatusUnauthorized, status)

			// A wrong secret does not verify either.
			wrong := c
			wrong.Header = c.Header.Clone()
			wrong.Header.Set("X-WC-Webhook-Signature", Sign("another-secret", c.Body))
			status, _, _ = post(t, wrong.request(t, run.URL))
			require.Equal(t, http.StatusUnauthorized, status)
			n += 3

			run.sentinel(t, captureSecret, "http://127.0.0.1:8480/", 90002)
		})
	}
	require.Equal(t, n, run.Metrics.Get(MetricRejections, "reason="+ReasonBadSignature))
}
