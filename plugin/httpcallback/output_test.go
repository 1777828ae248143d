package httpcallback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/internal/buildinfo"
	"github.com/wooevents/wooevents/plugin/signing"
)

// Standard Webhooks secrets (whsec_ + base64 key) used by the signer.
const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_" + "c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tMTIzNDU2" // "second-secret-for-rotation-123456"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testOutput builds an http_callback from YAML with a fake clock whose sleeps
// advance the clock instantly and are recorded.
func testOutput(t *testing.T, yaml string, start time.Time) (*httpCallback, *fakeClock, *[]time.Duration) {
	t.Helper()
	conf, err := httpCallbackSpec().ParseYAML(yaml, nil)
	require.NoError(t, err)
	o, err := newHTTPCallback(conf, service.MockResources())
	require.NoError(t, err)
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	clk := &fakeClock{t: start}
	var waits []time.Duration
	o.clock = clk
	o.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		clk.advance(d)
		return ctx.Err()
	}
	return o, clk, &waits
}

type recorded struct {
	header http.Header
	body   []byte
}

// recordingServer answers the n-th request (0-based) with respond(n, w, r).
func recordingServer(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request, body []byte)) (*httptest.Server, func() []recorded) {
	var mu sync.Mutex
	var reqs []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(reqs)
		reqs = append(reqs, recorded{header: r.Header.Clone(), body: body})
		mu.Unlock()
		respond(n, w, r, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []recorded {
		mu.Lock()
		defer mu.Unlock()
		return append([]recorded(nil), reqs...)
	}
}

const swSigner = `
attempt_processors:
  - mapping: |
      root = content()
      meta "webhook-id" = @woocommerce_event_id
      meta "webhook-timestamp" = @callback_attempt_unix.string()
      meta "webhook-signature" = content().standard_webhooks_signature(@woocommerce_event_id, @callback_attempt_unix, "` + secretA + ` ` + secretB + `")
      meta "Elements-Webhook-Signature" = content().cloud_elements_signature("example-signature-key")
metadata:
  include_prefixes: [ "webhook-", "Elements-" ]
`

func eventMsg(body string) *service.Message {
	m := service.NewMessage([]byte(body))
	m.MetaSetMut("woocommerce_event_id", "5f0c2b1e9a7d4c3b8e6f1a2b3c4d5e6f")
	return m
}

// A consumer verifying with the Standard Webhooks library (5 minute tolerance)
// accepts a retry sent more than five minutes after the first attempt: the
// timestamp and signature are computed per attempt.
func TestRetryMoreThanFiveMinutesLaterVerifies(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(secretB)
	require.NoError(t, err)
	srv, reqs := recordingServer(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) {
		if n == 0 {
			w.Header().Set("Retry-After", "360")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	o, clk, waits := testOutput(t, "url: "+srv.URL+"\nmax_attempts: 3\n"+swSigner, time.Now().Add(-6*time.Minute))

	// Not in sorted key order, with PHP-style escaped slashes: the exact bytes must be signed and sent.
	body := `{"message":{"raw":{"b":1,"a":"http:\/\/x"},"eventId":"5f0c2b1e9a7d4c3b8e6f1a2b3c4d5e6f"}}`
	require.NoError(t, o.Write(context.Background(), eventMsg(body)))

	got := reqs()
	require.Len(t, got, 2)
	assert.Equal(t, []time.Duration{360 * time.Second}, *waits, "Retry-After honoured")
	t0, err := strconv.ParseInt(got[0].header.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err)
	t1, err := strconv.ParseInt(got[1].header.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, t1-t0, int64(360))
	assert.Equal(t, clk.Now().Unix(), t1)
	for _, r := range got {
		assert.Equal(t, body, string(r.body))
		assert.Equal(t, "5f0c2b1e9a7d4c3b8e6f1a2b3c4d5e6f", r.header.Get("webhook-id"), "stable across retries")
		assert.Equal(t, "sha256=", r.header.Get("Elements-Webhook-Signature")[:7])
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.NoError(t, wh.VerifyIgnoringTimestamp(r.body, r.header))
	}
	assert.Equal(t, signing.CloudElementsSignature([]byte("example-signature-key"), []byte(body)), got[1].header.Get("Elements-Webhook-Signature"))
	// Had the first attempt's headers been reused, the library would reject them.
	require.ErrorIs(t, wh.Verify(got[0].body, got[0].header), standardwebhooks.ErrMessageTooOld)
}

func TestRetryAfterHTTPDateAndBackoff(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srv, reqs := recordingServer(t, func(n int, w http.ResponseWriter, r *http.Request, _ []byte) {
		switch n {
		case 0:
			w.Header().Set("Retry-After", start.Add(20*time.Second).Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		case 1:
			w.WriteHeader(http.StatusRequestTimeout)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	o, _, waits := testOutput(t, "url: "+srv.URL+"\nbackoff:\n  initial_interval: 1s\n  max_interval: 4s\n  max_elapsed_time: 1h\n", start)
	require.NoError(t, o.Write(context.Background(), eventMsg(`{}`)))
	require.Len(t, reqs(), 3)
	require.Len(t, *waits, 2)
	assert.Equal(t, 20*time.Second, (*waits)[0], "HTTP-date Retry-After")
	assert.Greater(t, (*waits)[1], time.Duration(0))
	assert.LessOrEqual(t, (*waits)[1], 4*time.Second)
}

func TestPermanentFailuresAreNotRetried(t *testing.T) {
	for _, code := range []int{400, 401, 404, 410, 302} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv, reqs := recordingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
				if code == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(code)
				_, _ = fmt.Fprint(w, "nope\n")
			})
			o, _, waits := testOutput(t, "url: "+srv.URL+"/cb?token=s3cr3t\n", time.Now())
			err := o.Write(context.Background(), eventMsg(`{}`))
			var de *DeliveryError
			require.True(t, errors.As(err, &de), "%v", err)
			assert.Equal(t, 1, de.Attempts)
			assert.Equal(t, code, de.StatusCode)
			assert.True(t, de.Permanent)
			assert.Len(t, reqs(), 1)
			assert.Empty(t, *waits)
			assert.Contains(t, err.Error(), fmt.Sprintf("attempts=1 status=%d permanent=true", code))
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
}

func TestRetryableFailuresAreBounded(t *testing.T) {
	srv, reqs := recordingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
	})
	o, _, waits := testOutput(t, "url: "+srv.URL+"\nmax_attempts: 4\n", time.Now())
	err := o.Write(context.Background(), eventMsg(`{}`))
	var de *DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 4, de.Attempts)
	assert.Equal(t, 500, de.StatusCode)
	assert.False(t, de.Permanent)
	assert.Contains(t, de.Reason, "down for maintenance")
	assert.Len(t, reqs(), 4)
	assert.Len(t, *waits, 3)
}

func TestMaxElapsedTimeBoundsRetries(t *testing.T) {
	srv, reqs := recordingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.WriteHeader(http.StatusBadGateway)
	})
	o, _, _ := testOutput(t, "url: "+srv.URL+"\nmax_attempts: 100\nbackoff:\n  initial_interval: 10s\n  max_interval: 10s\n  max_elapsed_time: 35s\n", time.Now())
	err := o.Write(context.Background(), eventMsg(`{}`))
	var de *DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Less(t, de.Attempts, 10)
	assert.Equal(t, len(reqs()), de.Attempts)
	assert.Contains(t, de.Reason, "max_elapsed_time")
}

func TestRetryAfterBeyondLimitFailsAtOnce(t *testing.T) {
	srv, reqs := recordingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	o, _, waits := testOutput(t, "url: "+srv.URL+"\n", time.Now())
	err := o.Write(context.Background(), eventMsg(`{}`))
	var de *DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 1, de.Attempts)
	assert.Equal(t, 429, de.StatusCode)
	assert.Contains(t, de.Reason, "exceeds max_retry_after")
	assert.Len(t, reqs(), 1)
	assert.Empty(t, *waits)
}

func TestNetworkErrorsRetriedAndRedacted(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens any more
	o, _, waits := testOutput(t, "url: "+addr[:7]+"user:pa55@"+addr[7:]+"/cb?sig=t0ken\nmax_attempts: 2\ntimeout: 2s\n", time.Now())
	err := o.Write(context.Background(), eventMsg(`{}`))
	var de *DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 2, de.Attempts)
	assert.Equal(t, 0, de.StatusCode)
	assert.Len(t, *waits, 1)
	assert.NotContains(t, err.Error(), "pa55")
	assert.NotContains(t, err.Error(), "t0ken")
}

func TestAttemptProcessorErrorIsPermanent(t *testing.T) {
	srv, reqs := recordingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {})
	o, _, _ := testOutput(t, "url: "+srv.URL+"\nattempt_processors:\n  - mutation: 'meta sig = content().standard_webhooks_signature(@missing, 1, \""+secretA+"\")'\n", time.Now())
	err := o.Write(context.Background(), eventMsg(`{}`))
	var de *DeliveryError
	require.ErrorAs(t, err, &de)
	assert.True(t, de.Permanent)
	assert.Empty(t, reqs())
	assert.NotContains(t, err.Error(), "MfKQ9r8")
}

func TestConfigValidation(t *testing.T) {
	for _, y := range []string{
		"url: http://x\nmax_attempts: 0\n",
		"url: http://x\nbackoff:\n  max_elapsed_time: 0s\n",
	} {
		conf, err := httpCallbackSpec().ParseYAML(y, nil)
		require.NoError(t, err)
		_, err = newHTTPCallback(conf, service.MockResources())
		require.Error(t, err, y)
	}
}

// Retry warnings name the event, so an operator can find it in the
// dead-letter file or the pipeline's own logs.
func TestRetryLogNamesEvent(t *testing.T) {
	srv, _ := recordingServer(t, func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		if n == 0 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	var logs bytes.Buffer
	logger := service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(&logs, nil)))
	conf, err := httpCallbackSpec().ParseYAML("url: "+srv.URL+"/cb?token=s3cr3t\nbackoff:\n  initial_interval: 1ms\n  max_interval: 1ms\n", nil)
	require.NoError(t, err)
	o, err := newHTTPCallback(conf, service.MockResources(service.MockResourcesOptUseLogger(logger)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	require.NoError(t, o.Write(context.Background(), eventMsg(`{}`)))
	assert.Contains(t, logs.String(), "attempt 1/8 for event 5f0c2b1e9a7d4c3b8e6f1a2b3c4d5e6f failed")
	assert.Contains(t, logs.String(), "token=REDACTED")
	assert.NotContains(t, logs.String(), "s3cr3t")
}

// The default User-Agent carries the build version (buildinfo.Version,
// set by the Makefile's -ldflags).
func TestUserAgentCarriesVersion(t *testing.T) {
	old := buildinfo.Version
	buildinfo.Version = "9.8.7-test"
	t.Cleanup(func() { buildinfo.Version = old })
	srv, reqs := recordingServer(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {})
	o, _, _ := testOutput(t, "url: "+srv.URL+"\n", time.Now())
	require.NoError(t, o.Write(context.Background(), eventMsg(`{}`)))
	require.Len(t, reqs(), 1)
	assert.Equal(t, "wooevents/9.8.7-test", reqs()[0].header.Get("User-Agent"))
}

// TestAttemptProcessorResourcesBuiltOnce: benthos builds a processor
// resource on its first use under a read lock, so the first attempts of
// messages in flight at once would each build (and race on) the signer
// resource they name. Connect builds it first: once.
func TestAttemptProcessorResourcesBuiltOnce(t *testing.T) {
	var builds atomic.Int32
	env := service.NewEnvironment()
	require.NoError(t, env.RegisterProcessor("test_slow_signer", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.Processor, error) {
			builds.Add(1)
			time.Sleep(100 * time.Millisecond) // a window for concurrent first uses
			return slowSigner{}, nil
		}))
	srv, reqs := recordingServer(t, func(int, http.ResponseWriter, *http.Request, []byte) {})
	const n = 8
	b := env.NewStreamBuilder()
	require.NoError(t, b.SetYAML(fmt.Sprintf(`
input:
  generate:
    count: %d
    interval: ""
    mapping: 'root = {"n": counter()}'
output:
  http_callback:
    url: %s
    attempt_processors:
      - resource: signer
    metadata:
      include_prefixes: [ "x-signed" ]
    max_in_flight: %d
processor_resources:
  - label: signer
    test_slow_signer: {}
logger:
  level: warn
`, n, srv.URL, n)))
	stream, err := b.Build()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, stream.Run(ctx))
	got := reqs()
	require.Len(t, got, n)
	for _, r := range got {
		assert.Equal(t, "yes", r.header.Get("X-Signed"), "every request went through the signer")
	}
	assert.Equal(t, int32(1), builds.Load(), "the signer resource is built once")
}

// slowSigner marks a message as signed.
type slowSigner struct{}

func (slowSigner) Process(_ context.Context, m *service.Message) (service.MessageBatch, error) {
	m.MetaSetMut("x-signed", "yes")
	return service.MessageBatch{m}, nil
}

func (slowSigner) Close(context.Context) error { return nil }

func TestResourceNames(t *testing.T) {
	conf, err := httpCallbackSpec().ParseYAML(`
url: http://127.0.0.1:1/callback
attempt_processors:
  - resource: signer_a
  - branch:
      processors:
        - resource: signer_b
        - cache:
            resource: tokens
            operator: get
            key: k
  - resource: signer_a
  - mapping: 'root = this'
`, nil)
	require.NoError(t, err)
	raw, err := conf.FieldAny(hcFieldAttemptProcessors)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"signer_a", "signer_b", "tokens"}, resourceNames(raw, nil))
}
