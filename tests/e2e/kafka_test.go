package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
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
