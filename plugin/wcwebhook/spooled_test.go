package wcwebhook

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
	bolt "go.etcd.io/bbolt"

	"github.com/wooevents/wooevents/plugin/wcevent"
)

// helperConfigEnv makes the test binary run a benthos stream from the YAML in
// that file instead of the tests (the subprocess of TestSpooledSurvivesKill).
const helperConfigEnv = "WCWEBHOOK_HELPER_CONFIG"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperConfigEnv); path != "" {
		os.Exit(runHelper(path))
	}
	os.Exit(m.Run())
}

func runHelper(path string) int {
	conf, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	b := service.NewStreamBuilder()
	if err := b.SetYAML(string(conf)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := b.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := s.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestSpooledSurvivesKill answers deliveries from a subprocess in spooled
// mode whose pipeline lags, kills it with SIGKILL while requests are in
// flight, restarts it on the same spool and requires every delivery that got
// a 200 to come out of one run or the other.
func TestSpooledSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	addr := freeAddr(t)
	url := "http://" + addr + DefaultPath

	start := func(name, processors string) (*exec.Cmd, string) {
		out := filepath.Join(dir, name+".jsonl")
		conf := fmt.Sprintf(`
input:
  woocommerce_webhook:
    address: %s
    store_url: %s
    secret: %s
    ack: spooled
    spool_dir: %s
pipeline:
  processors: %s
output:
  file:
    path: %s
    codec: lines
logger:
  level: error
`, addr, testStore, testSecret, spoolDir, processors, out)
		confPath := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperConfigEnv+"="+confPath)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		})
		require.Eventually(t, func() bool {
			resp, err := http.Post(url, "application/x-www-form-urlencoded", strings.NewReader("webhook_id=1"))
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 30*time.Second, 20*time.Millisecond, "%s did not start", name)
		return cmd, out
	}

	// Run A: 50ms per message in the pipeline, so the spool fills up.
	a, outA := start("a", `[ { sleep: { duration: 50ms } } ]`)

	const total = 300
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		sent     atomic.Int64
		wg       sync.WaitGroup
		killed   = make(chan struct{})
	)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				body := fmt.Appendf(nil, `{"id":%d,"status":"processing","date_modified_gmt":"2026-11-27T23:48:19"}`, id)
				resp, err := http.DefaultClient.Do(signedRequest(t, url, testSecret, "order.updated", "", body))
				if err != nil {
					continue // killed mid-request: not acknowledged
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					accepted[fmt.Sprint(id)] = true
					mu.Unlock()
				}
				sent.Add(1)
			}
		}()
	}
	go func() {
		defer close(next)
		for id := 1; id <= total; id++ {
			select {
			case next <- id:
			case <-killed:
				return
			}
		}
	}()
	// Kill once most requests were answered, with the rest in flight.
	require.Eventually(t, func() bool { return sent.Load() >= total*2/3 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, a.Process.Signal(syscall.SIGKILL))
	close(killed)
	_, _ = a.Process.Wait()
	wg.Wait()

	mu.Lock()
	nAccepted := len(accepted)
	mu.Unlock()
	emittedA := idsIn(t, outA)
	t.Logf("run A: %d accepted, %d emitted before the kill", nAccepted, len(emittedA))
	require.GreaterOrEqual(t, nAccepted, total*2/3)
	require.Less(t, len(emittedA), nAccepted, "the kill must leave accepted deliveries unemitted for the test to mean anything")

	// Run B on the same spool, without the lag.
	_, outB := start("b", `[]`)
	require.Eventually(t, func() bool {
		all := idsIn(t, outA)
		for id := range idsIn(t, outB) {
			all[id] = true
		}
		for id := range accepted {
			if !all[id] {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "accepted deliveries missing after the restart")
	emittedB := idsIn(t, outB)
	t.Logf("run B emitted %d", len(emittedB))
	assert.NotEmpty(t, emittedB)
}

// idsIn returns the object ids of the complete event lines in a file.
func idsIn(t testing.TB, path string) map[string]bool {
	ids := map[string]bool{}
	for _, l := range readLines(t, path) {
		if !gjson.Valid(l) {
			continue // a line cut by the kill
		}
		ids[gjson.Get(l, "object_id").Str] = true
	}
	return ids
}

// TestSpooledNackAndFull: a nacked spooled delivery is emitted again; a full
// spool answers 503 and the depth gauge follows.
func TestSpooledNackAndFull(t *testing.T) {
	var attempts sync.Map
	var run *streamRun
	run = startStream(t, fmt.Sprintf("  secret: %s\n  ack: spooled\n  spool_dir: %s\n  spool_max_bytes: 2000\n", testSecret, t.TempDir()),
		func(_ context.Context, m *service.Message) error {
			id, _ := m.MetaGet("woocommerce_object_id")
			n, _ := attempts.LoadOrStore(id, new(atomic.Int32))
			if id == "42" && n.(*atomic.Int32).Add(1) == 1 {
				return errors.New("first attempt fails")
			}
			run.Msgs <- m
			return nil
		}, "")
	status, _, _ := post(t, signedRequest(t, run.URL, testSecret, "order.updated", testStore, orderBody))
	require.Equal(t, http.StatusOK, status)
	msg := run.next(t)
	id, _ := msg.MetaGet("woocommerce_object_id")
	require.Equal(t, "42", id)
	n, _ := attempts.Load("42")
	assert.Equal(t, int32(2), n.(*atomic.Int32).Load())
	require.Eventually(t, func() bool { return run.Metrics.Get(MetricSpoolDepth) == 0 }, 5*time.Second, 5*time.Millisecond)

	// A delivery larger than the whole spool bound is refused with 503.
	big := fmt.Appendf(nil, `{"id":43,"pad":"%s"}`, strings.Repeat("x", 3000))
	status, hdr, _ := post(t, signedRequest(t, run.URL, testSecret, "order.updated", testStore, big))
	require.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "30", hdr.Get("Retry-After"))
	assert.Equal(t, int64(1), run.Metrics.Get(MetricRejections, "reason="+ReasonSpoolFull))
	run.sentinel(t, testSecret, testStore, 60001)
}

// TestSpooledNoteMatchesRecord: the message built from the in-memory copy
// handed over after the append is the one a restart builds from the file.
func TestSpooledNoteMatchesRecord(t *testing.T) {
	res := service.MockResources()
	f, err := openSpooledSink(t.TempDir(), 1<<20, &deleteChecks{}, res.Logger(), newMetrics(res.Metrics()))
	require.NoError(t, err)
	defer f.close()
	sp, sink := f.sp, f

	body := append([]byte(nil), orderBody...)
	fields, err := wcevent.ExtractFields(body)
	require.NoError(t, err)
	d := delivery{StoreName: "eu", Store: testStore, Topic: "order.updated", Resource: "order", Action: "updated",
		WebhookID: "7", DeliveryID: "d-1", ReceivedAt: time.Now(), Body: body}
	require.Equal(t, ok200, sink.accept(context.Background(), &d, fields))
	copy(body, strings.Repeat("x", len(body))) // the handler reuses its buffer

	fromMemory, err := sp.ReadAfter(0, 10)
	require.NoError(t, err)
	require.Len(t, fromMemory, 1)
	require.NotNil(t, fromMemory[0].Note)
	fromDisk, err := sp.ReadAfter(0, 10)
	require.NoError(t, err)
	require.Len(t, fromDisk, 1)
	require.Nil(t, fromDisk[0].Note)

	a := f.prepare(context.Background(), fromMemory[0])
	b := f.prepare(context.Background(), fromDisk[0])
	require.NotNil(t, a)
	require.NotNil(t, b)
	ab, err := a.AsBytes()
	require.NoError(t, err)
	bb, err := b.AsBytes()
	require.NoError(t, err)
	assert.JSONEq(t, string(bb), string(ab))
	assert.Equal(t, "42", gjson.GetBytes(ab, "object_id").Str)
	assert.Equal(t, "processing", gjson.GetBytes(ab, "data.status").Str)
	for _, k := range []string{MetaTopic, MetaWebhookID, MetaDeliveryID, MetaStoreName, "woocommerce_object_id"} {
		va, _ := a.MetaGet(k)
		vb, _ := b.MetaGet(k)
		assert.Equal(t, vb, va, k)
		assert.NotEmpty(t, va, k)
	}
}

// TestSpooledReadsBboltSpool: a spool directory written by an earlier
// version (bbolt, records of version 1 and 2) is read after the upgrade:
// its deliveries are emitted with their fields, and the bbolt file is gone.
func TestSpooledReadsBboltSpool(t *testing.T) {
	dir := t.TempDir()
	received := time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)
	v2 := delivery{StoreName: "eu", Store: testStore, Topic: "order.updated", Resource: "order", Action: "updated",
		WebhookID: "7", DeliveryID: "d-2", ReceivedAt: received, Body: orderBody}
	// Version 1: no store name.
	v1 := []byte{recordV1}
	for _, s := range []string{testStore, "product.created", "product", "created", "8", "d-1"} {
		v1 = binary.AppendUvarint(v1, uint64(len(s)))
		v1 = append(v1, s...)
	}
	v1 = binary.AppendVarint(v1, received.UnixNano())
	v1 = append(v1, `{"id":77,"date_modified_gmt":"2026-11-28T09:29:00"}`...)

	db, err := bolt.Open(filepath.Join(dir, "webhook-spool.db"), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("deliveries"))
		if err != nil {
			return err
		}
		for i, rec := range [][]byte{v1, v2.appendRecord(nil)} {
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], uint64(i+1))
			if err := b.Put(k[:], rec); err != nil {
				return err
			}
		}
		return b.SetSequence(2)
	}))
	require.NoError(t, db.Close())

	res := service.MockResources()
	f, err := openSpooledSink(dir, 1<<20, &deleteChecks{}, res.Logger(), newMetrics(res.Metrics()))
	require.NoError(t, err)
	defer f.close()
	_, err = os.Stat(filepath.Join(dir, "webhook-spool.db"))
	assert.True(t, os.IsNotExist(err), "migrated into the log")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var msgs []*service.Message
	for range 2 {
		batch, ack, err := f.read(ctx)
		require.NoError(t, err)
		require.Len(t, batch, 1)
		msgs = append(msgs, batch[0])
		require.NoError(t, ack(ctx, nil))
	}
	first, err := msgs[0].AsBytes()
	require.NoError(t, err)
	assert.Equal(t, "77", gjson.GetBytes(first, "object_id").Str)
	assert.Equal(t, "product", gjson.GetBytes(first, "resource").Str)
	topic, _ := msgs[0].MetaGet(MetaTopic)
	assert.Equal(t, "product.created", topic)
	_, hasStore := msgs[0].MetaGet(MetaStoreName)
	assert.False(t, hasStore, "version 1 records have no store name")

	second, err := msgs[1].AsBytes()
	require.NoError(t, err)
	assert.Equal(t, "42", gjson.GetBytes(second, "object_id").Str)
	assert.Equal(t, "processing", gjson.GetBytes(second, "data.status").Str)
	store, _ := msgs[1].MetaGet(MetaStoreName)
	assert.Equal(t, "eu", store)
	id, _ := msgs[1].MetaGet(MetaDeliveryID)
	assert.Equal(t, "d-2", id)
}
