package wcsim

import (
	cryptotls "crypto/tls"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSignatureMatchesCapturedDeliveries(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "webhooks", "*.http"))
	require.NoError(t, err)
	checked := 0
	for _, f := range files {
		c := loadCapture(t, filepath.Join("webhooks", filepath.Base(f)))
		want := c.header.Get("X-WC-Webhook-Signature")
		if want == "" {
			continue // pings are unsigned
		}
		assert.Equal(t, want, Signature("wcreal-webhook-secret", c.body), filepath.Base(f))
		assert.NotEqual(t, want, Signature("other-secret", c.body))
		checked++
	}
	require.GreaterOrEqual(t, checked, 10)
}

// The encoder must reproduce PHP's json_encode bytes: re-encoding every
// captured body gives the captured bytes back.
func TestPHPJSONEncoderReproducesCapturedBodies(t *testing.T) {
	var files []string
	for _, dir := range []string{"rest", "rest/errors", "webhooks"} {
		m, err := filepath.Glob(filepath.Join(fixtureDir, dir, "*.http"))
		require.NoError(t, err)
		for _, f := range m {
			files = append(files, filepath.Join(dir, filepath.Base(f)))
		}
	}
	n := 0
	for _, f := range files {
		c := loadCapture(t, f)
		if len(c.body) == 0 || (c.body[0] != '{' && c.body[0] != '[') {
			continue
		}
		got, err := phpJSON(c.body)
		require.NoError(t, err, f)
		assert.Equal(t, string(c.body), string(got), f)
		n++
	}
	require.Greater(t, n, 25)
	// Spot-check the escapes the captures rely on.
	assert.Equal(t, `"http:\/\/x\/y"`, string(appendStr(nil, "http://x/y")))
	assert.Equal(t, `"Zo\u00eb \ud83d\ude00 <b>&amp;'"`, string(appendStr(nil, "Zoë 😀 <b>&amp;'")))
}

func TestErrorBodiesMatchCaptures(t *testing.T) {
	httpsStore := startStore(t, Options{TLS: true})
	httpStore := startStore(t, Options{})
	cases := []struct {
		fixture string
		do      func() resp
	}{
		{"bad-consumer-key.https-basic.http", func() resp {
			return doReq(t, httpsStore, "GET", "/wp-json/wc/v3/orders", nil, basic("ck_nope", DefaultConsumerSecret))
		}},
		{"bad-consumer-secret.https-basic.http", func() resp {
			return doReq(t, httpsStore, "GET", "/wp-json/wc/v3/orders", nil, basic(DefaultConsumerKey, "cs_wrong"))
		}},
		{"no-auth.https.http", func() resp { return doReq(t, httpsStore, "GET", "/wp-json/wc/v3/orders", nil, nil) }},
		{"basic-auth-over-plain-http-ignored.http", func() resp {
			return doReq(t, httpStore, "GET", "/wp-json/wc/v3/orders", nil, basic(DefaultConsumerKey, DefaultConsumerSecret))
		}},
		{"querystring-keys-over-plain-http-ignored.http", func() resp {
			return doReq(t, httpStore, "GET", "/wp-json/wc/v3/orders?consumer_key="+DefaultConsumerKey+"&consumer_secret="+DefaultConsumerSecret, nil, nil)
		}},
		{"oauth1-bad-consumer-key.http", func() resp {
			return oauthDo(t, httpStore, "GET", "/wp-json/wc/v3/orders", nil, oauthOpt{key: "ck_unknown", secret: "cs_x"}, nil)
		}},
		{"oauth1-bad-signature.http", func() resp {
			return oauthDo(t, httpStore, "GET", "/wp-json/wc/v3/orders", nil, oauthOpt{key: DefaultConsumerKey, secret: "cs_wrong"}, nil)
		}},
		{"oauth1-replayed-nonce.http", func() resp {
			o := oauthOpt{nonce: "replayed-nonce-1"}
			first := oauthDo(t, httpStore, "GET", "/wp-json/wc/v3/orders", nil, o, nil)
			require.Equal(t, 200, first.code, string(first.body))
			return oauthDo(t, httpStore, "GET", "/wp-json/wc/v3/orders", nil, o, nil)
		}},
		{"order-not-found.https-basic.http", func() resp { return basicDo(t, httpsStore, "GET", "/wp-json/wc/v3/orders/999999", nil) }},
		{"readonly-key-write.https-basic.http", func() resp {
			return doReq(t, httpsStore, "POST", "/wp-json/wc/v3/orders", []byte(`{"status":"processing"}`), basic(DefaultReadOnlyConsumerKey, DefaultReadOnlyConsumerSecret))
		}},
		{"invalid-param.https-basic.http", func() resp {
			return basicDo(t, httpsStore, "POST", "/wp-json/wc/v3/orders", []byte(`{"status":"bogus"}`))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			want := loadCapture(t, filepath.Join("rest", "errors", tc.fixture))
			got := tc.do()
			assert.Equal(t, want.status(t), got.code)
			assert.Equal(t, string(want.body), string(got.body))
			assert.Equal(t, headerNames(want.header, "Connection"), headerNames(got.header))
			assert.Equal(t, "application/json; charset=UTF-8", got.header.Get("Content-Type"))
			if a := want.header.Get("Allow"); a != "" {
				assert.Equal(t, a, got.header.Get("Allow"))
			}
		})
	}
}

var hostRe = regexp.MustCompile(`https?://127\.0\.0\.1:\d+`)

func TestListResponsesMatchCapturedShape(t *testing.T) {
	for _, tls := range []bool{true, false} {
		s := startStore(t, Options{TLS: tls})
		s.SetNow(t0)
		cust, err := s.Create(Customers, map[string]any{"email": "alice@example.test", "first_name": "Alice", "last_name": "Anders", "username": "alice"})
		require.NoError(t, err)
		_, err = s.Create(Customers, map[string]any{"email": "bob@example.test", "first_name": "Bob", "last_name": "Brown", "username": "bob"})
		require.NoError(t, err)
		for i := 0; i < 4; i++ {
			_, err := s.Create(Products, map[string]any{"name": "Widget", "regular_price": "24.50", "sku": "W"})
			require.NoError(t, err)
		}
		for i := 0; i < 2; i++ {
			_, err := s.Create(Coupons, map[string]any{"code": "c" + string(rune('a'+i)), "amount": "5"})
			require.NoError(t, err)
		}
		for i := 0; i < 5; i++ {
			_, err := s.Create(Orders, map[string]any{"customer_id": cust, "status": "processing"})
			require.NoError(t, err)
		}
		for i := 0; i < 3; i++ {
			_, err := s.AddWebhook("order.updated", "http://127.0.0.1:1/none", "x")
			require.NoError(t, err)
		}
		for _, res := range []string{"orders", "products", "customers", "coupons", "webhooks"} {
			mode := "https-basic"
			if !tls {
				mode = "http-oauth1"
			}
			want := loadCapture(t, filepath.Join("rest", res+".list."+mode+".http"))
			var got resp
			var sentQuery string
			if tls {
				got = basicDo(t, s, "GET", "/wp-json/wc/v3/"+res+"?per_page=2", nil)
				sentQuery = "per_page=2"
			} else {
				q := oauthQuery("GET", s.URL()+"/wp-json/wc/v3/"+res, []kv{{"per_page", "2"}},
					oauthOpt{key: DefaultConsumerKey, secret: DefaultConsumerSecret, ts: s.Now().Unix()})
				got = doReq(t, s, "GET", "/wp-json/wc/v3/"+res+"?"+q, nil, nil)
				sentQuery = q
			}
			require.Equal(t, 200, got.code, string(got.body))
			assert.Equal(t, headerNames(want.header), headerNames(got.header), res)
			for _, h := range []string{"Allow", "Content-Type", "Cache-Control", "Expires", "Access-Control-Expose-Headers", "Access-Control-Allow-Headers", "X-Robots-Tag"} {
				assert.Equal(t, want.header.Get(h), got.header.Get(h), res+" "+h)
			}
			assert.Regexp(t, `^\d+$`, got.header.Get("X-WP-Total"))
			rec := httptest.NewRecorder()
			hreq := httptest.NewRequest("GET", "/wp-json/wc/v3/"+res+"?per_page=2", nil)
			if tls {
				hreq.TLS = &cryptotls.ConnectionState{}
				hreq.SetBasicAuth(DefaultConsumerKey, DefaultConsumerSecret)
			} else {
				hreq = httptest.NewRequest("GET", "/wp-json/wc/v3/"+res+"?"+oauthQuery("GET", s.URL()+"/wp-json/wc/v3/"+res, nil, oauthOpt{key: DefaultConsumerKey, secret: DefaultConsumerSecret, ts: s.Now().Unix()}), nil)
			}
			s.Handler().ServeHTTP(rec, hreq)
			require.Equal(t, 200, rec.Code, rec.Body.String())
			for _, name := range want.names {
				if name != "Date" && name != "Content-Length" && name != "Link" {
					assert.Contains(t, rec.Header(), name, "header %s spelled as captured", name)
				}
			}
			assert.Regexp(t, `^\d+$`, got.header.Get("X-WP-TotalPages"))
			// Same Link construction as the captured store: the request's own
			// query (oauth_* included), orders' defaults, then page.
			wantLink := hostRe.ReplaceAllString(want.header.Get("Link"), s.URL())
			if strings.Contains(wantLink, `rel="next"`) {
				extra := ""
				if res == "orders" {
					extra = "&status%5B0%5D=any&dp=2&context=view"
				}
				expect := "<" + s.URL() + "/wp-json/wc/v3/" + res + "?" + phpStyle(sentQuery) + extra + "&page=2>; rel=\"next\""
				assert.Equal(t, expect, got.header.Get("Link"), res)
				// and the captured link has that very structure
				assert.Regexp(t, `^<`+regexp.QuoteMeta(s.URL()+"/wp-json/wc/v3/"+res+"?per_page=2")+`.*&page=2>; rel="next"$`, wantLink)
			}
			// Field order of the objects equals the captured order.
			assert.Equal(t, topKeys(t, firstElem(t, want.body)), topKeys(t, firstElem(t, got.body)), res)
		}
	}
}

// phpStyle re-encodes a query the way WordPress' add_query_arg does
// (urlencode: space as +, ~ encoded); for our signer's output only the
// signature's %2B/%2F/%3D differ in spelling, which PHP keeps upper-case.
func phpStyle(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, v, _ := strings.Cut(p, "=")
		parts[i] = k + "=" + phpURLEncode(rawurldecode(v))
	}
	return strings.Join(parts, "&")
}

func TestSingleObjectResponsesMatchCaptures(t *testing.T) {
	s := startStore(t, Options{})
	s.SetNow(t0)
	create := loadCapture(t, "rest/order.create.http-oauth1.http")
	pid, err := s.Create(Products, map[string]any{"name": "Red Widget", "sku": "WID-RED", "regular_price": "24.50"})
	require.NoError(t, err)
	cid, err := s.Create(Customers, map[string]any{"email": "alice@example.test"})
	require.NoError(t, err)
	body := []byte(`{"customer_id":` + itoa(cid) + `,"payment_method":"bacs","payment_method_title":"Direct bank transfer","billing":{"first_name":"Alice","last_name":"Anders","country":"US","email":"alice@example.test"},"line_items":[{"product_id":` + itoa(pid) + `,"quantity":3}]}`)
	got := oauthDo(t, s, "POST", "/wp-json/wc/v3/orders", nil, oauthOpt{}, body)
	require.Equal(t, 201, got.code, string(got.body))
	assert.Equal(t, headerNames(create.header), headerNames(got.header))
	assert.Equal(t, topKeys(t, create.body), topKeys(t, got.body))
	o := decodeObj(t, got.body)
	assert.Equal(t, s.URL()+"/wp-json/wc/v3/orders/"+itoa(int64(o["id"].(float64))), got.header.Get("Location"))
	assert.Equal(t, "73.50", o["total"])
	assert.Equal(t, "pending", o["status"])
	assert.Equal(t, true, o["needs_payment"])
	li := o["line_items"].([]any)[0].(map[string]any)
	assert.Equal(t, 24.5, li["price"])
	assert.Equal(t, "Red Widget", li["name"])
	// The whole object equals the capture once ids, keys, hosts are aligned.
	norm := func(b []byte, id, prod, cust, item, key string) string {
		x := regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(string(b), "H")
		x = regexp.MustCompile(`wc_order_[A-Za-z0-9]{13}`).ReplaceAllString(x, "KEY")
		x = regexp.MustCompile(`"date_(created|modified)(_gmt)?":"[^"]*"`).ReplaceAllString(x, `"date_$1$2":"D"`)
		r := strings.NewReplacer(`"id":`+id+`,`, `"id":ID,`, `orders\/`+id, `orders\/ID`, `"number":"`+id+`"`, `"number":"ID"`,
			`order-pay\/`+id, `order-pay\/ID`, `"product_id":`+prod, `"product_id":P`, `"customer_id":`+cust, `"customer_id":C`,
			`customers\/`+cust, `customers\/C`, `"id":`+item+`,"name"`, `"id":I,"name"`)
		return r.Replace(x)
	}
	gotItem := itoa(int64(li["id"].(float64)))
	assert.Equal(t, norm(create.body, "24", "11", "2", "13", ""), norm(got.body, itoa(int64(o["id"].(float64))), itoa(pid), itoa(cid), gotItem, ""))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
