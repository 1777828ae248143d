// Package wcclient is the WooCommerce REST client shared by the woocommerce
// inputs: authentication (basic, query, one-legged OAuth 1.0a, auto), paging,
// typed errors, bounded retries and webhook management, plus the config-spec
// fields for store credentials. Retries, Retry-After, waits and the redaction
// of credentials from URLs and errors are internal/retry's.
//
// # Pooled page buffers
//
// ListPage and ListPageFields read each page's body into a buffer taken from
// the Client's pool; Page.Items and Page.Fields are slices of that buffer,
// not copies. The buffer belongs to the Page until Page.Release gives it back
// to the pool, after which the next ListPage may overwrite it: whoever calls
// Release must first have copied out every byte it keeps (an event's Data,
// a checkpoint id), and must not call it while anything else still reads the
// page. Release is optional: a page never released is garbage collected like
// any allocation, so a caller that keeps items simply does not release. Do
// and the webhook helpers never pool: their results own their bytes.
package wcclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/internal/retry"
	"github.com/wooevents/wooevents/plugin/wcclient/oauth1"
)

// Default backoff shape.
const (
	DefaultRetryInitialInterval = 500 * time.Millisecond
	DefaultRetryMaxInterval     = 30 * time.Second
)

// IdleConnTimeout is how long a Client built by New keeps an idle
// connection to the store. It is shorter than the 5 s keep-alive of Apache
// and LiteSpeed, the usual WordPress servers, so the client closes an idle
// connection before the store does (no request goes out on a connection the
// store is closing), and a poll input between two polls holds no connection:
// each one costs two goroutines and two 4 KiB buffers, which adds up with
// hundreds of instances in one `wooevents serve`. Pages of one poll or
// backfill follow each other within milliseconds and reuse their connection.
const IdleConnTimeout = 4 * time.Second

// maxBodyBytes bounds how much of a response is read (a list page of 100
// orders is a few hundred KiB; 64 MiB leaves room for heavy metadata).
const maxBodyBytes = 64 << 20

// Client talks to one WooCommerce store. It is safe for concurrent use.
type Client struct {
	cfg      Config
	auth     AuthMode
	base     *url.URL // store URL, path without trailing slash
	hc       *http.Client
	ownsHTTP bool
	bufs     sync.Pool // *[]byte: bodies of released pages (Page.Release)
}

// Response describes a successful answer.
type Response struct {
	Status      int
	Header      http.Header
	URL         string // redacted
	ContentType string
	Attempts    int
}

// New builds a Client from cfg (see Config for defaults).
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.MaxRetryElapsed == 0 {
		cfg.MaxRetryElapsed = DefaultMaxRetryElapsed
	}
	if cfg.RetryInitialInterval <= 0 {
		cfg.RetryInitialInterval = DefaultRetryInitialInterval
	}
	if cfg.RetryMaxInterval <= 0 {
		cfg.RetryMaxInterval = DefaultRetryMaxInterval
	}
	if cfg.RetryMaxInterval < cfg.RetryInitialInterval {
		cfg.RetryMaxInterval = cfg.RetryInitialInterval
	}
	if cfg.SignatureMethod == "" {
		cfg.SignatureMethod = oauth1.HMACSHA256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Nonce == nil {
		cfg.Nonce = oauth1.NewNonce
	}
	base, _ := url.Parse(cfg.StoreURL) // validated above
	base.Scheme = strings.ToLower(base.Scheme)
	base.Host = strings.ToLower(base.Host)
	base.Path = strings.TrimRight(base.Path, "/")
	base.RawPath = ""

	c := &Client{cfg: cfg, auth: cfg.EffectiveAuth(), base: base, hc: cfg.HTTPClient}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.IdleConnTimeout = IdleConnTimeout
		if cfg.TLS != nil {
			tr.TLSClientConfig = cfg.TLS.Clone()
		}
		c.hc = &http.Client{Transport: tr}
		c.ownsHTTP = true
	}
	if base.Scheme == "http" && (c.auth == AuthBasic || c.auth == AuthQuery) {
		cfg.Logger.Warnf("auth %s over plain http: WooCommerce ignores these credentials unless WordPress believes the request is HTTPS; use auth: oauth1 if you get 401", c.auth)
	}
	return c, nil
}

// StoreURL returns the normalised store URL (no trailing slash).
func (c *Client) StoreURL() string { return c.base.String() }

// String describes the client without credentials.
func (c *Client) String() string {
	return fmt.Sprintf("wcclient.Client{store: %s, auth: %s}", c.base, c.auth)
}

// GoString keeps %#v from printing credentials.
func (c *Client) GoString() string { return c.String() }

// Auth returns the effective auth mode (AuthAuto resolved).
func (c *Client) Auth() AuthMode { return c.auth }

// Close releases idle connections of a client built by New.
func (c *Client) Close() {
	if c.ownsHTTP {
		c.hc.CloseIdleConnections()
	}
}

// routeURL maps a route to the request URL (without query):
//   - "/wp-json/wc/v3/orders" is taken as is (relative to the store URL);
//   - "/wc/v3/orders" is a route under the REST root /wp-json;
//   - "orders" (no leading slash) is a route under /wp-json/wc/v3.
func (c *Client) routeURL(route string) (*url.URL, error) {
	if route == "" || strings.ContainsAny(route, "?#") || strings.Contains(route, "://") {
		return nil, fmt.Errorf("invalid route %q: want a path such as /wc/v3/orders (query parameters go in the query argument)", route)
	}
	var p string
	switch {
	case strings.HasPrefix(route, "/wp-json/"):
		p = route
	case strings.HasPrefix(route, "/"):
		p = "/wp-json" + route
	default:
		p = "/wp-json/wc/v3/" + route
	}
	u := *c.base
	u.Path = c.base.Path + p
	return &u, nil
}

// reserved query parameters set by the client itself.
func isReservedParam(k string) bool {
	return k == "consumer_key" || k == "consumer_secret" || strings.HasPrefix(k, "oauth_")
}

// buildRequest makes one signed attempt's request. Every attempt is signed
// afresh (new nonce and timestamp).
func (c *Client) buildRequest(ctx context.Context, method string, u *url.URL, query url.Values, body []byte) (*http.Request, error) {
	q := url.Values{}
	for k, v := range query {
		if isReservedParam(k) {
			continue
		}
		q[k] = v
	}
	reqURL := *u
	switch c.auth {
	case AuthOAuth1:
		raw, err := oauth1.AuthorizedQuery(method, oauth1.BaseURL(u), q, oauth1.Params{
			ConsumerKey:     c.cfg.ConsumerKey,
			ConsumerSecret:  c.cfg.ConsumerSecret,
			SignatureMethod: c.cfg.SignatureMethod,
			Timestamp:       c.cfg.Now().Unix(),
			Nonce:           c.cfg.Nonce(),
		})
		if err != nil {
			return nil, err
		}
		reqURL.RawQuery = raw
	case AuthQuery:
		q.Set("consumer_key", c.cfg.ConsumerKey)
		q.Set("consumer_secret", c.cfg.ConsumerSecret)
		reqURL.RawQuery = q.Encode()
	default:
		reqURL.RawQuery = q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, reqURL.String(), rd)
	if err != nil {
		return nil, retry.RedactError(err)
	}
	if c.auth == AuthBasic {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.cfg.ConsumerKey+":"+c.cfg.ConsumerSecret)))
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// retryableError marks an attempt's failure as worth retrying; after is the
// server's Retry-After (0 when absent).
type retryableError struct {
	err   error
	after time.Duration
}

func (r *retryableError) Error() string { return r.err.Error() }
func (r *retryableError) Unwrap() error { return r.err }

// RetryError is returned when retries are exhausted; it wraps the last
// attempt's error, so errors.As(err, **Error) still works.
type RetryError struct {
	Attempts int
	Elapsed  time.Duration
	Err      error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("giving up after %d attempts in %s: %v", e.Attempts, e.Elapsed.Round(time.Millisecond), e.Err)
}

func (e *RetryError) Unwrap() error { return e.Err }

// Do sends one API call with retries and decodes a JSON answer into out
// (unless out is nil). route: see the route forms of ListPage. body is
// JSON-encoded unless it is []byte or json.RawMessage; a JSON body is never
// part of an OAuth signature.
//
// Retried, within MaxRetryElapsed: network errors and timeouts, 429, 500,
// 502, 503, 504 and a 2xx whose body is not complete JSON (a proxy cutting
// the answer short). 500 is retried too because it is often a transient PHP
// fatal or an overloaded host; a fatal that recurs is reported once the time
// budget is spent. Never retried: any other 4xx (400, 401, 403, 404, ...).
// POST and PATCH are not idempotent: they are retried only where the store
// cannot have acted (429, 503, connection refused), never after a timeout,
// a dropped connection, 500, 502, 504 or a cut-short answer.
// Retry-After (seconds or an HTTP date) is honoured; when it would exceed
// the remaining budget the call fails at once. No wait starts that would end
// past MaxRetryElapsed, so a call lasts at most MaxRetryElapsed plus one
// attempt (Timeout).
func (c *Client) Do(ctx context.Context, method, route string, query url.Values, body, out any) (*Response, error) {
	resp, raw, err := c.do(ctx, method, route, query, body, out != nil, nil, nil)
	if err != nil {
		return resp, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp, &BodyError{Status: resp.Status, URL: resp.URL, ContentType: resp.ContentType,
				Snippet: snippet(raw, 200), Reason: fmt.Sprintf("JSON body does not fit the expected shape (%v)", err)}
		}
	}
	return resp, nil
}

// do runs the retry loop and returns the body of the successful attempt.
// valid checks that a 2xx body is complete JSON (nil: gjson.ValidBytes); an
// attempt whose body fails it is retried like a truncated answer.
// buf, when not nil, is a buffer to read the body into (and receives the
// one read into): the returned body aliases it.
func (c *Client) do(ctx context.Context, method, route string, query url.Values, body any, wantJSON bool, valid func([]byte) bool, buf *[]byte) (*Response, []byte, error) {
	if valid == nil {
		valid = gjson.ValidBytes
	}
	method = strings.ToUpper(method)
	u, err := c.routeURL(route)
	if err != nil {
		return nil, nil, err
	}
	var payload []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		payload = b
	case json.RawMessage:
		payload = b
	default:
		if payload, err = json.Marshal(body); err != nil {
			return nil, nil, fmt.Errorf("encoding %s %s body: %w", method, route, err)
		}
	}

	start := time.Now()
	backoff := retry.Exponential(c.cfg.RetryInitialInterval, c.cfg.RetryMaxInterval)
	for attempt := 1; ; attempt++ {
		resp, raw, err := c.attempt(ctx, method, route, u, query, payload, wantJSON, valid, attempt, buf)
		if err == nil {
			return resp, raw, nil
		}
		var re *retryableError
		if !errors.As(err, &re) || c.cfg.MaxRetryElapsed < 0 {
			if re != nil {
				err = re.err
			}
			return resp, nil, err
		}
		if ctx.Err() != nil {
			return resp, nil, fmt.Errorf("%w; last attempt: %w", ctx.Err(), re.err)
		}
		// 0.5x to 1.5x the exponential step, never below Retry-After.
		wait := max(backoff.NextBackOff(), re.after)
		elapsed := time.Since(start)
		if elapsed+wait > c.cfg.MaxRetryElapsed {
			return resp, nil, &RetryError{Attempts: attempt, Elapsed: elapsed, Err: re.err}
		}
		// Each attempt at debug: the caller logs what finally fails, once.
		c.cfg.Logger.Debugf("attempt %d failed, retrying in %s: %v", attempt, wait.Round(time.Millisecond), re.err)
		if err := retry.Sleep(ctx, wait); err != nil {
			return resp, nil, fmt.Errorf("%w while waiting to retry; last attempt: %w", err, re.err)
		}
	}
}

// attempt sends one request and classifies the answer.
func (c *Client) attempt(ctx context.Context, method, route string, u *url.URL, query url.Values, payload []byte, wantJSON bool, valid func([]byte) bool, n int, buf *[]byte) (resp *Response, raw []byte, err error) {
	if c.cfg.RateLimit != nil {
		if err := c.cfg.RateLimit(ctx); err != nil {
			return nil, nil, err
		}
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := c.buildRequest(actx, method, u, query, payload)
	if err != nil {
		return nil, nil, err
	}
	redacted := retry.RedactURL(req.URL.String())
	began := time.Now()
	status := 0
	defer func() {
		if c.cfg.OnRequest != nil {
			c.cfg.OnRequest(RequestInfo{Method: method, Path: routeTemplate(route), Status: status, Attempt: n, Duration: time.Since(began), Err: err})
		}
	}()

	hr, err := c.hc.Do(req)
	if err != nil {
		err = fmt.Errorf("woocommerce %s %s: %w", method, redacted, stripURLError(err))
		if ctx.Err() != nil {
			return nil, nil, err // caller cancelled: not retryable
		}
		if !idempotent(method) && !isDialError(err) {
			return nil, nil, err // the store may have acted on it
		}
		return nil, nil, &retryableError{err: err}
	}
	defer hr.Body.Close()
	status = hr.StatusCode
	ct := hr.Header.Get("Content-Type")
	redirected := ""
	if hr.Request != nil && hr.Request.URL != nil && hr.Request.URL.String() != req.URL.String() {
		redirected = "the request was redirected to " + retry.RedactURL(hr.Request.URL.String()) +
			"; set store_url to the WordPress home URL the store redirects to"
	}
	resp = &Response{Status: hr.StatusCode, Header: hr.Header, URL: redacted, ContentType: ct, Attempts: n}

	raw, readErr := readBody(io.LimitReader(hr.Body, maxBodyBytes+1), hr.ContentLength, buf)
	if readErr == nil && len(raw) > maxBodyBytes {
		readErr = fmt.Errorf("body larger than %d bytes", maxBodyBytes)
	}
	after := retry.ParseRetryAfter(hr.Header.Get("Retry-After"), time.Now())
	isJSONType := isJSONContentType(ct)

	if hr.StatusCode >= 200 && hr.StatusCode < 300 {
		if readErr != nil {
			return resp, nil, &retryableError{err: &BodyError{Status: status, URL: redacted, ContentType: ct,
				Snippet: snippet(raw, 200), Reason: fmt.Sprintf("reading body failed (%v)", stripURLError(readErr))}, after: after}
		}
		if !wantJSON && len(bytes.TrimSpace(raw)) == 0 {
			return resp, raw, nil
		}
		if !valid(raw) {
			reason := "body is not JSON"
			if isJSONType {
				reason = "body is not complete JSON (truncated?)"
			} else if isHTML(ct, raw) {
				reason = "HTML page instead of a REST answer (WAF, maintenance mode, login redirect or proxy error?)"
			}
			if redirected != "" {
				reason += " (" + redirected + ")"
			}
			if !idempotent(method) {
				return resp, nil, &BodyError{Status: status, URL: redacted, ContentType: ct, Snippet: snippet(raw, 200), Reason: reason}
			}
			return resp, nil, &retryableError{err: &BodyError{Status: status, URL: redacted, ContentType: ct,
				Snippet: snippet(raw, 200), Reason: reason}, after: after}
		}
		return resp, raw, nil
	}

	var failure error
	var wp wpErrorBody
	if readErr == nil && json.Valid(raw) && json.Unmarshal(raw, &wp) == nil {
		e := &Error{Status: status, Code: wp.Code, Message: wp.Message, URL: redacted, ContentType: ct, Data: wp.Data}
		if e.Code == "" && e.Message == "" {
			e.Message = snippet(raw, 200)
		}
		if status == http.StatusUnauthorized {
			e.Hint = hint401(c.auth, c.base.String())
		}
		if redirected != "" {
			e.Hint = strings.TrimPrefix(e.Hint+"; "+redirected, "; ")
		}
		failure = e
	} else {
		reason := "error answer is not JSON"
		if readErr != nil {
			reason = fmt.Sprintf("reading error body failed (%v)", stripURLError(readErr))
		} else if isHTML(ct, raw) {
			reason = "HTML page instead of a REST answer (WAF, maintenance mode, login redirect or proxy error?)"
		}
		if redirected != "" {
			reason += " (" + redirected + ")"
		}
		failure = &BodyError{Status: status, URL: redacted, ContentType: ct, Snippet: snippet(raw, 200), Reason: reason}
	}
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return resp, nil, &retryableError{err: failure, after: after}
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		if idempotent(method) {
			return resp, nil, &retryableError{err: failure, after: after}
		}
	}
	return resp, nil, failure
}

// readBody is io.ReadAll with the buffer sized from the Content-Length
// (size, -1 when unknown) instead of grown from 512 bytes: a list page is
// read into one allocation. reuse, when not nil, is a buffer to read into
// if it is large enough; it is set to the buffer read into.
func readBody(r io.Reader, size int64, reuse *[]byte) (b []byte, err error) {
	c := 512
	if size > 0 && size <= maxBodyBytes {
		c = int(size) + 1 // room for the read that reports EOF
	}
	if reuse != nil {
		defer func() { *reuse = b }()
		if cap(*reuse) >= c {
			b = (*reuse)[:0]
		}
	}
	if b == nil {
		b = make([]byte, 0, c)
	}
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// idempotent reports whether repeating method cannot do harm (PUT sets the
// same state again; a repeated force DELETE answers 404).
func idempotent(method string) bool {
	return method != http.MethodPost && method != http.MethodPatch
}

// isDialError reports a failure to connect: the request never left.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// routeTemplate replaces numeric path segments by "{id}" so that metrics
// labels stay bounded ("/wc/v3/orders/24" → "/wc/v3/orders/{id}").
func routeTemplate(route string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

// stripURLError drops the *url.Error wrapper (it embeds the full URL with
// credentials) keeping the cause.
func stripURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		// The method and URL are already in the message (redacted).
		if ue.Timeout() {
			return fmt.Errorf("timeout: %w", ue.Err)
		}
		return ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timeout: %w", err)
	}
	return err
}

func isJSONContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func isHTML(ct string, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	if mt == "text/html" || mt == "application/xhtml+xml" {
		return true
	}
	b := bytes.ToLower(bytes.TrimSpace(body[:min(len(body), 64)]))
	return bytes.HasPrefix(b, []byte("<!doctype html")) || bytes.HasPrefix(b, []byte("<html"))
}
