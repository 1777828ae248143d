package wcwebhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostMounter is a host's listener: an httptest server that hands
// /hooks/<anything> to the mounted handler at its path, and answers 503
// itself while nothing is mounted.
type hostMounter struct {
	srv *httptest.Server

	mu        sync.Mutex
	h         http.Handler
	path      string
	mounts    int
	unmounts  int
	failFirst int // Mount calls to refuse
}

func newHostMounter(t *testing.T) *hostMounter {
	m := &hostMounter{}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		h, path := m.h, m.path
		m.mu.Unlock()
		if h == nil {
			http.Error(w, "not mounted", http.StatusServiceUnavailable)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = path
		h.ServeHTTP(w, r2)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *hostMounter) Mount(path string, h http.Handler) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failFirst > 0 {
		m.failFirst--
		return nil, errors.New("host not ready")
	}
	m.h, m.path = h, path
	m.mounts++
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.unmounts++
		if m.h == h {
			m.h = nil
		}
	}, nil
}

func (m *hostMounter) counts() (path string, mounts, unmounts int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.path, m.mounts, m.unmounts
}

// runMounted runs a stream whose woocommerce_webhook input (inputYAML) is
// mounted on host; messages go to the returned channel.
func runMounted(t *testing.T, host *hostMounter, inputYAML string) (msgs chan *service.Message, stop func()) {
	t.Helper()
	msgs = make(chan *service.Message, 100)
	b := env().NewStreamBuilder()
	require.NoError(t, b.SetLoggerYAML("level: none"))
	require.NoError(t, b.AddInputYAML(inputYAML))
	require.NoError(t, b.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
		msgs <- m
		return nil
	}))
	strm, err := b.Build()
	require.NoError(t, err)
	SetMounter(strm.Resources(), host)
	done := make(chan error, 1)
	go func() { done <- strm.Run(context.Background()) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			require.NoError(t, strm.StopWithin(10*time.Second))
			if err := <-done; err != nil {
				t.Logf("stream ended with: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return msgs, stop
}

func TestMountedOnHostListener(t *testing.T) {
	host := newHostMounter(t)
	own := freeAddr(t) // the address the input would listen on without a host
	msgs, stop := runMounted(t, host, "woocommerce_webhook:\n  address: "+own+"\n  path: /wc\n  secret: "+testSecret+"\n")

	require.Eventually(t, func() bool { _, n, _ := host.counts(); return n == 1 }, 10*time.Second, 10*time.Millisecond)
	path, _, _ := host.counts()
	assert.Equal(t, "/wc", path, "the input mounts its handler at its own path")

	url := host.srv.URL + "/hooks/7"
	body := []byte(`{"id":42,"status":"processing","date_modified_gmt":"2026-11-27T23:48:19"}`)
	status, _, _ := post(t, signedRequest(t, url, testSecret, "order.updated", "https://shop.example.com/", body))
	require.Equal(t, http.StatusOK, status)
	select {
	case m := <-msgs:
		oid, _ := m.MetaGet("woocommerce_object_id")
		assert.Equal(t, "42", oid)
		topic, _ := m.MetaGet("woocommerce_topic")
		assert.Equal(t, "order.updated", topic)
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery was not emitted")
	}
	status, _, _ = post(t, signedRequest(t, url, "wrong-secret", "order.updated", "https://shop.example.com/", body))
	assert.Equal(t, http.StatusUnauthorized, status, "the mounted handler checks signatures")

	// No listener of its own.
	conn, err := net.DialTimeout("tcp", own, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("the mounted input listens on %s", own)
	}

	stop()
	_, mounts, unmounts := host.counts()
	assert.Equal(t, 1, mounts)
	assert.Equal(t, 1, unmounts, "Close unmounts the handler")
	status, _, _ = post(t, signedRequest(t, url, testSecret, "order.updated", "https://shop.example.com/", body))
	assert.Equal(t, http.StatusServiceUnavailable, status, "after Close the host answers, not the input")
}

func TestMountRefusedIsRetried(t *testing.T) {
	host := newHostMounter(t)
	host.failFirst = 2
	runMounted(t, host, "woocommerce_webhook:\n  secret: "+testSecret+"\n")
	// benthos reconnects a failed Connect (after a backoff of about a second).
	require.Eventually(t, func() bool { _, n, _ := host.counts(); return n == 1 }, 20*time.Second, 20*time.Millisecond)
	status, _, _ := post(t, mustRequest(t, host.srv.URL+"/x", "webhook_id=1"))
	assert.Equal(t, http.StatusOK, status, "WooCommerce's ping reaches the mounted handler")
}

func mustRequest(t *testing.T, url, form string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(form))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
