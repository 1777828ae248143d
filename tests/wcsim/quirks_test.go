package wcsim

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertCaptured checks a response against a captured error: status, body
// byte for byte, header names, Content-Type.
func assertCaptured(t *testing.T, fixture string, got resp) {
	t.Helper()
	want := loadCapture(t, filepath.Join("rest", "errors", fixture))
	assert.Equal(t, want.status(t), got.code)
	assert.Equal(t, string(want.body), string(got.body))
	assert.Equal(t, headerNames(want.header, "Connection"), headerNames(got.header))
	assert.Equal(t, want.header.Get("Content-Type"), got.header.Get("Content-Type"))
}

func TestQuirkClockSkew(t *testing.T) {
	s := startStore(t, Options{Latency: NoLatency, ClockSkew: -20 * time.Minute})
	path := "/wp-json/wc/v3/orders"
	r := oauthDo(t, s, "GET", path, nil, oauthOpt{ts: time.Now().Unix()}, nil)
	assert.Equal(t, bodyBadTS, string(r.body), "signed with this machine's clock: outside the 15 min window")
	date, err := http.ParseTime(r.header.Get("Date"))
	require.NoError(t, err)
	assert.InDelta(t, time.Now().Add(-20*time.Minute).Unix(), date.Unix(), 5, "Date header on the store's clock")
	r = oauthDo(t, s, "GET", path, nil, oauthOpt{ts: date.Unix()}, nil)
	assert.Equal(t, 200, r.code, "signed with the store's Date: accepted")
	// new objects get the store's time
	id, err := s.Create(Orders, map[string]any{})
	require.NoError(t, err)
	o := decodeObj(t, basicDoHTTP(t, s, id))
	mod, err := time.Parse(wooLayout, o["date_modified_gmt"].(string))
	require.NoError(t, err)
	assert.InDelta(t, time.Now().Add(-20*time.Minute).Unix(), mod.Unix(), 5)
	// a small skew keeps OAuth working; set at run time
	s.SetClockSkew(10 * time.Minute)
	r = oauthDo(t, s, "GET", path, nil, oauthOpt{ts: time.Now().Unix()}, nil)
	assert.Equal(t, 200, r.code, string(r.body))
	code, b := simCall(t, s, "POST", "/__sim/options", map[string]any{"clock_skew": "-30m"})
	require.Equal(t, 200, code, string(b))
	assert.InDelta(t, time.Now().Add(-30*time.Minute).Unix(), s.Now().Unix(), 5)
	// the manual clock ignores the skew
	s.SetNow(t0)
	r = oauthDo(t, s, "GET", path, nil, oauthOpt{ts: t0.Unix()}, nil)
	assert.Equal(t, 200, r.code)
	assert.Equal(t, t0.Format(http.TimeFormat), r.header.Get("Date"))
}

// basicDoHTTP reads one order over OAuth (the store in the clock test is plain HTTP).
func basicDoHTTP(t *testing.T, s *Store, id int64) []byte {
	t.Helper()
	r := oauthDo(t, s, "GET", "/wp-json/wc/v3/orders/"+itoa(id), nil, oauthOpt{ts: s.Now().Unix()}, nil)
	require.Equal(t, 200, r.code, string(r.body))
	return r.body
}

func TestQuirkIgnoreModifiedAfter(t *testing.T) {
	s := startStore(t, Options{TLS: true, IgnoreModifiedAfter: true})
	s.SetNow(t0)
	_, _, err := s.SeedWith(Orders, 10, SeedOptions{Start: t0.Add(-time.Hour), Status: "processing"})
	require.NoError(t, err)
	future := "2099-01-01T00:00:00"
	q := func(extra string) (string, int) {
		r := basicDo(t, s, "GET", "/wp-json/wc/v3/orders?dates_are_gmt=true&"+extra, nil)
		require.Equal(t, 200, r.code, string(r.body))
		return r.header.Get("X-WP-Total"), len(idsOf(t, r.body))
	}
	total, n := q("modified_after=" + future)
	assert.Equal(t, "10", total, "the filter is accepted but not applied")
	assert.Equal(t, 10, n)
	total, _ = q("modified_before=2000-01-01T00:00:00")
	assert.Equal(t, "10", total)
	total, _ = q("after=" + future) // the creation filters still work
	assert.Equal(t, "0", total)
	r := basicDo(t, s, "GET", "/wp-json/wc/v3/orders?modified_after=yesterday", nil)
	assert.Equal(t, 400, r.code, "still validated")
	for _, res := range []string{"products", "coupons"} {
		s.Seed(res, 3)
		r := basicDo(t, s, "GET", "/wp-json/wc/v3/"+res+"?modified_after="+future, nil)
		assert.Equal(t, "3", r.header.Get("X-WP-Total"), res)
	}
	s.SetIgnoreModifiedAfter(false)
	total, _ = q("modified_after=" + future)
	assert.Equal(t, "0", total)
	code, b := simCall(t, s, "POST", "/__sim/options", map[string]any{"ignore_modified_after": true})
	require.Equal(t, 200, code, string(b))
	total, _ = q("modified_after=" + future)
	assert.Equal(t, "10", total)
}

func TestQuirkBehindProxy(t *testing.T) {
	s := startStore(t, Options{TLS: true, BehindProxy: true})
	require.True(t, strings.HasPrefix(s.URL(), "https://"))
	s.Seed(Orders, 3)
	path := "/wp-json/wc/v3/orders"
	// Basic and query-string keys over https are ignored, as over plain HTTP
	assertCaptured(t, "basic-auth-over-plain-http-ignored.http", basicDo(t, s, "GET", path, nil))
	assertCaptured(t, "querystring-keys-over-plain-http-ignored.http",
		doReq(t, s, "GET", path+"?consumer_key="+DefaultConsumerKey+"&consumer_secret="+DefaultConsumerSecret, nil, nil))
	// OAuth 1.0a works when signed for the http:// URL WordPress believes in
	httpURL := "http://" + strings.TrimPrefix(s.URL(), "https://") + path
	r := oauthDo(t, s, "GET", path, nil, oauthOpt{baseURL: httpURL}, nil)
	assert.Equal(t, 200, r.code, string(r.body))
	assert.Len(t, decodeList(t, r.body), 3)
	r = oauthDo(t, s, "GET", path, nil, oauthOpt{}, nil) // signed for https://
	assert.Equal(t, bodyBadSig, string(r.body))
	// links stay https (the home URL)
	assert.Contains(t, r.header.Get("Link"), "<https://")
	// without the quirk Basic works again
	s.SetBehindProxy(false)
	assert.Equal(t, 200, basicDo(t, s, "GET", path, nil).code)
	code, b := simCall(t, s, "POST", "/__sim/options", map[string]any{"behind_proxy": true})
	require.Equal(t, 200, code, string(b))
	assert.Equal(t, 401, basicDo(t, s, "GET", path, nil).code)
}

func TestQuirkStripAuthorization(t *testing.T) {
	s := startStore(t, Options{TLS: true, StripAuthorization: true})
	s.Seed(Orders, 2)
	path := "/wp-json/wc/v3/orders"
	// Basic never reaches WordPress: the request is unauthenticated
	assertCaptured(t, "no-auth.https.http", basicDo(t, s, "GET", path, nil))
	// query-string keys still work over HTTPS
	r := doReq(t, s, "GET", path+"?consumer_key="+DefaultConsumerKey+"&consumer_secret="+DefaultConsumerSecret, nil, nil)
	assert.Equal(t, 200, r.code, string(r.body))
	// OAuth in the query string works, in the Authorization header it does not
	r = oauthDo(t, s, "GET", path, nil, oauthOpt{}, nil)
	assert.Equal(t, 200, r.code, string(r.body))
	r = doReq(t, s, "GET", path, nil, oauthHeader(t, s, path))
	assert.Equal(t, bodyCantView, string(r.body))
	s.SetStripAuthorization(false)
	assert.Equal(t, 200, basicDo(t, s, "GET", path, nil).code)
}

func TestQuirkNoPrettyPermalinks(t *testing.T) {
	s := startStore(t, Options{TLS: true, NoPrettyPermalinks: true})
	s.Seed(Orders, 25)
	for _, p := range []string{"/wp-json/wc/v3/orders", "/wp-json/", "/wp-json"} {
		r := basicDo(t, s, "GET", p, nil)
		assert.Equal(t, 404, r.code, p)
		assert.Equal(t, "text/html; charset=UTF-8", r.header.Get("Content-Type"))
		assert.Contains(t, string(r.body), "<title>Page not found &#8211; ")
		assert.Equal(t, "<"+s.URL()+"/index.php?rest_route=/>; rel=\"https://api.w.org/\"", r.header.Get("Link"))
	}
	// ?rest_route= works, and its pagination links too
	r := basicDo(t, s, "GET", "/?rest_route=/wc/v3/orders&per_page=10&orderby=id&order=asc", nil)
	require.Equal(t, 200, r.code, string(r.body))
	assert.Equal(t, "25", r.header.Get("X-WP-Total"))
	link := r.header.Get("Link")
	m := regexp.MustCompile(`<([^>]+)>; rel="next"`).FindStringSubmatch(link)
	require.NotNil(t, m, link)
	assert.True(t, strings.HasPrefix(m[1], s.URL()+"/index.php?rest_route=%2Fwc%2Fv3%2Forders&"), m[1])
	next := basicDo(t, s, "GET", strings.TrimPrefix(m[1], s.URL()), nil)
	require.Equal(t, 200, next.code, string(next.body))
	assert.Equal(t, idsOf(t, r.body)[9]+1, idsOf(t, next.body)[0])
	// the index answers at ?rest_route=/ and points at ?rest_route= URLs
	r = doReq(t, s, "GET", "/?rest_route=/", nil, nil)
	require.Equal(t, 200, r.code)
	assert.Contains(t, string(r.body), `"href":"`+strings.ReplaceAll(s.URL(), "/", `\/`)+`\/index.php?rest_route=\/wc\/v3\/orders"`)
	s.SetNoPrettyPermalinks(false)
	assert.Equal(t, 200, basicDo(t, s, "GET", "/wp-json/wc/v3/orders", nil).code)
	code, b := simCall(t, s, "POST", "/__sim/options", map[string]any{"no_pretty_permalinks": true})
	require.Equal(t, 200, code, string(b))
	assert.Equal(t, 404, basicDo(t, s, "GET", "/wp-json/wc/v3/orders", nil).code)
}

func TestRESTIndex(t *testing.T) {
	for _, tls := range []bool{true, false} {
		s := startStore(t, Options{TLS: tls, UTCOffset: 2 * time.Hour})
		for _, p := range []string{"/wp-json/", "/wp-json", "/?rest_route=/"} {
			r := doReq(t, s, "GET", p, nil, nil) // no auth needed
			require.Equal(t, 200, r.code, p)
			assert.Equal(t, "application/json; charset=UTF-8", r.header.Get("Content-Type"))
			assert.Equal(t, []string{"name", "description", "url", "home", "gmt_offset", "timezone_string", "page_for_posts",
				"page_on_front", "show_on_front", "namespaces", "authentication", "routes", "site_logo", "site_icon", "site_icon_url", "_links"},
				topKeys(t, r.body))
			var idx struct {
				Namespaces []string                   `json:"namespaces"`
				Auth       json.RawMessage            `json:"authentication"`
				Routes     map[string]json.RawMessage `json:"routes"`
			}
			require.NoError(t, json.Unmarshal(r.body, &idx))
			o := decodeObj(t, r.body)
			assert.Equal(t, s.URL(), o["home"])
			assert.Equal(t, s.URL(), o["url"])
			assert.Equal(t, "2", o["gmt_offset"])
			assert.Subset(t, idx.Namespaces, []string{"wc/v3", "wp/v2", "wc/store/v1"})
			for _, route := range []string{"/", "/wc/v3", "/wc/v3/orders", "/wc/v3/orders/(?P<id>[\\d]+)", "/wc/v3/system_status"} {
				assert.Contains(t, idx.Routes, route)
			}
			if tls { // application passwords need is_ssl()
				assert.Contains(t, string(idx.Auth), "application-passwords")
			} else {
				assert.Equal(t, "[]", string(idx.Auth))
			}
			assert.Contains(t, string(r.body), `"\/wc\/v3\/orders":{"namespace":"wc\/v3","methods":["GET","POST"]`)
		}
	}
}

func TestSystemStatus(t *testing.T) {
	s := startStore(t, Options{TLS: true, Keys: []Key{
		{ConsumerKey: "ck_r", ConsumerSecret: "cs_r", Permissions: PermRead},
		{ConsumerKey: "ck_w", ConsumerSecret: "cs_w", Permissions: PermWrite},
		{ConsumerKey: "ck_rw", ConsumerSecret: "cs_rw", Permissions: PermReadWrite},
	}})
	s.Seed(Orders, 4)
	s.Seed(Products, 2)
	path := "/wp-json/wc/v3/system_status"
	assert.Equal(t, bodyCantView, string(doReq(t, s, "GET", path, nil, nil).body))
	r := doReq(t, s, "GET", path, nil, basic("ck_w", "cs_w"))
	assert.Equal(t, `{"code":"woocommerce_rest_authentication_error","message":"The API key provided does not have read permissions.","data":{"status":401}}`, string(r.body))
	r = doReq(t, s, "GET", path, nil, basic("ck_r", "cs_r"))
	require.Equal(t, 200, r.code, string(r.body))
	assert.Equal(t, "GET", r.header.Get("Allow"))
	assert.Equal(t, []string{"environment", "database", "active_plugins", "inactive_plugins", "dropins_mu_plugins", "theme",
		"settings", "security", "pages", "post_type_counts"}, topKeys(t, r.body))
	var st struct {
		Environment map[string]any `json:"environment"`
		Settings    map[string]any `json:"settings"`
		Security    map[string]any `json:"security"`
		Counts      []struct{ Type, Count string }
	}
	require.NoError(t, json.Unmarshal(r.body, &st))
	env := st.Environment
	assert.Equal(t, s.URL(), env["home_url"])
	assert.Equal(t, s.URL(), env["site_url"])
	assert.Equal(t, "11.0.1", env["version"])
	assert.Equal(t, "7.1", env["wp_version"])
	assert.Equal(t, "8.2.36", env["php_version"])
	assert.Equal(t, r.header.Get("Server"), env["server_info"])
	assert.Equal(t, "UTC", env["default_timezone"])
	assert.Equal(t, false, st.Settings["api_enabled"], "the legacy API option")
	assert.Equal(t, true, st.Settings["HPOS_enabled"])
	assert.Equal(t, true, st.Security["secure_connection"])
	assert.Contains(t, string(r.body), `{"type":"shop_order_placehold","count":"4"}`)
	assert.Contains(t, string(r.body), `"log_directory":"\/var\/www\/html\/wp-content\/uploads\/wc-logs\/"`, "PHP escaping")

	r = doReq(t, s, "GET", path+"?_fields=environment.version,environment.wp_version", nil, basic("ck_rw", "cs_rw"))
	assert.Equal(t, `{"environment":{"version":"11.0.1","wp_version":"7.1"}}`, string(r.body))
	r = doReq(t, s, "POST", path, []byte(`{}`), basic("ck_rw", "cs_rw"))
	assert.Equal(t, 404, r.code)
	assert.Contains(t, string(r.body), "rest_no_route")
}

// WC_REST_Authentication::check_permissions per method and key permission:
// HEAD/GET need read, POST/PUT/PATCH/DELETE need write, OPTIONS passes.
func TestKeyPermissionsPerMethod(t *testing.T) {
	keys := map[string]Key{
		PermRead:      {ConsumerKey: "ck_r", ConsumerSecret: "cs_r", Permissions: PermRead},
		PermWrite:     {ConsumerKey: "ck_w", ConsumerSecret: "cs_w", Permissions: PermWrite},
		PermReadWrite: {ConsumerKey: "ck_rw", ConsumerSecret: "cs_rw", Permissions: PermReadWrite},
	}
	s := startStore(t, Options{TLS: true, Keys: []Key{keys[PermRead], keys[PermWrite], keys[PermReadWrite]}})
	id, err := s.Create(Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	const (
		noRead  = `{"code":"woocommerce_rest_authentication_error","message":"The API key provided does not have read permissions.","data":{"status":401}}`
		noWrite = `{"code":"woocommerce_rest_authentication_error","message":"The API key provided does not have write permissions.","data":{"status":401}}`
	)
	item := "/wp-json/wc/v3/orders/" + itoa(id)
	for _, m := range []struct {
		method, path string
		body         []byte
		write        bool
	}{
		{"GET", item, nil, false},
		{"HEAD", item, nil, false},
		{"POST", "/wp-json/wc/v3/orders", []byte(`{"status":"processing"}`), true},
		{"PUT", item, []byte(`{"customer_note":"a"}`), true},
		{"PATCH", item, []byte(`{"customer_note":"b"}`), true},
		{"DELETE", item, nil, true},
	} {
		for perm, k := range keys {
			allowed := perm == PermReadWrite || (perm == PermRead) != m.write
			r := doReq(t, s, m.method, m.path, m.body, basic(k.ConsumerKey, k.ConsumerSecret))
			if allowed { // past the key check (a second DELETE finds the order already trashed: 410)
				assert.NotContains(t, string(r.body), "does not have", "%s with a %s key", m.method, perm)
				if m.method != "DELETE" {
					assert.Less(t, r.code, 300, "%s with a %s key: %s", m.method, perm, r.body)
				}
				continue
			}
			assert.Equal(t, 401, r.code, "%s with a %s key", m.method, perm)
			if m.method == "HEAD" {
				continue // no body
			}
			want := noRead
			if m.write {
				want = noWrite
			}
			assert.Equal(t, want, string(r.body), "%s with a %s key", m.method, perm)
			if m.method == "POST" {
				assertCaptured(t, "readonly-key-write.https-basic.http", r)
			}
		}
	}
	// OPTIONS passes the key check whatever the permission
	for _, k := range keys {
		r := doReq(t, s, "OPTIONS", "/wp-json/wc/v3/orders", nil, basic(k.ConsumerKey, k.ConsumerSecret))
		assert.NotContains(t, string(r.body), "does not have", k.Permissions)
	}
}
