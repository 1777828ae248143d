package wcpoll

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/wcevent"
	"github.com/wooevents/wooevents/tests/wcsim"
)

// helperEnv makes the test binary run a stream (the YAML in the variable)
// instead of the tests: the subprocess of TestCheckpointSurvivesSIGKILL.
const helperEnv = "WCPOLL_HELPER_STREAM"

func TestMain(m *testing.M) {
	if conf := os.Getenv(helperEnv); conf != "" {
		os.Exit(runHelperStream(conf))
	}
	os.Exit(m.Run())
}

func runHelperStream(conf string) int {
	sb := service.NewStreamBuilder()
	if err := sb.SetYAML(conf); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	stream, err := sb.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := stream.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// A nacked batch is redelivered (auto_replay_nacks), and the stored
// position does not pass it until it is acknowledged, even though later
// batches were acknowledged first.
func TestNackRedeliveredAndCheckpointHeld(t *testing.T) {
	sim := newSim(t, wcsim.Options{})
	first, last, err := sim.SeedWith(wcsim.Orders, 300, wcsim.SeedOptions{Start: t0.Add(-time.Hour), Status: "processing"})
	require.NoError(t, err)
	h := newHarness(t, sim, "resources: [{name: orders, trash: false}]\nstart_from: beginning\ninterval: 1h\n")
	w := service.AutoRetryNacksBatched(h.in)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h.in.producers[0].kick <- struct{}{}

	ids := func(b service.MessageBatch) []string {
		var out []string
		for _, e := range decodeBatch(t, b) {
			out = append(out, e.ObjectID)
		}
		return out
	}
	b1, ack1, err := w.ReadBatch(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, b1)
	assert.Equal(t, strconv.FormatInt(first, 10), ids(b1)[0])
	got := len(b1)
	var lastID string
	for got < 300 {
		b, ack, err := w.ReadBatch(ctx)
		require.NoError(t, err)
		got += len(b)
		lastID = ids(b)[len(b)-1]
		require.NoError(t, ack(ctx, nil))
		require.NoError(t, h.in.flush(ctx))
		assertNoWatermark(t, h, "the first batch is not acknowledged: no position may be stored")
	}
	require.Equal(t, 300, got)
	assert.Equal(t, strconv.FormatInt(last, 10), lastID)

	require.NoError(t, ack1(ctx, errors.New("output down")))
	again, ackAgain, err := w.ReadBatch(ctx)
	require.NoError(t, err)
	assert.Equal(t, ids(b1), ids(again), "the nacked batch is redelivered")
	require.NoError(t, h.in.flush(ctx))
	assertNoWatermark(t, h, "still not acknowledged")

	require.NoError(t, ackAgain(ctx, nil))
	require.NoError(t, h.in.flush(ctx))
	ck := h.storedCheckpoint()
	require.NotNil(t, ck)
	lastRaw, _ := sim.Get(wcsim.Orders, last)
	lastMod, err := wcevent.ParseWooTime(gjson.GetBytes(lastRaw, "date_modified_gmt").Str)
	require.NoError(t, err)
	require.NotNil(t, ck.Resources["orders"].Watermark)
	assert.GreaterOrEqual(t, *ck.Resources["orders"].Watermark, lastMod.Unix(), "every order acknowledged: the watermark passes the last")
}

// assertNoWatermark checks that no stored checkpoint has a position.
func assertNoWatermark(t *testing.T, h *harness, msg string) {
	t.Helper()
	if ck := h.storedCheckpoint(); ck != nil {
		assert.Nil(t, ck.Resources["orders"].Watermark, msg)
	}
}

// lineCounter counts the newlines of a growing file incrementally.
type lineCounter struct {
	off   int64
	lines int
}

func (c *lineCounter) count(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return c.lines
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		k, err := f.ReadAt(buf, c.off)
		c.lines += bytes.Count(buf[:k], []byte{'\n'})
		c.off += int64(k)
		if err != nil || k == 0 {
			return c.lines
		}
	}
}

// countLines reads the complete lines of the output files and returns the
// number of events per order id.
func countLines(t *testing.T, paths ...string) (map[string]int, int) {
	seen := map[string]int{}
	total := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		} else {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			r := gjson.GetManyBytes(sc.Bytes(), "type", "object_id")
			require.Equal(t, "order.created", r[0].Str, "a backfill emits created, also after a restart")
			seen[r[1].Str]++
			total++
		}
	}
	return seen, total
}

// Kill the process (SIGKILL) in the middle of a 20,000-order backfill,
// restart it: every order is emitted at least once.
func TestCheckpointSurvivesSIGKILL(t *testing.T) {
	const n = 20000
	sim := newSim(t, wcsim.Options{})
	first, last, err := sim.SeedWith(wcsim.Orders, n, wcsim.SeedOptions{Start: t0.Add(-10 * time.Hour), Status: "processing"})
	require.NoError(t, err)
	dir := t.TempDir()

	conf := func(out string) string {
		return fmt.Sprintf(`
input:
  woocommerce_poll:
    store_url: %s
    consumer_key: %s
    consumer_secret: %s
    resources: [{name: orders}]
    start_from: beginning
    interval: 100ms
    state_path: %s
    checkpoint_cache: ck
output:
  file:
    path: %s
    codec: lines
cache_resources:
  - label: ck
    bbolt:
      path: %s
logger:
  level: warn
`, sim.URL(), wcsim.DefaultConsumerKey, wcsim.DefaultConsumerSecret,
			filepath.Join(dir, "state.db"), out, filepath.Join(dir, "checkpoints.db"))
	}
	start := func(out string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+conf(out))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("helper stderr:\n%s", stderr.String())
			}
		})
		return cmd
	}
	out1, out2 := filepath.Join(dir, "out1.jsonl"), filepath.Join(dir, "out2.jsonl")

	cmd := start(out1)
	var lc lineCounter
	require.Eventually(t, func() bool { return lc.count(out1) >= n/3 }, 60*time.Second, 2*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	_, firstRun := countLines(t, out1)
	require.Less(t, firstRun, n, "killed in the middle")

	start(out2)
	var lc2 lineCounter
	require.Eventually(t, func() bool { return firstRun+lc2.count(out2) >= n }, 60*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		seen, _ := countLines(t, out1, out2)
		return len(seen) >= n
	}, 60*time.Second, 50*time.Millisecond)

	seen, total := countLines(t, out1, out2)
	for id := first; id <= last; id++ {
		require.GreaterOrEqual(t, seen[strconv.FormatInt(id, 10)], 1, "order %d", id)
	}
	dups := total - len(seen)
	t.Logf("first run emitted %d events before SIGKILL; after restart %d events in total for %d orders: %d duplicates", firstRun, total, len(seen), dups)
	assert.Less(t, dups, n/2, "the restart resumes from the checkpoint, not from the beginning")
}
