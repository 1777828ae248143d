package wcwebhook

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/tests/wcsim"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// captureSecret signs every delivery in tests/fixtures/woocommerce/webhooks.
const captureSecret = "wcreal-webhook-secret"

const capturesDir = "../../tests/fixtures/woocommerce/webhooks"

// capture is one raw HTTP request from the fixtures.
type capture struct {
	Name   string
	Method string
	Target string
	Header http.Header
	Body   []byte
}

// parseCapture splits a raw request file into request line, headers and the
// exact body bytes. Header lines may end in CRLF or LF; the body is taken as
// is and checked against Content-Length.
func parseCapture(t testing.TB, path string) capture {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	sep := []byte("\r\n\r\n")
	i := bytes.Index(raw, sep)
	if j := bytes.Index(raw, []byte("\n\n")); i < 0 || (j >= 0 && j < i) {
		i, sep = j, []byte("\n\n")
	}
	require.GreaterOrEqual(t, i, 0, "%s: no blank line after the headers", path)
	head, body := raw[:i], raw[i+len(sep):]
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	parts := strings.SplitN(lines[0], " ", 3)
	require.Len(t, parts, 3, "%s: request line", path)
	c := capture{Name: filepath.Base(path), Method: parts[0], Target: parts[1], Header: http.Header{}, Body: body}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		require.True(t, ok, "%s: header line %q", path, l)
		c.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if cl := c.Header.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		require.NoError(t, err)
		require.Equal(t, n, len(body), "%s: body length differs from Content-Length (line endings?)", path)
	}
	return c
}

func loadCaptures(t testing.TB) []capture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(capturesDir, "*.http"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	sort.Strings(files)
	var out []capture
	for _, f := range files {
		out = append(out, parseCapture(t, f))
	}
	return out
}

// request builds an HTTP request replaying c against url.
func (c capture) request(t testing.TB, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(c.Method, url, bytes.NewReader(c.Body))
	require.NoError(t, err)
	for k, vs := range c.Header {
		switch k {
		case "Host", "Content-Length", "Connection":
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req
}

// ---- metrics exporter that tests can read ----

type testMetrics struct {
	mu     sync.Mutex
	values map[string]int64
}

func (m *testMetrics) key(name string, keys, values []string) string {
	if len(keys) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%s", k, values[i])
	}
	b.WriteByte('}')
	return b.String()
}

// Get sums the values of metric name whose labels include every given
// "label=value" (benthos adds label and path labels of its own).
func (m *testMetrics) Get(name string, labels ...string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var sum int64
	for k, v := range m.values {
		n, rest, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		have := strings.Split(strings.TrimSuffix(rest, "}"), ",")
		ok := true
		for _, l := range labels {
			found := false
			for _, h := range have {
				found = found || h == l
			}
			ok = ok && found
		}
		if ok {
			sum += v
		}
	}
	return sum
}

type testCounter struct {
	m   *testMetrics
	key string
}

func (c testCounter) Incr(n int64) {
	c.m.mu.Lock()
	c.m.values[c.key] += n
	c.m.mu.Unlock()
}
func (c testCounter) Timing(int64) {}
func (c testCounter) Set(v int64) {
	c.m.mu.Lock()
	c.m.values[c.key] = v
	c.m.mu.Unlock()
}

func (m *testMetrics) NewCounterCtor(name string, keys ...string) service.MetricsExporterCounterCtor {
	return func(values ...string) service.MetricsExporterCounter {
		return testCounter{m, m.key(name, keys, values)}
	}
}
func (m *testMetrics) NewTimerCtor(name string, keys ...string) service.MetricsExporterTimerCtor {
	return func(values ...string) service.MetricsExporterTimer { return testCounter{m, m.key(name, keys, values)} }
}
func (m *testMetrics) NewGaugeCtor(name string, keys ...string) service.MetricsExporterGaugeCtor {
	return func(values ...string) service.MetricsExporterGauge { return testCounter{m, m.key(name, keys, values)} }
}
func (m *testMetrics) Close(context.Context) error { return nil }

var (
	testMetricsMu  sync.Mutex
	testMetricsSet = map[string]*testMetrics{}
	testEnvOnce    sync.Once
	testEnv        *service.Environment
)

// env is the global environment plus a `wcwebhook_test` metrics exporter
// whose values tests read back by id.
func env() *service.Environment {
	testEnvOnce.Do(func() {
		testEnv = service.NewEnvironment()
		err := testEnv.RegisterMetricsExporter("wcwebhook_test",
			service.NewConfigSpec().Field(service.NewStringField("id")),
			func(conf *service.ParsedConfig, _ *service.Logger) (service.MetricsExporter, error) {
				id, err := conf.FieldString("id")
				if err != nil {
					return nil, err
				}
				testMetricsMu.Lock()
				defer testMetricsMu.Unlock()
				return testMetricsSet[id], nil
			})
		if err != nil {
			panic(err)
		}
	})
	return testEnv
}

// ---- a running stream with the input and a consumer func output ----

type streamRun struct {
	URL     string // http://127.0.0.1:port + path
	Base    string // http://127.0.0.1:port
	Msgs    chan *service.Message
	Metrics *testMetrics
	stream  *service.Stream
	done    chan error
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startStream runs a stream whose input is `woocommerce_webhook` with the
// given YAML fields (indented by the caller as input fields, without address)
// and whose output hands messages to consume (default: record them in Msgs
// and ack). resources is optional extra resources YAML. {{BASE}} in
// inputFields becomes http://<address>.
func startStream(t testing.TB, inputFields string, consume func(context.Context, *service.Message) error, resources string) *streamRun {
	t.Helper()
	return startStreamOn(t, freeAddr(t), inputFields, consume, resources)
}

// startStreamAt starts a stream on the address of a stopped one (base is
// its http://host:port).
func startStreamAt(t testing.TB, base, inputFields string) *streamRun {
	t.Helper()
	return startStreamOn(t, strings.TrimPrefix(base, "http://"), inputFields, nil, "")
}

func startStreamOn(t testing.TB, addr, inputFields string, consume func(context.Context, *service.Message) error, resources string) *streamRun {
	t.Helper()
	id := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	m := &testMetrics{values: map[string]int64{}}
	testMetricsMu.Lock()
	testMetricsSet[id] = m
	testMetricsMu.Unlock()

	run := &streamRun{Base: "http://" + addr, Msgs: make(chan *service.Message, 1000), Metrics: m, done: make(chan error, 1)}
	b := env().NewStreamBuilder()
	require.NoError(t, b.SetLoggerYAML("level: error"))
	require.NoError(t, b.SetMetricsYAML(fmt.Sprintf("wcwebhook_test:\n  id: %q\n", id)))
	if resources != "" {
		require.NoError(t, b.AddResourcesYAML(resources))
	}
	inputFields = strings.ReplaceAll(inputFields, "{{BASE}}", run.Base)
	require.NoError(t, b.AddInputYAML("woocommerce_webhook:\n  address: "+addr+"\n"+inputFields))
	if consume == nil {
		consume = func(_ context.Context, msg *service.Message) error {
			run.Msgs <- msg
			return nil
		}
	}
	require.NoError(t, b.AddConsumerFunc(consume))
	s, err := b.Build()
	require.NoError(t, err)
	run.stream = s
	go func() { run.done <- s.Run(context.Background()) }()

	path := DefaultPath
	for _, l := range strings.Split(inputFields, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "path:"); ok {
			path = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	run.URL = run.Base + path
	// Ready once the ping is answered.
	require.Eventually(t, func() bool {
		resp, err := http.Post(run.URL, "application/x-www-form-urlencoded", strings.NewReader("webhook_id=1"))
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond)
	t.Cleanup(func() { run.Stop(t) })
	return run
}

// Stop stops the stream (idempotent).
func (r *streamRun) Stop(t testing.TB) {
	if r.stream == nil {
		return
	}
	s := r.stream
	r.stream = nil
	require.NoError(t, s.StopWithin(10*time.Second))
	if err := <-r.done; err != nil {
		t.Logf("stream ended with: %v", err)
	}
}

// post sends a request and returns status, Retry-After and body.
func post(t testing.TB, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// signedRequest builds a delivery as WooCommerce sends it.
func signedRequest(t testing.TB, url, secret, topic, source string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "WooCommerce/11.0.1 Hookshot (WordPress/7.1)")
	if topic != "" {
		req.Header.Set("X-WC-Webhook-Topic", topic)
		res, ev, _ := strings.Cut(topic, ".")
		req.Header.Set("X-WC-Webhook-Resource", res)
		req.Header.Set("X-WC-Webhook-Event", ev)
	}
	if source != "" {
		req.Header.Set("X-WC-Webhook-Source", source)
	}
	req.Header.Set("X-WC-Webhook-ID", "7")
	req.Header.Set("X-WC-Webhook-Delivery-ID", "d41d8cd98f00b204e9800998ecf8427e")
	if secret != "" {
		req.Header.Set("X-WC-Webhook-Signature", Sign(secret, body))
	}
	return req
}

// next waits for the next emitted message.
func (r *streamRun) next(t testing.TB) *service.Message {
	t.Helper()
	select {
	case m := <-r.Msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message emitted within 10s")
		return nil
	}
}

// sentinel sends a valid delivery for object id and requires that the next
// emitted message is it: everything sent before that was not emitted.
func (r *streamRun) sentinel(t testing.TB, secret, source string, id int) {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"id":%d,"status":"processing","date_modified_gmt":"2026-11-27T23:48:19"}`, id))
	status, _, _ := post(t, signedRequest(t, r.URL, secret, "order.updated", source, body))
	require.Equal(t, http.StatusOK, status)
	msg := r.next(t)
	oid, _ := msg.MetaGet("woocommerce_object_id")
	require.Equal(t, strconv.Itoa(id), oid, "a message other than the sentinel was emitted first")
}

// readLines reads a file of JSON lines (missing file: none).
func readLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// newSimClient is a REST client for the simulator with its read/write key.
func newSimClient(sim *wcsim.Store) (*wcclient.Client, error) {
	return wcclient.New(wcclient.Config{StoreURL: sim.URL(), ConsumerKey: wcsim.DefaultConsumerKey,
		ConsumerSecret: wcsim.DefaultConsumerSecret, MaxRetryElapsed: -1})
}

func tctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = cancel // released by the timeout
	return ctx
}

func webhookURLUpdate(url string) wcclient.WebhookUpdate {
	return wcclient.WebhookUpdate{DeliveryURL: url}
}

// newTestInput builds the input from YAML fields, through the spec like a
// pipeline does (its defaults are the spec's).
func newTestInput(yaml string) (*Input, error) {
	conf, err := Spec().ParseYAML(yaml, nil)
	if err != nil {
		return nil, err
	}
	return New(conf, service.MockResources())
}
