package wcsim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	bodyBadSig   = `{"code":"woocommerce_rest_authentication_error","message":"Invalid signature - provided signature does not match.","data":{"status":401}}`
	bodyBadTS    = `{"code":"woocommerce_rest_authentication_error","message":"Invalid timestamp.","data":{"status":401}}`
	bodyReplay   = `{"code":"woocommerce_rest_authentication_error","message":"Invalid nonce - nonce has already been used.","data":{"status":401}}`
	bodyCantView = `{"code":"woocommerce_rest_cannot_view","message":"Sorry, you cannot list resources.","data":{"status":401}}`
)

func TestOAuthAcceptedAndRejected(t *testing.T) {
	s := startStore(t, Options{UTCOffset: 2 * time.Hour})
	s.Seed(Orders, 3)
	path := "/wp-json/wc/v3/orders"

	for _, m := range []string{"HMAC-SHA256", "HMAC-SHA1"} {
		r := oauthDo(t, s, "GET", path, []kv{{"per_page", "2"}, {"orderby", "id"}}, oauthOpt{method: m}, nil)
		require.Equal(t, 200, r.code, m+": "+string(r.body))
		assert.Len(t, decodeList(t, r.body), 2)
	}
	// Values needing RFC 3986 double encoding (space, slash, ~, unicode, +).
	r := oauthDo(t, s, "GET", path, []kv{{"search", "a b/c~d+é"}, {"modified_after", "2020-01-01T00:00:00+02:00"}}, oauthOpt{}, nil)
	require.Equal(t, 200, r.code, string(r.body))

	t.Run("replayed nonce", func(t *testing.T) {
		o := oauthOpt{nonce: "n-" + newNonce()}
		require.Equal(t, 200, oauthDo(t, s, "GET", path, nil, o, nil).code)
		r := oauthDo(t, s, "GET", path, []kv{{"page", "1"}}, o, nil) // new signature, same nonce
		assert.Equal(t, 401, r.code)
		assert.Equal(t, bodyReplay, string(r.body))
		// the same nonce with another key is fine (nonces are per key)
		r = oauthDo(t, s, "GET", path, nil, oauthOpt{nonce: o.nonce, key: DefaultReadOnlyConsumerKey, secret: DefaultReadOnlyConsumerSecret}, nil)
		assert.Equal(t, 200, r.code, string(r.body))
	})
	t.Run("stale and future timestamps", func(t *testing.T) {
		now := s.Now().Unix()
		for _, ts := range []int64{now - 16*60, now + 16*60} {
			r := oauthDo(t, s, "GET", path, nil, oauthOpt{ts: ts}, nil)
			assert.Equal(t, 401, r.code)
			assert.Equal(t, bodyBadTS, string(r.body))
		}
		r := oauthDo(t, s, "GET", path, nil, oauthOpt{ts: now - 14*60}, nil)
		assert.Equal(t, 200, r.code, string(r.body))
	})
	t.Run("store clock decides", func(t *testing.T) {
		s2 := startStore(t, Options{})
		s2.SetNow(time.Now().Add(-time.Hour))
		r := oauthDo(t, s2, "GET", path, nil, oauthOpt{ts: time.Now().Unix()}, nil)
		assert.Equal(t, bodyBadTS, string(r.body))
		r = oauthDo(t, s2, "GET", path, nil, oauthOpt{}, nil) // signed with the store's time
		assert.Equal(t, 200, r.code)
	})
	t.Run("bad signature", func(t *testing.T) {
		r := oauthDo(t, s, "GET", path, nil, oauthOpt{key: DefaultConsumerKey, secret: "cs_wrong"}, nil)
		assert.Equal(t, bodyBadSig, string(r.body))
		// base URL must be the home URL: signing for localhost fails
		u := strings.Replace(s.URL(), "127.0.0.1", "localhost", 1)
		r = oauthDo(t, s, "GET", path, nil, oauthOpt{baseURL: u + path}, nil)
		assert.Equal(t, bodyBadSig, string(r.body))
		// tampering with a signed parameter fails
		q := oauthQuery("GET", s.URL()+path, []kv{{"per_page", "2"}}, oauthOpt{key: DefaultConsumerKey, secret: DefaultConsumerSecret, ts: s.Now().Unix()})
		r = doReq(t, s, "GET", path+"?"+strings.Replace(q, "per_page=2", "per_page=3", 1), nil, nil)
		assert.Equal(t, bodyBadSig, string(r.body))
	})
	t.Run("unknown signature method", func(t *testing.T) {
		r := oauthDo(t, s, "GET", path, nil, oauthOpt{method: "PLAINTEXT"}, nil)
		assert.Equal(t, `{"code":"woocommerce_rest_authentication_error","message":"Invalid signature - signature method is invalid.","data":{"status":401}}`, string(r.body))
	})
	t.Run("missing parameters", func(t *testing.T) {
		r := doReq(t, s, "GET", path+"?oauth_consumer_key="+DefaultConsumerKey+"&oauth_nonce=x", nil, nil)
		assert.Equal(t, 401, r.code)
		assert.Equal(t, `{"code":"woocommerce_rest_authentication_missing_parameter","message":"Missing OAuth parameters oauth_timestamp, oauth_signature, oauth_signature_method","data":{"status":401}}`, string(r.body))
	})
	t.Run("authorization header and form body", func(t *testing.T) {
		r := doReq(t, s, "GET", path, nil, oauthHeader(t, s, path))
		assert.Equal(t, 200, r.code, string(r.body))

		// form-encoded POST: body params are signed too
		form := oauthQuery("POST", s.URL()+path, []kv{{"status", "processing"}}, oauthOpt{key: DefaultConsumerKey, secret: DefaultConsumerSecret, ts: s.Now().Unix()})
		r = doReq(t, s, "POST", path, []byte(form), func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") })
		require.Equal(t, 201, r.code, string(r.body))
		assert.Equal(t, "processing", decodeObj(t, r.body)["status"])
	})
	t.Run("read-only key cannot write", func(t *testing.T) {
		r := oauthDo(t, s, "POST", path, nil, oauthOpt{key: DefaultReadOnlyConsumerKey, secret: DefaultReadOnlyConsumerSecret}, []byte(`{}`))
		assert.Equal(t, `{"code":"woocommerce_rest_authentication_error","message":"The API key provided does not have write permissions.","data":{"status":401}}`, string(r.body))
	})
}

func TestAuthOverHTTPS(t *testing.T) {
	s := startStore(t, Options{TLS: true, Keys: []Key{
		{ConsumerKey: "ck_rw", ConsumerSecret: "cs_rw", Permissions: PermReadWrite},
		{ConsumerKey: "ck_w", ConsumerSecret: "cs_w", Permissions: PermWrite},
	}})
	require.True(t, strings.HasPrefix(s.URL(), "https://"))
	path := "/wp-json/wc/v3/products"
	assert.Equal(t, 200, doReq(t, s, "GET", path, nil, basic("ck_rw", "cs_rw")).code)
	assert.Equal(t, 200, doReq(t, s, "GET", path+"?consumer_key=ck_rw&consumer_secret=cs_rw", nil, nil).code)
	// query-string keys win over the Basic header
	r := doReq(t, s, "GET", path+"?consumer_key=ck_rw&consumer_secret=bad", nil, basic("ck_rw", "cs_rw"))
	assert.Equal(t, `{"code":"woocommerce_rest_authentication_error","message":"Consumer secret is invalid.","data":{"status":401}}`, string(r.body))
	// OAuth works over HTTPS too (https base URL)
	r = oauthDo(t, s, "GET", path, nil, oauthOpt{key: "ck_rw", secret: "cs_rw"}, nil)
	assert.Equal(t, 200, r.code, string(r.body))
	// write-only key cannot read
	r = doReq(t, s, "GET", path, nil, basic("ck_w", "cs_w"))
	assert.Equal(t, `{"code":"woocommerce_rest_authentication_error","message":"The API key provided does not have read permissions.","data":{"status":401}}`, string(r.body))
	// default keys are not configured here
	r = doReq(t, s, "GET", path, nil, basic(DefaultConsumerKey, DefaultConsumerSecret))
	assert.Equal(t, bodyCantView, string(r.body))
	// unauthenticated item routes: permission callbacks
	r = doReq(t, s, "POST", path, []byte(`{"name":"x"}`), nil)
	assert.Equal(t, `{"code":"woocommerce_rest_cannot_create","message":"Sorry, you are not allowed to create resources.","data":{"status":401}}`, string(r.body))
}

func TestPHPQueryParsingAndBaseString(t *testing.T) {
	a := parsePHPQuery("status[]=processing&status[]=completed&a.b=1&x[k]=v&plain=1&plain=2&sp=a+b")
	assert.Equal(t, []string{"status", "a_b", "x", "plain", "sp"}, a.keys)
	assert.Equal(t, []string{"processing", "completed"}, a.vals["status"].list())
	assert.Equal(t, "2", a.str("plain"))
	assert.Equal(t, "a b", a.str("sp"))
	// WooCommerce signs array params as key%5B0%5D after PHP parsing
	base := oauthBaseString("get", "http://h/wp-json/wc/v3/orders", parsePHPQuery("status[]=any&b=2&oauth_signature=zzz"))
	assert.Equal(t, "GET&http%3A%2F%2Fh%2Fwp-json%2Fwc%2Fv3%2Forders&b%3D2%26status%255B0%255D%3Dany", base)
}
