package ceserve

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

const (
	testUser   = "user-secret-for-tests"
	testOrg    = "organization-secret-for-tests"
	accountKey = "User " + testUser + ", Organization " + testOrg
	// The seed bodies' signature key.
	fixtureSigKey = "example-signature-key"
	waitFor       = 20 * time.Second
	tick          = 20 * time.Millisecond
)

func startSim(t testing.TB) *wcsim.Store {
	t.Helper()
	s := wcsim.New(wcsim.Options{})
	require.NoError(t, s.Start())
	t.Cleanup(s.Close)
	return s
}

// seedBody reads a seed body of tests/fixtures/cloud-elements and applies
// edits to it (see editBody).
func seedBody(t testing.TB, name string, conf map[string]any, top map[string]any) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "tests", "fixtures", "cloud-elements", name))
	require.NoError(t, err)
	return editBody(t, b, conf, top)
}

// editBody sets configuration keys (nil deletes one) and top-level keys
// (nil deletes one) of a body.
func editBody(t testing.TB, body []byte, conf map[string]any, top map[string]any) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	c := m["configuration"].(map[string]any)
	for _, edit := range []struct {
		into map[string]any
		from map[string]any
	}{{c, conf}, {m, top}} {
		for k, v := range edit.from {
			if v == nil {
				delete(edit.into, k)
			} else {
				edit.into[k] = v
			}
		}
	}
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// pollingBody is the polling seed pointed at sim and cb, polling every
// 1.2 seconds (0.02 minutes) with the simulator's read-only key.
func pollingBody(t testing.TB, sim *wcsim.Store, cb string) []byte {
	return seedBody(t, "polling-instance.json", map[string]any{
		"store.url":                       sim.URL(),
		"oauth.api.key":                   wcsim.DefaultReadOnlyConsumerKey,
		"oauth.api.secret":                wcsim.DefaultReadOnlyConsumerSecret,
		"event.notification.callback.url": cb,
		"event.poller.refresh_interval":   "0.02",
	}, nil)
}

func webhookBody(t testing.TB, sim *wcsim.Store, cb string) []byte {
	return seedBody(t, "webhook-instance.json", map[string]any{
		"store.url":                       sim.URL(),
		"oauth.api.key":                   wcsim.DefaultConsumerKey,
		"oauth.api.secret":                wcsim.DefaultConsumerSecret,
		"event.notification.callback.url": cb,
	}, nil)
}

type testServer struct {
	*Server
	base string
	logs *syncBuffer
}

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

// newTestServer starts a Server on a free port with a public URL pointing
// at itself (webhooks are delivered to it), in dir (a new temporary
// directory when empty).
func newTestServer(t testing.TB, dir string, edit func(*Options)) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	logs := &syncBuffer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	opts := Options{
		Listener:           ln,
		PublicURL:          base,
		DataDir:            dir,
		UserSecret:         testUser,
		OrganizationSecret: testOrg,
		Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		RegisterTimeout:    10 * time.Second,
	}
	if edit != nil {
		edit(&opts)
	}
	srv, err := New(opts)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	ts := &testServer{Server: srv, base: base, logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return ts
}

// call sends an API request and returns the status and the decoded body.
func (ts *testServer) call(t testing.TB, method, path, auth string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, b
}

// create POSTs a body and requires 200.
func (ts *testServer) create(t testing.TB, body []byte) instanceJSON {
	t.Helper()
	code, b := ts.call(t, http.MethodPost, InstancesPath, accountKey, body)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var out instanceJSON
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func (ts *testServer) instance(t testing.TB, id int64) instanceJSON {
	t.Helper()
	code, b := ts.call(t, http.MethodGet, InstancesPath+"/"+itoa(id), accountKey, nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var out instanceJSON
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func itoa(id int64) string { return strings.TrimSpace(string(mustJSON(id))) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// notification is the Cloud Elements envelope as a receiver reads it.
type notification struct {
	Message struct {
		EventID      string          `json:"eventId"`
		InstanceName string          `json:"instanceName"`
		InstanceTags []string        `json:"instanceTags"`
		Raw          json.RawMessage `json:"raw"`
		Events       []struct {
			EventType  string `json:"eventType"`
			ObjectType string `json:"objectType"`
			ObjectID   string `json:"objectId"`
		} `json:"events"`
	} `json:"message"`
}

func (n notification) key() string {
	e := n.Message.Events[0]
	return e.ObjectType + "/" + e.ObjectID + "/" + e.EventType
}

// callback is a notification receiver that checks Elements-Webhook-Signature
// itself (crypto/hmac over the raw body); a request that does not verify is
// answered 401 and counted as rejected. down makes it answer 503.
type callback struct {
	srv      *httptest.Server
	key      string
	mu       sync.Mutex
	got      []notification
	rejected []string
	down     bool
}

func newCallback(t testing.TB, key string) *callback {
	cb := &callback{key: key}
	cb.srv = httptest.NewServer(http.HandlerFunc(cb.handle))
	t.Cleanup(cb.srv.Close)
	return cb
}

func (cb *callback) URL() string { return cb.srv.URL + "/callback" }

func (cb *callback) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	mac := hmac.New(sha256.New, []byte(cb.key))
	mac.Write(body)
	want := "sha256=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(r.Header.Get("Elements-Webhook-Signature"))) {
		cb.rejected = append(cb.rejected, "bad signature")
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var n notification
	if err := json.Unmarshal(body, &n); err != nil || len(n.Message.Events) != 1 || r.Header.Get("Elements-Webhook-Id") != n.Message.EventID {
		cb.rejected = append(cb.rejected, "bad envelope: "+string(body))
		http.Error(w, "bad envelope", http.StatusBadRequest)
		return
	}
	cb.got = append(cb.got, n)
	w.WriteHeader(http.StatusOK)
}

func (cb *callback) setDown(down bool) {
	cb.mu.Lock()
	cb.down = down
	cb.mu.Unlock()
}

func (cb *callback) keys() map[string]int {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	out := map[string]int{}
	for _, n := range cb.got {
		out[n.key()]++
	}
	return out
}

func (cb *callback) rejections() []string {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return append([]string(nil), cb.rejected...)
}

func (cb *callback) has(k string) bool { return cb.keys()[k] > 0 }
