// Package e2e runs the shipped pipelines (config/*.yaml with resources/) and the
// import-cloud-elements command with the real wooevents binary, against the
// store simulator (tests/wcsim, in this process), an in-process kfake cluster
// and local callback receivers that verify the signatures independently.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
)

var (
	binPath  string // the wooevents binary built by TestMain
	repoRoot string
)

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	dir, err := os.MkdirTemp("", "wooevents-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "wooevents")
	if env := os.Getenv("WOOEVENTS_E2E_BINARY"); env != "" {
		binPath = env // a binary built beforehand, e.g. by make
	} else {
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/wooevents")
		cmd.Dir = repoRoot
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building wooevents:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// repoPath is a path inside the repository.
func repoPath(p string) string { return filepath.Join(repoRoot, p) }

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	cmd      *exec.Cmd
	out      *syncBuffer
	done     chan struct{}
	waitErr  error
	httpAddr string
	dir      string
}

// startWooevents runs the binary in dir (the working directory, where ./data
// goes) with the environment env added, and stops it at the end of the test.
// It waits until /ready answers 200 unless wantExit is true.
func startWooevents(t *testing.T, dir string, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{out: &syncBuffer{}, done: make(chan struct{}), httpAddr: freeAddr(t), dir: dir}
	// bbolt files (poll state, dedupe cache) need their directory to exist.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o700))
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "WOOEVENTS_HTTP_ADDRESS="+p.httpAddr)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("wooevents %v output:\n%s", args, p.out.String())
		}
	})
	return p
}

func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		select {
		case <-p.done:
			t.Fatalf("wooevents exited early: %v\n%s", p.waitErr, p.out.String())
		default:
		}
		res, err := http.Get("http://" + p.httpAddr + "/ready")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "wooevents not ready:\n%s", p.out.String())
}

func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(25 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("wooevents did not stop on SIGTERM")
	}
}

// waitExit waits for a pipeline that ends by itself (a file input).
func (p *proc) waitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
		require.NoError(t, p.waitErr, p.out.String())
	case <-time.After(timeout):
		t.Fatalf("wooevents did not exit:\n%s", p.out.String())
	}
}

// runWooevents runs a command to completion and returns stdout and stderr.
func runWooevents(t *testing.T, dir string, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// callbackArgs are the resource files of the callback pipelines.
func callbackArgs(config string) []string {
	return []string{
		"-r", repoPath("resources/cloud_elements.yaml"),
		"-r", repoPath("resources/standard_webhooks.yaml"),
		"-r", repoPath("resources/callback.yaml"),
		"-c", repoPath(config),
	}
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
