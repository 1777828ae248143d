package wcsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFaultInjectionAndRequestCounts(t *testing.T) {
	s := startStore(t, Options{TLS: true})
	s.Seed(Orders, 3)
	orders := "/wp-json/wc/v3/orders"
	s.InjectFault(Fault{PathPrefix: orders, Method: "GET", Count: 2, Status: 429, RetryAfter: "3"})
	for i := 0; i < 2; i++ {
		r := basicDo(t, s, "GET", orders, nil)
		assert.Equal(t, 429, r.code)
		assert.Equal(t, "3", r.header.Get("Retry-After"))
		assert.Equal(t, `{"code":"wcsim_injected_fault","message":"Too Many Requests","data":{"status":429}}`, string(r.body))
	}
	assert.Equal(t, 200, basicDo(t, s, "GET", orders, nil).code, "count exhausted")
	// scoped by path: products untouched
	s.InjectFault(Fault{PathPrefix: "/wp-json/wc/v3/orders", Count: 1, Kind: FaultHTML, Status: 503})
	assert.Equal(t, 200, basicDo(t, s, "GET", "/wp-json/wc/v3/products", nil).code)
	r := basicDo(t, s, "GET", orders+"/10", nil)
	assert.Equal(t, 503, r.code)
	assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/html"))
	assert.Contains(t, string(r.body), "<title>503 Service Unavailable</title>")

	s.InjectFault(Fault{PathPrefix: orders, Count: 1, Kind: FaultTruncated})
	r = basicDo(t, s, "GET", orders, nil)
	assert.Equal(t, 200, r.code)
	assert.False(t, json.Valid(r.body))
	assert.NotEmpty(t, r.header.Get("X-WP-Total"))

	s.InjectFault(Fault{PathPrefix: orders, Count: 1, Delay: 150 * time.Millisecond})
	start := time.Now()
	r = basicDo(t, s, "GET", orders, nil)
	assert.Equal(t, 200, r.code)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)

	s.InjectFault(Fault{PathPrefix: orders, Count: 1, Kind: FaultDrop})
	req, _ := http.NewRequest("GET", s.URL()+orders, nil)
	req.SetBasicAuth(DefaultConsumerKey, DefaultConsumerSecret)
	noReuse := s.Client()
	tr := noReuse.Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true // else Go retries the idempotent GET on a new connection
	_, err := (&http.Client{Transport: tr}).Do(req)
	assert.Error(t, err)

	s.InjectFault(Fault{Status: 500}) // unlimited, everything
	assert.Equal(t, 500, basicDo(t, s, "GET", "/wp-json/wc/v3/coupons", nil).code)
	assert.Equal(t, 500, basicDo(t, s, "GET", "/wp-json/wc/v3/coupons", nil).code)
	s.ClearFaults()
	assert.Equal(t, 200, basicDo(t, s, "GET", "/wp-json/wc/v3/coupons", nil).code)

	assert.Equal(t, 7, s.Requests("GET", orders)) // 2x429, ok, /10, truncated, delayed, dropped
	assert.Equal(t, 1, s.Requests("GET", orders+"/10"))
	assert.Equal(t, 3, s.Requests("", "/wp-json/wc/v3/coupons"))
	log := s.RequestLog()
	require.NotEmpty(t, log)
	assert.Equal(t, 429, log[0].Status)
	s.ResetRequests()
	assert.Equal(t, 0, s.Requests("", ""))
}

func simCall(t *testing.T, s *Store, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	require.NoError(t, err)
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func TestSimControlAPI(t *testing.T) {
	rc := newReceiver(t)
	s := startStore(t, Options{CoalesceWebhooks: true})
	code, b := simCall(t, s, "POST", "/__sim/clock", map[string]string{"set": "2026-05-01T10:00:00Z"})
	require.Equal(t, 200, code, string(b))
	assert.Equal(t, "2026-05-01T10:00:00Z", s.Now().UTC().Format(time.RFC3339))
	simCall(t, s, "POST", "/__sim/clock", map[string]string{"advance": "90s"})
	assert.Equal(t, "2026-05-01T10:01:30Z", s.Now().UTC().Format(time.RFC3339))

	code, b = simCall(t, s, "POST", "/__sim/webhooks", map[string]string{"topic": "order.updated", "delivery_url": rc.URL + "/h", "secret": "sek"})
	require.Equal(t, 200, code, string(b))
	code, b = simCall(t, s, "POST", "/__sim/seed", map[string]any{"resource": "orders", "count": 5, "step": "0s", "same_second": true})
	require.Equal(t, 200, code, string(b))
	var seeded struct{ FirstID, LastID int64 }
	require.NoError(t, json.Unmarshal(bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("first_id"), []byte("FirstID")), []byte("last_id"), []byte("LastID")), &seeded))
	assert.Equal(t, int64(4), seeded.LastID-seeded.FirstID)
	code, b = simCall(t, s, "POST", "/__sim/bulk-update", map[string]any{"resource": "orders", "ids": []int64{seeded.FirstID, seeded.LastID}, "fields": map[string]any{"status": "completed"}})
	require.Equal(t, 200, code, string(b))
	code, b = simCall(t, s, "POST", "/__sim/create", map[string]any{"resource": "orders", "fields": map[string]any{"nope": 1}})
	assert.Equal(t, 400, code)
	assert.Contains(t, string(b), "unknown order field(s): nope")
	code, b = simCall(t, s, "POST", "/__sim/trash", map[string]any{"resource": "orders", "id": seeded.FirstID})
	require.Equal(t, 200, code, string(b))
	code, b = simCall(t, s, "GET", "/__sim/get?resource=orders&id="+itoa(seeded.FirstID), nil)
	require.Equal(t, 200, code)
	assert.Contains(t, string(b), `"status":"trash"`)
	code, b = simCall(t, s, "POST", "/__sim/flush", nil)
	require.Equal(t, 200, code)
	var ds []Delivery
	require.NoError(t, json.Unmarshal(b, &ds))
	require.Len(t, ds, 3) // ping + two coalesced order.updated
	assert.True(t, ds[0].Ping)
	assert.Equal(t, "order.updated", ds[1].Topic)
	assert.Equal(t, ds[1].DeliveryID, ds[2].DeliveryID, "same webhook, same second")
	assert.Equal(t, Signature("sek", []byte(ds[1].Body)), ds[1].Headers["X-WC-Webhook-Signature"])

	code, _ = simCall(t, s, "POST", "/__sim/faults", map[string]any{"path_prefix": "/wp-json/wc/v3/orders", "count": 1, "status": 503, "kind": "html", "delay": "10ms"})
	require.Equal(t, 200, code)
	r := oauthDo(t, s, "GET", "/wp-json/wc/v3/orders", nil, oauthOpt{}, nil)
	assert.Equal(t, 503, r.code)
	code, b = simCall(t, s, "GET", "/__sim/requests?method=GET&prefix=/wp-json/wc/v3/orders", nil)
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"count":1}`, string(b))
	code, _ = simCall(t, s, "POST", "/__sim/faults", map[string]any{"kind": "weird"})
	assert.Equal(t, 400, code)
	code, b = simCall(t, s, "GET", "/__sim/info", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, string(b), DefaultConsumerKey)
	code, _ = simCall(t, s, "GET", "/__sim/nope", nil)
	assert.Equal(t, 404, code)
}
