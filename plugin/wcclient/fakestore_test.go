package wcclient

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// This file holds a small WooCommerce stand-in used until (and beside) the
// tests/wcsim simulator: it authenticates requests the way
// class-wc-rest-authentication.php does (Basic/query keys only over HTTPS,
// one-legged OAuth 1.0a from the query string with nonce and timestamp
// checks) and replays captured answers from tests/fixtures. Its OAuth check is
// written independently of package oauth1 (PHP-style parsing, rawurlencode via
// url.QueryEscape) so that a shared mistake cannot make both sides agree.

const (
	testKey    = "ck_0123456789abcdef0123456789abcdef01234567"
	testSecret = "cs_fedcba9876543210fedcba9876543210fedcba98"
)

const fixtureDir = "../../tests/fixtures/woocommerce/rest"

// fixture is a captured HTTP answer.
type fixture struct {
	Status int
	Header http.Header
	Body   []byte
}

func loadFixture(t testing.TB, name string) fixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtureDir, name))
	require.NoError(t, err)
	br := bufio.NewReader(bytes.NewReader(raw))
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	require.NoError(t, err)
	parts := strings.SplitN(line, " ", 3)
	require.GreaterOrEqual(t, len(parts), 2, line)
	status, err := strconv.Atoi(parts[1])
	require.NoError(t, err)
	mh, err := tp.ReadMIMEHeader()
	require.NoError(t, err)
	body, err := io.ReadAll(br)
	require.NoError(t, err)
	return fixture{Status: status, Header: http.Header(mh), Body: body}
}

// handler serves f.
func (f fixture) handler(w http.ResponseWriter, _ *http.Request) { f.write(w) }

// write replays f, dropping hop-specific headers.
func (f fixture) write(w http.ResponseWriter) {
	for k, vs := range f.Header {
		switch k {
		case "Content-Length", "Date", "Connection":
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write(f.Body)
}

func writeWPError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "data": map[string]any{"status": status}})
}

// recorded is one request seen by the fake store.
type recorded struct {
	Method  string
	Path    string
	Query   url.Values
	Header  http.Header
	Body    []byte
	AuthVia string // basic, query, oauth1 or "" when unauthenticated
}

type fakeStore struct {
	t      testing.TB
	srv    *httptest.Server
	now    func() time.Time
	route  http.HandlerFunc // called after successful authentication
	noAuth bool             // skip authentication (fault tests)

	mu       sync.Mutex
	nonces   map[string]bool
	requests []recorded
}

func newFakeStore(t testing.TB, tlsOn bool, route http.HandlerFunc) *fakeStore {
	fs := &fakeStore{t: t, now: time.Now, route: route, nonces: map[string]bool{}}
	if tlsOn {
		fs.srv = httptest.NewTLSServer(fs)
	} else {
		fs.srv = httptest.NewServer(fs)
	}
	t.Cleanup(fs.srv.Close)
	return fs
}

func (fs *fakeStore) URL() string { return fs.srv.URL }

func (fs *fakeStore) Requests() []recorded {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]recorded(nil), fs.requests...)
}

func (fs *fakeStore) Count() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.requests)
}

// client builds a Client for this store with short retry backoffs.
func (fs *fakeStore) client(t testing.TB, mod func(*Config)) *Client {
	cfg := Config{
		StoreURL:             fs.URL(),
		ConsumerKey:          testKey,
		ConsumerSecret:       testSecret,
		HTTPClient:           fs.srv.Client(),
		RetryInitialInterval: 10 * time.Millisecond,
		RetryMaxInterval:     50 * time.Millisecond,
		MaxRetryElapsed:      2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	return c
}

func (fs *fakeStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body}
	if !fs.noAuth {
		via, fail := fs.authenticate(r)
		rec.AuthVia = via
		if fail != nil {
			fs.record(rec)
			fail(w)
			return
		}
	}
	fs.record(rec)
	r.Body = io.NopCloser(bytes.NewReader(body))
	fs.route(w, r)
}

func (fs *fakeStore) record(rec recorded) {
	fs.mu.Lock()
	fs.requests = append(fs.requests, rec)
	fs.mu.Unlock()
}

// authenticate mirrors WC_REST_Authentication: over HTTPS query keys, then
// Basic; otherwise (or if neither was given) OAuth 1.0a. Unauthenticated
// requests get the controller's 401 woocommerce_rest_cannot_view.
func (fs *fakeStore) authenticate(r *http.Request) (string, func(http.ResponseWriter)) {
	isSSL := r.TLS != nil
	q := r.URL.Query()
	if isSSL {
		ck, cs := q.Get("consumer_key"), q.Get("consumer_secret")
		via := "query"
		if ck == "" || cs == "" {
			var ok bool
			ck, cs, ok = r.BasicAuth()
			via = "basic"
			if !ok {
				ck, cs = "", ""
			}
		}
		if ck != "" {
			if ck != testKey {
				return "", fs.fixture("errors/bad-consumer-key.https-basic.http")
			}
			if subtle.ConstantTimeCompare([]byte(cs), []byte(testSecret)) != 1 {
				return "", fs.fixture("errors/bad-consumer-secret.https-basic.http")
			}
			return via, nil
		}
	}
	if q.Get("oauth_consumer_key") == "" && q.Get("oauth_signature") == "" {
		if isSSL {
			return "", fs.fixture("errors/no-auth.https.http")
		}
		return "", fs.fixture("errors/basic-auth-over-plain-http-ignored.http")
	}
	for _, p := range []string{"oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method"} {
		if q.Get(p) == "" {
			return "", func(w http.ResponseWriter) {
				writeWPError(w, 401, "woocommerce_rest_authentication_missing_parameter", "Missing OAuth parameter "+p)
			}
		}
	}
	if q.Get("oauth_consumer_key") != testKey {
		return "", fs.fixture("errors/oauth1-bad-consumer-key.http")
	}
	if !wooCheckSignature(r, testSecret) {
		return "", fs.fixture("errors/oauth1-bad-signature.http")
	}
	ts, err := strconv.ParseInt(q.Get("oauth_timestamp"), 10, 64)
	if d := fs.now().Unix() - ts; err != nil || d > 15*60 || d < -15*60 {
		return "", func(w http.ResponseWriter) {
			writeWPError(w, 401, "woocommerce_rest_authentication_error", "Invalid timestamp.")
		}
	}
	fs.mu.Lock()
	used := fs.nonces[q.Get("oauth_nonce")]
	fs.nonces[q.Get("oauth_nonce")] = true
	fs.mu.Unlock()
	if used {
		return "", fs.fixture("errors/oauth1-replayed-nonce.http")
	}
	return "oauth1", nil
}

func (fs *fakeStore) fixture(name string) func(http.ResponseWriter) {
	f := loadFixture(fs.t, name)
	return f.write
}

// phpRawurlencode is PHP's rawurlencode.
func phpRawurlencode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// phpValue is a $_GET entry: scalar or array (ordered sub-keys).
type phpValue struct {
	scalar string
	keys   []string
	vals   []string
	array  bool
}

// phpParseQuery parses a raw query as PHP fills $_GET (urldecode with '+' as
// space; "k[]" appends, "k[x]" sets, a repeated plain key keeps the last).
func phpParseQuery(raw string) map[string]*phpValue {
	out := map[string]*phpValue{}
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		if i := strings.Index(k, "["); i > 0 && strings.HasSuffix(k, "]") {
			base, sub := k[:i], k[i+1:len(k)-1]
			pv := out[base]
			if pv == nil || !pv.array {
				pv = &phpValue{array: true}
				out[base] = pv
			}
			if sub == "" {
				sub = strconv.Itoa(len(pv.keys))
			}
			pv.keys = append(pv.keys, sub)
			pv.vals = append(pv.vals, v)
			continue
		}
		out[k] = &phpValue{scalar: v}
	}
	return out
}

// wooCheckSignature follows check_oauth_signature step by step.
func wooCheckSignature(r *http.Request, secret string) bool {
	params := phpParseQuery(r.URL.RawQuery)
	sigParam := params["oauth_signature"]
	method := params["oauth_signature_method"]
	delete(params, "oauth_signature")
	if sigParam == nil || method == nil {
		return false
	}
	var h func() hash.Hash
	switch method.scalar {
	case "HMAC-SHA1":
		h = sha1.New
	case "HMAC-SHA256":
		h = sha256.New
	default:
		return false
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys) // uksort($params, 'strcmp')
	var pairs []string
	for _, k := range keys {
		p := params[k]
		ek := phpRawurlencode(k)
		if !p.array {
			pairs = append(pairs, phpRawurlencode(ek+"="+phpRawurlencode(p.scalar)))
			continue
		}
		for i, sk := range p.keys {
			pairs = append(pairs, phpRawurlencode(ek+"%5B"+sk+"%5D="+phpRawurlencode(p.vals[i])))
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	baseURI := phpRawurlencode(scheme + "://" + r.Host + r.URL.Path)
	toSign := r.Method + "&" + baseURI + "&" + strings.Join(pairs, "%26")
	mac := hmac.New(h, []byte(secret+"&"))
	mac.Write([]byte(toSign))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	got, err := url.PathUnescape(strings.ReplaceAll(sigParam.scalar, " ", "+"))
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(want), []byte(got))
}

// listRoute serves n objects {"id":i} with WooCommerce paging headers and a
// Link rel=next that repeats the request's query (oauth_* included), as the
// real store does.
func listRoute(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		perPage, _ := strconv.Atoi(q.Get("per_page"))
		if perPage == 0 {
			perPage = 10
		}
		if perPage > 100 {
			writeWPError(w, 400, "rest_invalid_param", "Invalid parameter(s): per_page")
			return
		}
		page, _ := strconv.Atoi(q.Get("page"))
		if page == 0 {
			page = 1
		}
		totalPages := (n + perPage - 1) / perPage
		items := []map[string]any{}
		for i := (page-1)*perPage + 1; i <= n && i <= page*perPage; i++ {
			items = append(items, map[string]any{"id": i, "date_modified_gmt": fmt.Sprintf("2026-11-27T23:%02d:00", i%60)})
		}
		if page < totalPages {
			next := *r.URL
			nq := r.URL.Query()
			nq.Set("page", strconv.Itoa(page+1))
			next.RawQuery = nq.Encode()
			w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next.String()))
		}
		w.Header().Set("X-WP-Total", strconv.Itoa(n))
		w.Header().Set("X-WP-TotalPages", strconv.Itoa(totalPages))
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_ = json.NewEncoder(w).Encode(items)
	}
}
