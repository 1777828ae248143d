package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wooevents/wooevents/tests/wcsim"
)

// hybrid runs config/hybrid_to_kafka.yaml against a simulator and a kfake
// cluster, with webhooks for the order topics.
type hybrid struct {
	t     *testing.T
	sim   *wcsim.Store
	dir   string
	env   map[string]string
	hooks map[string]int64 // topic -> webhook id
}

const hybridHookSecret = "hybrid-webhook-secret"

func newHybrid(t *testing.T, sim *wcsim.Store, brokers []string) *hybrid {
	h := &hybrid{t: t, sim: sim, dir: t.TempDir(), hooks: map[string]int64{}}
	addr := freeAddr(t)
	h.env = merge(simEnv(sim), map[string]string{
		"WOOEVENTS_WEBHOOK_SECRET":          hybridHookSecret,
		"WOOEVENTS_WEBHOOK_ADDRESS":         addr,
		"WOOEVENTS_KAFKA_BROKERS":           strings.Join(brokers, ","),
		"WOOEVENTS_POLL_INTERVAL":           "300ms",
		"WOOEVENTS_POLL_RECONCILE_INTERVAL": "0s",
	})
	for _, topic := range []string{"order.created", "order.updated", "order.deleted"} {
		id, err := sim.AddWebhook(topic, "http://"+addr+"/webhooks/woocommerce", hybridHookSecret)
		require.NoError(t, err)
		h.hooks[topic] = id
	}
	return h
}

// start runs the pipeline in h.dir (the same data directory every time).
func (h *hybrid) start() *proc {
	p := startWooevents(h.t, h.dir, h.env, "-c", repoPath("config/hybrid_to_kafka.yaml"))
	p.waitReady(h.t)
	return p
}

// change applies fn in a new second of the store's (frozen) clock, so that
// every change has its own date_modified_gmt, and returns the version key of
// the order after it.
func (h *hybrid) change(oid int64, fn func() error) string {
	h.t.Helper()
	h.sim.Advance(time.Second)
	require.NoError(h.t, fn())
	return h.versionKey(oid)
}

// versionKey is store|order|id|date_modified_gmt of the order now, computed
// from the simulator's REST representation.
func (h *hybrid) versionKey(oid int64) string {
	h.t.Helper()
	raw, ok := h.sim.Get(wcsim.Orders, oid)
	require.True(h.t, ok, "order %d", oid)
	var o struct {
		DateModifiedGMT string `json:"date_modified_gmt"`
	}
	require.NoError(h.t, json.Unmarshal(raw, &o))
	m, err := time.Parse("2006-01-02T15:04:05", o.DateModifiedGMT)
	require.NoError(h.t, err)
	return strings.TrimRight(h.sim.URL(), "/") + "|order|" + strconv.FormatInt(oid, 10) + "|" + m.UTC().Format(time.RFC3339)
}

func (h *hybrid) create(status string) (int64, string) {
	h.t.Helper()
	h.sim.Advance(time.Second)
	oid, err := h.sim.Create(wcsim.Orders, map[string]any{"status": status})
	require.NoError(h.t, err)
	return oid, h.versionKey(oid)
}

func (h *hybrid) update(oid int64, status string) string {
	return h.change(oid, func() error { return h.sim.Update(wcsim.Orders, oid, map[string]any{"status": status}) })
}

func (h *hybrid) setHook(topic, status string) {
	h.t.Helper()
	require.NoError(h.t, h.sim.SetWebhookStatus(h.hooks[topic], status))
}

// byVersion groups records by their woocommerce_version_key header.
func byVersion(rs []*kgo.Record) map[string][]*kgo.Record {
	out := map[string][]*kgo.Record{}
	for _, r := range rs {
		k := header(r, "woocommerce_version_key")
		out[k] = append(out[k], r)
	}
	return out
}

// waitVersions waits until every version key has a record.
func waitVersions(t *testing.T, cons *consumer, versions ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := byVersion(cons.poll()) // waits up to 200ms for records
		missing := 0
		for _, v := range versions {
			if len(got[v]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %v not in Kafka; records: %v", missing, versions, recordKeys(cons.records))
		}
	}
}

// config/hybrid_to_kafka.yaml in normal operation: every change is published
// exactly once, whichever input sees it first and however many times: a REST
// create (order.created and order.updated webhooks with the same state, and
// the poll), an update (webhook and poll), a change whose webhook is lost
// (poll only) and a trash (order.deleted webhook confirmed over REST, and the
// poll's trash listing). Run with -count=N to check for intermittent
// duplicates.
func TestHybridToKafka(t *testing.T) {
	kc := startKafka(t)
	sim := startSim(t)
	h := newHybrid(t, sim, kc.ListenAddrs())
	p := h.start()
	cons := orderConsumer(t, kc)
	defer func() {
		if t.Failed() {
			res, err := http.Get("http://" + p.httpAddr + "/metrics")
			if err == nil {
				b, _ := io.ReadAll(res.Body)
				for _, l := range strings.Split(string(b), "\n") {
					if !strings.HasPrefix(l, "#") && !strings.Contains(l, "latency") && !strings.HasSuffix(l, " 0") {
						t.Log(l)
					}
				}
			}
		}
	}()

	oid, vCreate := h.create("processing")
	vUpdate := h.update(oid, "completed")
	// The order.updated webhook is disabled (WooCommerce does that after
	// failed deliveries) for one change: only the poll can see it, and only
	// until the next change (it lists the current state).
	h.setHook("order.updated", "disabled")
	vMissed := h.update(oid, "on-hold")
	// The poll takes a change once the store's clock (its Date header) is past
	// the change's second plus the poll's overlap (1s).
	sim.Advance(2 * time.Second)
	waitVersions(t, cons, vCreate, vUpdate, vMissed)
	h.setHook("order.updated", "active")
	vTrash := h.change(oid, func() error { return sim.Trash(wcsim.Orders, oid) })
	sim.Advance(2 * time.Second)
	waitVersions(t, cons, vTrash)
	versions := []string{vCreate, vUpdate, vMissed, vTrash}
	require.Len(t, map[string]bool{vCreate: true, vUpdate: true, vMissed: true, vTrash: true}, 4, "distinct versions %v", versions)

	// Quiesce: a later change of another order, through the webhooks, has
	// reached Kafka (the pipeline has one thread: every event of the order
	// above that was read before it has passed the deduplication), and the
	// poll has listed the orders twice more.
	sentinel, vSentinel := h.create("processing")
	sim.Advance(2 * time.Second)
	waitVersions(t, cons, vSentinel)
	polls := sim.Requests(http.MethodGet, "/wp-json/wc/v3/orders")
	require.Eventually(t, func() bool { return sim.Requests(http.MethodGet, "/wp-json/wc/v3/orders") >= polls+4 }, 30*time.Second, 10*time.Millisecond)

	key := strings.TrimRight(sim.URL(), "/") + "|order|" + strconv.FormatInt(oid, 10)
	var rs []*kgo.Record
	for _, r := range cons.poll() {
		if string(r.Key) == key {
			rs = append(rs, r)
		}
	}
	// Records of one object are in one partition, in order.
	require.Len(t, rs, 4, "each change published once: %v", recordKeys(rs))
	// The delete's data is {"id":N} when the webhook wins, the trashed order
	// when the poll does.
	wantStatus := []string{"processing", "completed", "on-hold", ""}
	for i, r := range rs {
		assert.Equal(t, versions[i], header(r, "woocommerce_version_key"), "record %d", i)
		assert.Equal(t, "woocommerce.order", r.Topic)
		var ev struct {
			ID     string `json:"id"`
			Action string `json:"action"`
			Source string `json:"source"`
			Data   struct {
				ID     int64  `json:"id"`
				Status string `json:"status"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(r.Value, &ev))
		if wantStatus[i] != "" {
			assert.Equal(t, wantStatus[i], ev.Data.Status, "record %d", i)
		}
		assert.Equal(t, oid, ev.Data.ID, "record %d", i)
		assert.Equal(t, ev.ID, header(r, "woocommerce_event_id"))
		assert.Equal(t, ev.Source, header(r, "woocommerce_source"))
	}
	assert.Contains(t, []string{"created", "updated"}, header(rs[0], "woocommerce_action"))
	assert.Equal(t, "poll", header(rs[2], "woocommerce_source"), "the change whose webhook was lost comes from the poll")
	assert.Equal(t, "deleted", header(rs[3], "woocommerce_action"))

	// Nothing else was published: the sentinel once, no other keys.
	all := byVersion(cons.records)
	assert.Len(t, all[vSentinel], 1, "sentinel order %d", sentinel)
	assert.Len(t, cons.records, 5, "%v", recordKeys(cons.records))
}

// config/hybrid_to_kafka.yaml across a crash: Kafka goes down while changes
// flow through the deduplication (they pass it and wait in the Kafka output),
// the process is killed, Kafka (same port, same data) and the process are
// started again: every change reaches Kafka at least once.
func TestHybridToKafkaCrash(t *testing.T) {
	kafkaDir := t.TempDir()
	port := freePort(t)
	startCluster := func() *kfake.Cluster {
		t.Helper()
		var c *kfake.Cluster
		// The port was just released by the previous cluster; retry briefly.
		require.Eventually(t, func() bool {
			var err error
			c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.AllowAutoTopicCreation(),
				kfake.DefaultNumPartitions(3), kfake.DataDir(kafkaDir), kfake.SyncWrites())
			return err == nil
		}, 10*time.Second, 50*time.Millisecond, "kfake on port %d", port)
		t.Cleanup(c.Close)
		return c
	}
	kc := startCluster()
	sim := startSim(t)
	h := newHybrid(t, sim, kc.ListenAddrs())
	p := h.start()

	// Before the outage: one order, published.
	a, vA := h.create("processing")
	cons := orderConsumer(t, kc)
	waitVersions(t, cons, vA)
	cons.cl.Close()
	passed := inflightAdds(t, p)

	// Kafka goes down; changes keep coming, through the webhooks (spooled)
	// and the poll.
	kc.Close()
	vA2 := h.update(a, "completed")
	b, vB := h.create("processing")
	vB2 := h.update(b, "on-hold")
	c, vC := h.create("pending")
	vC2 := h.change(c, func() error { return sim.Trash(wcsim.Orders, c) })
	want := []string{vA, vA2, vB, vB2, vC, vC2}
	sim.Advance(2 * time.Second)
	// Every new change has passed the deduplication (its key is in flight)
	// and waits for Kafka in the output.
	require.Eventually(t, func() bool { return inflightAdds(t, p) >= passed+5 }, 30*time.Second, 20*time.Millisecond)

	p.Kill(t)

	kc = startCluster()
	p = h.start()
	cons = orderConsumer(t, kc)
	waitVersions(t, cons, want...)

	got := byVersion(cons.poll())
	dups := 0
	for _, v := range want {
		if n := len(got[v]); n > 1 {
			dups += n - 1
			var srcs []string
			for _, r := range got[v] {
				srcs = append(srcs, header(r, "woocommerce_source")+"/"+header(r, "woocommerce_action"))
			}
			t.Logf("published %d times (at least once is the contract): %s %v", n, v, srcs)
		}
	}
	t.Logf("%d changes, %d records, %d duplicates; orders %d %d %d", len(want), len(cons.records), dups, a, b, c)
	assert.Len(t, got, len(want), "only the changes made: %v", recordKeys(cons.records))
}

// orderConsumer reads the woocommerce.order topic from the start (it need
// not exist yet).
func orderConsumer(t *testing.T, c *kfake.Cluster) *consumer {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumeTopics("woocommerce.order"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(50*time.Millisecond),
		kgo.MetadataMaxAge(200*time.Millisecond),
	)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return &consumer{cl: cl}
}

// inflightAdds is the dedupe_inflight cache's successful adds (events that
// passed both deduplication steps) from the process's /metrics.
func inflightAdds(t *testing.T, p *proc) int {
	t.Helper()
	res, err := http.Get("http://" + p.httpAddr + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "cache_success{") && strings.Contains(line, `label="dedupe_inflight"`) && strings.Contains(line, `operation="add"`) {
			f := strings.Fields(line)
			n, err := strconv.ParseFloat(f[len(f)-1], 64)
			require.NoError(t, err, line)
			return int(n)
		}
	}
	require.NoError(t, sc.Err())
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	return n
}

func recordKeys(rs []*kgo.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Topic+" "+string(r.Key)+" "+header(r, "woocommerce_source")+" "+header(r, "woocommerce_action")+" "+header(r, "woocommerce_version_key"))
	}
	return out
}
