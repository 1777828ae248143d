package bench

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// FixtureSecret is the webhook secret of every signed capture in
// tests/fixtures/woocommerce/webhooks.
const FixtureSecret = "wcreal-webhook-secret"

// OrderUpdatedFixture is the captured 2.5 KB order.updated delivery the
// webhook benchmarks send.
const OrderUpdatedFixture = "tests/fixtures/woocommerce/webhooks/0016-order.updated-order-updated.http"

// Capture is one raw HTTP request as captured from WooCommerce.
type Capture struct {
	Method string
	Target string
	Header textproto.MIMEHeader
	// Body holds the raw body bytes, exactly as sent by the store.
	Body []byte
}

// RepoRoot finds the module root (the directory holding go.mod) from this
// source file, so tests and the driver find tests/fixtures wherever they run.
func RepoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		dir := filepath.Dir(file)
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

// LoadCapture reads a capture file (request line, headers, blank line, raw
// body). The body is cut to the captured Content-Length, byte for byte.
func LoadCapture(path string) (*Capture, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	head, body, found := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !found {
		if head, body, found = bytes.Cut(raw, []byte("\n\n")); !found {
			return nil, fmt.Errorf("%s: no blank line between headers and body", path)
		}
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	reqLine := strings.Fields(lines[0])
	if len(reqLine) != 3 {
		return nil, fmt.Errorf("%s: bad request line %q", path, lines[0])
	}
	c := &Capture{Method: reqLine[0], Target: reqLine[1], Header: textproto.MIMEHeader{}}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("%s: bad header line %q", path, l)
		}
		c.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if cl := c.Header.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n > len(body) {
			return nil, fmt.Errorf("%s: Content-Length %q does not match a %d byte body", path, cl, len(body))
		}
		body = body[:n]
	}
	c.Body = body
	return c, nil
}

// LoadRepoCapture loads a capture by its path relative to the module root.
func LoadRepoCapture(rel string) (*Capture, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	return LoadCapture(filepath.Join(root, rel))
}

// Sign returns base64(HMAC-SHA256(secret, body)), WooCommerce's
// X-WC-Webhook-Signature.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// deliveryHeaders are the capture headers a delivery carries over, in the
// order WooCommerce sends them.
var deliveryHeaders = []string{
	"User-Agent", "Content-Type", "X-Wc-Webhook-Source", "X-Wc-Webhook-Topic", "X-Wc-Webhook-Resource",
	"X-Wc-Webhook-Event", "X-Wc-Webhook-Id", "X-Wc-Webhook-Delivery-Id",
}

// DeliveryOptions change a delivery built from a capture.
type DeliveryOptions struct {
	// Path is the request target, e.g. /webhooks/woocommerce.
	Path string
	// Host is the Host header.
	Host string
	// Secret signs the body. Empty keeps no signature at all.
	Secret string
	// Signature, when set, is sent instead of the computed one.
	Signature string
	// Body, when set, replaces the captured body.
	Body []byte
	// Header overrides or adds headers (an empty value removes one).
	Header map[string]string
	// Close asks the server to close the connection after answering.
	Close bool
}

// Request builds a complete HTTP/1.1 request from the capture: the captured
// WooCommerce headers, a fresh signature over the exact body bytes, keep-alive.
func (c *Capture) Request(o DeliveryOptions) []byte {
	body := c.Body
	if o.Body != nil {
		body = o.Body
	}
	host := o.Host
	if host == "" {
		host = "localhost"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", c.Method, o.Path, host)
	overridden := map[string]bool{}
	for k := range o.Header {
		overridden[textproto.CanonicalMIMEHeaderKey(k)] = true
	}
	for _, k := range deliveryHeaders {
		if v := c.Header.Get(k); v != "" && !overridden[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	for k, v := range o.Header {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	sig := o.Signature
	if sig == "" && o.Secret != "" {
		sig = Sign(o.Secret, body)
	}
	if sig != "" {
		fmt.Fprintf(&b, "X-Wc-Webhook-Signature: %s\r\n", sig)
	}
	if o.Close {
		b.WriteString("Connection: close\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}
