package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The keys the issue requires in latest.json, present even when a scenario
// could not run (then null).
var requiredKeys = []string{
	"machine", "webhook_rps", "baseline_http_server_rps", "webhook_vs_baseline_ratio", "ceiling_http_server_rps",
	"webhook_vs_ceiling_ratio", "webhook_p50_ms_at_2000rps", "webhook_p99_ms_at_2000rps", "spooled_vs_memory_ratio",
	"backfill_records_per_s_100k", "backfill_requests_100k", "rss_mb_100k", "rss_mb_1m", "rss_ratio_1m_100k",
	"kafka_records_per_s",
}

func TestReportJSONKeys(t *testing.T) {
	r := &Report{Machine: DetectMachine("test"), WebhookRPS: ptr(1234.5), Errors: map[string]string{"kafka": "not available"}}
	path := filepath.Join(t.TempDir(), "latest.json")
	require.NoError(t, r.WriteJSON(path))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))
	for _, k := range requiredKeys {
		assert.Contains(t, got, k)
	}
	assert.Equal(t, 1234.5, got["webhook_rps"])
	assert.Nil(t, got["kafka_records_per_s"])
	machine := got["machine"].(map[string]any)
	assert.Greater(t, machine["cores"], 0.0)
	assert.NotEmpty(t, machine["cpu_model"])

	var table bytes.Buffer
	r.PrintTable(&table)
	assert.Contains(t, table.String(), "1234 req/s")
	assert.Contains(t, table.String(), "NOT RUN kafka: not available")
}

func TestMedian(t *testing.T) {
	assert.Nil(t, Median(nil))
	assert.Equal(t, 2.0, *Median([]float64{3, 1, 2}))
	assert.Equal(t, 2.5, *Median([]float64{4, 1, 3, 2}))
}

func TestSumMetric(t *testing.T) {
	m := map[string]float64{`output_sent{label="",path="root.output"}`: 7, "output_sent": 1, "output_sent_bytes": 100}
	v, ok := SumMetric(m, "output_sent")
	assert.True(t, ok)
	assert.Equal(t, 8.0, v)
	_, ok = SumMetric(m, "input_received")
	assert.False(t, ok)
}

// The Lua script makes wrk send the request byte for byte: the same method,
// path, headers and body.
func TestWrkScript(t *testing.T) {
	c, err := LoadRepoCapture(OrderUpdatedFixture)
	require.NoError(t, err)
	req := c.Request(DeliveryOptions{Path: WebhookPath, Host: "127.0.0.1:1", Secret: FixtureSecret})
	script, err := WrkScript(req)
	require.NoError(t, err)
	s := string(script)
	assert.Contains(t, s, `wrk.method = "POST"`)
	assert.Contains(t, s, `wrk.path = "/webhooks/woocommerce"`)
	assert.Contains(t, s, `wrk.headers["X-Wc-Webhook-Signature"] = "`+Sign(FixtureSecret, c.Body)+`"`)
	assert.Contains(t, s, `wrk.body = "{`)
	assert.NotContains(t, s, "Content-Length")

	out := "Running 5s test @ http://127.0.0.1:1\n  1 threads and 32 connections\n  123456 requests in 5.00s, 9.42MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  24691.20\nTransfer/sec:      1.88MB\n"
	r, err := ParseWrk(out)
	require.NoError(t, err)
	assert.InDelta(t, 24691.2, r.RPS, 0.01)
	assert.Equal(t, int64(123456), r.Requests)
	assert.Equal(t, int64(3), r.Non2xx)
	_, err = ParseWrk("garbage")
	require.Error(t, err)
}
