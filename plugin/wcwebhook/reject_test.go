package wcwebhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testSecret = "s3cret-for-tests"
	testStore  = "https://shop.example.com"
)

var orderBody = []byte(`{"id":42,"status":"processing","date_modified_gmt":"2026-11-27T23:48:19","billing":{"email":"a@b.c"}}`)

// chunked hides the length so the server reads without Content-Length.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestBadInputs: every kind of bad request gets its status, is counted
// under its reason, emits nothing, and the server keeps serving.
func TestBadInputs(t *testing.T) {
	run := startStream(t, `  store_url: `+testStore+`
  secret: `+testSecret+`
  topics: [ "order.*", "product.*", "customer.*", "coupon.*" ]
  max_body_bytes: 4096
`, nil, "")

	signed := func(topic string, body []byte) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request { return signedRequest(t, run.URL, testSecret, topic, "", body) }
	}
	withSig := func(sig string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := signedRequest(t, run.URL, "", "order.updated", "", orderBody)
			r.Header.Set("X-WC-Webhook-Signature", sig)
			return r
		}
	}
	big := bytes.Repeat([]byte("x"), 5000)
	bigJSON := append(append([]byte(`{"id":1,"pad":"`), big...), `"}`...)

	cases := []struct {
		name   string
		req    func(t *testing.T) *http.Request
		status int
		reason string
	}{
		{"GET", func(t *testing.T) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, run.URL, nil)
			return r
		}, http.StatusMethodNotAllowed, ReasonMethod},
		{"PUT signed", func(t *testing.T) *http.Request {
			r := signedRequest(t, run.URL, testSecret, "order.updated", "", orderBody)
			r.Method = http.MethodPut
			return r
		}, http.StatusMethodNotAllowed, ReasonMethod},
		{"wrong path", func(t *testing.T) *http.Request {
			return signedRequest(t, run.Base+"/webhooks/other", testSecret, "order.updated", "", orderBody)
		}, http.StatusNotFound, ReasonNotFound},
		{"unknown store segment", func(t *testing.T) *http.Request {
			return signedRequest(t, run.URL+"/nope", testSecret, "order.updated", "", orderBody)
		}, http.StatusNotFound, ReasonUnknownStore},
		{"no signature", func(t *testing.T) *http.Request {
			return signedRequest(t, run.URL, "", "order.updated", "", orderBody)
		}, http.StatusUnauthorized, ReasonMissingSignature},
		{"ping-shaped body with a topic but unsigned", func(t *testing.T) *http.Request {
			return signedRequest(t, run.URL, "", "order.updated", "", []byte("webhook_id=3"))
		}, http.StatusUnauthorized, ReasonMissingSignature},
		{"form body without signature", func(t *testing.T) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, run.URL, strings.NewReader("webhook_id=3&x=1"))
			return r
		}, http.StatusUnauthorized, ReasonMissingSignature},
		{"signature of another body", withSig(Sign(testSecret, []byte(`{"id":43}`))), http.StatusUnauthorized, ReasonBadSignature},
		{"signature with another secret", withSig(Sign("other", orderBody)), http.StatusUnauthorized, ReasonBadSignature},
		{"signature not base64", withSig("!!!not-base64!!!"), http.StatusUnauthorized, ReasonBadSignature},
		{"signature too short", withSig("c2hvcnQ="), http.StatusUnauthorized, ReasonBadSignature},
		{"signature too long", withSig(strings.Repeat("A", 200)), http.StatusUnauthorized, ReasonBadSignature},
		{"signature as hex", func(t *testing.T) *http.Request {
			r := signedRequest(t, run.URL, testSecret, "order.updated", "", orderBody)
			r.Header.Set("X-WC-Webhook-Signature", "sha256="+r.Header.Get("X-WC-Webhook-Signature"))
			return r
		}, http.StatusUnauthorized, ReasonBadSignature},
		{"signed, not JSON", signed("order.updated", []byte("hello")), http.StatusBadRequest, ReasonNotJSON},
		{"signed, truncated JSON", signed("order.updated", orderBody[:20]), http.StatusBadRequest, ReasonNotJSON},
		{"signed, JSON array", signed("order.updated", []byte(`[{"id":1}]`)), http.StatusBadRequest, ReasonNotJSON},
		{"signed, no topic", func(t *testing.T) *http.Request {
			return signedRequest(t, run.URL, testSecret, "", "", orderBody)
		}, http.StatusBadRequest, ReasonBadTopic},
		{"signed, topic without event", signed("order", orderBody), http.StatusBadRequest, ReasonBadTopic},
		{"too large by Content-Length", signed("order.updated", bigJSON), http.StatusRequestEntityTooLarge, ReasonTooLarge},
		{"too large, chunked", func(t *testing.T) *http.Request {
			r := signedRequest(t, run.URL, testSecret, "order.updated", "", bigJSON)
			r.Body = io.NopCloser(chunked{bytes.NewReader(bigJSON)})
			r.ContentLength = -1
			return r
		}, http.StatusRequestEntityTooLarge, ReasonTooLarge},
		// Answered 200 so that WooCommerce does not count them as failures.
		{"topic not accepted", signed("action.woocommerce_payment_complete", []byte(`{"action":"woocommerce_payment_complete","arg":42}`)), http.StatusOK, ReasonTopicNotAccepted},
		{"signed object without id", signed("customer.updated", []byte(`{"code":"wc_user_invalid_id","message":"Invalid user ID.","data":{"status":404}}`)), http.StatusOK, ReasonMissingID},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := run.Metrics.Get(MetricRejections, "reason="+tc.reason)
			status, hdr, _ := post(t, tc.req(t))
			require.Equal(t, tc.status, status)
			if status == http.StatusMethodNotAllowed {
				assert.Equal(t, "POST", hdr.Get("Allow"))
			}
			assert.Equal(t, before+1, run.Metrics.Get(MetricRejections, "reason="+tc.reason))
			run.sentinel(t, testSecret, "", 80000+i)
		})
	}
}

// TestOverloadAndAckFailures: rate limit → 429, more than max_in_flight →
// 503, nack → 503, no ack within timeout → 503, all with Retry-After.
func TestOverloadAndAckFailures(t *testing.T) {
	t.Run("rate limited", func(t *testing.T) {
		run := startStream(t, "  secret: "+testSecret+"\n  rate_limit: rl\n", nil, `
rate_limit_resources:
  - label: rl
    local:
      count: 1
      interval: 1h
`)
		// The readiness ping used the only token.
		status, hdr, _ := post(t, signedRequest(t, run.URL, testSecret, "order.updated", testStore, orderBody))
		require.Equal(t, http.StatusTooManyRequests, status)
		ra, err := strconv.Atoi(hdr.Get("Retry-After"))
		require.NoError(t, err)
		assert.Greater(t, ra, 60)
		assert.Equal(t, int64(1), run.Metrics.Get(MetricRejections, "reason="+ReasonRateLimited))
		select {
		case m := <-run.Msgs:
			t.Fatalf("emitted %v", m)
		default:
		}
	})

	t.Run("nacked", func(t *testing.T) {
		var run *streamRun
		run = startStream(t, "  secret: "+testSecret+"\n", func(_ context.Context, m *service.Message) error {
			if id, _ := m.MetaGet("woocommerce_object_id"); id == "42" {
				return errors.New("output refused")
			}
			run.Msgs <- m
			return nil
		}, "")
		status, hdr, _ := post(t, signedRequest(t, run.URL, testSecret, "order.updated", testStore, orderBody))
		require.Equal(t, http.StatusServiceUnavailable, status)
		assert.NotEmpty(t, hdr.Get("Retry-After"))
		assert.Equal(t, int64(1), run.Metrics.Get(MetricRejections, "reason="+ReasonNacked))
		// Still serving, and other deliveries pass.
		run.sentinel(t, testSecret, testStore, 70001)
	})

	t.Run("ack timeout and max_in_flight", func(t *testing.T) {
		release := make(chan struct{})
		var relOnce sync.Once
		defer relOnce.Do(func() { close(release) })
		got := make(chan string, 10)
		run := startStream(t, "  secret: "+testSecret+"\n  timeout: 2s\n  max_in_flight: 1\n",
			func(ctx context.Context, m *service.Message) error {
				id, _ := m.MetaGet("woocommerce_object_id")
				got <- id
				if id == "42" {
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
				return nil
			}, "")
		first := make(chan int, 1)
		go func() {
			resp, err := http.DefaultClient.Do(signedRequest(t, run.URL, testSecret, "order.updated", testStore, orderBody))
			if err != nil {
				first <- 0
				return
			}
			resp.Body.Close()
			first <- resp.StatusCode
		}()
		// Once the pipeline holds it, a second request exceeds max_in_flight.
		require.Equal(t, "42", <-got)
		status, hdr, _ := post(t, signedRequest(t, run.URL, testSecret, "order.updated", testStore, []byte(`{"id":43}`)))
		if status == http.StatusServiceUnavailable && run.Metrics.Get(MetricRejections, "reason="+ReasonOverloaded) == 1 {
			assert.Equal(t, "1", hdr.Get("Retry-After"))
		} else {
			t.Fatalf("second request: %d, overloaded count %d", status, run.Metrics.Get(MetricRejections, "reason="+ReasonOverloaded))
		}
		// The held one times out.
		select {
		case s := <-first:
			require.Equal(t, http.StatusServiceUnavailable, s)
		case <-time.After(10 * time.Second):
			t.Fatal("held request never answered")
		}
		assert.Equal(t, int64(1), run.Metrics.Get(MetricRejections, "reason="+ReasonTimeout))
		relOnce.Do(func() { close(release) })
		// And the server is serving again.
		status, _, _ = post(t, signedRequest(t, run.URL, testSecret, "order.updated", testStore, []byte(`{"id":44}`)))
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "44", <-got)
	})
}

// woocommerce_webhook_accepted_total is published in batches
// (acceptedFlushInterval): every accepted delivery is counted within the
// interval, concurrent ones included, rejected ones never, and the count is
// complete when the input stops.
func TestAcceptedCountedInBatches(t *testing.T) {
	send := func(run *streamRun, n int) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 4 {
					body := []byte(`{"id":` + strconv.Itoa(1000+i) + `,"status":"processing"}`)
					status, _, msg := post(t, signedRequest(t, run.URL, testSecret, "order.updated", testStore, body))
					assert.Equal(t, http.StatusOK, status, msg)
				}
			}()
		}
		wg.Wait()
		for range n {
			run.next(t)
		}
	}
	run := startStream(t, "  secret: "+testSecret+"\n", nil, "")
	send(run, 40)
	status, _, _ := post(t, signedRequest(t, run.URL, "not-the-secret", "order.updated", testStore, orderBody))
	require.Equal(t, http.StatusUnauthorized, status)
	require.Eventually(t, func() bool { return run.Metrics.Get(MetricAccepted) == 40 }, 10*acceptedFlushInterval, acceptedFlushInterval/10,
		"40 accepted deliveries are counted within the flush interval: %d", run.Metrics.Get(MetricAccepted))
	send(run, 7) // after a flush: the next increment arms the next one
	require.Eventually(t, func() bool { return run.Metrics.Get(MetricAccepted) == 47 }, 10*acceptedFlushInterval, acceptedFlushInterval/10,
		"%d", run.Metrics.Get(MetricAccepted))
	assert.Equal(t, int64(1), run.Metrics.Get(MetricRejections, "reason="+ReasonBadSignature))
	run.Stop(t)

	// On close the count is complete without waiting for the interval.
	defer func(d time.Duration) { acceptedFlushInterval = d }(acceptedFlushInterval)
	acceptedFlushInterval = time.Hour
	run = startStream(t, "  secret: "+testSecret+"\n", nil, "")
	send(run, 3)
	assert.Zero(t, run.Metrics.Get(MetricAccepted), "not published before the interval")
	run.Stop(t)
	assert.Equal(t, int64(3), run.Metrics.Get(MetricAccepted), "published when the input closed")
}
