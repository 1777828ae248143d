package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/bench"
)

// startCallbackPipeline runs the shipped pipeline, config/webhook_to_callback.yaml
// (which carries its resources), as documented at the top of that file: webhooks in
// (ack: spooled), the Cloud Elements envelope POSTed to the callback with
// retries, whatever still fails appended to
// $WOOEVENTS_DATA_DIR/dead-letter/callback-<day>.jsonl. Retries are
// shortened through the file's environment variables.
func startCallbackPipeline(t *testing.T, addr, callbackURL, dataDir string) *bench.Proc {
	t.Helper()
	root, err := bench.RepoRoot()
	require.NoError(t, err)
	args := []string{"-c", filepath.Join(root, "config", "webhook_to_callback.yaml")}
	p, err := bench.StartProc(bench.ProcOptions{Name: "webhook_to_callback", Path: binary, Args: args, LogDir: t.TempDir(),
		Env: []string{
			"WOOEVENTS_WEBHOOK_SECRET=" + bench.FixtureSecret,
			"WOOEVENTS_WEBHOOK_ADDRESS=" + addr,
			"WOOEVENTS_CALLBACK_URL=" + callbackURL,
			"WOOEVENTS_CALLBACK_MAX_ATTEMPTS=3",
			"WOOEVENTS_CALLBACK_INITIAL_BACKOFF=20ms",
			"WOOEVENTS_CALLBACK_MAX_ELAPSED=5s",
			"WOOEVENTS_CALLBACK_TIMEOUT=2s",
			"WOOEVENTS_DATA_DIR=" + dataDir,
			"WOOEVENTS_HTTP_ADDRESS=" + freePort(t),
		}})
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Errorf("stopping wooevents: %v", err)
		}
		if t.Failed() {
			t.Logf("wooevents log tail:\n%s", p.LogTail(4000))
		}
	})
	require.NoError(t, p.WaitTCP(addr, 30*time.Second))
	return p
}

// ceEvent is the part of the Cloud Elements envelope the test checks.
type ceEvent struct {
	Message struct {
		EventID string `json:"eventId"`
		Events  []struct {
			EventType  string `json:"eventType"`
			ObjectType string `json:"objectType"`
			ObjectID   string `json:"objectId"`
		} `json:"events"`
	} `json:"message"`
}

func (e *ceEvent) objectID() string {
	if len(e.Message.Events) != 1 {
		return ""
	}
	return e.Message.Events[0].ObjectID
}

// callback is an HTTP endpoint that can be taken down (listener closed:
// connection refused) and brought back on the same address.
type callback struct {
	t    *testing.T
	addr string

	mu       sync.Mutex
	srv      *http.Server
	received map[string]int // object_id → deliveries accepted with 200
}

func newCallback(t *testing.T) *callback {
	c := &callback{t: t, addr: freePort(t), received: map[string]int{}}
	c.up()
	t.Cleanup(c.down)
	return c
}

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ev ceEvent
	err = json.Unmarshal(body, &ev)
	if err != nil || ev.objectID() == "" || len(ev.Message.EventID) != 32 ||
		ev.Message.Events[0].EventType != "UPDATED" || ev.Message.Events[0].ObjectType != "orders" ||
		r.Header.Get("Elements-Webhook-Id") != ev.Message.EventID {
		c.t.Errorf("callback got an unexpected delivery (%v): headers %v body %.300s", err, r.Header, body)
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.received[ev.objectID()]++
	c.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (c *callback) up() {
	var l net.Listener
	var err error
	for range 100 { // the port may linger briefly after the last close
		if l, err = net.Listen("tcp", c.addr); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(c.t, err)
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 5 * time.Second}
	c.mu.Lock()
	c.srv = srv
	c.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// down closes the listener and waits for requests in progress to be
// answered, so an event is either received with 200 or not received.
func (c *callback) down() {
	c.mu.Lock()
	srv := c.srv
	c.srv = nil
	c.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(c.t, srv.Shutdown(ctx))
}

func (c *callback) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.received))
	for k, v := range c.received {
		out[k] = v
	}
	return out
}

// deadLetter is one record of the dead-letter files.
type deadLetter struct {
	EventID string  `json:"event_id"`
	Reason  string  `json:"reason"`
	Body    ceEvent `json:"body"`
}

// readDeadLetters reads the complete records under dataDir/dead-letter; a
// line still being appended (no newline yet) is left for the next call. It
// does not touch t, so conditions polled on other goroutines may call it.
func readDeadLetters(dataDir string) ([]deadLetter, error) {
	files, err := filepath.Glob(filepath.Join(dataDir, "dead-letter", "*.jsonl"))
	if err != nil {
		return nil, err
	}
	var out []deadLetter
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		raw = raw[:bytes.LastIndexByte(raw, '\n')+1]
		for _, line := range bytes.Split(raw, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var rec deadLetter
			if err := json.Unmarshal(line, &rec); err != nil {
				return nil, fmt.Errorf("dead letter line %q: %w", line, err)
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// countDeadLetters counts the complete dead-letter records (lines) without
// decoding them: cheap enough to poll while the files grow.
func countDeadLetters(dataDir string) (int, error) {
	files, err := filepath.Glob(filepath.Join(dataDir, "dead-letter", "*.jsonl"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		n += bytes.Count(raw, []byte("\n"))
	}
	return n, nil
}

// deadLettered checks every dead-letter record and counts them by object id.
func deadLettered(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	recs, err := readDeadLetters(dataDir)
	require.NoError(t, err)
	out := map[string]int{}
	for _, rec := range recs {
		assert.Equal(t, rec.Body.Message.EventID, rec.EventID)
		assert.NotEmpty(t, rec.Reason)
		out[rec.Body.objectID()]++
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// sender posts signed order deliveries, each for its own order id.
type sender struct {
	t       *testing.T
	addr    string
	capture *bench.Capture
	client  *http.Client
	nextID  atomic.Int64
	mu      sync.Mutex
	sent    map[string]int // object_id → HTTP status
}

func newSender(t *testing.T, addr string) *sender {
	s := &sender{t: t, addr: addr, capture: orderCapture(t), sent: map[string]int{},
		client: &http.Client{Timeout: 60 * time.Second}}
	s.nextID.Store(1000)
	return s
}

// send posts one delivery for a new order id and returns it.
func (s *sender) send() (string, int) {
	id := strconv.FormatInt(s.nextID.Add(1), 10)
	body := bytes.Replace(s.capture.Body, []byte(`{"id":20,`), []byte(`{"id":`+id+`,`), 1)
	req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+"/webhooks/woocommerce", bytes.NewReader(body))
	require.NoError(s.t, err)
	for _, k := range []string{"X-Wc-Webhook-Source", "X-Wc-Webhook-Topic", "X-Wc-Webhook-Resource", "X-Wc-Webhook-Event", "X-Wc-Webhook-Id", "Content-Type"} {
		req.Header.Set(k, s.capture.Header.Get(k))
	}
	req.Header.Set("X-Wc-Webhook-Signature", bench.Sign(bench.FixtureSecret, body))
	status := 0
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Errorf("delivery %s: %v", id, err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	s.mu.Lock()
	s.sent[id] = status
	s.mu.Unlock()
	return id, status
}

// sendN posts n deliveries from `workers` goroutines and returns their ids.
func (s *sender) sendN(n, workers int) []string {
	ids := make(chan string, n)
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				id, _ := s.send()
				ids <- id
			}
		}()
	}
	wg.Wait()
	close(ids)
	var out []string
	for id := range ids {
		out = append(out, id)
	}
	return out
}

// checkAccounting asserts events in = delivered + dead-lettered, each once,
// nothing else.
func checkAccounting(t *testing.T, s *sender, delivered, dead map[string]int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, status := range s.sent {
		assert.Equal(t, http.StatusOK, status, "webhook answer for order %s", id)
		d, l := delivered[id], dead[id]
		assert.Equal(t, 1, d+l, "order %s: delivered %d times and dead-lettered %d times", id, d, l)
	}
	for id := range delivered {
		assert.Contains(t, s.sent, id, "callback got an event nobody sent")
	}
	for id := range dead {
		assert.Contains(t, s.sent, id, "dead letter for an event nobody sent")
	}
	var nd, nl int
	for _, v := range delivered {
		nd += v
	}
	for _, v := range dead {
		nl += v
	}
	assert.Equal(t, len(s.sent), nd+nl, "events in = delivered + dead-lettered")
	t.Logf("events in %d = delivered %d + dead-lettered %d", len(s.sent), nd, nl)
}

func TestCallbackDownThenBack(t *testing.T) {
	cb := newCallback(t)
	addr := freePort(t)
	dataDir := t.TempDir()
	startCallbackPipeline(t, addr, "http://"+cb.addr+"/callback", dataDir)
	s := newSender(t, addr)
	// ack: spooled answers before delivery: wait for the outcome.
	settled := func(n int) func() bool {
		return func() bool {
			dead, err := countDeadLetters(dataDir)
			return err == nil && total(cb.snapshot())+dead >= n
		}
	}
	waitFor := pick(20*time.Second, 2*time.Minute)

	// Up: everything reaches the callback.
	phase1 := s.sendN(pick(40, 400), 4)
	require.Eventually(t, settled(len(phase1)), waitFor, 20*time.Millisecond)
	delivered := cb.snapshot()
	for _, id := range phase1 {
		assert.Equal(t, 1, delivered[id], "order %s while the callback is up", id)
	}

	// Down: every event is retried, then dead-lettered.
	cb.down()
	phase2 := s.sendN(pick(40, 400), 4)
	require.Eventually(t, settled(len(phase1)+len(phase2)), waitFor, 20*time.Millisecond)
	dead := deadLettered(t, dataDir)
	for _, id := range phase2 {
		assert.Equal(t, 1, dead[id], "order %s while the callback is down", id)
	}

	// Back: delivered again, nothing more dead-lettered.
	cb.up()
	phase3 := s.sendN(pick(40, 400), 4)
	require.Eventually(t, settled(len(phase1)+len(phase2)+len(phase3)), waitFor, 20*time.Millisecond)
	delivered = cb.snapshot()
	for _, id := range phase3 {
		assert.Equal(t, 1, delivered[id], "order %s after the callback is back", id)
	}
	assert.Equal(t, len(phase2), total(deadLettered(t, dataDir)))

	// Flapping under continuous traffic: the callback goes down and up
	// while deliveries are in flight. The offered load is paced (4 senders,
	// one delivery each per 40 ms: about 100/s) so that the backlog of
	// retries stays bounded however long the soak runs.
	flapFor := pick(3*time.Second, 3*time.Minute)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := time.NewTicker(40 * time.Millisecond)
			defer pace.Stop()
			for {
				select {
				case <-stop:
					return
				case <-pace.C:
					s.send()
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	end := time.Now().Add(flapFor)
	isUp := true
	for time.Now().Before(end) {
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		if isUp {
			cb.down()
		} else {
			cb.up()
		}
		isUp = !isUp
	}
	close(stop)
	wg.Wait()
	if !isUp {
		cb.up() // let the last retries through
	}
	s.mu.Lock()
	sent := len(s.sent)
	s.mu.Unlock()
	require.Eventually(t, settled(sent), waitFor, 50*time.Millisecond)
	cb.down()

	checkAccounting(t, s, cb.snapshot(), deadLettered(t, dataDir))
}
