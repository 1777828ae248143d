package e2e

import (
	"context"
	"encoding/json"
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

func startKafka(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// consumer reads every woocommerce.* topic from the start.
type consumer struct {
	cl      *kgo.Client
	records []*kgo.Record
}

func newConsumer(t *testing.T, c *kfake.Cluster) *consumer {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(`woocommerce\..*`),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(50*time.Millisecond),
		kgo.MetadataMaxAge(200*time.Millisecond), // discover topics created after the consumer started
	)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return &consumer{cl: cl}
}

// poll fetches what is available (waiting at most 200ms) and returns all
// records read so far.
func (c *consumer) poll() []*kgo.Record {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c.cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { c.records = append(c.records, r) })
	return c.records
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// config/webhook_to_kafka.yaml: the captured deliveries, one record each,
// topic per resource, key per object, woocommerce_* headers.
func TestWebhookToKafka(t *testing.T) {
	kc := startKafka(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startWooevents(t, dir, map[string]string{
		"WOOEVENTS_WEBHOOK_SECRET":  captureSecret,
		"WOOEVENTS_WEBHOOK_ADDRESS": addr,
		"WOOEVENTS_KAFKA_BROKERS":   strings.Join(kc.ListenAddrs(), ","),
	}, "-c", repoPath("config/webhook_to_kafka.yaml"))
	p.waitReady(t)
	replay(t, "http://"+addr+"/webhooks/woocommerce", webhookCaptures(t))

	cons := newConsumer(t, kc)
	require.Eventually(t, func() bool { return len(cons.poll()) >= captureEvents }, 30*time.Second, 10*time.Millisecond)
	recs := cons.records
	require.Len(t, recs, captureEvents)
	topics := map[string]int{}
	for _, r := range recs {
		topics[r.Topic]++
		var ev map[string]any
		require.NoError(t, json.Unmarshal(r.Value, &ev))
		assert.Equal(t, "woocommerce."+ev["resource"].(string), r.Topic)
		assert.Equal(t, "http://127.0.0.1:8480|"+ev["resource"].(string)+"|"+ev["object_id"].(string), string(r.Key))
		assert.Equal(t, ev["id"], header(r, "woocommerce_event_id"))
		assert.Equal(t, ev["type"], header(r, "woocommerce_type"))
		assert.NotEmpty(t, header(r, "woocommerce_version_key"))
		assert.Equal(t, "webhook", header(r, "woocommerce_source"))
		assert.Empty(t, header(r, "kafka_topic"), "routing metadata is not a header")
	}
	assert.Equal(t, map[string]int{"woocommerce.order": 3, "woocommerce.product": 4, "woocommerce.coupon": 2, "woocommerce.customer": 1}, topics)
}

// config/hybrid_to_kafka.yaml: a change seen by the webhooks (created and
// updated) and by the poll is published once; a change the webhooks miss is
// published once, by the poll.
func TestHybridToKafka(t *testing.T) {
	kc := startKafka(t)
	sim := startSim(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	const hookSecret = "hybrid-webhook-secret"
	p := startWooevents(t, dir, merge(simEnv(sim), map[string]string{
		"WOOEVENTS_WEBHOOK_SECRET":          hookSecret,
		"WOOEVENTS_WEBHOOK_ADDRESS":         addr,
		"WOOEVENTS_KAFKA_BROKERS":           strings.Join(kc.ListenAddrs(), ","),
		"WOOEVENTS_POLL_INTERVAL":           "300ms",
		"WOOEVENTS_POLL_RECONCILE_INTERVAL": "0s",
	}), "-r", repoPath("resources/dedupe.yaml"), "-c", repoPath("config/hybrid_to_kafka.yaml"))
	p.waitReady(t)
	var hooks []int64
	for _, topic := range []string{"order.created", "order.updated", "order.deleted"} {
		id, err := sim.AddWebhook(topic, "http://"+addr+"/webhooks/woocommerce", hookSecret)
		require.NoError(t, err)
		hooks = append(hooks, id)
	}

	// One REST create: order.created and order.updated webhooks with the same
	// state, and the poll sees it too.
	oid, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	key := strings.TrimRight(sim.URL(), "/") + "|order|" + strconv.FormatInt(oid, 10)

	cons := newConsumer(t, kc)
	forOrder := func() []*kgo.Record {
		var out []*kgo.Record
		for _, r := range cons.poll() {
			if string(r.Key) == key {
				out = append(out, r)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(forOrder()) >= 1 }, 30*time.Second, 10*time.Millisecond,
		"no record with key %s among %d: %v", key, len(cons.records), recordKeys(cons.records))

	// The webhooks get disabled (WooCommerce does that after failures); the
	// next change reaches Kafka through the poll only.
	for _, h := range hooks {
		require.NoError(t, sim.SetWebhookStatus(h, "disabled"))
	}
	// A different second, so that the change has its own version.
	time.Sleep(1100 * time.Millisecond)
	require.NoError(t, sim.Update(wcsim.Orders, oid, map[string]any{"status": "completed"}))
	require.Eventually(t, func() bool {
		rs := forOrder()
		return len(rs) >= 2 && strings.Contains(string(rs[len(rs)-1].Value), `"completed"`)
	}, 30*time.Second, 10*time.Millisecond)

	// Records of one object are in one partition, in order: a duplicate of the
	// first change would have come before the second one.
	rs := forOrder()
	require.Len(t, rs, 2, "each change published once: %v", recordKeys(rs))
	versions := map[string]bool{}
	for _, r := range rs {
		versions[header(r, "woocommerce_version_key")] = true
	}
	assert.Len(t, versions, 2)
	assert.Equal(t, "poll", header(rs[1], "woocommerce_source"))
	assert.Equal(t, "updated", header(rs[1], "woocommerce_action"))
}

func recordKeys(rs []*kgo.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Topic+" "+string(r.Key)+" "+header(r, "woocommerce_source")+" "+header(r, "woocommerce_action")+" "+header(r, "woocommerce_version_key"))
	}
	return out
}
