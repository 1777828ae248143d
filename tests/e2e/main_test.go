// Package e2e runs the shipped pipelines (config/*.yaml with resources/) and the
// import-cloud-elements command with the real wooevents binary, against the
// store simulator (tests/wcsim, in this process), an in-process kfake cluster
// and local callback receivers that verify the signatures independently.
package e2e

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/testproc"
)

var binPath string // the wooevents binary: $WOOEVENTS_BIN, or built by TestMain

func TestMain(m *testing.M) {
	os.Exit(testproc.MainWithBinary(m, &binPath))
}

// repoPath is a path inside the repository.
func repoPath(p string) string { return filepath.Join(testproc.RepoRoot(), p) }

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t testing.TB) string { return testproc.FreeAddr(t) }

// proc is a running pipeline with its own benthos HTTP server (/ready, /metrics).
type proc struct {
	*testproc.Proc
	httpAddr string
}

// startWooevents runs the binary in dir (the working directory, where ./data
// goes) with the environment env added and WOOEVENTS_HTTP_ADDRESS set to a free
// address; it is stopped at the end of the test.
func startWooevents(t *testing.T, dir string, env map[string]string, args ...string) *proc {
	t.Helper()
	httpAddr := testproc.FreeAddr(t)
	all := map[string]string{"WOOEVENTS_HTTP_ADDRESS": httpAddr}
	for k, v := range env {
		all[k] = v
	}
	return &proc{Proc: testproc.Start(t, binPath, dir, all, args...), httpAddr: httpAddr}
}

func (p *proc) waitReady(t *testing.T) { t.Helper(); p.WaitReady(t, p.httpAddr) }

func (p *proc) stop(t *testing.T) { p.Stop(t) }

// waitExit waits for a pipeline that ends by itself (a file input).
func (p *proc) waitExit(t *testing.T, timeout time.Duration) { t.Helper(); p.WaitExit(t, timeout) }

// runWooevents runs a command to completion and returns stdout and stderr.
func runWooevents(t *testing.T, dir string, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	return testproc.Run(t, binPath, dir, env, args...)
}

// callbackArgs run a callback pipeline as the README shows it: the file
// carries the resources it uses, no -r flags.
func callbackArgs(config string) []string {
	return []string{"-c", repoPath(config)}
}

// ---------------------------------------------------------------------------
// Captured webhook deliveries

type capture struct {
	name   string
	header http.Header
	body   []byte
}

// webhookCaptures reads tests/fixtures/woocommerce/webhooks/*.http.
func webhookCaptures(t testing.TB) []capture {
	t.Helper()
	files, err := filepath.Glob(repoPath("tests/fixtures/woocommerce/webhooks/*.http"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var out []capture
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
		if !ok {
			head, body, ok = bytes.Cut(raw, []byte("\n\n"))
		}
		require.True(t, ok, f)
		c := capture{name: filepath.Base(f), header: http.Header{}, body: body}
		sc := bufio.NewScanner(bytes.NewReader(head))
		sc.Scan() // request line
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			switch strings.ToLower(k) {
			case "host", "content-length", "connection", "accept-encoding":
				continue
			}
			c.header.Add(k, strings.TrimSpace(v))
		}
		out = append(out, c)
	}
	return out
}

// replay POSTs captures to url, as WooCommerce sent them, and requires 200s.
func replay(t *testing.T, url string, caps []capture) {
	t.Helper()
	for _, c := range caps {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(c.body))
		require.NoError(t, err)
		req.Header = c.header.Clone()
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err, c.name)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", c.name, b)
	}
}

// The webhook secret of the captures.
const captureSecret = "wcreal-webhook-secret"

// Deliveries among the captures that carry an event (pings and the two
// customer error bodies carry none).
const captureEvents = 10

// ---------------------------------------------------------------------------
// Callback receiver

const (
	ceKey     = "example-signature-key"
	swSecret1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swSecret2 = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tMTIzNDU2"
)

type notification struct {
	Message struct {
		EventID      string          `json:"eventId"`
		ElementKey   string          `json:"elementKey"`
		InstanceName string          `json:"instanceName"`
		InstanceTags []string        `json:"instanceTags"`
		Raw          json.RawMessage `json:"raw"`
		Events       []struct {
			EventType  string `json:"eventType"`
			ObjectType string `json:"objectType"`
			ObjectID   string `json:"objectId"`
			ElementKey string `json:"elementKey"`
			Date       string `json:"date"`
		} `json:"events"`
	} `json:"message"`
}

type received struct {
	header http.Header
	body   []byte
	n      notification
	at     time.Time
}

// callbackServer verifies every request: Elements-Webhook-Signature
// recomputed here with crypto/hmac when ceKey is set, and the Standard
// Webhooks headers with the standard-webhooks library (5 minute tolerance)
// when swSecret is set. Unverifiable requests get 401 and are recorded as
// rejected. respond, when set, may answer a verified request instead of 200.
type callbackServer struct {
	t        *testing.T
	srv      *httptest.Server
	ceKey    string
	sw       *standardwebhooks.Webhook
	mu       sync.Mutex
	ok       []received
	rejected []string
	attempts map[string]int // per event id
	respond  func(r received, attempt int, w http.ResponseWriter) bool
}

func newCallbackServer(t *testing.T, ceKey, swSecret string) *callbackServer {
	cs := &callbackServer{t: t, ceKey: ceKey, attempts: map[string]int{}}
	if swSecret != "" {
		wh, err := standardwebhooks.NewWebhook(swSecret)
		require.NoError(t, err)
		cs.sw = wh
	}
	cs.srv = httptest.NewServer(http.HandlerFunc(cs.handle))
	t.Cleanup(cs.srv.Close)
	return cs
}

func (cs *callbackServer) URL() string { return cs.srv.URL + "/callback" }

func (cs *callbackServer) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := received{header: r.Header.Clone(), body: body, at: time.Now()}
	reject := func(reason string) {
		cs.mu.Lock()
		cs.rejected = append(cs.rejected, reason)
		cs.mu.Unlock()
		http.Error(w, reason, http.StatusUnauthorized)
	}
	if err := json.Unmarshal(body, &rec.n); err != nil {
		reject("body is not JSON: " + err.Error())
		return
	}
	id := r.Header.Get("Elements-Webhook-Id")
	if id == "" || id != rec.n.Message.EventID {
		reject(fmt.Sprintf("Elements-Webhook-Id %q is not the eventId %q", id, rec.n.Message.EventID))
		return
	}
	if cs.ceKey != "" {
		mac := hmac.New(sha256.New, []byte(cs.ceKey))
		mac.Write(body)
		want := "sha256=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(want), []byte(r.Header.Get("Elements-Webhook-Signature"))) {
			reject("bad Elements-Webhook-Signature")
			return
		}
	} else if r.Header.Get("Elements-Webhook-Signature") != "" {
		reject("unexpected Elements-Webhook-Signature")
		return
	}
	if cs.sw != nil {
		if err := cs.sw.Verify(body, r.Header); err != nil {
			reject("standard webhooks: " + err.Error())
			return
		}
		if r.Header.Get("webhook-id") != rec.n.Message.EventID {
			reject("webhook-id is not the event id")
			return
		}
	}
	cs.mu.Lock()
	cs.attempts[id]++
	attempt := cs.attempts[id]
	cs.mu.Unlock()
	if cs.respond != nil && cs.respond(rec, attempt, w) {
		return
	}
	cs.mu.Lock()
	cs.ok = append(cs.ok, rec)
	cs.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (cs *callbackServer) delivered() []received {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]received(nil), cs.ok...)
}

func (cs *callbackServer) rejections() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]string(nil), cs.rejected...)
}

// readJSONLines reads every line of the files matching glob.
func readJSONLines(t testing.TB, glob string) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(glob)
	var out []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var m map[string]any
			require.NoError(t, json.Unmarshal(line, &m), "%s: %s", f, line)
			out = append(out, m)
		}
	}
	return out
}

func countLines(glob string) int {
	files, _ := filepath.Glob(glob)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n += bytes.Count(b, []byte("\n"))
	}
	return n
}
