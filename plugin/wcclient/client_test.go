package wcclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// assertNoSecrets checks that an error text never carries credentials.
func assertNoSecrets(t *testing.T, s string) {
	t.Helper()
	assert.NotContains(t, s, testSecret)
	assert.NotContains(t, s, testKey)
}

func okJSON(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = w.Write([]byte(body))
	}
}

func TestAuthModesAgainstWooCommerceRules(t *testing.T) {
	tests := []struct {
		name    string
		tls     bool
		auth    AuthMode
		wantVia string
	}{
		{"auto over http signs with oauth1", false, AuthAuto, "oauth1"},
		{"empty auth is auto", false, "", "oauth1"},
		{"auto over https uses basic", true, AuthAuto, "basic"},
		{"basic over https", true, AuthBasic, "basic"},
		{"query over https", true, AuthQuery, "query"},
		{"oauth1 over https", true, AuthOAuth1, "oauth1"},
		{"oauth1 over http", false, AuthOAuth1, "oauth1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeStore(t, tc.tls, okJSON(`{"id":7,"status":"processing"}`))
			c := fs.client(t, func(cfg *Config) { cfg.Auth = tc.auth })
			var out struct {
				ID     int    `json:"id"`
				Status string `json:"status"`
			}
			q := url.Values{"_fields": {"id,status"}, "search": {"a b~c+d"}}
			resp, err := c.Do(context.Background(), http.MethodGet, "/wc/v3/orders/7", q, nil, &out)
			require.NoError(t, err)
			assert.Equal(t, 200, resp.Status)
			assert.Equal(t, 7, out.ID)
			assert.Equal(t, "processing", out.Status)
			reqs := fs.Requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, tc.wantVia, reqs[0].AuthVia)
			assert.Equal(t, "/wp-json/wc/v3/orders/7", reqs[0].Path)
			assert.Equal(t, "id,status", reqs[0].Query.Get("_fields"))
			assert.Equal(t, "a b~c+d", reqs[0].Query.Get("search"))
			assert.Equal(t, DefaultUserAgent, reqs[0].Header.Get("User-Agent"))
			if tc.wantVia != "basic" {
				assert.Empty(t, reqs[0].Header.Get("Authorization"))
			}
			if tc.wantVia == "oauth1" {
				assert.Len(t, reqs[0].Query.Get("oauth_nonce"), 32)
				assert.Equal(t, "HMAC-SHA256", reqs[0].Query.Get("oauth_signature_method"))
				assert.Empty(t, reqs[0].Query.Get("consumer_secret"))
			}
			assertNoSecrets(t, resp.URL)
		})
	}
}

func TestOAuth1HMACSHA1AndPOSTBody(t *testing.T) {
	var gotBody []byte
	fs := newFakeStore(t, false, func(w http.ResponseWriter, r *http.Request) {
		gotBody = nil
		buf := make([]byte, 1024)
		n, _ := r.Body.Read(buf)
		gotBody = buf[:n]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{"id":24}`))
	})
	c := fs.client(t, func(cfg *Config) { cfg.SignatureMethod = "HMAC-SHA1" })
	var out map[string]any
	resp, err := c.Do(context.Background(), "post", "orders", nil, map[string]any{"status": "pending"}, &out)
	require.NoError(t, err)
	assert.Equal(t, 201, resp.Status)
	assert.EqualValues(t, 24, out["id"])
	reqs := fs.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "POST", reqs[0].Method)
	assert.Equal(t, "HMAC-SHA1", reqs[0].Query.Get("oauth_signature_method"))
	assert.Equal(t, "application/json", reqs[0].Header.Get("Content-Type"))
	assert.JSONEq(t, `{"status":"pending"}`, string(gotBody))
}

func TestOAuth1ReusedNonceAndStaleTimestampRejected(t *testing.T) {
	fs := newFakeStore(t, false, okJSON(`[]`))
	fixed := fs.client(t, func(cfg *Config) { cfg.Nonce = func() string { return "0123456789abcdef0123456789abcdef" } })
	_, err := fixed.Do(context.Background(), "GET", "orders", nil, nil, nil)
	require.NoError(t, err)
	_, err = fixed.Do(context.Background(), "GET", "orders", nil, nil, nil)
	var we *Error
	require.ErrorAs(t, err, &we)
	assert.Equal(t, 401, we.Status)
	assert.Equal(t, "Invalid nonce - nonce has already been used.", we.Message)
	assert.Equal(t, 2, fs.Count(), "401 is not retried")

	stale := fs.client(t, func(cfg *Config) { cfg.Now = func() time.Time { return time.Now().Add(-20 * time.Minute) } })
	_, err = stale.Do(context.Background(), "GET", "orders", nil, nil, nil)
	require.ErrorAs(t, err, &we)
	assert.Equal(t, "Invalid timestamp.", we.Message)
	assert.Contains(t, we.Hint, "clock")
	assert.Equal(t, 3, fs.Count())
}

func TestBasicOverPlainHTTPGivesHelpful401(t *testing.T) {
	for _, mode := range []AuthMode{AuthBasic, AuthQuery} {
		t.Run(string(mode), func(t *testing.T) {
			fs := newFakeStore(t, false, okJSON(`[]`))
			c := fs.client(t, func(cfg *Config) { cfg.Auth = mode })
			_, err := c.ListPage(context.Background(), "/wc/v3/orders", nil, 1, 10)
			var we *Error
			require.ErrorAs(t, err, &we)
			assert.Equal(t, 401, we.Status)
			assert.Equal(t, "woocommerce_rest_cannot_view", we.Code)
			assert.Equal(t, "Sorry, you cannot list resources.", we.Message)
			assert.Contains(t, we.Hint, "auth: oauth1")
			assert.Contains(t, err.Error(), "plain http")
			assert.Contains(t, we.ContentType, "application/json")
			assert.Contains(t, we.URL, "/wp-json/wc/v3/orders")
			assertNoSecrets(t, err.Error())
			assertNoSecrets(t, fmt.Sprintf("%+v", we))
			assert.Equal(t, 1, fs.Count(), "401 is not retried")
			assert.Equal(t, 401, StatusCode(err))
		})
	}
}

func TestWrongSecretOverHTTPS(t *testing.T) {
	fs := newFakeStore(t, true, okJSON(`[]`))
	c := fs.client(t, func(cfg *Config) { cfg.ConsumerSecret = "cs_wrong-secret-value"; cfg.Auth = AuthQuery })
	_, err := c.Do(context.Background(), "GET", "orders", nil, nil, nil)
	var we *Error
	require.ErrorAs(t, err, &we)
	assert.Equal(t, "woocommerce_rest_authentication_error", we.Code)
	assert.Equal(t, "Consumer secret is invalid.", we.Message)
	assert.Contains(t, we.Hint, "auth: oauth1")
	assert.NotContains(t, err.Error(), "cs_wrong-secret-value")
	assert.Contains(t, we.URL, "consumer_secret=REDACTED")
	assert.Contains(t, we.URL, "consumer_key=REDACTED")
	assertNoSecrets(t, err.Error())
	assert.Equal(t, 1, fs.Count())
}

// Every captured error answer becomes an *Error carrying the body's fields,
// and none of them is retried.
func TestCapturedErrorFixtures(t *testing.T) {
	for _, name := range []string{
		"errors/bad-consumer-key.https-basic.http",
		"errors/bad-consumer-secret.https-basic.http",
		"errors/basic-auth-over-plain-http-ignored.http",
		"errors/invalid-param.https-basic.http",
		"errors/no-auth.https.http",
		"errors/oauth1-bad-consumer-key.http",
		"errors/oauth1-bad-signature.http",
		"errors/oauth1-replayed-nonce.http",
		"errors/order-not-found.https-basic.http",
		"errors/querystring-keys-over-plain-http-ignored.http",
		"errors/readonly-key-write.https-basic.http",
	} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			var want wpErrorBody
			require.NoError(t, json.Unmarshal(f.Body, &want))
			fs := newFakeStore(t, false, f.handler)
			fs.noAuth = true
			c := fs.client(t, func(cfg *Config) { cfg.Auth = AuthOAuth1 })
			_, err := c.Do(context.Background(), "GET", "orders/24", nil, nil, nil)
			var we *Error
			require.ErrorAs(t, err, &we)
			assert.Equal(t, f.Status, we.Status)
			assert.Equal(t, want.Code, we.Code)
			assert.Equal(t, want.Message, we.Message)
			assert.Equal(t, "application/json; charset=UTF-8", we.ContentType)
			assert.JSONEq(t, string(want.Data), string(we.Data))
			assert.Equal(t, f.Status == 401, we.Hint != "")
			assert.Equal(t, f.Status == 404, IsNotFound(err))
			assert.Equal(t, 1, fs.Count())
			assertNoSecrets(t, err.Error())
			assert.Contains(t, we.URL, "oauth_signature=REDACTED")
		})
	}
}

func TestWalkPagesSignedAfreshAndStreamed(t *testing.T) {
	fs := newFakeStore(t, false, listRoute(5))
	c := fs.client(t, nil)
	q := url.Values{"orderby": {"modified"}, "order": {"asc"}, "status[]": {"any"}}
	var ids []int
	var pages []int
	err := c.Walk(context.Background(), "/wc/v3/orders", q, 2, func(p *Page) error {
		pages = append(pages, p.Page)
		assert.Equal(t, 5, p.Total)
		assert.Equal(t, 3, p.TotalPages)
		assert.NotEmpty(t, p.Header.Get("X-WP-Total"))
		for _, it := range p.Items {
			var o struct{ ID int }
			require.NoError(t, json.Unmarshal(it, &o))
			ids = append(ids, o.ID)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3}, pages)
	assert.Equal(t, []int{1, 2, 3, 4, 5}, ids)
	reqs := fs.Requests()
	require.Len(t, reqs, 3, "one request per page")
	nonces := map[string]bool{}
	for i, r := range reqs {
		assert.Equal(t, "oauth1", r.AuthVia)
		assert.Equal(t, fmt.Sprint(i+1), r.Query.Get("page"))
		assert.Equal(t, "2", r.Query.Get("per_page"))
		assert.Equal(t, "modified", r.Query.Get("orderby"))
		assert.Equal(t, []string{"any"}, r.Query["status[]"])
		nonces[r.Query.Get("oauth_nonce")] = true
	}
	assert.Len(t, nonces, 3, "every page has its own nonce")
	assert.Equal(t, []string{"any"}, q["status[]"], "caller's query untouched")
	assert.Empty(t, q.Get("page"))
}

func TestWalkStopsEarlyAndPropagatesErrors(t *testing.T) {
	fs := newFakeStore(t, true, listRoute(250))
	c := fs.client(t, nil)
	n := 0
	err := c.Walk(context.Background(), "products", nil, 0, func(p *Page) error {
		n++
		assert.Len(t, p.Items, 100)
		assert.Equal(t, 100, p.PerPage)
		return ErrStopWalk
	})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, 1, fs.Count())

	boom := errors.New("downstream full")
	err = c.Walk(context.Background(), "products", nil, 100, func(p *Page) error {
		if p.Page == 2 {
			return boom
		}
		return nil
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 3, fs.Count())

	total := 0
	require.NoError(t, c.Walk(context.Background(), "products", nil, 100, func(p *Page) error {
		total += len(p.Items)
		return nil
	}))
	assert.Equal(t, 250, total)
	assert.Equal(t, 6, fs.Count())
}

func TestWalkWithoutTotalsStopsOnShortPage(t *testing.T) {
	inner := listRoute(7)
	fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
		rec := &headerStripper{ResponseWriter: w}
		inner(rec, r)
	})
	c := fs.client(t, nil)
	var pages []*Page
	require.NoError(t, c.Walk(context.Background(), "orders", nil, 3, func(p *Page) error {
		pages = append(pages, p)
		return nil
	}))
	require.Len(t, pages, 3)
	assert.Equal(t, -1, pages[0].Total)
	assert.Equal(t, -1, pages[0].TotalPages)
	assert.Len(t, pages[2].Items, 1)
}

// headerStripper drops the X-WP-* headers, as some proxies do.
type headerStripper struct{ http.ResponseWriter }

func (h *headerStripper) WriteHeader(code int) {
	h.Header().Del("X-WP-Total")
	h.Header().Del("X-WP-TotalPages")
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerStripper) Write(b []byte) (int, error) {
	h.Header().Del("X-WP-Total")
	h.Header().Del("X-WP-TotalPages")
	return h.ResponseWriter.Write(b)
}

func TestListPageValidation(t *testing.T) {
	fs := newFakeStore(t, true, listRoute(1))
	c := fs.client(t, nil)
	for _, pp := range []int{-1, 101, 1000} {
		_, err := c.ListPage(context.Background(), "orders", nil, 1, pp)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "per_page")
	}
	_, err := c.ListPage(context.Background(), "orders", nil, 0, 10)
	require.Error(t, err)
	_, err = c.ListPage(context.Background(), "orders?page=2", nil, 1, 10)
	require.Error(t, err)
	assert.Equal(t, 0, fs.Count(), "invalid calls send nothing")

	// A list route answering an object is a clear error.
	fs2 := newFakeStore(t, true, okJSON(`{"id":1}`))
	_, err = fs2.client(t, nil).ListPage(context.Background(), "orders", nil, 1, 10)
	var be *BodyError
	require.ErrorAs(t, err, &be)
	assert.Contains(t, be.Reason, "not a JSON array")
}

func TestRetryAfterHonoured(t *testing.T) {
	var n atomic.Int32
	fs := newFakeStore(t, false, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			writeWPError(w, 429, "too_many_requests", "Slow down")
			return
		}
		listRoute(3)(w, r)
	})
	c := fs.client(t, func(cfg *Config) { cfg.MaxRetryElapsed = 5 * time.Second })
	var infos []RequestInfo
	var mu sync.Mutex
	c.cfg.OnRequest = func(ri RequestInfo) { mu.Lock(); infos = append(infos, ri); mu.Unlock() }
	start := time.Now()
	p, err := c.ListPage(context.Background(), "orders", nil, 1, 10)
	elapsed := time.Since(start)
	require.NoError(t, err)
	assert.Len(t, p.Items, 3)
	assert.GreaterOrEqual(t, elapsed, time.Second, "waited at least Retry-After")
	assert.Less(t, elapsed, 3*time.Second)
	reqs := fs.Requests()
	require.Len(t, reqs, 2)
	assert.NotEqual(t, reqs[0].Query.Get("oauth_nonce"), reqs[1].Query.Get("oauth_nonce"), "a retry is signed afresh")
	require.Len(t, infos, 2)
	assert.Equal(t, 429, infos[0].Status)
	assert.Equal(t, 1, infos[0].Attempt)
	assert.Error(t, infos[0].Err)
	assert.Equal(t, 200, infos[1].Status)
	assert.Equal(t, 2, infos[1].Attempt)
	assert.NoError(t, infos[1].Err)
	assert.Equal(t, "orders", infos[1].Path)
}

func TestRetryAfterBeyondBudgetFailsAtOnce(t *testing.T) {
	fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		writeWPError(w, 503, "maintenance", "Briefly unavailable for scheduled maintenance.")
	})
	c := fs.client(t, nil)
	start := time.Now()
	_, err := c.Do(context.Background(), "GET", "orders", nil, nil, nil)
	assert.Less(t, time.Since(start), time.Second)
	var re *RetryError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 1, re.Attempts)
	var we *Error
	require.ErrorAs(t, err, &we)
	assert.Equal(t, 503, we.Status)
	assert.Equal(t, 1, fs.Count())
}

func TestRetriedStatusesUntilBudgetSpent(t *testing.T) {
	for _, status := range []int{429, 500, 502, 503, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
				writeWPError(w, status, "x", "transient")
			})
			c := fs.client(t, func(cfg *Config) { cfg.MaxRetryElapsed = 200 * time.Millisecond })
			_, err := c.Do(context.Background(), "GET", "orders", nil, nil, nil)
			var re *RetryError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, status, StatusCode(err))
			assert.GreaterOrEqual(t, fs.Count(), 3)
			assert.Equal(t, fs.Count(), re.Attempts)
			// No wait starts past the budget; the last attempt itself may end
			// a little after it.
			assert.Less(t, re.Elapsed, 400*time.Millisecond)
			assert.Contains(t, err.Error(), "giving up after")
		})
	}
}

func TestNeverRetriedStatuses(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 410} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
				writeWPError(w, status, "x", "final")
			})
			c := fs.client(t, nil)
			_, err := c.Do(context.Background(), "GET", "orders", nil, nil, nil)
			assert.Equal(t, status, StatusCode(err))
			var re *RetryError
			assert.False(t, errors.As(err, &re))
			assert.Equal(t, 1, fs.Count())
		})
	}
}

func TestRetryThenSuccessAnd500(t *testing.T) {
	var n atomic.Int32
	fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			w.WriteHeader(500)
			_, _ = w.Write([]byte("<html><body><p>There has been a critical error on this website.</p></body></html>"))
			return
		}
		okJSON(`{"id":3}`)(w, r)
	})
	c := fs.client(t, nil)
	var out struct{ ID int }
	resp, err := c.Do(context.Background(), "GET", "orders/3", nil, nil, &out)
	require.NoError(t, err)
	assert.Equal(t, 3, out.ID)
	assert.Equal(t, 3, resp.Attempts)
	assert.Equal(t, 3, fs.Count())
}

func TestHTMLBodyIsClearError(t *testing.T) {
	for _, status := range []int{200, 403, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			fs := newFakeStore(t, false, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=UTF-8")
				w.WriteHeader(status)
				_, _ = w.Write([]byte("<!DOCTYPE html>\n<html><head><title>Access denied</title></head><body>Request blocked by firewall</body></html>"))
			})
			c := fs.client(t, func(cfg *Config) { cfg.MaxRetryElapsed = -1 })
			_, err := c.ListPage(context.Background(), "/wc/v3/orders", url.Values{"status": {"trash"}}, 1, 5)
			var be *BodyError
			require.ErrorAs(t, err, &be)
			assert.Equal(t, status, be.Status)
			assert.Equal(t, "text/html; charset=UTF-8", be.ContentType)
			assert.Contains(t, be.Snippet, "Access denied")
			msg := err.Error()
			assert.Contains(t, msg, fs.URL()+"/wp-json/wc/v3/orders?")
			assert.Contains(t, msg, fmt.Sprint(status))
			assert.Contains(t, msg, "text/html")
			assert.NotContains(t, msg, "invalid character", "not a bare JSON decode error")
			assertNoSecrets(t, msg)
			assert.Equal(t, 1, fs.Count())
			if status != 200 {
				assert.Contains(t, be.Reason, "HTML page")
			}
		})
	}
}

func TestHTML200IsRetriedAsTransient(t *testing.T) {
	var n atomic.Int32
	fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>maintenance</html>"))
			return
		}
		listRoute(2)(w, r)
	})
	p, err := fs.client(t, nil).ListPage(context.Background(), "orders", nil, 1, 10)
	require.NoError(t, err)
	assert.Len(t, p.Items, 2)
	assert.Equal(t, 2, fs.Count())
}

func TestTruncatedJSONIsClearError(t *testing.T) {
	full := loadFixture(t, "orders.list.https-basic.http")
	cut := full.Body[:len(full.Body)/2]
	fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Header().Set("X-WP-Total", "5")
		w.Header().Set("X-WP-TotalPages", "3")
		_, _ = w.Write(cut)
	})
	c := fs.client(t, func(cfg *Config) { cfg.MaxRetryElapsed = 150 * time.Millisecond })
	_, err := c.ListPage(context.Background(), "orders", nil, 1, 2)
	var be *BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, 200, be.Status)
	assert.Contains(t, be.Reason, "truncated")
	assert.Contains(t, err.Error(), "application/json")
	assert.Contains(t, err.Error(), "/wp-json/wc/v3/orders")
	assert.NotContains(t, err.Error(), "unexpected end of JSON input")
	var re *RetryError
	require.ErrorAs(t, err, &re, "a truncated 200 is retried within the budget")
	assert.Greater(t, fs.Count(), 1)
}

func TestCapturedListFixturesDecode(t *testing.T) {
	for _, name := range []string{"orders.list.https-basic.http", "products.list.http-oauth1.http", "customers.list.http-oauth1.http", "coupons.list.https-basic.http"} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			fs := newFakeStore(t, strings.Contains(name, "https"), f.handler)
			p, err := fs.client(t, nil).ListPage(context.Background(), "orders", nil, 1, 2)
			require.NoError(t, err)
			assert.Len(t, p.Items, 2)
			assert.Equal(t, f.Header.Get("X-WP-Total"), fmt.Sprint(p.Total))
			assert.Equal(t, f.Header.Get("X-WP-TotalPages"), fmt.Sprint(p.TotalPages))
			assert.Equal(t, p.TotalPages <= 1, p.Last())
		})
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	var n atomic.Int32
	fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_ = conn.Close() // connection dropped without an answer
			return
		}
		okJSON(`{"ok":true}`)(w, r)
	})
	c := fs.client(t, func(cfg *Config) { cfg.Auth = AuthQuery })
	var out map[string]bool
	_, err := c.Do(context.Background(), "GET", "system_status", nil, nil, &out)
	require.NoError(t, err)
	assert.True(t, out["ok"])
	assert.Equal(t, 2, fs.Count())
}

func TestNetworkErrorTextIsRedacted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there any more
	c, err := New(Config{StoreURL: "https://" + addr, ConsumerKey: testKey, ConsumerSecret: testSecret,
		Auth: AuthQuery, MaxRetryElapsed: 100 * time.Millisecond, RetryInitialInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	_, err = c.Do(context.Background(), "GET", "orders", nil, nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), addr)
	assert.Contains(t, err.Error(), "giving up after")
	assertNoSecrets(t, err.Error())
}

func TestTimeoutPerAttempt(t *testing.T) {
	fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	})
	c := fs.client(t, func(cfg *Config) { cfg.Timeout = 50 * time.Millisecond; cfg.MaxRetryElapsed = -1 })
	start := time.Now()
	_, err := c.Do(context.Background(), "GET", "orders", nil, nil, nil)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Contains(t, err.Error(), "timeout")
	assertNoSecrets(t, err.Error())
}

func TestContextCancelledDuringRetryWait(t *testing.T) {
	fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		writeWPError(w, 503, "busy", "busy")
	})
	answered := make(chan RequestInfo, 1)
	c := fs.client(t, func(cfg *Config) {
		cfg.MaxRetryElapsed = time.Minute
		cfg.OnRequest = func(ri RequestInfo) { answered <- ri }
	})
	// The deadline falls inside the 30 s Retry-After wait.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Do(ctx, "GET", "orders", nil, nil, nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, 1, fs.Count())
	ri := <-answered
	assert.Equal(t, 503, ri.Status, "the first attempt completed; the wait was interrupted")
	assert.Equal(t, 503, StatusCode(err), "the last answer is still reachable")
	assert.Contains(t, err.Error(), "while waiting to retry")
}

func TestRateLimitConsultedBeforeEveryAttempt(t *testing.T) {
	fs := newFakeStore(t, true, listRoute(5))
	var calls atomic.Int32
	c := fs.client(t, func(cfg *Config) {
		cfg.RateLimit = func(ctx context.Context) error { calls.Add(1); return nil }
	})
	require.NoError(t, c.Walk(context.Background(), "orders", nil, 2, func(*Page) error { return nil }))
	assert.EqualValues(t, 3, calls.Load())

	denied := errors.New("limiter closed")
	c2 := fs.client(t, func(cfg *Config) { cfg.RateLimit = func(context.Context) error { return denied } })
	_, err := c2.Do(context.Background(), "GET", "orders", nil, nil, nil)
	assert.ErrorIs(t, err, denied)
	assert.Equal(t, 3, fs.Count())
}

func TestCustomUserAgentAndRoutes(t *testing.T) {
	fs := newFakeStore(t, true, okJSON(`{}`))
	c := fs.client(t, func(cfg *Config) {
		cfg.UserAgent = "wooevents/1.2.3"
		cfg.StoreURL = fs.URL() + "/"
	})
	assert.Equal(t, fs.URL(), c.StoreURL())
	assert.Equal(t, AuthBasic, c.Auth())
	for _, route := range []string{"orders", "/wc/v3/orders", "/wp-json/wc/v3/orders"} {
		_, err := c.Do(context.Background(), "GET", route, nil, nil, nil)
		require.NoError(t, err)
	}
	for _, r := range fs.Requests() {
		assert.Equal(t, "/wp-json/wc/v3/orders", r.Path)
		assert.Equal(t, "wooevents/1.2.3", r.Header.Get("User-Agent"))
	}
}

func TestSubdirectoryStoreSignsFullPath(t *testing.T) {
	fs := newFakeStore(t, false, okJSON(`[]`))
	c := fs.client(t, func(cfg *Config) { cfg.StoreURL = fs.URL() + "/shop" })
	_, err := c.Do(context.Background(), "GET", "orders", url.Values{"per_page": {"1"}}, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "/shop/wp-json/wc/v3/orders", fs.Requests()[0].Path)
	assert.Equal(t, "oauth1", fs.Requests()[0].AuthVia)
}

func TestNewValidatesConfig(t *testing.T) {
	base := Config{StoreURL: "https://shop.test", ConsumerKey: "ck", ConsumerSecret: "cs"}
	for name, mod := range map[string]func(*Config){
		"no url":         func(c *Config) { c.StoreURL = "" },
		"bad scheme":     func(c *Config) { c.StoreURL = "ftp://shop.test" },
		"no host":        func(c *Config) { c.StoreURL = "https://" },
		"wp-json":        func(c *Config) { c.StoreURL = "https://shop.test/wp-json" },
		"query":          func(c *Config) { c.StoreURL = "https://shop.test/?a=1" },
		"userinfo":       func(c *Config) { c.StoreURL = "https://ck:cs_secret@shop.test" },
		"no key":         func(c *Config) { c.ConsumerKey = "" },
		"no secret":      func(c *Config) { c.ConsumerSecret = "" },
		"bad auth":       func(c *Config) { c.Auth = "digest" },
		"bad sig method": func(c *Config) { c.SignatureMethod = "RSA-SHA1" },
	} {
		cfg := base
		mod(&cfg)
		_, err := New(cfg)
		require.Error(t, err, name)
		assert.NotContains(t, err.Error(), "cs_secret", name)
	}
	_, err := New(base)
	require.NoError(t, err)
	assert.Equal(t, AuthOAuth1, Config{StoreURL: "http://x"}.EffectiveAuth())
	assert.Equal(t, AuthBasic, Config{StoreURL: "HTTPS://x"}.EffectiveAuth())
	assert.Equal(t, AuthQuery, Config{StoreURL: "http://x", Auth: AuthQuery}.EffectiveAuth())
}

func TestConfigStringHidesSecrets(t *testing.T) {
	cfg := Config{StoreURL: "https://shop.test", ConsumerKey: testKey, ConsumerSecret: testSecret}
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(&cfg)} {
		assertNoSecrets(t, s)
		assert.Contains(t, s, "https://shop.test")
	}
}

func TestClientStringHidesSecrets(t *testing.T) {
	c, err := New(Config{StoreURL: "https://shop.test", ConsumerKey: testKey, ConsumerSecret: testSecret})
	require.NoError(t, err)
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		assertNoSecrets(t, s)
		assert.Contains(t, s, "https://shop.test")
	}
}

func TestRedirectIsExplained(t *testing.T) {
	target := newFakeStore(t, false, okJSON(`[]`))
	origin := newFakeStore(t, false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL()+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
	origin.noAuth = true
	c := origin.client(t, nil)
	_, err := c.Do(context.Background(), "GET", "orders", nil, nil, nil)
	var we *Error
	require.ErrorAs(t, err, &we)
	assert.Equal(t, "Invalid signature - provided signature does not match.", we.Message)
	assert.Contains(t, we.Hint, "redirected to "+target.URL()+"/wp-json/wc/v3/orders?")
	assertNoSecrets(t, err.Error())
	assert.Contains(t, err.Error(), "oauth_signature=REDACTED")

	login := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wp-login.php" {
			w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			_, _ = w.Write([]byte("<!DOCTYPE html><html><title>Log In</title></html>"))
			return
		}
		http.Redirect(w, r, "/wp-login.php?redirect_to=x", http.StatusFound)
	})
	login.noAuth = true
	_, err = login.client(t, func(cfg *Config) { cfg.MaxRetryElapsed = -1 }).Do(context.Background(), "GET", "orders", nil, nil, nil)
	var be *BodyError
	require.ErrorAs(t, err, &be)
	assert.Contains(t, be.Reason, "HTML page")
	assert.Contains(t, be.Reason, "redirected to "+login.URL()+"/wp-login.php")
	assert.Equal(t, 200, be.Status)
}

func TestRequestInfoRouteTemplate(t *testing.T) {
	fs := newFakeStore(t, true, okJSON(`{"id":24}`))
	var got []string
	c := fs.client(t, func(cfg *Config) { cfg.OnRequest = func(ri RequestInfo) { got = append(got, ri.Method+" "+ri.Path) } })
	_, err := c.Do(context.Background(), "put", "/wc/v3/orders/24/notes/7", nil, []byte(`{}`), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"PUT /wc/v3/orders/{id}/notes/{id}"}, got)
	assert.Equal(t, "/wp-json/wc/v3/orders/24/notes/7", fs.Requests()[0].Path)
	assert.Equal(t, "{}", string(fs.Requests()[0].Body))
}

// Walk keeps no page once its callback returned: page 1 becomes garbage while
// the walk is still running.
func TestWalkDoesNotRetainPages(t *testing.T) {
	fs := newFakeStore(t, true, listRoute(50))
	c := fs.client(t, nil)
	collected := make(chan struct{})
	err := c.Walk(context.Background(), "orders", nil, 5, func(p *Page) error {
		switch p.Page {
		case 1:
			runtime.SetFinalizer(p, func(*Page) { close(collected) })
		case 5:
			require.Eventually(t, func() bool {
				runtime.GC()
				select {
				case <-collected:
					return true
				default:
					return false
				}
			}, 5*time.Second, 10*time.Millisecond, "page 1 is still referenced")
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 10, fs.Count())
}

func TestPOSTRetriedOnlyWhereTheStoreCannotHaveActed(t *testing.T) {
	for _, tc := range []struct {
		status int
		html   bool
		drop   bool
		retry  bool
	}{
		{status: 429, retry: true},
		{status: 503, retry: true},
		{status: 500},
		{status: 502},
		{status: 504},
		{status: 201, html: true}, // a cut/odd success body: the object may exist
		{drop: true},
	} {
		t.Run(fmt.Sprint(tc.status, tc.html, tc.drop), func(t *testing.T) {
			var n atomic.Int32
			fs := newFakeStore(t, true, func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) > 1 {
					w.WriteHeader(201)
					_, _ = w.Write([]byte(`{"id":5}`))
					return
				}
				switch {
				case tc.drop:
					conn, _, _ := w.(http.Hijacker).Hijack()
					_ = conn.Close()
				case tc.html:
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(tc.status)
					_, _ = w.Write([]byte("<html>oops</html>"))
				default:
					writeWPError(w, tc.status, "x", "y")
				}
			})
			c := fs.client(t, nil)
			_, err := c.Do(context.Background(), "POST", "webhooks", nil, map[string]string{"topic": "order.updated"}, nil)
			if tc.retry {
				require.NoError(t, err)
				assert.Equal(t, 2, fs.Count())
				return
			}
			require.Error(t, err)
			assert.Equal(t, 1, fs.Count())
			// The same faults on GET are retried.
			n.Store(0)
			_, err = c.Do(context.Background(), "GET", "webhooks", nil, nil, nil)
			require.NoError(t, err)
			assert.Equal(t, 3, fs.Count())
		})
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c, err := New(Config{StoreURL: "http://" + addr, ConsumerKey: testKey, ConsumerSecret: testSecret,
		MaxRetryElapsed: 100 * time.Millisecond, RetryInitialInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	_, err = c.Do(context.Background(), "POST", "webhooks", nil, map[string]string{}, nil)
	var re *RetryError
	require.ErrorAs(t, err, &re, "a refused connection is retried even for POST")
	assert.Greater(t, re.Attempts, 1)
}

// ListPageFields picks the requested top-level keys in the validating pass,
// and a released page's buffer is read into again without the next page
// seeing anything of the previous one.
func TestListPageFieldsAndRelease(t *testing.T) {
	fs := newFakeStore(t, true, listRoute(25))
	c := fs.client(t, nil)
	keys := []string{"id", "missing"}
	var prev *Page
	for page := 1; page <= 3; page++ {
		p, err := c.ListPageFields(context.Background(), "orders", nil, page, 10, keys)
		require.NoError(t, err)
		prev.Release()
		prev.Release() // a no-op the second time
		want := min(10, 25-(page-1)*10)
		require.Len(t, p.Items, want)
		require.Len(t, p.Fields, want)
		for i, item := range p.Items {
			id := gjson.GetBytes(item, "id").Raw
			assert.Equal(t, strconv.Itoa((page-1)*10+i+1), id)
			require.Len(t, p.Fields[i], 2)
			assert.Equal(t, id, string(p.Fields[i][0]))
			assert.Nil(t, p.Fields[i][1])
		}
		prev = p
	}
	prev.Release()
	assert.Nil(t, prev.Items)

	p, err := c.ListPage(context.Background(), "orders", nil, 1, 10)
	require.NoError(t, err)
	assert.Len(t, p.Items, 10)
	assert.Nil(t, p.Fields, "ListPage picks no fields")
}

// A connection reused by back-to-back requests is closed by the client once
// it has been idle for IdleConnTimeout: an idle poll input holds none.
func TestIdleConnectionClosed(t *testing.T) {
	var mu sync.Mutex
	opened := 0
	closed := make(chan time.Time, 4)
	srv := httptest.NewUnstartedServer(okJSON(`[]`))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			mu.Lock()
			opened++
			mu.Unlock()
		case http.StateClosed:
			closed <- time.Now()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New(Config{StoreURL: srv.URL, ConsumerKey: testKey, ConsumerSecret: testSecret})
	require.NoError(t, err)
	t.Cleanup(c.Close)

	for range 3 {
		_, err := c.Do(context.Background(), http.MethodGet, "orders", nil, nil, nil)
		require.NoError(t, err)
	}
	last := time.Now()
	mu.Lock()
	assert.Equal(t, 1, opened, "back-to-back requests share one connection")
	mu.Unlock()
	select {
	case at := <-closed:
		idle := at.Sub(last)
		assert.GreaterOrEqual(t, idle, IdleConnTimeout-200*time.Millisecond, "closed before it was idle for IdleConnTimeout")
	case <-time.After(IdleConnTimeout + 5*time.Second):
		t.Fatalf("the idle connection was still open %s after the last request", IdleConnTimeout+5*time.Second)
	}
}
