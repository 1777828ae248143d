package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/bench"
)

const maxBody = 64 << 10

// fileConfig is the webhook input into a lines file, with short server
// timeouts so slow clients are cut off quickly. wooevents' own HTTP server
// is off: its default 127.0.0.1:4195 may be another test's.
func fileConfig(addr, outPath string) string {
	return fmt.Sprintf(`
http:
  enabled: false
input:
  woocommerce_webhook:
    address: %q
    path: /webhooks/woocommerce
    secret: %q
    ack: delivered
    max_body_bytes: %d
    read_header_timeout: 2s
    timeout: 3s
output:
  file:
    path: %q
    codec: lines
logger:
  level: ERROR
`, addr, bench.FixtureSecret, maxBody, outPath)
}

// emitted returns the object ids of every event in the output file.
func emitted(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var ids []string
	for line := range bytes.Lines(b) {
		var ev struct {
			ObjectID string `json:"object_id"`
		}
		require.NoError(t, json.Unmarshal(line, &ev), "output line %q", line)
		ids = append(ids, ev.ObjectID)
	}
	return ids
}

// rawExchange writes raw bytes on a new connection and returns the status
// of the answer, or 0 when the server closed without answering.
func rawExchange(t *testing.T, addr string, raw []byte, halfClose bool) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(15*time.Second)))
	_, err = c.Write(raw)
	require.NoError(t, err)
	if halfClose {
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// markerDelivery is a valid delivery for order id; once it shows up in the
// output everything sent before it has been processed.
func markerDelivery(c *bench.Capture, addr, id string) []byte {
	body := bytes.Replace(c.Body, []byte(`{"id":20,`), []byte(`{"id":`+id+`,`), 1)
	return c.Request(bench.DeliveryOptions{Path: "/webhooks/woocommerce", Host: addr, Secret: bench.FixtureSecret, Body: body, Close: true})
}

func TestBadWebhookInput(t *testing.T) {
	addr := freePort(t)
	outPath := filepath.Join(t.TempDir(), "events.jsonl")
	p := startWooevents(t, "badinput", fileConfig(addr, outPath), addr)
	c := orderCapture(t)
	path := "/webhooks/woocommerce"
	req := func(o bench.DeliveryOptions) []byte {
		if o.Path == "" {
			o.Path = path
		}
		o.Host = addr
		o.Close = true
		return c.Request(o)
	}
	tampered := bytes.Replace(c.Body, []byte(`"total":"104.00"`), []byte(`"total":"0.01"`), 1)
	require.NotEqual(t, c.Body, tampered)
	notJSON := []byte(`{"id":20,"status":`)
	noID := []byte(`{"status":"processing","date_modified_gmt":"2026-11-28T07:48:19"}`)
	large := append(bytes.Repeat([]byte(" "), maxBody+1), c.Body...)

	cases := []struct {
		name   string
		raw    []byte
		status int
		half   bool
	}{
		{"forged signature", req(bench.DeliveryOptions{Secret: "not-the-secret"}), 401, false},
		{"no signature", req(bench.DeliveryOptions{}), 401, false},
		{"signature of another body", req(bench.DeliveryOptions{Body: tampered, Signature: bench.Sign(bench.FixtureSecret, c.Body)}), 401, false},
		{"hex signature", req(bench.DeliveryOptions{Signature: fmt.Sprintf("%x", bench.Sign(bench.FixtureSecret, c.Body))}), 401, false},
		{"empty body signed", req(bench.DeliveryOptions{Body: []byte{}, Secret: bench.FixtureSecret}), 400, false},
		{"not JSON, signed", req(bench.DeliveryOptions{Body: notJSON, Secret: bench.FixtureSecret}), 400, false},
		// Signed by the store: WooCommerce sends an error object when it
		// could not build the payload; answered 200 (an error would count
		// towards disabling the webhook) and dropped.
		{"JSON without id, signed", req(bench.DeliveryOptions{Body: noID, Secret: bench.FixtureSecret}), 200, false},
		{"control characters in the id, signed", req(bench.DeliveryOptions{Body: []byte(`{"id":"1\u0007"}`), Secret: bench.FixtureSecret}), 400, false},
		{"bad topic, signed", req(bench.DeliveryOptions{Secret: bench.FixtureSecret, Header: map[string]string{
			"X-Wc-Webhook-Topic": "nonsense", "X-Wc-Webhook-Resource": "", "X-Wc-Webhook-Event": ""}}), 400, false},
		{"body over max_body_bytes", req(bench.DeliveryOptions{Body: large, Secret: bench.FixtureSecret}), 413, false},
		{"GET", []byte("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 405, false},
		{"wrong path", req(bench.DeliveryOptions{Path: "/elsewhere", Secret: bench.FixtureSecret}), 404, false},
		{"garbage request line", []byte("\x16\x03\x01\x02\x00 hello\r\n\r\n"), 400, false},
		{"truncated body", func() []byte {
			r := req(bench.DeliveryOptions{Secret: bench.FixtureSecret})
			return r[:len(r)-100]
		}(), 400, true},
		{"ping", []byte("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
			"Content-Length: 12\r\nConnection: close\r\n\r\nwebhook_id=5"), 200, false},
	}
	for _, tc := range cases {
		got := rawExchange(t, addr, tc.raw, tc.half)
		if tc.status == 400 && tc.half {
			// A body cut short may be answered 400 or just closed.
			assert.Contains(t, []int{0, 400}, got, tc.name)
			continue
		}
		assert.Equal(t, tc.status, got, tc.name)
	}

	// Signed deliveries whose body was altered in flight (random bytes
	// flipped after signing, same length): always 401.
	rng := rand.New(rand.NewPCG(7, 11))
	mutations := pick(300, 10000) // one connection each: stay well below the ephemeral ports
	good := c.Request(bench.DeliveryOptions{Path: path, Host: addr, Secret: bench.FixtureSecret})
	bodyStart := len(good) - len(c.Body)
	wrongStatus := map[int]int{}
	for range mutations {
		m := bytes.Clone(good)
		for range 1 + rng.IntN(4) {
			i := bodyStart + rng.IntN(len(c.Body))
			m[i] ^= byte(1 + rng.IntN(255))
		}
		if status, err := bench.SendOne(addr, m); err != nil || status != 401 {
			wrongStatus[status]++
		}
	}
	assert.Empty(t, wrongStatus, "status → count of altered deliveries not answered 401 (0 = transport error)")

	// The server is still up and a good delivery after all that is the only
	// event emitted.
	assert.Equal(t, 200, rawExchange(t, addr, markerDelivery(c, addr, "777001"), false))
	require.Eventually(t, func() bool { return len(emitted(t, outPath)) >= 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"777001"}, emitted(t, outPath))
	assert.False(t, p.Exited())
}

// slowClients keeps n connections open that each send a prefix at once and
// then dribble one byte every 500ms; when the server closes one, it
// reconnects. It records how long the server let each connection live.
type slowClients struct {
	mu        sync.Mutex
	lifetimes []time.Duration
	dialErrs  int
	wg        sync.WaitGroup
	stop      chan struct{}
}

func startSlowClients(addr string, prefixes [][]byte, n int) *slowClients {
	s := &slowClients{stop: make(chan struct{})}
	for i := range n {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case <-s.stop:
					return
				default:
				}
				s.one(addr, prefixes[i%len(prefixes)])
			}
		}()
	}
	return s
}

// one runs a single slow connection until the server closes it or stop.
func (s *slowClients) one(addr string, prefix []byte) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		s.mu.Lock()
		s.dialErrs++
		s.mu.Unlock()
		select {
		case <-s.stop:
		case <-time.After(100 * time.Millisecond):
		}
		return
	}
	defer conn.Close()
	opened := time.Now()
	closed := make(chan struct{})
	go func() { // returns when the server closes the connection
		_, _ = io.Copy(io.Discard, conn)
		close(closed)
	}()
	if _, err := conn.Write(prefix); err == nil {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
	dribble:
		for {
			select {
			case <-s.stop:
				return
			case <-closed:
				break dribble
			case <-tick.C:
				if _, err := conn.Write([]byte{'a'}); err != nil {
					break dribble
				}
			}
		}
	}
	select {
	case <-closed:
	case <-s.stop:
		return
	}
	s.mu.Lock()
	s.lifetimes = append(s.lifetimes, time.Since(opened))
	s.mu.Unlock()
}

func (s *slowClients) close() (lifetimes []time.Duration, dialErrs int) {
	close(s.stop)
	s.wg.Wait()
	return s.lifetimes, s.dialErrs
}

func TestSlowClientsDoNotStarveOthers(t *testing.T) {
	addr := freePort(t)
	outPath := filepath.Join(t.TempDir(), "events.jsonl")
	p := startWooevents(t, "slowloris", fileConfig(addr, outPath), addr)
	c := orderCapture(t)

	slow := pick(200, 2000)
	// Half never finish their headers, half send the complete headers of a
	// signed delivery and then dribble the body.
	good := c.Request(bench.DeliveryOptions{Path: "/webhooks/woocommerce", Host: addr, Secret: bench.FixtureSecret})
	headerEnd := bytes.Index(good, []byte("\r\n\r\n")) + 4
	slowHeaders := []byte("POST /webhooks/woocommerce HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	sc := startSlowClients(addr, [][]byte{slowHeaders, good[:headerEnd]}, slow)

	// Well-formed traffic from other clients while the slow ones hang on.
	res, err := bench.RunLoad(context.Background(), bench.LoadOptions{
		Addr: addr, Concurrency: 8, Rate: 100, Duration: pick(6*time.Second, 2*time.Minute),
		Requests: [][]byte{good},
	})
	lifetimes, dialErrs := sc.close()
	require.NoError(t, err)
	t.Logf("with %d slow connections kept open: %s", slow, res)
	assert.Equal(t, res.Completed, res.OK, "every well-formed delivery answered 200: %v", res.Statuses)
	assert.Zero(t, res.Errors, res.FirstError)
	assert.Zero(t, res.Unsent)
	assert.Less(t, res.P99, 200*time.Millisecond, "p99 of well-formed deliveries")
	assert.Zero(t, dialErrs, "slow clients could not connect")

	// The server cut the slow clients off: read_header_timeout (2s) for the
	// headers, read_header_timeout+timeout (5s) for a whole request.
	require.GreaterOrEqual(t, len(lifetimes), slow, "every slow connection was closed by the server at least once")
	longest := slices.Max(lifetimes)
	t.Logf("%d slow connections closed by the server, longest lived %s", len(lifetimes), longest.Round(time.Millisecond))
	assert.Less(t, longest, 8*time.Second)

	// Nothing from the slow clients was emitted: only the good deliveries.
	marker := markerDelivery(c, addr, "777002")
	assert.Equal(t, 200, rawExchange(t, addr, marker, false))
	require.Eventually(t, func() bool {
		ids := emitted(t, outPath)
		return len(ids) > 0 && ids[len(ids)-1] == "777002"
	}, 10*time.Second, 20*time.Millisecond)
	ids := emitted(t, outPath)
	assert.Len(t, ids, int(res.OK)+1)
	for _, id := range ids[:len(ids)-1] {
		assert.Equal(t, "20", id)
	}
	assert.False(t, p.Exited())
}
