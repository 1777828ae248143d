// Package httpcallback holds the `http_callback` output: it POSTs each message
// to a callback URL with bounded exponential retries honouring Retry-After,
// and re-runs its `attempt_processors` (the signers of plugin/signing) before
// every attempt, so that a retry carries a fresh timestamp and signature.
package httpcallback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redpanda-data/benthos/v4/public/service"
	"gopkg.in/yaml.v3"

	"github.com/wooevents/wooevents/internal/buildinfo"
	"github.com/wooevents/wooevents/internal/retry"
)

// Config field names of the http_callback output.
const (
	hcFieldURL               = "url"
	hcFieldVerb              = "verb"
	hcFieldHeaders           = "headers"
	hcFieldMetadata          = "metadata"
	hcFieldAttemptProcessors = "attempt_processors"
	hcFieldTimeout           = "timeout"
	hcFieldMaxAttempts       = "max_attempts"
	hcFieldBackoff           = "backoff"
	hcFieldMaxRetryAfter     = "max_retry_after"
	hcFieldTLS               = "tls"
	hcFieldUserAgent         = "user_agent"
)

// MetaEventID is the metadata key naming the event in retry logs (set by the
// woocommerce inputs).
const MetaEventID = "woocommerce_event_id"

// Metadata set on the per-attempt copy of a message before the attempt
// processors run.
const (
	MetaAttempt     = "callback_attempt"      // 1 for the first attempt
	MetaAttemptUnix = "callback_attempt_unix" // Unix seconds at the start of this attempt
)

const maxReasonBody = 256

func httpCallbackSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Categories("Network").
		Summary("POSTs each message to a callback URL with bounded exponential retries, honouring 429/503 `Retry-After`, re-running its `attempt_processors` (signers) before every attempt.").
		Description(`
Outcome of an attempt:

- 2xx: delivered.
- 408, 429, 5xx and network errors or timeouts: retried after an exponential backoff (with jitter). A
  `+"`Retry-After`"+` header (seconds or an HTTP date) on a 429 or 503 is honoured: the next attempt waits at
  least that long; when it asks for more than `+"`max_retry_after`"+` the message fails at once.
- Anything else (3xx — redirects are not followed —, other 4xx such as 400, 401, 404, 410): permanent, not retried.

When `+"`max_attempts`"+` or `+"`backoff.max_elapsed_time`"+` is exhausted, or the failure is permanent, the write
fails with an error of the form `+"`callback delivery failed: attempts=3 status=503 permanent=false: <reason>`"+`.
Wrap the output in a `+"`fallback`"+` with a dead-letter output after it: the dead-letter output sees the error in
the `+"`fallback_error`"+` metadata key.

Before every attempt the output copies the message, sets the metadata `+"`callback_attempt`"+` (1, 2, …) and
`+"`callback_attempt_unix`"+` (Unix seconds of this attempt), runs `+"`attempt_processors`"+` on the copy and sends
the copy's content with the headers of `+"`metadata`"+` and `+"`headers`"+` (evaluated on the copy). Signers whose
signature covers the attempt time (Standard Webhooks) therefore belong in `+"`attempt_processors`"+` and should use
`+"`@callback_attempt_unix`"+`. Headers whose value is empty are not sent.

Retries are logged as warnings naming the event (`+"`woocommerce_event_id`"+` metadata) and the URL with its query
values hidden.`).
		Fields(
			service.NewInterpolatedStringField(hcFieldURL).
				Description("The callback URL.").
				Example("https://example.com/wooevents/callback"),
			service.NewStringField(hcFieldVerb).
				Description("The HTTP method.").
				Default("POST").Advanced(),
			service.NewInterpolatedStringMapField(hcFieldHeaders).
				Description("Headers to send, evaluated per attempt against the message after `attempt_processors`. Empty values are skipped. May carry credentials (`Authorization`): marked secret, so `wooevents echo` and config dumps hide it; put the value in an environment variable.").
				Default(map[string]any{"Content-Type": "application/json"}).
				Example(map[string]any{"Content-Type": "application/json", "Authorization": "Bearer ${CALLBACK_TOKEN}"}).
				Secret(),
			service.NewMetadataFilterField(hcFieldMetadata).
				Description("Metadata keys (after `attempt_processors`) to send as headers. Empty values are skipped.").
				Optional(),
			service.NewProcessorListField(hcFieldAttemptProcessors).
				Description("Processors run on a copy of the message before each attempt, typically signers. They must produce exactly one message; a processing error fails the message permanently.").
				Default([]any{}),
			service.NewDurationField(hcFieldTimeout).
				Description("Timeout of one attempt, response included.").
				Default("15s"),
			service.NewIntField(hcFieldMaxAttempts).
				Description("Attempts per message, the first one included (at least 1).").
				Default(8),
			service.NewBackOffField(hcFieldBackoff, false, &backoff.ExponentialBackOff{
				InitialInterval: time.Second,
				MaxInterval:     5 * time.Minute,
				MaxElapsedTime:  30 * time.Minute,
			}),
			service.NewDurationField(hcFieldMaxRetryAfter).
				Description("The longest `Retry-After` honoured; a longer one fails the message at once.").
				Default("10m").Advanced(),
			service.NewTLSToggledField(hcFieldTLS),
			service.NewStringField(hcFieldUserAgent).
				Description("The User-Agent header. The default names this build's version.").
				Default(buildinfo.UserAgent()).Advanced(),
			service.NewOutputMaxInFlightField().Default(16),
		)
}

func init() {
	service.MustRegisterOutput("http_callback", httpCallbackSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Output, int, error) {
			maxInFlight, err := conf.FieldMaxInFlight()
			if err != nil {
				return nil, 0, err
			}
			o, err := newHTTPCallback(conf, mgr)
			if err != nil {
				return nil, 0, err
			}
			return o, maxInFlight, nil
		})
}

// DeliveryError is the error of a message that could not be delivered.
type DeliveryError struct {
	Attempts   int
	StatusCode int // last HTTP status, 0 when there was no response
	Permanent  bool
	Reason     string
}

func (e *DeliveryError) Error() string {
	return fmt.Sprintf("callback delivery failed: attempts=%d status=%d permanent=%t: %s", e.Attempts, e.StatusCode, e.Permanent, e.Reason)
}

type httpCallback struct {
	url           *service.InterpolatedString
	verb          string
	headers       map[string]*service.InterpolatedString
	meta          *service.MetadataFilter
	procs         []*service.OwnedProcessor
	client        *http.Client
	maxAttempts   int
	boff          backoff.ExponentialBackOff
	maxRetryAfter time.Duration
	userAgent     string
	log           *service.Logger
	mgr           *service.Resources
	// resources are the resource names attempt_processors mention, built
	// by Connect.
	resources []string

	mDelivered *service.MetricCounter
	mFailed    *service.MetricCounter
	mRetries   *service.MetricCounter

	// clock and sleep are replaceable in tests.
	clock backoff.Clock
	sleep func(ctx context.Context, d time.Duration) error
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func newHTTPCallback(conf *service.ParsedConfig, mgr *service.Resources) (*httpCallback, error) {
	o := &httpCallback{
		log:        mgr.Logger(),
		mgr:        mgr,
		clock:      systemClock{},
		sleep:      retry.Sleep,
		mDelivered: mgr.Metrics().NewCounter("callback_delivered"),
		mFailed:    mgr.Metrics().NewCounter("callback_failed"),
		mRetries:   mgr.Metrics().NewCounter("callback_retries"),
	}
	var err error
	if o.url, err = conf.FieldInterpolatedString(hcFieldURL); err != nil {
		return nil, err
	}
	if o.verb, err = conf.FieldString(hcFieldVerb); err != nil {
		return nil, err
	}
	if o.headers, err = conf.FieldInterpolatedStringMap(hcFieldHeaders); err != nil {
		return nil, err
	}
	if conf.Contains(hcFieldMetadata) {
		if o.meta, err = conf.FieldMetadataFilter(hcFieldMetadata); err != nil {
			return nil, err
		}
	}
	if o.procs, err = conf.FieldProcessorList(hcFieldAttemptProcessors); err != nil {
		return nil, err
	}
	if raw, err := conf.FieldAny(hcFieldAttemptProcessors); err == nil {
		o.resources = resourceNames(raw, nil)
	}
	timeout, err := conf.FieldDuration(hcFieldTimeout)
	if err != nil {
		return nil, err
	}
	if o.maxAttempts, err = conf.FieldInt(hcFieldMaxAttempts); err != nil {
		return nil, err
	}
	if o.maxAttempts < 1 {
		return nil, fmt.Errorf("%s must be at least 1, got %d", hcFieldMaxAttempts, o.maxAttempts)
	}
	b, err := conf.FieldBackOff(hcFieldBackoff)
	if err != nil {
		return nil, err
	}
	if b.MaxElapsedTime <= 0 {
		return nil, fmt.Errorf("%s.max_elapsed_time must be positive: retries are bounded", hcFieldBackoff)
	}
	o.boff = *b
	if o.maxRetryAfter, err = conf.FieldDuration(hcFieldMaxRetryAfter); err != nil {
		return nil, err
	}
	if o.userAgent, err = conf.FieldString(hcFieldUserAgent); err != nil {
		return nil, err
	}
	tlsConf, tlsOn, err := conf.FieldTLSToggled(hcFieldTLS)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if tlsOn {
		transport.TLSClientConfig = tlsConf
	}
	o.client = &http.Client{
		Timeout:   timeout,
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return o, nil
}

// Connect builds the processor and cache resources that attempt_processors
// name (`resource: signer`, a cache processor's `resource`), one after the
// other. Benthos builds a resource on its first use, under a read lock: the
// first attempts of the messages in flight at once would each build it,
// racing on the result (and a build that loses the race can call a cleared
// constructor and crash the process).
func (o *httpCallback) Connect(ctx context.Context) error {
	for _, name := range o.resources {
		var err error
		switch {
		case o.mgr.HasProcessor(name):
			err = o.mgr.AccessProcessor(ctx, name, func(*service.ResourceProcessor) {})
		case o.mgr.HasCache(name):
			err = o.mgr.AccessCache(ctx, name, func(service.Cache) {})
		}
		if err != nil {
			return fmt.Errorf("attempt_processors resource %s: %w", name, err)
		}
	}
	return nil
}

// resourceNames appends to names the string values of every `resource` key
// in a processor list's configuration, each name once.
func resourceNames(v any, names []string) []string {
	switch v := v.(type) {
	case *yaml.Node: // what FieldAny gives for each processor of a list
		var decoded any
		if v.Decode(&decoded) == nil {
			names = resourceNames(decoded, names)
		}
	case map[string]any:
		for k, e := range v {
			if name, ok := e.(string); ok && k == "resource" {
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
				continue
			}
			names = resourceNames(e, names)
		}
	case []any:
		for _, e := range v {
			names = resourceNames(e, names)
		}
	}
	return names
}

// attemptResult is the outcome of one attempt.
type attemptResult struct {
	status     int
	retryAfter time.Duration // 0 when absent
	permanent  bool
	err        error // nil on success
}

func (o *httpCallback) Write(ctx context.Context, msg *service.Message) error {
	boff := o.boff
	boff.Clock = o.clock
	boff.Reset()

	var last attemptResult
	for attempt := 1; ; attempt++ {
		last = o.attempt(ctx, msg, attempt)
		if last.err == nil {
			o.mDelivered.Incr(1)
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			// Shutting down: not a delivery verdict.
			return ctxErr
		}
		fail := func(reason string) error {
			o.mFailed.Incr(1)
			return &DeliveryError{Attempts: attempt, StatusCode: last.status, Permanent: last.permanent, Reason: reason}
		}
		if last.permanent {
			return fail(last.err.Error())
		}
		if attempt >= o.maxAttempts {
			return fail(last.err.Error())
		}
		wait := boff.NextBackOff()
		if wait == backoff.Stop {
			return fail(last.err.Error() + " (backoff max_elapsed_time reached)")
		}
		if last.retryAfter > o.maxRetryAfter {
			return fail(fmt.Sprintf("%v (Retry-After %s exceeds max_retry_after %s)", last.err, last.retryAfter, o.maxRetryAfter))
		}
		if last.retryAfter > wait {
			wait = last.retryAfter
		}
		o.mRetries.Incr(1)
		o.log.Warnf("Callback attempt %d/%d for event %s failed: %v; retrying in %s", attempt, o.maxAttempts, eventID(msg), last.err, wait.Round(time.Millisecond))
		if err := o.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (o *httpCallback) attempt(ctx context.Context, msg *service.Message, n int) attemptResult {
	m := msg.Copy()
	m.MetaSetMut(MetaAttempt, n)
	m.MetaSetMut(MetaAttemptUnix, o.clock.Now().Unix())
	if len(o.procs) > 0 {
		batches, err := service.ExecuteProcessors(ctx, o.procs, service.MessageBatch{m})
		if err != nil {
			return attemptResult{permanent: true, err: fmt.Errorf("attempt processors: %w", err)}
		}
		var out service.MessageBatch
		for _, b := range batches {
			out = append(out, b...)
		}
		if len(out) != 1 {
			return attemptResult{permanent: true, err: fmt.Errorf("attempt processors produced %d messages, want 1", len(out))}
		}
		if err := out[0].GetError(); err != nil {
			return attemptResult{permanent: true, err: fmt.Errorf("attempt processors: %w", err)}
		}
		m = out[0]
	}

	body, err := m.AsBytes()
	if err != nil {
		return attemptResult{permanent: true, err: err}
	}
	target, err := o.url.TryString(m)
	if err != nil {
		return attemptResult{permanent: true, err: fmt.Errorf("url: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, o.verb, target, bytes.NewReader(body))
	if err != nil {
		return attemptResult{permanent: true, err: fmt.Errorf("request to %s: %v", retry.RedactURL(target), retry.RedactError(err))}
	}
	req.Header.Set("User-Agent", o.userAgent)
	if o.meta != nil {
		_ = o.meta.Walk(m, func(k, v string) error {
			if v != "" {
				req.Header.Set(k, v)
			}
			return nil
		})
	}
	for k, v := range o.headers {
		s, err := v.TryString(m)
		if err != nil {
			return attemptResult{permanent: true, err: fmt.Errorf("header %s: %w", k, err)}
		}
		if s == "" {
			continue
		}
		if strings.EqualFold(k, "host") {
			req.Host = s
			continue
		}
		req.Header.Set(k, s)
	}

	res, err := o.client.Do(req)
	if err != nil {
		return attemptResult{err: retry.RedactError(err)}
	}
	snippet, _ := io.ReadAll(io.LimitReader(res.Body, maxReasonBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()

	code := res.StatusCode
	if code >= 200 && code <= 299 {
		return attemptResult{status: code}
	}
	r := attemptResult{
		status: code,
		err:    fmt.Errorf("%s %s: HTTP %d %s%s", o.verb, retry.RedactURL(target), code, http.StatusText(code), bodySuffix(snippet)),
	}
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			r.retryAfter = retry.ParseRetryAfter(res.Header.Get("Retry-After"), o.clock.Now())
		}
	default:
		r.permanent = true
	}
	return r
}

func (o *httpCallback) Close(ctx context.Context) error {
	var errs []error
	for _, p := range o.procs {
		if err := p.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	o.client.CloseIdleConnections()
	return errors.Join(errs...)
}

// eventID names msg in logs: its woocommerce_event_id, or "-".
func eventID(msg *service.Message) string {
	if id, ok := msg.MetaGet(MetaEventID); ok && id != "" {
		return id
	}
	return "-"
}

func bodySuffix(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return ""
	}
	if len(b) == maxReasonBody {
		s += "…"
	}
	return ": " + s
}
