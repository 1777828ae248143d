// Package doctor is `wooevents doctor`: it checks a WooCommerce store before
// a pipeline is written for it, and whenever something goes wrong —
// reachability and TLS, versions, which authentication works and why the
// others do not, the key's permission, the clocks, whether date filters are
// honoured, what polling will cost, and the store's webhooks. Every check
// gives one line: ok, warn or fail, what it found and, for warn and fail,
// what to do. Nothing is written to the store, and no secret is printed.
//
// REST calls go through plugin/wcclient (its authentication modes, typed
// errors and URL redaction); only the unauthenticated probes of the REST
// index are plain HTTP requests.
package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/wooevents/wooevents/internal/retry"
	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// Names of the checks, as printed.
const (
	checkConfig      = "config"
	checkReach       = "reachable"
	checkTLS         = "tls"
	checkPermalinks  = "permalinks"
	checkHome        = "home-url"
	checkNamespace   = "wc/v3"
	checkVersions    = "versions"
	checkTimezone    = "timezone"
	checkClock       = "clock"
	checkAuth        = "auth"
	checkHTTPS       = "https-seen"
	checkAuthHeader  = "auth-header"
	checkPermission  = "permission"
	checkObjects     = "objects"
	checkFilter      = "filter"
	checkPageTime    = "page-time"
	checkScanCost    = "scan-cost"
	checkBackfill    = "backfill"
	checkWebhooks    = "webhooks"
	checkWebhook     = "webhook"
	checkOurWebhooks = "our-webhooks"
	checkTopics      = "topics"
	checkDelivery    = "delivery-url"
)

// oauthWindow is WooCommerce's OAuth 1.0a timestamp tolerance.
const oauthWindow = 15 * time.Minute

// Options configure a run.
type Options struct {
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
	// HTTPClient, when set, sends every request (tests: a client that trusts
	// the simulator's certificate); otherwise one is built per store from
	// its tls settings.
	HTTPClient *http.Client
	// TLS, when set, replaces the tls settings of every store (the
	// --tls-ca-file and --tls-skip-verify flags).
	TLS *tls.Config
	// Now is this machine's clock (default time.Now).
	Now func() time.Time
}

// Run checks every target and returns the report, secrets redacted.
func Run(ctx context.Context, targets []*Target, opts Options) *Report {
	if opts.Timeout <= 0 {
		opts.Timeout = wcclient.DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	rep := &Report{}
	var red Redactor
	for _, t := range targets {
		red.Add(t.Client.ConsumerKey, t.Client.ConsumerSecret, urlPassword(t.Client.StoreURL))
		d := &diag{t: t, opts: opts, s: &StoreReport{Store: t.Client.StoreURL, From: append([]string(nil), t.From...)}}
		d.run(ctx)
		rep.Stores = append(rep.Stores, d.s)
	}
	red.report(rep)
	rep.count()
	return rep
}

// urlPassword is the password of a store URL with user information
// (https://user:password@host), "" when it has none.
func urlPassword(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		p, _ := u.User.Password()
		return p
	}
	// Unparsable: take what lies between the scheme's "//", the first ':'
	// after it and the '@'.
	if i := strings.Index(raw, "//"); i >= 0 {
		rest := raw[i+2:]
		if at := strings.Index(rest, "@"); at > 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return rest[c+1 : at]
			}
		}
	}
	return ""
}

// diag checks one store.
type diag struct {
	t    *Target
	opts Options
	s    *StoreReport
	base *url.URL     // the store URL, normalised
	hc   *http.Client // for probes and the REST client
	idx  *siteIndex   // the REST index, when it answered

	// auth results
	client   *wcclient.Client // the client the remaining checks use
	canRead  bool
	canWrite bool
}

func (d *diag) run(ctx context.Context) {
	t := d.t
	if t.Client.StoreURL == "" {
		d.s.Store = "(no store URL)"
		d.s.warn(checkConfig, "this webhook input names no store_url, stores or register block: it accepts whichever store signs with its secret, so there is no store to check",
			"run wooevents doctor --store-url <the store's URL> with the store's REST keys")
		return
	}
	if t.ConfigProblem != "" {
		d.s.fail(checkConfig, "the store's connection settings do not parse: "+t.ConfigProblem,
			"fix the input's store_url / consumer_key / consumer_secret / auth (keys usually come from WOOEVENTS_CONSUMER_KEY and WOOEVENTS_CONSUMER_SECRET)")
	}
	u, err := url.Parse(t.Client.StoreURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.s.fail(checkConfig, fmt.Sprintf("store URL %q is not an http:// or https:// URL", t.Client.StoreURL), "set store_url to the WordPress home URL, e.g. https://shop.example.com")
		return
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	d.base = u
	d.s.Store = u.String()
	d.hc = d.httpClient()

	if !d.reach(ctx) {
		return
	}
	d.indexChecks()
	if t.Client.ConsumerKey == "" || t.Client.ConsumerSecret == "" {
		fix := "pass the store's REST keys: --consumer-key/--consumer-secret or WOOEVENTS_CONSUMER_KEY/WOOEVENTS_CONSUMER_SECRET (WooCommerce → Settings → Advanced → REST API)"
		if t.Webhooks != nil && t.Poll == nil && len(t.From) > 0 {
			fix = "add a register block with the store's REST keys to the webhook input (it also confirms deletes and keeps the webhooks registered), or run wooevents doctor --store-url with the keys"
		}
		d.s.warn(checkAuth, "no REST keys: authentication, permission, filters, costs and webhooks not checked", fix)
		return
	}
	if !d.auth(ctx) {
		return
	}
	d.permission(ctx)
	d.versions(ctx)
	if d.canRead {
		d.resources(ctx)
		d.webhooks(ctx)
	}
}

// httpClient is the client of the store's probes and REST calls.
func (d *diag) httpClient() *http.Client {
	if d.opts.HTTPClient != nil {
		return d.opts.HTTPClient
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	switch {
	case d.opts.TLS != nil:
		tr.TLSClientConfig = d.opts.TLS.Clone()
	case d.t.Client.TLS != nil:
		tr.TLSClientConfig = d.t.Client.TLS.Clone()
	}
	return &http.Client{Transport: tr}
}

// ---------------------------------------------------------------------------
// Reachability, TLS, permalinks

// reach probes GET /wp-json/ and reports whether the store's REST API
// answers; false ends the run (nothing else can work).
func (d *diag) reach(ctx context.Context) bool {
	indexURL := d.base.String() + "/wp-json/"
	p := getSettled(ctx, d.hc, indexURL, d.opts.Timeout)
	if p.err != nil {
		found, fix := connectProblem(p.err, d.base.Host, d.opts.Timeout)
		name := checkReach
		if strings.HasPrefix(found, "certificate problem") || strings.Contains(found, "does not speak TLS") {
			name = checkTLS
		}
		d.s.fail(name, found, fix)
		return false
	}
	if p.status == http.StatusBadRequest && strings.Contains(string(p.body), "HTTP request to an HTTPS server") {
		d.s.fail(checkReach, "the server at "+d.base.Host+" speaks HTTPS, store_url says http://", "use https:// in store_url")
		return false
	}
	if !d.redirects(p) {
		return false
	}
	if idx := p.index(); idx != nil {
		d.idx = idx
		name := ""
		if idx.Name != "" {
			name = fmt.Sprintf("; site %q", idx.Name)
		}
		d.s.ok(checkReach, fmt.Sprintf("REST API at %s answers (HTTP %d in %s%s)", indexURL, p.status, human(p.took), name))
		d.tlsCheck(p)
		d.clock(p)
		return true
	}
	d.tlsCheck(p)
	if p.transient() && !p.isHTML() {
		d.s.fail(checkReach, fmt.Sprintf("%s answered HTTP %d with %s, twice: the store (or a proxy in front of it) is rate limiting, overloaded or down", indexURL, p.status, describeBody(p)),
			"run the doctor again in a few minutes; if it keeps failing, look at the store's error log and at any rate limit or firewall in front of it")
		return false
	}
	// Not the index: plain permalinks? WordPress advertises its REST root in
	// a Link header even on its 404 page; ?rest_route=/ reaches it anyway.
	// Only a 404 says /wp-json/ is not routed; a 429 or 5xx says nothing
	// about permalinks.
	if p.status == http.StatusNotFound {
		if alt := getSettled(ctx, d.hc, d.base.String()+"/?rest_route=/", d.opts.Timeout); alt.err == nil && alt.index() != nil {
			d.s.fail(checkPermalinks, fmt.Sprintf("/wp-json/ is not routed (HTTP %d %s) but ?rest_route=/ reaches the REST API: the site uses plain permalinks", p.status, describeBody(p)),
				"in WordPress → Settings → Permalinks pick any structure but \"Plain\" (wooevents calls /wp-json/ and does not support ?rest_route=); on nginx also route /wp-json/ to index.php")
			return false
		}
	}
	if link := p.apiLink(); strings.Contains(link, "rest_route=") {
		d.s.fail(checkPermalinks, "WordPress advertises its REST API at "+link+" (plain permalinks), and neither that nor /wp-json/ answered with the REST index",
			"in WordPress → Settings → Permalinks pick any structure but \"Plain\"")
		return false
	}
	if p.isHTML() {
		title := p.title()
		if title != "" {
			title = fmt.Sprintf(" titled %q", title)
		}
		d.s.fail(checkReach, fmt.Sprintf("an HTML page%s (HTTP %d) instead of the REST API at %s", title, p.status, indexURL),
			"a firewall (WAF), maintenance mode, a security plugin that disables the REST API, a proxy error page, or not a WordPress site: open the URL in a browser, and allow /wp-json/ for this machine")
		return false
	}
	if code, msg, ok := p.wpError(); ok {
		if p.status == http.StatusUnauthorized || p.status == http.StatusForbidden {
			d.s.warn(checkReach, fmt.Sprintf("the REST index answers HTTP %d %s: %s (a plugin limits the REST API to logged-in users)", p.status, code, msg),
				"wooevents authenticates its own calls, so this may be fine: the checks below tell; allow the wc/v3 routes for API keys if they fail")
			d.clock(p)
			return true
		}
		d.s.fail(checkReach, fmt.Sprintf("%s answers HTTP %d %s: %s", indexURL, p.status, code, msg),
			"check that store_url is the WordPress home URL (without /wp-json) and that the REST API is enabled")
		return false
	}
	d.s.fail(checkReach, fmt.Sprintf("%s answers HTTP %d with %s, not the WordPress REST index", indexURL, p.status, describeBody(p)),
		"check that store_url is the WordPress home URL (without /wp-json) and that WordPress is installed there")
	return false
}

// describeBody names what a non-REST answer was, for a report line.
func describeBody(p *probe) string {
	if p.isHTML() {
		if t := p.title(); t != "" {
			return fmt.Sprintf("an HTML page titled %q", t)
		}
		return "an HTML page"
	}
	ct := p.contentType()
	if ct == "" {
		ct = "no content type"
	}
	return fmt.Sprintf("%s (%d bytes)", ct, len(p.body))
}

// tlsCheck reports the certificate (https) or the lack of encryption (http).
func (d *diag) tlsCheck(p *probe) {
	if d.base.Scheme == "http" {
		if isLoopbackHost(d.base) {
			d.s.ok(checkTLS, "plain http on a loopback address")
			return
		}
		d.s.warn(checkTLS, "plain http: the keys are sent signed (OAuth 1.0a), but orders and customers cross the network unencrypted",
			"serve the store over https and use https:// in store_url")
		return
	}
	if p.tls == nil || len(p.tls.PeerCertificates) == 0 {
		d.s.ok(checkTLS, "https")
		return
	}
	c := p.tls.PeerCertificates[0]
	left := c.NotAfter.Sub(d.opts.Now())
	issuer := c.Issuer.CommonName
	if issuer == "" && len(c.Issuer.Organization) > 0 {
		issuer = c.Issuer.Organization[0]
	}
	found := fmt.Sprintf("certificate for %s valid until %s", d.base.Hostname(), c.NotAfter.UTC().Format("2006-01-02"))
	if issuer != "" {
		found += ", issued by " + cut(issuer, 60)
	}
	if d.opts.TLS != nil && d.opts.TLS.InsecureSkipVerify || d.t.Client.TLS != nil && d.t.Client.TLS.InsecureSkipVerify {
		d.s.warn(checkTLS, found+"; not verified (skip_cert_verify)", "verify the certificate in production: remove skip_cert_verify, or set tls.root_cas_file for a private CA")
		return
	}
	if left < 14*24*time.Hour {
		d.s.warn(checkTLS, found+fmt.Sprintf(" (%s left)", human(left.Round(time.Hour))), "renew the certificate before it expires")
		return
	}
	d.s.ok(checkTLS, found)
}

// redirects reports where /wp-json/ redirected to; false when the redirect
// makes the REST API unusable (a login page).
func (d *diag) redirects(p *probe) bool {
	if len(p.redirect) == 0 || p.final == nil {
		return true
	}
	final := p.final
	chain := strings.Join(p.redirect, " → ")
	lower := strings.ToLower(final.Path)
	switch {
	case strings.Contains(lower, "wp-login.php") || strings.Contains(lower, "/login") || strings.Contains(lower, "/my-account"):
		d.s.fail(checkReach, "/wp-json/ redirects to a login page: "+chain,
			"a security, membership or maintenance plugin sends REST requests to the login page: allow /wp-json/ (or this machine) in its settings")
		return false
	case !strings.EqualFold(final.Hostname(), d.base.Hostname()):
		home := final.Scheme + "://" + final.Host + strings.TrimSuffix(strings.TrimSuffix(final.Path, "/"), "/wp-json")
		d.s.warn(checkReach, "/wp-json/ redirects to another host: "+chain,
			"set store_url to "+home+": redirects drop the Authorization header and change the URL OAuth 1.0a signs")
	case final.Scheme != d.base.Scheme:
		d.s.warn(checkReach, "/wp-json/ redirects from "+d.base.Scheme+" to "+final.Scheme+": "+chain,
			"set store_url to "+final.Scheme+"://"+final.Host+d.base.Path+": a redirected POST (webhook registration) becomes a GET")
	default:
		d.s.warn(checkReach, "/wp-json/ redirects: "+chain, "set store_url to the WordPress home URL the store redirects to")
	}
	return true
}

// indexChecks report what the REST index tells: the home URL, wc/v3, the
// timezone.
func (d *diag) indexChecks() {
	idx := d.idx
	if idx == nil {
		return
	}
	if idx.Home != "" && wcevent.NormalizeStore(idx.Home) != wcevent.NormalizeStore(d.base.String()) {
		d.s.warn(checkHome, fmt.Sprintf("WordPress' home URL is %s, store_url is %s", idx.Home, d.base),
			"set store_url to "+strings.TrimRight(idx.Home, "/")+": OAuth 1.0a signs the home URL (another scheme, www. or port fails with \"Invalid signature\"), and events carry store_url as their store")
	} else if idx.Home != "" {
		d.s.ok(checkHome, "store_url is WordPress' home URL")
	}
	if idx.hasNamespace("wc/v3") {
		d.s.ok(checkNamespace, "the WooCommerce REST API wc/v3 is there")
	} else {
		d.s.fail(checkNamespace, "no wc/v3 among the REST namespaces ("+cut(strings.Join(idx.Namespaces, ", "), 160)+")",
			"activate WooCommerce (3.5 or later) on this site; a security plugin may also hide the namespace")
	}
	if off, ok := idx.offset(); ok {
		tz := ""
		if idx.TimezoneString != "" {
			tz = " (" + idx.TimezoneString + ")"
		}
		d.s.ok(checkTimezone, fmt.Sprintf("site timezone UTC%s%s: wooevents reads the _gmt dates and sends UTC bounds, so the offset does not shift events", formatOffset(off), tz))
	}
}

func formatOffset(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%02d:%02d", sign, int(d.Hours()), int(d.Minutes())%60)
}

// clock compares the store's Date header with this machine's clock.
func (d *diag) clock(p *probe) {
	date, err := http.ParseTime(p.header.Get("Date"))
	if err != nil {
		d.s.warn(checkClock, "the store sent no Date header: clock skew not checked", "")
		return
	}
	local := p.sent.Add(p.took / 2) // the Date header is stamped while the request is served
	// The header has whole seconds (truncated): half a second is the
	// expected error.
	skew := date.Add(500 * time.Millisecond).Sub(local).Round(time.Second)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	oauth := d.t.Client.EffectiveAuth() == wcclient.AuthOAuth1
	switch {
	case abs <= 2*time.Second:
		d.s.ok(checkClock, "the store's clock agrees with this machine's (Date header within 2s)")
	case abs < time.Minute:
		d.s.ok(checkClock, fmt.Sprintf("the store's clock is %s %s this machine's", human(abs), dir))
	case abs < oauthWindow:
		d.s.warn(checkClock, fmt.Sprintf("the store's clock is %s %s this machine's", human(abs), dir),
			"synchronise both clocks (NTP): OAuth 1.0a fails beyond 15 minutes of skew; the poller itself follows the store's clock")
	case oauth:
		d.s.fail(checkClock, fmt.Sprintf("the store's clock is %s %s this machine's: OAuth 1.0a requests are refused beyond 15 minutes (\"Invalid timestamp\")", human(abs), dir),
			"synchronise both clocks (NTP, timedatectl), or use https with auth: basic, which carries no timestamp")
	default:
		d.s.warn(checkClock, fmt.Sprintf("the store's clock is %s %s this machine's: OAuth 1.0a would be refused (\"Invalid timestamp\"); %s does not mind", human(abs), dir, d.t.Client.EffectiveAuth()),
			"synchronise both clocks (NTP, timedatectl)")
	}
}

// ---------------------------------------------------------------------------
// Authentication and permission

// authProblem classifies a failed authenticated call.
type authProblem string

const (
	apNone      authProblem = ""
	apIgnored   authProblem = "ignored" // 401 woocommerce_rest_cannot_view: the keys were not seen
	apBadKey    authProblem = "bad-key" // Consumer key is invalid
	apBadSecret authProblem = "bad-secret"
	apSignature authProblem = "signature" // OAuth signature mismatch
	apTimestamp authProblem = "timestamp"
	apNonce     authProblem = "nonce"
	apNoRead    authProblem = "no-read" // authenticated, but the key may not read
	apForbidden authProblem = "forbidden"
	// unavailable: no REST answer to judge the keys by (429, 5xx, HTML, a
	// body cut short), still so after the retries.
	apUnavailable authProblem = "unavailable"
	apOther       authProblem = "other"
)

func classify(err error) authProblem {
	if err == nil {
		return apNone
	}
	if unavailable(err) {
		return apUnavailable
	}
	var we *wcclient.Error
	if !errors.As(err, &we) {
		return apOther
	}
	msg := strings.ToLower(we.Message)
	switch {
	case strings.Contains(msg, "does not have read permissions"):
		return apNoRead
	case we.Code == "woocommerce_rest_cannot_view" && we.Status == http.StatusUnauthorized:
		return apIgnored
	case strings.Contains(msg, "consumer key is invalid"):
		return apBadKey
	case strings.Contains(msg, "consumer secret is invalid"):
		return apBadSecret
	case strings.Contains(msg, "invalid signature"):
		return apSignature
	case strings.Contains(msg, "invalid timestamp"):
		return apTimestamp
	case strings.Contains(msg, "nonce"):
		return apNonce
	case we.Status == http.StatusForbidden:
		return apForbidden
	}
	return apOther
}

// unavailable reports whether a failed call got no REST answer to judge
// the keys by: rate limited, a server or gateway error, or a body that is
// not the REST API's JSON (an HTML page, an answer cut short).
func unavailable(err error) bool {
	var be *wcclient.BodyError
	if errors.As(err, &be) {
		return true
	}
	code := wcclient.StatusCode(err)
	return code == http.StatusTooManyRequests || code >= http.StatusInternalServerError
}

// short is a failed call's error for a report line.
func short(err error) string {
	var we *wcclient.Error
	if errors.As(err, &we) {
		s := fmt.Sprintf("HTTP %d", we.Status)
		if we.Code != "" {
			s += " " + we.Code
		}
		if we.Message != "" {
			s += ": " + we.Message
		}
		return s
	}
	var be *wcclient.BodyError
	if errors.As(err, &be) {
		return fmt.Sprintf("HTTP %d: %s", be.Status, be.Reason)
	}
	return cut(err.Error(), 200)
}

// newClient builds a REST client for mode; storeURL overrides the store URL
// (the http:// signing probe). A transient answer (429, 5xx, a body cut
// short) is asked again for up to maxSettleWait, so that one blip of the
// store is not reported as a configuration problem; what is never retried
// (401, 403, 404) is reported as the store said it.
func (d *diag) newClient(mode wcclient.AuthMode, hc *http.Client, storeURL string) (*wcclient.Client, error) {
	cfg := d.t.Client
	cfg.Auth = mode
	if storeURL != "" {
		cfg.StoreURL = storeURL
	} else {
		cfg.StoreURL = d.base.String()
	}
	cfg.HTTPClient = hc
	cfg.Timeout = d.opts.Timeout
	cfg.MaxRetryElapsed = maxSettleWait
	cfg.RetryInitialInterval, cfg.RetryMaxInterval = 250*time.Millisecond, 2*time.Second
	cfg.RateLimit, cfg.Logger, cfg.OnRequest = nil, nil, nil
	return wcclient.New(cfg)
}

// probeRoute is the list route the authentication probes read.
func (d *diag) probeRoute() string {
	if d.t.Poll != nil && len(d.t.Poll.Resources) > 0 {
		return d.t.Poll.Resources[0].Route
	}
	return "/wp-json/wc/v3/orders"
}

// try reads one object of the probe route with mode.
func (d *diag) try(ctx context.Context, mode wcclient.AuthMode, hc *http.Client, storeURL string) (*wcclient.Client, error) {
	c, err := d.newClient(mode, hc, storeURL)
	if err != nil {
		return nil, err
	}
	p, err := c.ListPage(ctx, d.probeRoute(), nil, 1, 1)
	if p != nil {
		p.Release()
	}
	return c, err
}

// schemeRewriter sends requests for http://host to https://host: it lets the
// doctor sign OAuth 1.0a for the http:// URL (what WordPress checks when it
// does not see HTTPS) while talking HTTPS.
type schemeRewriter struct {
	host string
	next http.RoundTripper
}

func (r schemeRewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && req.URL.Host == r.host {
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	}
	return r.next.RoundTrip(req)
}

// auth finds which authentication modes work and picks the client the
// remaining checks use; false when none works.
func (d *diag) auth(ctx context.Context) bool {
	configured := d.t.Client.EffectiveAuth()
	modes := []wcclient.AuthMode{wcclient.AuthOAuth1}
	if d.base.Scheme == "https" {
		modes = []wcclient.AuthMode{wcclient.AuthBasic, wcclient.AuthQuery, wcclient.AuthOAuth1}
	}
	errs := map[wcclient.AuthMode]error{}
	clients := map[wcclient.AuthMode]*wcclient.Client{}
	var works []wcclient.AuthMode
	for _, m := range modes {
		c, err := d.try(ctx, m, d.hc, "")
		if c == nil {
			d.s.fail(checkAuth, "cannot build a REST client: "+err.Error(), "check store_url, consumer_key and consumer_secret")
			return false
		}
		errs[m], clients[m] = err, c
		if p := classify(err); p == apNone || p == apNoRead {
			works = append(works, m)
		}
	}
	// Over https, keys ignored by every mode and OAuth signatures that do
	// not match mean WordPress believes the request is plain http: try a
	// signature for the http:// URL.
	httpSigned := false
	if d.base.Scheme == "https" && classify(errs[wcclient.AuthBasic]) == apIgnored && classify(errs[wcclient.AuthQuery]) == apIgnored &&
		classify(errs[wcclient.AuthOAuth1]) == apSignature {
		tr := d.hc.Transport
		if tr == nil {
			tr = http.DefaultTransport
		}
		hc := *d.hc
		hc.Transport = schemeRewriter{host: d.base.Host, next: tr}
		alt := *d.base
		alt.Scheme = "http"
		if _, err := d.try(ctx, wcclient.AuthOAuth1, &hc, alt.String()); classify(err) == apNone || classify(err) == apNoRead {
			httpSigned = true
		}
	}

	// Which modes work.
	var list []string
	for _, m := range modes {
		if classify(errs[m]) == apNone || classify(errs[m]) == apNoRead {
			list = append(list, string(m)+" works")
		} else {
			list = append(list, fmt.Sprintf("%s fails (%s)", m, short(errs[m])))
		}
	}
	summary := strings.Join(list, "; ")
	if d.base.Scheme == "http" {
		summary += "; basic and query are never honoured over plain http"
	}

	if d.base.Scheme == "https" {
		d.httpsChecks(errs, httpSigned)
	}

	for _, m := range modes {
		if len(works) == 0 && classify(errs[m]) == apUnavailable {
			d.s.fail(checkAuth, fmt.Sprintf("%s: the store gave no REST answer to judge the keys by (%s), also when asked again", summary, short(errs[m])),
				"the store (or a proxy in front of it) is rate limiting, overloaded or down, or a firewall answers for it: run the doctor again in a few minutes, and look at the store's error log if it keeps failing")
			return false
		}
	}
	if len(works) == 0 {
		found, fix := d.noAuth(errs, httpSigned)
		d.s.fail(checkAuth, summary+". "+found, fix)
		return false
	}
	use := configured
	if _, probed := errs[use]; !probed {
		// basic or query configured for a plain http store: WooCommerce never reads them there.
		use = works[0]
		d.s.fail(checkAuth, fmt.Sprintf("%s; this config uses %s, which WooCommerce ignores over plain http", summary, configured),
			fmt.Sprintf("set auth: %s (or auto) on the input (or the register block), or use the store's https:// URL", use))
	} else if classify(errs[use]) == apUnavailable {
		d.s.warn(checkAuth, fmt.Sprintf("%s; this config uses %s, whose probe got no REST answer (%s)", summary, configured, short(errs[use])),
			"the store was rate limiting or failing during the check: run the doctor again before changing auth")
		use = works[0]
	} else if classify(errs[use]) != apNone && classify(errs[use]) != apNoRead {
		use = works[0]
		d.s.fail(checkAuth, fmt.Sprintf("%s; this config uses %s", summary, configured),
			fmt.Sprintf("set auth: %s on the input (or the register block)", use))
	} else {
		d.s.ok(checkAuth, fmt.Sprintf("%s; using %s", summary, use))
	}
	d.client = clients[use]
	d.canRead = classify(errs[use]) == apNone
	return true
}

// httpsChecks report whether WordPress sees HTTPS and whether the
// Authorization header reaches it (https stores only).
func (d *diag) httpsChecks(errs map[wcclient.AuthMode]error, httpSigned bool) {
	basic, query := classify(errs[wcclient.AuthBasic]), classify(errs[wcclient.AuthQuery])
	seen := func(p authProblem) bool { return p != apIgnored && p != apOther }
	switch {
	case seen(basic) || seen(query):
		d.s.ok(checkHTTPS, "WordPress sees HTTPS: it reads keys sent over https (Basic or query string)")
	case httpSigned:
		d.s.fail(checkHTTPS, "WordPress does not see HTTPS: TLS ends at a proxy that sends no X-Forwarded-Proto (or WordPress ignores it), so Basic and query-string keys are ignored (401 woocommerce_rest_cannot_view) and OAuth 1.0a is checked against the http:// URL (a signature for http:// works)",
			"make WordPress see HTTPS: have the proxy send X-Forwarded-Proto: https and add to wp-config.php `if (($_SERVER['HTTP_X_FORWARDED_PROTO'] ?? '') === 'https') $_SERVER['HTTPS'] = 'on';` — or use auth: oauth1 with store_url "+d.httpVariant()+" if the proxy also serves (or redirects) http")
	default:
		d.s.warn(checkHTTPS, "Basic and query-string keys over https were both ignored (401 woocommerce_rest_cannot_view): WordPress may not see HTTPS (TLS ending at a proxy), or the keys are unknown",
			"see the auth line; if the keys are right, make WordPress see HTTPS (X-Forwarded-Proto and $_SERVER['HTTPS']) or use auth: oauth1")
	}
	if basic == apIgnored && seen(query) {
		d.s.fail(checkAuthHeader, "the host strips the Authorization header: Basic is ignored while the same keys in the query string work",
			"set auth: query on the input (the keys then appear in the store's access logs) or auth: oauth1; or make the web server pass the header to PHP (Apache: CGIPassAuth On)")
	} else if seen(basic) {
		d.s.ok(checkAuthHeader, "the Authorization header reaches WordPress")
	}
}

func (d *diag) httpVariant() string {
	u := *d.base
	u.Scheme = "http"
	return u.String()
}

// noAuth explains why no mode works.
func (d *diag) noAuth(errs map[wcclient.AuthMode]error, httpSigned bool) (found, fix string) {
	kinds := map[authProblem]bool{}
	for _, err := range errs {
		kinds[classify(err)] = true
	}
	home := "the WordPress home URL"
	if d.idx != nil && d.idx.Home != "" {
		home = d.idx.Home
	}
	switch {
	case httpSigned:
		return "WordPress does not see HTTPS (see https-seen)", "make WordPress see HTTPS, or use auth: oauth1 with store_url " + d.httpVariant() + " if the proxy serves http"
	case kinds[apBadKey]:
		return "WooCommerce does not know this consumer key", "create a key in WooCommerce → Settings → Advanced → REST API and copy both the key (ck_…) and the secret (cs_…); a key is shown once"
	case kinds[apBadSecret]:
		return "the consumer key exists but the secret is wrong", "copy the secret (cs_…) that belongs to this key, or create a new key"
	case kinds[apTimestamp]:
		return "OAuth 1.0a timestamps are refused: the clocks differ by more than 15 minutes (see clock)", "synchronise this machine's and the store's clocks (NTP)"
	case kinds[apSignature]:
		return "OAuth 1.0a signatures do not match: the secret is wrong, or store_url is not exactly " + home + " (scheme, www., port, path)",
			"set store_url to exactly " + home + " and check the secret"
	case kinds[apForbidden]:
		return "the key authenticates but its user may not read WooCommerce data", "create the key for an administrator or shop manager"
	case kinds[apIgnored] && d.base.Scheme == "http":
		return "the keys were not used", "check the keys; over plain http only OAuth 1.0a works (auth: oauth1 or auto)"
	case kinds[apIgnored]:
		return "the keys were ignored (401 woocommerce_rest_cannot_view)", "check the keys, and that WordPress sees HTTPS (see https-seen)"
	}
	return "no authentication mode works", "check store_url and the keys"
}

// permission finds the key's permission without writing anything: an empty
// POST /wc/v3/webhooks cannot create a webhook. WooCommerce checks the key's
// permission before the body, so a read-only key gets 401 "does not have
// write permissions" and a key that may write gets 400 (topic and
// delivery_url missing).
func (d *diag) permission(ctx context.Context) {
	_, err := d.client.Do(ctx, http.MethodPost, wcclient.WebhooksRoute, nil, []byte(`{}`), nil)
	var we *wcclient.Error
	switch {
	case err == nil:
		d.canWrite = true
		d.s.fail(checkPermission, "an empty POST /wc/v3/webhooks succeeded: something on the store accepts requests it should reject",
			"look at WooCommerce → Settings → Advanced → Webhooks for a webhook created just now and delete it")
		return
	case errors.As(err, &we) && we.Status == http.StatusUnauthorized && strings.Contains(strings.ToLower(we.Message), "write permission"):
		d.canWrite = false
	case errors.As(err, &we) && we.Status == http.StatusBadRequest:
		d.canWrite = true
	case errors.As(err, &we) && (we.Status == http.StatusForbidden || we.Code == "woocommerce_rest_cannot_create"):
		d.canWrite = true
		d.s.warn(checkPermission, "the key may write, but its user may not manage webhooks ("+short(err)+")",
			"create the key for an administrator or shop manager if the webhook input registers its webhooks")
		return
	default:
		d.s.warn(checkPermission, "could not tell whether the key may write: "+short(err), "check the key's permission in WooCommerce → Settings → Advanced → REST API")
		return
	}
	register := d.t.Webhooks != nil && d.t.Webhooks.Register
	switch {
	case d.canRead && d.canWrite:
		d.s.ok(checkPermission, "read_write: polling, delete confirmation and webhook registration all work")
	case d.canRead && register:
		d.s.fail(checkPermission, "read only: enough for polling, but this config registers webhooks, which needs write",
			"edit the key in WooCommerce → Settings → Advanced → REST API and set Permissions to Read/Write")
	case d.canRead:
		d.s.ok(checkPermission, "read: enough for polling and delete confirmation (registering webhooks needs read_write)")
	default:
		d.s.fail(checkPermission, "write only: the key may not read, so polling, delete confirmation and listing webhooks fail (401 does not have read permissions)",
			"set the key's Permissions to Read (polling) or Read/Write (webhook registration)")
	}
}

// versions reads WordPress' and WooCommerce's versions from the system
// status (needs read permission and a shop manager's key).
func (d *diag) versions(ctx context.Context) {
	if !d.canRead {
		return
	}
	var st struct {
		Environment struct {
			Version    string `json:"version"`
			WPVersion  string `json:"wp_version"`
			PHPVersion string `json:"php_version"`
		} `json:"environment"`
	}
	if _, err := d.client.Do(ctx, http.MethodGet, "/wc/v3/system_status", url.Values{"_fields": {"environment"}}, nil, &st); err != nil {
		d.s.warn(checkVersions, "could not read /wc/v3/system_status: "+short(err), "WooCommerce → Status shows the versions; the key's user needs to be a shop manager or administrator")
		return
	}
	e := st.Environment
	found := fmt.Sprintf("WordPress %s, WooCommerce %s", orUnknown(e.WPVersion), orUnknown(e.Version))
	if e.PHPVersion != "" {
		found += ", PHP " + e.PHPVersion
	}
	d.s.ok(checkVersions, found)
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// ---------------------------------------------------------------------------
// Resources: counts, filters, costs

type resourceCost struct {
	r       PollResource
	total   int
	page    time.Duration // one page of page_size objects
	pageN   int           // objects in that page
	light   time.Duration // one page of ids and dates (scans)
	pages   int
	ignored bool
}

func (d *diag) resources(ctx context.Context) {
	ps := d.t.Poll
	if ps == nil {
		ps = &PollSettings{Resources: ResourcesFromNames(DefaultResources), Interval: defaultInterval,
			ScanInterval: defaultScanInterval, PageSize: defaultPageSize, StartFrom: "now"}
	}
	var costs []*resourceCost
	var counts []string
	for _, r := range ps.Resources {
		p, err := d.client.ListPage(ctx, r.Route, nil, 1, 1)
		if err != nil {
			fix := "check the resource's name and path in the config"
			if unavailable(err) {
				fix = "the store gave no usable answer, also when asked again (rate limiting, overloaded, or an answer cut short): run the doctor again in a few minutes"
			} else if wcclient.StatusCode(err) == http.StatusNotFound {
				fix = "the route does not exist on this store: check the resource's path (a plugin's route needs that plugin active)"
			}
			d.s.fail(checkObjects, fmt.Sprintf("%s (%s): %s", r.Name, r.Route, short(err)), fix)
			continue
		}
		c := &resourceCost{r: r, total: p.Total}
		p.Release()
		if c.total < 0 {
			counts = append(counts, r.Name+" (no X-WP-Total)")
		} else {
			counts = append(counts, fmt.Sprintf("%s %s", r.Name, thousands(c.total)))
		}
		costs = append(costs, c)
	}
	if len(counts) > 0 {
		d.s.ok(checkObjects, strings.Join(counts, ", "))
	}
	for _, c := range costs {
		if !c.r.Scan {
			d.filter(ctx, c)
		}
	}
	d.costs(ctx, ps, costs)
}

// filter checks that modified_after is honoured on a resource: a bound a
// year ahead must match nothing.
func (d *diag) filter(ctx context.Context, c *resourceCost) {
	name := checkFilter + ":" + c.r.Name
	if c.total == 0 {
		d.s.ok(name, "not checked: no "+c.r.Name+" yet")
		return
	}
	q := url.Values{
		"modified_after": {d.opts.Now().UTC().AddDate(1, 0, 0).Format("2006-01-02T15:04:05")},
		"dates_are_gmt":  {"true"},
		"orderby":        {"modified"},
		"order":          {"asc"},
	}
	p, err := d.client.ListPage(ctx, c.r.Route, q, 1, 1)
	if err != nil {
		d.s.warn(name, "could not check modified_after: "+short(err), "")
		return
	}
	n, total := len(p.Items), p.Total
	p.Release()
	if n == 0 && total <= 0 {
		d.s.ok(name, "modified_after is honoured")
		return
	}
	c.ignored = true
	d.s.warn(name, fmt.Sprintf("the store ignores modified_after on %s: a bound a year ahead still lists %s of them", c.r.Name, thousands(max(total, n))),
		"a page cache or a plugin rewrites REST queries (exclude /wp-json/ from caching), or WooCommerce is too old; woocommerce_poll notices it and filters by itself, but then reads every object on every poll")
}

// costs times one full page per resource and estimates the customers scan
// and the backfill.
func (d *diag) costs(ctx context.Context, ps *PollSettings, costs []*resourceCost) {
	size := ps.PageSize
	if size <= 0 || size > wcclient.MaxPerPage {
		size = defaultPageSize
	}
	var times []string
	slow := false
	for _, c := range costs {
		if c.total == 0 {
			continue
		}
		start := time.Now()
		p, err := d.client.ListPage(ctx, c.r.Route, nil, 1, size)
		if err != nil {
			times = append(times, fmt.Sprintf("%s failed (%s)", c.r.Name, short(err)))
			continue
		}
		c.page, c.pageN = time.Since(start), len(p.Items)
		p.Release()
		if c.total > 0 {
			c.pages = int(math.Ceil(float64(c.total) / float64(size)))
		}
		times = append(times, fmt.Sprintf("%s %s", c.r.Name, human(c.page)))
		slow = slow || c.page > 10*time.Second
		if c.r.Scan {
			q := url.Values{"_fields": {"id,date_modified_gmt,date_created_gmt"}, "orderby": {"id"}, "order": {"asc"}}
			start := time.Now()
			if lp, err := d.client.ListPage(ctx, c.r.Route, q, 1, size); err == nil {
				c.light = time.Since(start)
				lp.Release()
			} else {
				c.light = c.page
			}
		}
	}
	if len(times) > 0 {
		line := fmt.Sprintf("one page of up to %d: %s", size, strings.Join(times, ", "))
		if slow {
			d.s.warn(checkPageTime, line, "a page over 10s makes backfills and scans slow and nears the 30s timeout: a lighter host, object caching, or a smaller page_size")
		} else {
			d.s.ok(checkPageTime, line)
		}
	}

	// The scan of scanned resources (customers): every poll reads up to
	// scan_max_pages light pages of a pass over the whole list.
	for _, c := range costs {
		if !c.r.Scan || c.pages == 0 {
			continue
		}
		maxPages := ps.ScanMaxPages
		if maxPages <= 0 {
			maxPages = defaultScanMaxPages
		}
		perPoll := min(c.pages, maxPages)
		polls := (c.pages + maxPages - 1) / maxPages
		pollTime := time.Duration(perPoll) * c.light
		pass := max(time.Duration(polls)*ps.Interval, ps.ScanInterval)
		found := fmt.Sprintf("%s: a pass over all of them reads %s of ids and dates, %s per poll (about %s of every %s interval); a changed %s shows up within about %s, a new one within one interval",
			c.r.Name, plural(c.pages, "page"), plural(perPoll, "page"), human(pollTime), human(ps.Interval), singular(c.r.Name), human(pass+ps.Interval))
		switch {
		case pollTime >= ps.Interval:
			d.s.fail(checkScanCost, found+": a poll's share of the scan takes longer than the interval",
				fmt.Sprintf("raise interval above %s or lower scan_max_pages (a pass then spans more polls)", human(pollTime*2)))
		case pollTime > ps.Interval/2:
			d.s.warn(checkScanCost, found, "the store spends more than half of each interval answering the scan: raise interval, or lower scan_max_pages")
		default:
			d.s.ok(checkScanCost, found)
		}
	}

	// The backfill: every object once.
	var pages, objects int
	var est time.Duration
	for _, c := range costs {
		if c.total <= 0 {
			continue
		}
		pages += c.pages
		objects += c.total
		est += time.Duration(c.pages) * c.page
	}
	if objects > 0 {
		found := fmt.Sprintf("a backfill reads %s in %s, about %s one page at a time (woocommerce_poll reads up to max_concurrency pages at once)", plural(objects, "object"), plural(pages, "request"), human(est))
		if ps.StartFrom == "now" {
			found += " (this config starts from now: no backfill unless start_from: beginning)"
		}
		d.s.ok(checkBackfill, found)
	}
	for _, c := range costs {
		if c.ignored && c.pages > 0 {
			every := time.Duration(c.pages) * c.page
			if every >= ps.Interval {
				d.s.fail(checkFilter+":"+c.r.Name, fmt.Sprintf("without the filter, every poll of %s reads all %s (about %s), longer than interval %s", c.r.Name, plural(c.pages, "page"), human(every), human(ps.Interval)),
					"fix the store's modified_after (see above) or raise interval")
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Webhooks

func (d *diag) webhooks(ctx context.Context) {
	wh := d.t.Webhooks
	ours := map[string]bool{}
	if wh != nil {
		for _, u := range wh.DeliveryURLs {
			ours[normURL(u)] = true
			if port, refused := refusedPort(u); refused {
				d.s.fail(checkDelivery, fmt.Sprintf("%s is on port %s: WordPress delivers webhooks to ports 80, 443 and 8080 only", u, port),
					"receive on 443 (a reverse proxy with TLS in front of wooevents, see docs/deployment.md) or 8080, and set delivery_url to that URL")
			} else if privateHost(u) {
				d.s.warn(checkDelivery, u+" is a loopback or private address: WordPress refuses to deliver there unless a plugin allows it (http_request_host_is_external)",
					"use the receiver's public URL as delivery_url")
			} else {
				d.s.ok(checkDelivery, u)
			}
		}
	}
	hooks, err := d.client.ListWebhooks(ctx, wcclient.WebhookStatusAll)
	if err != nil {
		d.s.warn(checkWebhooks, "could not list the store's webhooks: "+short(err), "the key's user needs to be a shop manager or administrator")
		return
	}
	sort.Slice(hooks, func(i, j int) bool { return hooks[i].ID < hooks[j].ID })
	if len(hooks) == 0 {
		d.s.ok(checkWebhooks, "the store has no webhooks")
	} else {
		d.s.ok(checkWebhooks, fmt.Sprintf("the store has %d webhook(s)", len(hooks)))
	}
	active := map[string]bool{} // topics with an active webhook at one of ours
	nOurs := 0
	for _, h := range hooks {
		mine := ours[normURL(h.DeliveryURL)]
		if mine {
			nOurs++
		}
		name := fmt.Sprintf("%s #%d", checkWebhook, h.ID)
		found := fmt.Sprintf("%s %s → %s", h.Status, h.Topic, retry.RedactURL(h.DeliveryURL))
		if mine {
			found += " (this config's)"
		}
		// Every problem of the webhook on its one line, the worst status wins.
		st, problems, fixes := OK, []string{}, []string{}
		raise := func(to Status, problem, fix string) {
			if to == Fail || st == OK {
				st = to
			}
			problems, fixes = append(problems, problem), append(fixes, fix)
		}
		if port, refused := refusedPort(h.DeliveryURL); refused {
			raise(Fail, "WordPress refuses to deliver to port "+port, "deliver to 80, 443 or 8080 (a reverse proxy in front of the receiver)")
		}
		switch h.Status {
		case wcclient.WebhookStatusDisabled:
			fix := "fix the receiver, then set the webhook Active in WooCommerce → Settings → Advanced → Webhooks (a register block re-enables it every check_interval)"
			if mine || len(ours) == 0 {
				raise(Fail, "disabled by WooCommerce after repeated failed deliveries; changes since then reached the receiver only by polling", fix)
			} else {
				raise(Warn, "disabled by WooCommerce after repeated failed deliveries", fix)
			}
		case wcclient.WebhookStatusPaused:
			raise(Warn, "paused by an administrator: nothing is delivered", "set it Active if it should deliver")
		case wcclient.WebhookStatusPending:
			raise(Warn, "pending: the receiver never answered WooCommerce's ping with 200", "make the receiver answer the ping (form body webhook_id=N) with 200, then save the webhook again")
		}
		if st == OK {
			if mine {
				active[h.Topic] = true
			}
			d.s.ok(name, found)
			continue
		}
		d.s.add(name, st, found+": "+strings.Join(problems, "; "), strings.Join(fixes, "; "))
	}
	if wh == nil || len(wh.DeliveryURLs) == 0 {
		return
	}
	d.s.ok(checkOurWebhooks, fmt.Sprintf("%d webhook(s) deliver to %s", nOurs, strings.Join(wh.DeliveryURLs, ", ")))
	var missing []string
	for _, t := range wh.Topics {
		if !active[t] {
			missing = append(missing, t)
		}
	}
	switch {
	case len(wh.Topics) == 0:
	case len(missing) == 0:
		d.s.ok(checkTopics, fmt.Sprintf("every topic (%d) has an active webhook", len(wh.Topics)))
	case wh.Register:
		d.s.warn(checkTopics, "no active webhook yet for: "+strings.Join(missing, ", "),
			"the register block creates (or re-enables) them when wooevents starts and every check_interval; if they stay missing, see its logs (a topic the store refuses is skipped)")
	default:
		d.s.fail(checkTopics, "no active webhook for: "+strings.Join(missing, ", "),
			"create them in WooCommerce → Settings → Advanced → Webhooks with the delivery URL above and the input's secret, or add a register block")
	}
}

func normURL(u string) string { return strings.TrimRight(strings.TrimSpace(u), "/") }

// singular is a resource name without its plural s ("customers" → "customer").
func singular(name string) string { return strings.TrimSuffix(name, "s") }
