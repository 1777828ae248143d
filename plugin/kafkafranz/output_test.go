package kafkafranz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

const objectKey = `${! meta("woocommerce_store") }|${! meta("woocommerce_resource") }|${! meta("woocommerce_object_id") }`

func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// newOutput parses conf with the output's spec and constructs the output.
func newOutput(t testing.TB, conf string) *franzOutput {
	t.Helper()
	parsed, err := outputSpec().ParseYAML(conf, nil)
	require.NoError(t, err)
	out, err := newFranzOutput(parsed, service.MockResources())
	require.NoError(t, err)
	t.Cleanup(func() { _ = out.Close(context.Background()) })
	return out
}

func seedsYAML(c *kfake.Cluster) string {
	return "seed_brokers: [ " + strings.Join(c.ListenAddrs(), ", ") + " ]\n"
}

// consumeN reads topic from the start until n records arrived or the
// deadline passed, and returns what it read.
func consumeN(t testing.TB, c *kfake.Cluster, topic string, n int, extra ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("fetch error: %v", err)
			}
		})
		recs = append(recs, fetches.Records()...)
	}
	require.Len(t, recs, n, "records read from %s", topic)
	return recs
}

// topicNames lists the topics the cluster holds.
func topicNames(t testing.TB, c *kfake.Cluster) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(context.Background(), cl)
	require.NoError(t, err)
	var names []string
	for _, tp := range resp.Topics {
		names = append(names, *tp.Topic)
	}
	return names
}

func wooMessage(store, resource, id string, seq int) *service.Message {
	m := service.NewMessage(fmt.Appendf(nil, `{"object_id":%q,"seq":%d}`, id, seq))
	m.MetaSetMut("woocommerce_store", store)
	m.MetaSetMut("woocommerce_resource", resource)
	m.MetaSetMut("woocommerce_object_id", id)
	m.MetaSetMut("woocommerce_type", resource+".updated")
	m.MetaSetMut("internal_note", "not a header")
	return m
}

// javaMurmur2 is Kafka's Utils.murmur2 (the Java client's key hash), written
// here independently of franz-go so the partition placement is checked
// against the algorithm, not against the library under test.
func javaMurmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[length&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func javaPartition(key []byte, partitions int32) int32 {
	return (javaMurmur2(key) & 0x7fffffff) % partitions
}

func TestJavaMurmur2Vectors(t *testing.T) {
	// Vectors from Apache Kafka's UtilsTest.testMurmur2.
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		assert.Equal(t, want, javaMurmur2([]byte(in)), in)
	}
}

func TestRecordsCarryTopicKeyHeadersValueAndKeepObjectOrder(t *testing.T) {
	const partitions = 6
	c := newCluster(t, kfake.SeedTopics(partitions, "woo-events"))
	out := newOutput(t, seedsYAML(c)+`
topic: woo-events
key: '`+objectKey+`'
metadata:
  include_prefixes: [ woocommerce_ ]
`)
	require.NoError(t, out.Connect(context.Background()))

	// 8 objects, 12 versions each, interleaved across batches of 10.
	const objects, versions = 8, 12
	var all service.MessageBatch
	for seq := range versions {
		for obj := range objects {
			resource := []string{"order", "product"}[obj%2]
			all = append(all, wooMessage("https://shop.example.com", resource, strconv.Itoa(100+obj), seq))
		}
	}
	for start := 0; start < len(all); start += 10 {
		end := min(start+10, len(all))
		require.NoError(t, out.WriteBatch(context.Background(), all[start:end]))
	}

	recs := consumeN(t, c, "woo-events", objects*versions)
	partitionOf := map[string]int32{}
	lastSeq := map[string]int{}
	usedPartitions := map[int32]bool{}
	for _, r := range recs {
		key := string(r.Key)
		parts := strings.Split(key, "|")
		require.Len(t, parts, 3, "key %q", key)
		assert.Equal(t, "woo-events", r.Topic)
		assert.Equal(t, "https://shop.example.com", parts[0])

		var seq int
		_, err := fmt.Sscanf(string(r.Value), `{"object_id":"`+parts[2]+`","seq":%d}`, &seq)
		require.NoError(t, err, "value %s", r.Value)

		wantHeaders := []kgo.RecordHeader{
			{Key: "woocommerce_object_id", Value: []byte(parts[2])},
			{Key: "woocommerce_resource", Value: []byte(parts[1])},
			{Key: "woocommerce_store", Value: []byte(parts[0])},
			{Key: "woocommerce_type", Value: []byte(parts[1] + ".updated")},
		}
		assert.Equal(t, wantHeaders, r.Headers)

		// Kafka's Java placement: murmur2(key) masked positive mod n.
		assert.Equal(t, javaPartition(r.Key, partitions), r.Partition, "partition of %q", key)
		if p, ok := partitionOf[key]; ok {
			assert.Equal(t, p, r.Partition, "all records of %q on one partition", key)
		}
		partitionOf[key] = r.Partition
		usedPartitions[r.Partition] = true

		// Records arrive per partition in offset order: the sequence of
		// one object must be 0,1,2,... exactly once each.
		want := 0
		if prev, ok := lastSeq[key]; ok {
			want = prev + 1
		}
		assert.Equal(t, want, seq, "order of %q", key)
		lastSeq[key] = seq
	}
	assert.Len(t, lastSeq, objects)
	assert.Greater(t, len(usedPartitions), 1, "objects spread over partitions")
}

func TestTimestampAndManualPartition(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "manual"))
	out := newOutput(t, seedsYAML(c)+`
topic: manual
partitioner: manual
partition: '${! meta("p") }'
timestamp_ms: '${! meta("ts") }'
`)
	require.NoError(t, out.Connect(context.Background()))

	var batch service.MessageBatch
	for i := range 3 {
		m := service.NewMessage(fmt.Appendf(nil, "v%d", i))
		m.MetaSetMut("p", strconv.Itoa(2-i))
		m.MetaSetMut("ts", strconv.Itoa(1700000000000+i))
		batch = append(batch, m)
	}
	require.NoError(t, out.WriteBatch(context.Background(), batch))

	got := map[string]*kgo.Record{}
	for _, r := range consumeN(t, c, "manual", 3) {
		got[string(r.Value)] = r
	}
	for i := range 3 {
		r := got[fmt.Sprintf("v%d", i)]
		require.NotNil(t, r)
		assert.Equal(t, int32(2-i), r.Partition)
		assert.Equal(t, int64(1700000000000+i), r.Timestamp.UnixMilli())
		assert.Nil(t, r.Key)
		assert.Empty(t, r.Headers)
	}
}

func TestSASL(t *testing.T) {
	const user, pass = "wooevents", "c0rrect-h0rse"
	for _, tc := range []struct {
		mechanism string
		consumer  kgo.Opt
	}{
		{saslPlain, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())},
		{saslScramSHA256, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism())},
		{saslScramSHA512, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())},
	} {
		t.Run(tc.mechanism, func(t *testing.T) {
			c := newCluster(t, kfake.EnableSASL(), kfake.Superuser(tc.mechanism, user, pass), kfake.SeedTopics(1, "secure"))
			saslYAML := func(pw string) string {
				return fmt.Sprintf("sasl:\n  - mechanism: %s\n    username: %s\n    password: %s\n", tc.mechanism, user, pw)
			}

			out := newOutput(t, seedsYAML(c)+"topic: secure\n"+saslYAML(pass))
			require.NoError(t, out.Connect(context.Background()))
			require.NoError(t, out.WriteBatch(context.Background(), service.MessageBatch{service.NewMessage([]byte("authenticated"))}))
			recs := consumeN(t, c, "secure", 1, tc.consumer)
			assert.Equal(t, "authenticated", string(recs[0].Value))

			const wrong = "wr0ng-passw0rd"
			bad := newOutput(t, seedsYAML(c)+"topic: secure\n"+saslYAML(wrong))
			err := bad.Connect(context.Background())
			require.Error(t, err)
			t.Logf("wrong password: %v", err)
			assert.Contains(t, err.Error(), tc.mechanism)
			assert.Contains(t, err.Error(), `"`+user+`"`)
			assert.NotContains(t, err.Error(), wrong)
			assert.NotContains(t, err.Error(), pass)

			var boff *service.ErrBackOff
			require.ErrorAs(t, err, &boff)
			assert.ErrorIs(t, boff.Err, ErrSASLAuthentication)
			assert.Equal(t, authBackoffBase, boff.Wait)
			err = bad.Connect(context.Background())
			require.ErrorAs(t, err, &boff)
			assert.Equal(t, 2*authBackoffBase, boff.Wait, "back-off grows on repeated failures")

			// Writing without a connection asks benthos to connect first.
			assert.ErrorIs(t, bad.WriteBatch(context.Background(), service.MessageBatch{service.NewMessage(nil)}), service.ErrNotConnected)
		})
	}
}

func TestConnectUnreachableBacksOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	out := newOutput(t, "seed_brokers: [ "+addr+" ]\ntopic: x\ntimeout: 2s\n")
	var waits []time.Duration
	for range 7 {
		err := out.Connect(context.Background())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not reachable")
		var boff *service.ErrBackOff
		require.ErrorAs(t, err, &boff)
		waits = append(waits, boff.Wait)
	}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}, waits)
}

func TestFailingConnectIsNotRetriedInTightLoop(t *testing.T) {
	c := newCluster(t, kfake.EnableSASL(), kfake.Superuser(saslScramSHA256, "wooevents", "right"), kfake.SeedTopics(1, "t"))

	failedConnect := &logSignal{substr: "Failed to connect to kafka_franz", hit: make(chan struct{})}
	sb := service.NewStreamBuilder()
	sb.SetLogger(slog.New(failedConnect))
	require.NoError(t, sb.SetYAML(fmt.Sprintf(`
input:
  generate:
    count: 1
    interval: ""
    mapping: root = "x"
output:
  kafka_franz:
    seed_brokers: [ %s ]
    topic: t
    sasl:
      - mechanism: SCRAM-SHA-256
        username: wooevents
        password: wrong
`, strings.Join(c.ListenAddrs(), ", "))))
	stream, err := sb.Build()
	require.NoError(t, err)
	go func() { _ = stream.Run(context.Background()) }()
	t.Cleanup(func() { _ = stream.StopWithin(time.Second) })

	select {
	case <-failedConnect.hit:
	case <-time.After(10 * time.Second):
		t.Fatal("connect failure not logged")
	}
	// Benthos' own connect back-off would retry within 1s; ours waits
	// authBackoffBase (10s) after the first rejection.
	time.Sleep(1500 * time.Millisecond)
	assert.Equal(t, int64(1), failedConnect.lines.Load(), "connect attempts within 1.5s")
}

func TestInterpolationFailureFailsOnlyThatMessage(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "orders"), kfake.AllowAutoTopicCreation())
	out := newOutput(t, seedsYAML(c)+`
topic: '${! @topic.not_null() }'
key: '${! meta("id").or("") }'
`)
	require.NoError(t, out.Connect(context.Background()))

	withTopic := func(body, topic string) *service.Message {
		m := service.NewMessage([]byte(body))
		if topic != "\x00" {
			m.MetaSetMut("topic", topic)
		}
		return m
	}
	batch := service.MessageBatch{
		withTopic("first", "orders"),
		withTopic("no topic metadata", "\x00"),
		withTopic("second", "orders"),
		withTopic("empty topic", ""),
	}
	index := batch.Index()
	err := out.WriteBatch(context.Background(), batch)
	require.Error(t, err)
	t.Logf("batch error: %v", err)

	var bErr *service.BatchError
	require.ErrorAs(t, err, &bErr)
	assert.Equal(t, 2, bErr.IndexedErrors())
	failed := map[int]string{}
	bErr.WalkMessagesIndexedBy(index, func(i int, _ *service.Message, err error) bool {
		if err != nil {
			failed[i] = err.Error()
		}
		return true
	})
	require.Len(t, failed, 2)
	assert.Contains(t, failed[1], "interpolating topic")
	assert.Contains(t, failed[3], "topic resolved to an empty string")

	recs := consumeN(t, c, "orders", 2)
	assert.ElementsMatch(t, []string{"first", "second"}, []string{string(recs[0].Value), string(recs[1].Value)})
	assert.ElementsMatch(t, []string{"orders"}, topicNames(t, c), "no record went to an empty or fallback topic")
}

func TestBadPartitionAndTimestampFailMessage(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "p"))
	out := newOutput(t, seedsYAML(c)+`
topic: p
partitioner: manual
partition: '${! meta("p").or("x") }'
timestamp_ms: '${! meta("ts").or("1700000000000") }'
`)
	require.NoError(t, out.Connect(context.Background()))

	good := service.NewMessage([]byte("ok"))
	good.MetaSetMut("p", "1")
	badPartition := service.NewMessage([]byte("bad partition"))
	badTimestamp := service.NewMessage([]byte("bad ts"))
	badTimestamp.MetaSetMut("p", "0")
	badTimestamp.MetaSetMut("ts", "yesterday")
	batch := service.MessageBatch{badPartition, good, badTimestamp}
	index := batch.Index()

	err := out.WriteBatch(context.Background(), batch)
	var bErr *service.BatchError
	require.ErrorAs(t, err, &bErr)
	failed := map[int]error{}
	bErr.WalkMessagesIndexedBy(index, func(i int, _ *service.Message, err error) bool {
		if err != nil {
			failed[i] = err
		}
		return true
	})
	require.Len(t, failed, 2)
	assert.Contains(t, failed[0].Error(), `partition resolved to "x"`)
	assert.Contains(t, failed[2].Error(), `timestamp_ms resolved to "yesterday"`)
	recs := consumeN(t, c, "p", 1)
	assert.Equal(t, "ok", string(recs[0].Value))
	assert.Equal(t, int32(1), recs[0].Partition)
}

func TestRejectedRecordFailsOnlyItsIndex(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "small"))
	out := newOutput(t, seedsYAML(c)+"topic: small\nmax_message_bytes: 1KB\n")
	require.NoError(t, out.Connect(context.Background()))

	batch := service.MessageBatch{
		service.NewMessage([]byte("a")),
		service.NewMessage([]byte(strings.Repeat("x", 4000))),
		service.NewMessage([]byte("b")),
	}
	index := batch.Index()
	err := out.WriteBatch(context.Background(), batch)
	var bErr *service.BatchError
	require.ErrorAs(t, err, &bErr)
	assert.Equal(t, 1, bErr.IndexedErrors())
	bErr.WalkMessagesIndexedBy(index, func(i int, _ *service.Message, err error) bool {
		if i == 1 {
			assert.ErrorIs(t, err, kerr.MessageTooLarge)
		} else {
			assert.NoError(t, err, "index %d", i)
		}
		return true
	})
	recs := consumeN(t, c, "small", 2)
	assert.Equal(t, []string{"a", "b"}, []string{string(recs[0].Value), string(recs[1].Value)})
}

func TestLintPartitionRequiresManual(t *testing.T) {
	linter := service.GlobalEnvironment().NewComponentConfigLinter()
	lintsOf := func(conf string) []string {
		lints, err := linter.LintOutputYAML([]byte(conf))
		require.NoError(t, err)
		var out []string
		for _, l := range lints {
			out = append(out, l.What)
		}
		return out
	}

	base := "kafka_franz:\n  seed_brokers: [ localhost:9092 ]\n  topic: t\n"
	assert.Empty(t, lintsOf(base))
	assert.Empty(t, lintsOf(base+"  partitioner: manual\n  partition: '${! meta(\"p\") }'\n"))
	assert.Empty(t, lintsOf(base+"  partitioner: round_robin\n"))

	lints := lintsOf(base + "  partition: '3'\n")
	require.Len(t, lints, 1)
	assert.Contains(t, lints[0], "can only be set when `partitioner` is `manual`")

	lints = lintsOf(base + "  partitioner: least_backup\n  partition: '3'\n")
	require.Len(t, lints, 1)
	assert.Contains(t, lints[0], "can only be set when `partitioner` is `manual`")

	lints = lintsOf(base + "  partitioner: manual\n")
	require.Len(t, lints, 1)
	assert.Contains(t, lints[0], "must be set when `partitioner` is `manual`")

	// The same rule stops a stream config from being accepted.
	sb := service.NewStreamBuilder()
	err := sb.AddOutputYAML(base + "  partition: '3'\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "can only be set when `partitioner` is `manual`")

	// And the constructor refuses it when linting is skipped.
	parsed, err := outputSpec().ParseYAML("seed_brokers: [ localhost:9092 ]\ntopic: t\npartition: '3'\n", nil)
	require.NoError(t, err)
	_, err = newFranzOutput(parsed, service.MockResources())
	require.ErrorContains(t, err, "partition can only be set when partitioner is manual")

	// An empty partition (or key) counts as unset, for the linter and the
	// constructor alike.
	assert.Empty(t, lintsOf(base+"  partition: ''\n"))
	out := newOutput(t, "seed_brokers: [ localhost:9092 ]\ntopic: t\npartition: ''\nkey: ''\n")
	assert.Nil(t, out.partition)
	assert.Nil(t, out.key)
}

func TestSecretsAndSeedsInConfig(t *testing.T) {
	parsed, err := outputSpec().ParseYAML(`
seed_brokers: [ "a:9092,b:9092", " c:9092 " ]
topic: t
sasl:
  - mechanism: OAUTHBEARER
    username: u
    password: p
`, nil)
	require.NoError(t, err, "OAUTHBEARER is an enum option that only the linter rejects")
	_, err = newFranzOutput(parsed, service.MockResources())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unsupported mechanism")

	out := newOutput(t, "seed_brokers: [ \"a:9092,b:9092\", \" c:9092 \" ]\ntopic: t\n")
	assert.Equal(t, []string{"a:9092", "b:9092", "c:9092"}, out.seedBrokers)

	// The password field is marked secret so config printing scrubs it.
	var spec []byte
	service.GlobalEnvironment().WalkOutputs(func(name string, view *service.ConfigView) {
		if name == OutputName {
			spec, err = view.FormatJSON()
		}
	})
	require.NoError(t, err)
	var doc struct {
		Config struct {
			Children []struct {
				Name     string `json:"name"`
				Children []struct {
					Name     string `json:"name"`
					IsSecret bool   `json:"is_secret"`
				} `json:"children"`
			} `json:"children"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal(spec, &doc))
	secrets := map[string]bool{}
	for _, f := range doc.Config.Children {
		for _, c := range f.Children {
			if c.IsSecret {
				secrets[f.Name+"."+c.Name] = true
			}
		}
	}
	assert.True(t, secrets["sasl.password"], "sasl.password is secret")
}

// logSignal is a slog handler that closes a channel when a log line contains
// a substring.
type logSignal struct {
	substr string
	once   sync.Once
	hit    chan struct{}
	lines  atomic.Int64
}

func (l *logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSignal) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logSignal) WithGroup(string) slog.Handler            { return l }
func (l *logSignal) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, l.substr) {
		l.lines.Add(1)
		l.once.Do(func() { close(l.hit) })
	}
	return nil
}

func TestStreamSurvivesClusterRestart(t *testing.T) {
	t.Run("idempotent", func(t *testing.T) {
		// Sent records are awaited across the outage, never failed.
		testClusterRestart(t, "", "not acknowledged within")
	})
	t.Run("not idempotent", func(t *testing.T) {
		// Records time out, fail and are retried by benthos.
		testClusterRestart(t, "idempotent_write: false", "Failed to send message to kafka_franz")
	})
}

// testClusterRestart runs generate → kafka_franz, stops the cluster mid-stream
// until outageLog is logged, restarts it on the same port with the same data
// and checks that a consumer sees every record at least once.
func testClusterRestart(t *testing.T, extraOutputConf, outageLog string) {
	const total = 400
	dataDir := t.TempDir()
	c1, err := kfake.NewCluster(kfake.DataDir(dataDir), kfake.NumBrokers(1), kfake.SeedTopics(4, "events"))
	require.NoError(t, err)
	addr := c1.ListenAddrs()[0]
	_, portStr, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	port, err := strconv.Atoi(portStr)
	require.NoError(t, err)
	var current atomic.Pointer[kfake.Cluster]
	current.Store(c1)
	t.Cleanup(func() { current.Load().Close() })

	// A consumer that keeps reading across the outage.
	var (
		seenMu sync.Mutex
		seen   = map[int]int{}
		nSeen  atomic.Int64
	)
	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	require.NoError(t, err)
	consumeCtx, stopConsuming := context.WithCancel(context.Background())
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		for consumeCtx.Err() == nil {
			fetches := consumer.PollFetches(consumeCtx)
			fetches.EachRecord(func(r *kgo.Record) {
				n, err := strconv.Atoi(string(r.Value))
				if err != nil {
					t.Errorf("unexpected value %q", r.Value)
					return
				}
				seenMu.Lock()
				seen[n]++
				seenMu.Unlock()
				nSeen.Add(1)
			})
		}
	}()
	t.Cleanup(func() { stopConsuming(); <-consumerDone; consumer.Close() })

	outage := &logSignal{substr: outageLog, hit: make(chan struct{})}
	sb := service.NewStreamBuilder()
	sb.SetLogger(slog.New(outage))
	require.NoError(t, sb.SetYAML(fmt.Sprintf(`
input:
  generate:
    count: %d
    interval: 1ms
    mapping: |
      let n = counter()
      root = $n.string()
      meta woocommerce_object_id = ($n %% 13).string()
output:
  kafka_franz:
    seed_brokers: [ %s ]
    topic: events
    key: '${! meta("woocommerce_object_id") }'
    timeout: 300ms
    max_in_flight: 4
    %s
`, total, addr, extraOutputConf)))
	stream, err := sb.Build()
	require.NoError(t, err)

	runCtx, cancelRun := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelRun()
	runErr := make(chan error, 1)
	go func() { runErr <- stream.Run(runCtx) }()

	// Mid-stream: some records are in, the rest are still to come.
	require.Eventually(t, func() bool { return nSeen.Load() >= 60 }, 10*time.Second, 2*time.Millisecond)
	c1.Close()
	t.Logf("cluster stopped after the consumer saw %d records", nSeen.Load())

	// The cluster stays down until the output has noticed the outage.
	select {
	case <-outage.hit:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %q logged while the cluster was down", outageLog)
	}

	c2, err := kfake.NewCluster(kfake.DataDir(dataDir), kfake.NumBrokers(1), kfake.Ports(port))
	require.NoError(t, err)
	current.Store(c2)
	t.Logf("cluster restarted on port %d", port)

	require.NoError(t, <-runErr, "stream finished after the cluster came back")
	t.Logf("stream finished, consumer has %d records", nSeen.Load())
	require.Eventually(t, func() bool {
		seenMu.Lock()
		defer seenMu.Unlock()
		return len(seen) == total
	}, 10*time.Second, 5*time.Millisecond, "every record arrives at least once")

	seenMu.Lock()
	defer seenMu.Unlock()
	dups := 0
	for n := 1; n <= total; n++ {
		require.GreaterOrEqual(t, seen[n], 1, "record %d", n)
		dups += seen[n] - 1
	}
	t.Logf("%d records delivered, %d duplicates, %d %q log lines", total, dups, outage.lines.Load(), outageLog)
}

func BenchmarkKafkaFranzOutput(b *testing.B) {
	c := newCluster(b, kfake.SeedTopics(8, "bench"), kfake.BlackholeProduce())
	out := newOutput(b, seedsYAML(c)+"topic: bench\nkey: '${! meta(\"id\") }'\nmetadata:\n  include_prefixes: [ woocommerce_ ]\n")
	require.NoError(b, out.Connect(context.Background()))

	const batchSize = 100
	batch := make(service.MessageBatch, batchSize)
	for i := range batch {
		m := service.NewMessage(fmt.Appendf(nil, `{"id":"%d","type":"order.updated","data":{"status":"processing","total":"19.99"}}`, i))
		m.MetaSetMut("id", strconv.Itoa(i))
		m.MetaSetMut("woocommerce_type", "order.updated")
		batch[i] = m
	}

	for b.Loop() {
		if err := out.WriteBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "records/s")
}
