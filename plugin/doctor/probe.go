package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wooevents/wooevents/internal/buildinfo"
	"github.com/wooevents/wooevents/internal/retry"
)

// siteIndex is what the doctor reads of WordPress' REST index (GET /wp-json/).
type siteIndex struct {
	Name           string          `json:"name"`
	URL            string          `json:"url"`
	Home           string          `json:"home"`
	GMTOffset      json.RawMessage `json:"gmt_offset"` // a number or a numeric string ("5.5")
	TimezoneString string          `json:"timezone_string"`
	Namespaces     []string        `json:"namespaces"`
	Authentication json.RawMessage `json:"authentication"`
}

// offset returns the site's UTC offset.
func (s *siteIndex) offset() (time.Duration, bool) {
	raw := strings.Trim(string(s.GMTOffset), `"`)
	h, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(h * float64(time.Hour)), true
}

func (s *siteIndex) hasNamespace(ns string) bool {
	for _, n := range s.Namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// probe is one unauthenticated GET and what came back.
type probe struct {
	url      string // redacted request URL
	final    *url.URL
	redirect []string // every URL redirected to, in order
	status   int
	header   http.Header
	body     []byte
	tls      *tls.ConnectionState
	took     time.Duration
	sent     time.Time // when the request was sent
	err      error
}

func (p *probe) contentType() string {
	mt, _, _ := mime.ParseMediaType(p.header.Get("Content-Type"))
	return mt
}

func (p *probe) isHTML() bool {
	if ct := p.contentType(); ct == "text/html" || ct == "application/xhtml+xml" {
		return true
	}
	b := strings.ToLower(strings.TrimSpace(string(p.body[:min(len(p.body), 64)])))
	return strings.HasPrefix(b, "<!doctype html") || strings.HasPrefix(b, "<html")
}

var titleRe = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// title is the HTML page's title, for naming what answered.
func (p *probe) title() string {
	m := titleRe.FindSubmatch(p.body)
	if m == nil {
		return ""
	}
	t := strings.Join(strings.Fields(string(m[1])), " ")
	t = strings.NewReplacer("&#8211;", "–", "&amp;", "&", "&#039;", "'", "&quot;", `"`).Replace(t)
	return cut(t, 80)
}

// index decodes the body as the REST index; nil when it is not one.
func (p *probe) index() *siteIndex {
	if p.status != http.StatusOK {
		return nil
	}
	var idx siteIndex
	if json.Unmarshal(p.body, &idx) != nil || idx.Namespaces == nil {
		return nil
	}
	return &idx
}

// wpError decodes a WordPress error body ({"code","message"}).
func (p *probe) wpError() (code, message string, ok bool) {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(p.body, &e) != nil || e.Code == "" {
		return "", "", false
	}
	return e.Code, e.Message, true
}

// apiLink is the REST root WordPress advertises in its Link header
// (rel="https://api.w.org/"), "" when absent.
func (p *probe) apiLink() string {
	for _, v := range p.header.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			if strings.Contains(part, `rel="https://api.w.org/"`) {
				if i, j := strings.IndexByte(part, '<'), strings.IndexByte(part, '>'); i >= 0 && j > i {
					return part[i+1 : j]
				}
			}
		}
	}
	return ""
}

// get sends one unauthenticated GET with the doctor's client.
func get(ctx context.Context, hc *http.Client, rawURL string, timeout time.Duration) *probe {
	p := &probe{url: retry.RedactURL(rawURL)}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		p.err = retry.RedactError(err)
		return p
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", buildinfo.UserAgent()+" doctor")
	c := *hc
	c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		p.redirect = append(p.redirect, retry.RedactURL(r.URL.String()))
		return nil
	}
	p.sent = time.Now()
	res, err := c.Do(req)
	p.took = time.Since(p.sent)
	if err != nil {
		p.err = retry.RedactError(err)
		return p
	}
	defer res.Body.Close()
	p.final, p.status, p.header, p.tls = res.Request.URL, res.StatusCode, res.Header, res.TLS
	p.body, err = io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		p.err = fmt.Errorf("reading the answer: %w", retry.RedactError(err))
	}
	return p
}

// transient reports whether an answer is one that a moment later may not
// be: rate limited (429), a gateway or server error (500, 502, 503, 504), or
// a JSON answer cut short.
func (p *probe) transient() bool {
	switch p.status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusOK:
		return p.contentType() == "application/json" && !json.Valid(p.body)
	}
	return false
}

// getSettled is get, asked once more after a transient answer (after its
// Retry-After, at most maxSettleWait, or a second): one blip of the store
// must not be reported as a configuration problem.
func getSettled(ctx context.Context, hc *http.Client, rawURL string, timeout time.Duration) *probe {
	p := get(ctx, hc, rawURL, timeout)
	if p.err != nil || !p.transient() {
		return p
	}
	wait := time.Second
	if ra := retry.ParseRetryAfter(p.header.Get("Retry-After"), time.Now()); ra > 0 {
		wait = min(ra, maxSettleWait)
	}
	if retry.Sleep(ctx, wait) != nil {
		return p
	}
	return get(ctx, hc, rawURL, timeout)
}

// maxSettleWait bounds the wait before a transient answer is asked again.
const maxSettleWait = 5 * time.Second

// connectProblem names a failure to get an answer at all, and what to do.
func connectProblem(err error, host string, timeout time.Duration) (found, fix string) {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &unknownCA):
		return "certificate problem: the store's certificate is signed by an unknown authority (self-signed, or the chain is incomplete)",
			"serve the full certificate chain; for a test store with its own CA set tls.root_cas_file in the config (or --tls-ca-file), or tls.skip_cert_verify for a throwaway test"
	case errors.As(err, &hostErr):
		return "certificate problem: the certificate is not valid for " + host + " (" + cut(hostErr.Error(), 160) + ")",
			"use the host name the certificate names in store_url, or get a certificate for " + host
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "certificate problem: the certificate has expired or is not yet valid (" + cut(invalid.Error(), 160) + ")",
				"renew the store's certificate (and check this machine's clock)"
		}
		return "certificate problem: " + cut(invalid.Error(), 200), "fix the store's certificate"
	case errors.As(err, &verifyErr):
		return "certificate problem: " + cut(verifyErr.Error(), 200), "fix the store's certificate, or set tls.root_cas_file for a private CA"
	case errors.As(err, &recErr):
		return "the server at " + host + " does not speak TLS", "use http:// in store_url, or the store's HTTPS port"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + host + ": " + dnsErr.Err, "check the host name in store_url and this machine's DNS"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("no answer from %s within %s", host, timeout),
			"check that the store is up and that no firewall drops traffic from this machine; raise --timeout for a very slow store"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "cannot connect to " + host + ": " + cut(opErr.Err.Error(), 120),
			"check the scheme and port in store_url, and that the store is up and reachable from this machine"
	}
	return "no answer: " + cut(err.Error(), 200), "check store_url and that the store is reachable from this machine"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// refusedPort reports whether WordPress' wp_safe_remote_request refuses to
// deliver to rawURL's port (it allows 80, 443 and 8080 only).
func refusedPort(rawURL string) (port string, refused bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false
	}
	port = u.Port()
	if port == "" {
		return "", false
	}
	switch port {
	case "80", "443", "8080":
		return port, false
	}
	return port, true
}

// privateHost reports whether rawURL names a loopback or private address
// (literal IPs and localhost only: no DNS lookups), which WordPress refuses
// to deliver to unless a filter allows it.
func privateHost(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified())
}

func isLoopbackHost(u *url.URL) bool {
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// cut shortens s to n bytes (on a rune boundary) with an ellipsis.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// human formats a duration for a report line: 8ms, 2.5s, 1m30s, 1h.
func human(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// plural is "1 page", "2 pages", "1,000 pages".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return thousands(n) + " " + noun + "s"
}

// thousands formats n with thousands separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
