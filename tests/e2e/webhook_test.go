package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// config/default.yaml: the captured deliveries end up, normalized, in the
// day's JSONL file, identical to resources/testdata/events (which the unit
// tests feed to the processors) except for the receive time.
func TestDefaultPipeline(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startWooevents(t, dir, map[string]string{
		"WOOEVENTS_WEBHOOK_SECRET":  captureSecret,
		"WOOEVENTS_WEBHOOK_ADDRESS": addr,
	}, "-c", repoPath("config/default.yaml"))
	p.waitReady(t)
	url := "http://" + addr + "/webhooks/woocommerce"

	replay(t, url, webhookCaptures(t))

	// A forged delivery is refused and not written.
	caps := webhookCaptures(t)
	forged := caps[len(caps)-1]
	forged.header.Set("X-WC-Webhook-Signature", "AAAA"+forged.header.Get("X-WC-Webhook-Signature")[4:])
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(forged.body)))
	require.NoError(t, err)
	req.Header = forged.header
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)

	glob := filepath.Join(dir, "data", "events", "*.jsonl")
	require.Eventually(t, func() bool { return countLines(glob) >= captureEvents }, 20*time.Second, 50*time.Millisecond)
	p.stop(t)
	lines := readJSONLines(t, glob)
	require.Len(t, lines, captureEvents)
	today := time.Now().UTC().Format("2006-01-02")
	_, err = os.Stat(filepath.Join(dir, "data", "events", today+".jsonl"))
	require.NoError(t, err)

	for _, got := range lines {
		name := fmt.Sprintf("%s-%s.json", got["type"], got["object_id"])
		b, err := os.ReadFile(repoPath("resources/testdata/events/" + name))
		require.NoError(t, err, "no testdata for %s", name)
		var want map[string]any
		require.NoError(t, json.Unmarshal(b, &want))
		for _, m := range []map[string]any{got, want} {
			delete(m, "received_at")
			if _, dated := m["data"].(map[string]any)["date_modified_gmt"]; !dated {
				delete(m, "occurred_at") // dateless deletes occur when received
			}
		}
		assert.Equal(t, want, got, name)
	}
}

// config/webhook_to_callback.yaml and config/redrive_dlq.yaml: signed Cloud
// Elements notifications, verified by the receiver (HMAC recomputed here and
// the Standard Webhooks library), a retry honouring Retry-After with a fresh
// signature, a permanent failure dead-lettered and then redriven.
func TestWebhookToCallback(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cs := newCallbackServer(t, ceKey, swSecret2)

	var mu sync.Mutex
	timestamps := map[string][]int64{} // object id → webhook-timestamp per attempt
	acceptProduct12 := false
	cs.respond = func(r received, attempt int, w http.ResponseWriter) bool {
		obj := r.n.Message.Events[0].ObjectID
		ts, _ := strconv.ParseInt(r.header.Get("webhook-timestamp"), 10, 64)
		mu.Lock()
		defer mu.Unlock()
		timestamps[obj] = append(timestamps[obj], ts)
		switch {
		case obj == "20" && attempt == 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		case obj == "12" && r.n.Message.Events[0].ObjectType == "products" && !acceptProduct12:
			http.Error(w, "unknown product", http.StatusBadRequest)
			return true
		}
		return false
	}
	env := map[string]string{
		"WOOEVENTS_WEBHOOK_SECRET":                     captureSecret,
		"WOOEVENTS_WEBHOOK_ADDRESS":                    addr,
		"WOOEVENTS_CALLBACK_URL":                       cs.URL(),
		"WOOEVENTS_CALLBACK_SIGNATURE_KEY":             ceKey,
		"WOOEVENTS_CALLBACK_STANDARD_WEBHOOKS_SECRETS": swSecret1 + " " + swSecret2,
		"WOOEVENTS_INSTANCE_NAME":                      "my-woocommerce-instance",
		"WOOEVENTS_INSTANCE_TAGS":                      "my-tag",
		"WOOEVENTS_CALLBACK_INITIAL_BACKOFF":           "100ms",
		"WOOEVENTS_CALLBACK_MAX_ATTEMPTS":              "3",
	}
	p := startWooevents(t, dir, env, callbackArgs("config/webhook_to_callback.yaml")...)
	p.waitReady(t)
	replay(t, "http://"+addr+"/webhooks/woocommerce", webhookCaptures(t))

	dlqGlob := filepath.Join(dir, "data", "dead-letter", "callback-*.jsonl")
	// Events in = delivered + dead-lettered.
	require.Eventually(t, func() bool {
		return len(cs.delivered())+countLines(dlqGlob) >= captureEvents
	}, 30*time.Second, 50*time.Millisecond)
	p.stop(t)
	assert.Empty(t, cs.rejections(), "every request verified")
	delivered := cs.delivered()
	dlq := readJSONLines(t, dlqGlob)
	require.Len(t, delivered, captureEvents-1)
	require.Len(t, dlq, 1)

	types := map[string]string{}
	for _, r := range delivered {
		m := r.n.Message
		require.Len(t, m.Events, 1)
		e := m.Events[0]
		assert.Equal(t, "woocommercerest", e.ElementKey)
		assert.Equal(t, "my-woocommerce-instance", m.InstanceName)
		assert.Equal(t, []string{"my-tag"}, m.InstanceTags)
		assert.Regexp(t, `^[0-9a-f]{32}$`, m.EventID)
		assert.Contains(t, r.header.Get("webhook-signature"), " ", "one signature per secret")
		types[e.ObjectType+"/"+e.ObjectID+"/"+e.EventType] = e.Date
	}
	assert.Contains(t, types, "orders/24/CREATED")
	assert.Contains(t, types, "orders/24/DELETED")
	assert.Contains(t, types, "orders/20/UPDATED")
	assert.Contains(t, types, "coupons/26/CREATED")
	assert.Contains(t, types, "customers/4/DELETED")
	assert.Equal(t, "2026-11-27T23:49:29Z", types["orders/24/CREATED"])

	mu.Lock()
	ts20 := timestamps["20"]
	mu.Unlock()
	require.Len(t, ts20, 2, "order 20: 503 then delivered")
	assert.GreaterOrEqual(t, ts20[1]-ts20[0], int64(1), "the retry is signed at its own time, after Retry-After")

	rec := dlq[0]
	assert.EqualValues(t, 1, rec["attempts"], "400 is not retried")
	assert.EqualValues(t, 400, rec["status_code"])
	assert.Contains(t, rec["reason"], "HTTP 400")
	assert.NotEmpty(t, rec["failed_at"])
	body := rec["body"].(map[string]any)["message"].(map[string]any)
	assert.Equal(t, rec["event_id"], body["eventId"])
	assert.Equal(t, "12", body["events"].([]any)[0].(map[string]any)["objectId"])
	assert.Equal(t, rec["event_id"], rec["metadata"].(map[string]any)["woocommerce_event_id"])
	assert.NotContains(t, fmt.Sprint(rec), ceKey)

	// Redrive: the receiver accepts product 12 now.
	mu.Lock()
	acceptProduct12 = true
	mu.Unlock()
	before := len(cs.delivered())
	r := startWooevents(t, dir, env, callbackArgs("config/redrive_dlq.yaml")...)
	r.waitExit(t, 30*time.Second)
	after := cs.delivered()
	require.Len(t, after, before+1)
	redriven := after[len(after)-1]
	assert.Equal(t, rec["event_id"], redriven.n.Message.EventID)
	assert.Equal(t, rec["event_id"], redriven.header.Get("webhook-id"))
	assert.Equal(t, rec["event_id"], redriven.header.Get("Elements-Webhook-Id"))
	assert.Empty(t, cs.rejections())
	failed, _ := filepath.Glob(filepath.Join(dir, "data", "dead-letter", "redrive-*.jsonl"))
	assert.Empty(t, failed)
}
