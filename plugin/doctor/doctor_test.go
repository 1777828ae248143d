package doctor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/tests/wcsim"
)

// sim starts a simulated store with a few objects of each kind.
func sim(t *testing.T, o wcsim.Options) *wcsim.Store {
	t.Helper()
	o.Latency = wcsim.NoLatency
	s := wcsim.New(o)
	require.NoError(t, s.Start())
	t.Cleanup(s.Close)
	s.Seed(wcsim.Orders, 30)
	s.Seed(wcsim.Products, 3)
	s.Seed(wcsim.Customers, 5)
	return s
}

// target is a --store-url run against s with a key.
func target(s *wcsim.Store, key, secret string) *Target {
	return &Target{
		Client: wcclient.Config{StoreURL: s.URL(), ConsumerKey: key, ConsumerSecret: secret},
		Poll: &PollSettings{Resources: ResourcesFromNames(DefaultResources), Interval: time.Minute,
			ScanInterval: time.Hour, PageSize: 100, StartFrom: "beginning"},
	}
}

func rwTarget(s *wcsim.Store) *Target {
	return target(s, wcsim.DefaultConsumerKey, wcsim.DefaultConsumerSecret)
}

// run checks one target with the simulator's client (it trusts its TLS
// certificate) and returns the store's report, printed on failure.
func run(t *testing.T, s *wcsim.Store, tg *Target) *StoreReport {
	t.Helper()
	rep := Run(context.Background(), []*Target{tg}, Options{HTTPClient: s.Client(), Timeout: 10 * time.Second})
	require.Len(t, rep.Stores, 1)
	var b bytes.Buffer
	require.NoError(t, rep.WriteText(&b))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("report:\n%s", b.String())
		}
	})
	return rep.Stores[0]
}

// check returns the named check (the first when several share the name).
func check(t *testing.T, s *StoreReport, name string) Check {
	t.Helper()
	for _, c := range s.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q", name)
	return Check{}
}

func hasCheck(s *StoreReport, name string) bool {
	for _, c := range s.Checks {
		if c.Name == name {
			return true
		}
	}
	return false
}

func TestHealthyHTTPSStore(t *testing.T) {
	s := sim(t, wcsim.Options{TLS: true, UTCOffset: 2 * time.Hour})
	r := run(t, s, rwTarget(s))
	assert.Zero(t, r.count(Fail), "no check fails on a healthy store")
	assert.Zero(t, r.count(Warn))
	assert.Contains(t, check(t, r, checkReach).Found, "REST API at "+s.URL()+"/wp-json/ answers (HTTP 200")
	assert.Contains(t, check(t, r, checkTLS).Found, "certificate for 127.0.0.1 valid until")
	assert.Contains(t, check(t, r, checkTimezone).Found, "UTC+02:00")
	assert.Equal(t, "the WooCommerce REST API wc/v3 is there", check(t, r, checkNamespace).Found)
	assert.Equal(t, "basic works; query works; oauth1 works; using basic", check(t, r, checkAuth).Found)
	assert.Equal(t, OK, check(t, r, checkHTTPS).Status)
	assert.Equal(t, OK, check(t, r, checkAuthHeader).Status)
	assert.Contains(t, check(t, r, checkPermission).Found, "read_write")
	assert.Equal(t, "WordPress 7.1, WooCommerce 11.0.1, PHP 8.2.36", check(t, r, checkVersions).Found)
	assert.Equal(t, "orders 30, products 3, customers 5, coupons 0", check(t, r, checkObjects).Found)
	assert.Equal(t, "modified_after is honoured", check(t, r, "filter:orders").Found)
	assert.Equal(t, "not checked: no coupons yet", check(t, r, "filter:coupons").Found)
	assert.False(t, hasCheck(r, "filter:customers"), "customers are scanned, not filtered")
	assert.Contains(t, check(t, r, checkScanCost).Found, "customers: a pass over all of them reads 1 page of ids and dates")
	assert.Contains(t, check(t, r, checkBackfill).Found, "a backfill reads 38 objects in 3 requests")
	assert.Equal(t, "the store has no webhooks", check(t, r, checkWebhooks).Found)
	// Nothing was created by the permission probe.
	assert.Empty(t, s.Webhooks())
	assert.Equal(t, 1, s.Requests(http.MethodPost, "/wp-json/wc/v3/webhooks"), "one empty POST finds the write permission")
}

func TestHTMLPageInsteadOfTheAPI(t *testing.T) {
	s := sim(t, wcsim.Options{})
	s.InjectFault(wcsim.Fault{PathPrefix: "/wp-json/", Kind: wcsim.FaultHTML, Status: 503})
	r := run(t, s, rwTarget(s))
	c := check(t, r, checkReach)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "an HTML page")
	assert.Contains(t, c.Found, "(HTTP 503) instead of the REST API")
	assert.Contains(t, c.Fix, "maintenance mode")
	assert.False(t, hasCheck(r, checkAuth), "nothing else is tried when the API does not answer")
}

func TestUnknownKeyAndWrongSecret(t *testing.T) {
	s := sim(t, wcsim.Options{TLS: true})
	r := run(t, s, target(s, "ck_0000000000000000000000000000000000000000", "cs_0000000000000000000000000000000000000000"))
	c := check(t, r, checkAuth)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "basic fails (HTTP 401 woocommerce_rest_cannot_view")
	assert.Contains(t, c.Found, "oauth1 fails (HTTP 401 woocommerce_rest_authentication_error: Consumer key is invalid.)")
	assert.Contains(t, c.Found, "WooCommerce does not know this consumer key")
	assert.False(t, hasCheck(r, checkPermission))

	r = run(t, s, target(s, wcsim.DefaultConsumerKey, "cs_wrong0000000000000000000000000000000000"))
	c = check(t, r, checkAuth)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "the consumer key exists but the secret is wrong")
}

func TestReadOnlyKey(t *testing.T) {
	s := sim(t, wcsim.Options{TLS: true})
	tg := target(s, wcsim.DefaultReadOnlyConsumerKey, wcsim.DefaultReadOnlyConsumerSecret)
	r := run(t, s, tg)
	c := check(t, r, checkPermission)
	assert.Equal(t, OK, c.Status, "read is enough for polling")
	assert.Equal(t, "read: enough for polling and delete confirmation (registering webhooks needs read_write)", c.Found)

	// A config that registers its webhooks needs write.
	tg.Webhooks = &WebhookSettings{DeliveryURLs: []string{"https://hooks.example.com/webhooks/woocommerce"}, Topics: []string{"order.created"}, Register: true}
	r = run(t, s, tg)
	c = check(t, r, checkPermission)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "read only")
	assert.Contains(t, c.Fix, "Read/Write")
	assert.Empty(t, s.Webhooks())
}

func TestWriteOnlyKey(t *testing.T) {
	key := wcsim.Key{ConsumerKey: "ck_11111111111111111111111111111111111111aa", ConsumerSecret: "cs_22222222222222222222222222222222222222bb", Permissions: wcsim.PermWrite}
	s := sim(t, wcsim.Options{Keys: []wcsim.Key{key}})
	r := run(t, s, target(s, key.ConsumerKey, key.ConsumerSecret))
	assert.Contains(t, check(t, r, checkAuth).Found, "oauth1 works")
	c := check(t, r, checkPermission)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "write only")
	assert.False(t, hasCheck(r, checkObjects), "a key that cannot read cannot count")
}

func TestClockSkew(t *testing.T) {
	s := sim(t, wcsim.Options{ClockSkew: 20 * time.Minute})
	r := run(t, s, rwTarget(s))
	c := check(t, r, checkClock)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "the store's clock is 20m ahead of this machine's")
	assert.Contains(t, c.Found, "OAuth 1.0a requests are refused beyond 15 minutes")
	a := check(t, r, checkAuth)
	assert.Equal(t, Fail, a.Status)
	assert.Contains(t, a.Found, "Invalid timestamp")
	assert.Contains(t, a.Fix, "clocks")

	// A small skew is a warning, and OAuth still works.
	s2 := sim(t, wcsim.Options{ClockSkew: -3 * time.Minute})
	r = run(t, s2, rwTarget(s2))
	c = check(t, r, checkClock)
	assert.Equal(t, Warn, c.Status)
	assert.Contains(t, c.Found, "3m behind")
	assert.Equal(t, OK, check(t, r, checkAuth).Status)
}

func TestIgnoredFilter(t *testing.T) {
	s := sim(t, wcsim.Options{IgnoreModifiedAfter: true})
	r := run(t, s, rwTarget(s))
	c := check(t, r, "filter:orders")
	assert.Equal(t, Warn, c.Status)
	assert.Contains(t, c.Found, "the store ignores modified_after on orders: a bound a year ahead still lists 30 of them")
	assert.Contains(t, c.Fix, "page cache")
	assert.Equal(t, Warn, check(t, r, "filter:products").Status)
}

func TestBehindProxy(t *testing.T) {
	s := sim(t, wcsim.Options{TLS: true, BehindProxy: true})
	r := run(t, s, rwTarget(s))
	c := check(t, r, checkHTTPS)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "WordPress does not see HTTPS")
	assert.Contains(t, c.Found, "a signature for http:// works")
	assert.Contains(t, c.Fix, "X-Forwarded-Proto")
	assert.Contains(t, c.Fix, "auth: oauth1")
	a := check(t, r, checkAuth)
	assert.Equal(t, Fail, a.Status)
	assert.Contains(t, a.Found, "basic fails (HTTP 401 woocommerce_rest_cannot_view")
	assert.Contains(t, a.Found, "oauth1 fails (HTTP 401 woocommerce_rest_authentication_error: Invalid signature")
}

func TestStrippedAuthorizationHeader(t *testing.T) {
	s := sim(t, wcsim.Options{TLS: true, StripAuthorization: true})
	r := run(t, s, rwTarget(s))
	c := check(t, r, checkAuthHeader)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "the host strips the Authorization header")
	assert.Contains(t, c.Fix, "auth: query")
	assert.Equal(t, OK, check(t, r, checkHTTPS).Status, "query keys work, so WordPress sees HTTPS")
	a := check(t, r, checkAuth)
	assert.Equal(t, Fail, a.Status, "auto means basic on https, which fails here")
	assert.Contains(t, a.Found, "basic fails")
	assert.Contains(t, a.Found, "query works")
	assert.Equal(t, "set auth: query on the input (or the register block)", a.Fix)
	// The remaining checks run with the mode that works.
	assert.Contains(t, check(t, r, checkPermission).Found, "read_write")
}

func TestNoPrettyPermalinks(t *testing.T) {
	s := sim(t, wcsim.Options{NoPrettyPermalinks: true})
	r := run(t, s, rwTarget(s))
	c := check(t, r, checkPermalinks)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "?rest_route=/ reaches the REST API: the site uses plain permalinks")
	assert.Contains(t, c.Fix, "Settings → Permalinks")
}

func TestUntrustedCertificate(t *testing.T) {
	s := sim(t, wcsim.Options{TLS: true})
	rep := Run(context.Background(), []*Target{rwTarget(s)}, Options{Timeout: 5 * time.Second}) // the system roots do not know the simulator's CA
	c := check(t, rep.Stores[0], checkTLS)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "certificate problem")
	assert.Contains(t, c.Fix, "root_cas_file")
}

func TestNothingListens(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	tg := &Target{Client: wcclient.Config{StoreURL: addr, ConsumerKey: "ck_x", ConsumerSecret: "cs_x"}}
	rep := Run(context.Background(), []*Target{tg}, Options{Timeout: 5 * time.Second})
	c := check(t, rep.Stores[0], checkReach)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "cannot connect to 127.0.0.1:")
	assert.True(t, rep.Failed())
}

// A security plugin sending REST requests to the login page (a plain
// server: the simulator has no login page).
func TestRedirectToLoginPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/wp-json") {
			http.Redirect(w, r, "/wp-login.php?redirect_to=%2Fwp-json%2F", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Log In &#8211; Shop</title></head></html>")
	}))
	t.Cleanup(srv.Close)
	tg := &Target{Client: wcclient.Config{StoreURL: srv.URL, ConsumerKey: "ck_x", ConsumerSecret: "cs_x"}}
	rep := Run(context.Background(), []*Target{tg}, Options{Timeout: 5 * time.Second})
	c := check(t, rep.Stores[0], checkReach)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "/wp-json/ redirects to a login page: "+srv.URL+"/wp-login.php?redirect_to=REDACTED")
}

func TestWebhooks(t *testing.T) {
	ours := "https://hooks.example.com/webhooks/woocommerce" // never reached: the simulator's ping fails, the webhook stays active
	s := sim(t, wcsim.Options{})
	created, err := s.AddWebhook("order.created", ours, "secret-one")
	require.NoError(t, err)
	updated, err := s.AddWebhook("order.updated", ours, "secret-one")
	require.NoError(t, err)
	require.NoError(t, s.SetWebhookStatus(updated, "disabled"))
	refused, err := s.AddWebhook("product.created", "https://hooks.example.com:3000/in", "secret-two")
	require.NoError(t, err)
	other, err := s.AddWebhook("coupon.created", "https://other.example.com/hook", "secret-three")
	require.NoError(t, err)
	require.NoError(t, s.SetWebhookStatus(other, "disabled"))

	tg := rwTarget(s)
	tg.Webhooks = &WebhookSettings{DeliveryURLs: []string{ours}, Topics: []string{"order.created", "order.updated", "order.deleted"}}
	r := run(t, s, tg)
	assert.Equal(t, "the store has 4 webhook(s)", check(t, r, checkWebhooks).Found)
	c := check(t, r, fmt.Sprintf("webhook #%d", created))
	assert.Equal(t, OK, c.Status)
	assert.Equal(t, "active order.created → "+ours+" (this config's)", c.Found)
	c = check(t, r, fmt.Sprintf("webhook #%d", updated))
	assert.Equal(t, Fail, c.Status, "our disabled webhook fails")
	assert.Contains(t, c.Found, "disabled by WooCommerce after repeated failed deliveries")
	assert.Contains(t, c.Fix, "Active")
	c = check(t, r, fmt.Sprintf("webhook #%d", refused))
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "WordPress refuses to deliver to port 3000")
	c = check(t, r, fmt.Sprintf("webhook #%d", other))
	assert.Equal(t, Warn, c.Status, "someone else's disabled webhook is a warning")
	assert.Equal(t, "2 webhook(s) deliver to "+ours, check(t, r, checkOurWebhooks).Found)
	c = check(t, r, checkTopics)
	assert.Equal(t, Fail, c.Status)
	assert.Equal(t, "no active webhook for: order.updated, order.deleted", c.Found)
	assert.Contains(t, c.Fix, "register block")
	assert.Equal(t, "https://hooks.example.com/webhooks/woocommerce", check(t, r, checkDelivery).Found)

	// With a register block missing topics are created at start: a warning.
	tg.Webhooks.Register = true
	r = run(t, s, tg)
	assert.Equal(t, Warn, check(t, r, checkTopics).Status)

	// A delivery URL on a port WordPress refuses fails before any webhook exists.
	tg.Webhooks = &WebhookSettings{DeliveryURLs: []string{"https://hooks.example.com:9443/webhooks/woocommerce"}, Topics: []string{"order.created"}, Register: true}
	r = run(t, s, tg)
	c = check(t, r, checkDelivery)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "port 9443: WordPress delivers webhooks to ports 80, 443 and 8080 only")
}

// No key or secret appears in the report, in either format, whatever goes
// wrong: the checks quote errors, URLs and headers.
func TestSecretsNeverInTheReport(t *testing.T) {
	type scenario struct {
		name string
		opts wcsim.Options
		key  wcsim.Key
	}
	rw := wcsim.Key{ConsumerKey: wcsim.DefaultConsumerKey, ConsumerSecret: wcsim.DefaultConsumerSecret}
	ro := wcsim.Key{ConsumerKey: wcsim.DefaultReadOnlyConsumerKey, ConsumerSecret: wcsim.DefaultReadOnlyConsumerSecret}
	bad := wcsim.Key{ConsumerKey: wcsim.DefaultConsumerKey, ConsumerSecret: "cs_not-the-right-secret-for-this-key-000"}
	for _, sc := range []scenario{
		{"healthy https", wcsim.Options{TLS: true}, rw},
		{"read-only http", wcsim.Options{}, ro},
		{"wrong secret", wcsim.Options{TLS: true}, bad},
		{"behind proxy", wcsim.Options{TLS: true, BehindProxy: true}, rw},
		{"stripped header", wcsim.Options{TLS: true, StripAuthorization: true}, rw},
		{"skewed clock", wcsim.Options{ClockSkew: time.Hour}, rw},
		{"ignored filter", wcsim.Options{IgnoreModifiedAfter: true}, rw},
	} {
		t.Run(sc.name, func(t *testing.T) {
			s := sim(t, sc.opts)
			_, err := s.AddWebhook("order.created", "https://hooks.example.com/in?token="+sc.key.ConsumerSecret, "whsec")
			require.NoError(t, err)
			tg := target(s, sc.key.ConsumerKey, sc.key.ConsumerSecret)
			u, err := url.Parse(tg.Client.StoreURL)
			require.NoError(t, err)
			u.User = url.UserPassword("admin", "hunter2-url-password")
			tg.Client.StoreURL = u.String()
			tg.Webhooks = &WebhookSettings{DeliveryURLs: []string{"https://hooks.example.com/in"}, Topics: []string{"order.created"}, Register: true}
			rep := Run(context.Background(), []*Target{tg}, Options{HTTPClient: s.Client(), Timeout: 10 * time.Second})
			var text, js bytes.Buffer
			require.NoError(t, rep.WriteText(&text))
			require.NoError(t, rep.WriteJSON(&js))
			require.Greater(t, len(rep.Stores[0].Checks), 5, text.String())
			for _, out := range []string{text.String(), js.String()} {
				assert.NotContains(t, out, sc.key.ConsumerKey)
				assert.NotContains(t, out, sc.key.ConsumerSecret)
				assert.NotContains(t, out, strings.TrimPrefix(sc.key.ConsumerSecret, "cs_"))
				assert.NotContains(t, out, strings.TrimPrefix(sc.key.ConsumerKey, "ck_"))
				assert.NotContains(t, out, "hunter2-url-password", "a password in the store URL")
				assert.NotContains(t, out, "whsec", "the webhook secret")
			}
		})
	}
}

// A store whose /wp-json/ redirects to another host (www., a new domain):
// named as such, with the URL to use.
func TestRedirectToAnotherHost(t *testing.T) {
	real := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"name":"Shop","home":"http://localhost","gmt_offset":"0","namespaces":["wc/v3"]}`)
	}))
	t.Cleanup(real.Close)
	target := strings.Replace(real.URL, "127.0.0.1", "localhost", 1)
	old := httptest.NewServer(http.RedirectHandler(target+"/wp-json/", http.StatusMovedPermanently))
	t.Cleanup(old.Close)
	tg := &Target{Client: wcclient.Config{StoreURL: old.URL}}
	rep := Run(context.Background(), []*Target{tg}, Options{Timeout: 5 * time.Second})
	c := check(t, rep.Stores[0], checkReach)
	assert.Equal(t, Warn, c.Status)
	assert.Equal(t, "/wp-json/ redirects to another host: "+target+"/wp-json/", c.Found)
	assert.Equal(t, "set store_url to "+target+": redirects drop the Authorization header and change the URL OAuth 1.0a signs", c.Fix)
}

// auth: basic on a plain http store is never read by WooCommerce: the
// doctor says so and names the mode that works.
func TestBasicConfiguredOverPlainHTTP(t *testing.T) {
	s := sim(t, wcsim.Options{})
	tg := rwTarget(s)
	tg.Client.Auth = wcclient.AuthBasic
	r := run(t, s, tg)
	c := check(t, r, checkAuth)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "this config uses basic, which WooCommerce ignores over plain http")
	assert.Contains(t, c.Fix, "set auth: oauth1")
	assert.Contains(t, check(t, r, checkPermission).Found, "read_write", "the checks go on with the mode that works")
}

// replayCapture answers with a raw HTTP response captured from the real
// store (tests/fixtures/woocommerce/rest/...): status, headers and body.
func replayCapture(t *testing.T, w http.ResponseWriter, name string) {
	t.Helper()
	raw, err := os.ReadFile(repoFile("tests/fixtures/woocommerce/rest/" + name))
	require.NoError(t, err)
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		head, body, ok = bytes.Cut(raw, []byte("\n\n"))
	}
	require.True(t, ok, name)
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	var status int
	_, err = fmt.Sscanf(lines[0], "HTTP/1.1 %d", &status)
	require.NoError(t, err, lines[0])
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ":")
		if k == "Content-Length" || k == "Connection" {
			continue
		}
		w.Header().Add(k, strings.TrimSpace(v))
	}
	w.WriteHeader(status)
	w.Write(body)
}

// The permission probe read against the real store's answers: a read-only
// key's write gets the captured 401 "does not have write permissions", a key
// that may write gets a 400 validation error (the captured
// rest_invalid_param); the first means read, the second read_write.
func TestPermissionFromCaptures(t *testing.T) {
	for _, tc := range []struct {
		capture string
		want    string
	}{
		{"errors/readonly-key-write.https-basic.http", "read: enough for polling"},
		{"errors/invalid-param.https-basic.http", "read_write:"},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			posts := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/wp-json/":
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprint(w, `{"name":"Shop","home":"`+"http://"+r.Host+`","gmt_offset":0,"namespaces":["wc/v3"]}`)
				case r.Method == http.MethodPost && r.URL.Path == "/wp-json/wc/v3/webhooks":
					posts++
					body, _ := io.ReadAll(r.Body)
					assert.Equal(t, "{}", string(body), "the probe sends an empty object")
					replayCapture(t, w, tc.capture)
				case r.Method == http.MethodGet && r.URL.Path == "/wp-json/wc/v3/orders" && r.URL.Query().Get("per_page") == "1" && r.URL.Query().Get("modified_after") == "":
					replayCapture(t, w, "orders.list.http-oauth1.http")
				default:
					http.Error(w, "not in this test", http.StatusTeapot)
				}
			}))
			t.Cleanup(srv.Close)
			tg := &Target{Client: wcclient.Config{StoreURL: srv.URL, ConsumerKey: "ck_x", ConsumerSecret: "cs_x"},
				Poll: &PollSettings{Resources: ResourcesFromNames([]string{"orders"})}}
			rep := Run(context.Background(), []*Target{tg}, Options{Timeout: 5 * time.Second})
			c := check(t, rep.Stores[0], checkPermission)
			assert.Contains(t, c.Found, tc.want)
			assert.Equal(t, 1, posts)
		})
	}
}

// A webhook the simulator disabled itself, as WooCommerce does after
// repeated failed deliveries, is a fail naming the cause and the fix.
func TestWebhookDisabledByWooCommerce(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(failing.Close)
	s := sim(t, wcsim.Options{})
	id, err := s.AddWebhook("order.updated", failing.URL+"/webhooks/woocommerce", "secret")
	require.NoError(t, err)
	order, _ := s.Seed(wcsim.Orders, 1)
	for i := 0; i < 10; i++ {
		require.NoError(t, s.Update(wcsim.Orders, order, map[string]any{"customer_note": fmt.Sprint("note ", i)}))
	}
	h, ok := s.Webhook(id)
	require.True(t, ok)
	require.Equal(t, "disabled", h.Status, "the simulator disables a webhook after repeated failed deliveries")

	r := run(t, s, rwTarget(s))
	c := check(t, r, fmt.Sprintf("webhook #%d", id))
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "disabled order.updated → "+failing.URL+"/webhooks/woocommerce: ")
	assert.Contains(t, c.Found, "disabled by WooCommerce after repeated failed deliveries")
	assert.Contains(t, c.Found, "WordPress refuses to deliver to port", "its test port is one WordPress refuses too")
	assert.Contains(t, c.Fix, "set the webhook Active")
}

// One transient answer (a 429, a 503, a body cut short) is asked again: it
// is not reported as plain permalinks, wrong auth or a wrong resource path.
// A store that keeps answering 503 is reported as unavailable, not as a
// configuration problem.
func TestTransientAnswersAreNotMisdiagnosed(t *testing.T) {
	for _, f := range []wcsim.Fault{
		{PathPrefix: "/wp-json/", Count: 1, Status: http.StatusTooManyRequests, RetryAfter: "1"},
		{PathPrefix: "/wp-json/", Count: 1, Status: http.StatusServiceUnavailable},
		{PathPrefix: "/wp-json/", Count: 1, Kind: wcsim.FaultTruncated},
		{PathPrefix: "/wp-json/wc/v3/orders", Count: 1, Status: http.StatusTooManyRequests, RetryAfter: "0"},
		{PathPrefix: "/wp-json/wc/v3/orders", Count: 1, Status: http.StatusBadGateway, Kind: wcsim.FaultHTML},
		{PathPrefix: "/wp-json/wc/v3/products", Count: 1, Kind: wcsim.FaultTruncated},
	} {
		s := sim(t, wcsim.Options{TLS: true})
		s.InjectFault(f)
		r := run(t, s, rwTarget(s))
		for _, name := range []string{checkReach, checkAuth, checkAuthHeader, checkObjects} {
			c := check(t, r, name)
			assert.Equal(t, OK, c.Status, "%+v: %s: %s", f, name, c.Found)
		}
		assert.False(t, hasCheck(r, checkPermalinks), "%+v", f)
	}

	s := sim(t, wcsim.Options{TLS: true})
	s.InjectFault(wcsim.Fault{PathPrefix: "/wp-json/", Status: http.StatusServiceUnavailable})
	r := run(t, s, rwTarget(s))
	c := check(t, r, checkReach)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Found, "HTTP 503")
	assert.Contains(t, c.Found, "rate limiting, overloaded or down")
	assert.False(t, hasCheck(r, checkPermalinks))
	assert.Equal(t, 2, s.Requests(http.MethodGet, "/wp-json/"), "asked once more, then reported")
}
