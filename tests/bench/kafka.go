package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KafkaRun is one webhook → kafka_franz → kfake measurement.
type KafkaRun struct {
	Round      int         `json:"round"`
	Saturation *LoadResult `json:"saturation"`
	// RecordsInTopic is the sum of the topic's end offsets after the run,
	// read from the cluster: every 200 must be a record there.
	RecordsInTopic int64 `json:"records_in_topic"`
	// RecordsPerS is the acknowledged deliveries (each one a produced and
	// acknowledged record) per second of the measured run.
	RecordsPerS float64 `json:"records_per_s"`
}

// KafkaPartitions of the benchmark topic.
const KafkaPartitions = 3

// BenchKafkaOnce starts an in-process kfake cluster, runs wooevents with the
// woocommerce_webhook input and the kafka_franz output, saturates the
// webhook and checks that the topic holds at least as many records as
// deliveries were answered 200.
func BenchKafkaOnce(ctx context.Context, o WebhookOptions, round int) (*KafkaRun, error) {
	const topic = "woocommerce-events"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(KafkaPartitions, topic))
	if err != nil {
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	defer cluster.Close()

	capture, err := LoadRepoCapture(OrderUpdatedFixture)
	if err != nil {
		return nil, err
	}
	addr, err := FreePort()
	if err != nil {
		return nil, err
	}
	httpAddr, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.WorkDir, fmt.Sprintf("kafka-%d", round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := WebhookKafkaConfig(addr, httpAddr, FixtureSecret, cluster.ListenAddrs(), topic)
	p, err := StartWooevents(o.Binary, dir, "kafka", conf, o.ServerCPUs, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = p.Stop(20 * time.Second) }()
	if err := p.WaitTCP(addr, 20*time.Second); err != nil {
		return nil, err
	}
	good := capture.Request(DeliveryOptions{Path: WebhookPath, Host: addr, Secret: FixtureSecret})
	if status, err := SendOne(addr, good); err != nil || status != 200 {
		return nil, p.Failed(fmt.Errorf("kafka: first delivery: status %d, %v", status, err))
	}
	load := LoadOptions{Addr: addr, Requests: [][]byte{good}, Concurrency: o.Concurrency}
	if o.Warmup > 0 {
		load.Duration = o.Warmup
		if _, err := RunLoad(ctx, load); err != nil {
			return nil, p.Failed(err)
		}
	}
	load.Duration = o.Duration
	res, err := RunLoad(ctx, load)
	if err != nil {
		return nil, p.Failed(err)
	}
	run := &KafkaRun{Round: round, Saturation: res, RecordsPerS: res.RPS}
	if res.OK == 0 || res.Non2xx > 0 || res.Errors > res.OK/100 {
		return run, p.Failed(fmt.Errorf("kafka: unhealthy run: %s (first error: %s)", res, res.FirstError))
	}
	if run.RecordsInTopic, err = TopicRecords(ctx, cluster.ListenAddrs(), topic, KafkaPartitions); err != nil {
		return run, err
	}
	// Warmup and the first delivery are in the topic too.
	if run.RecordsInTopic < res.OK {
		return run, fmt.Errorf("kafka: %d deliveries answered 200 but only %d records in the topic", res.OK, run.RecordsInTopic)
	}
	if o.Log != nil {
		o.Log("  %-30s round %d  sat %8.0f records/s p99 %6.2fms | %d records in topic",
			"webhook → kafka_franz (kfake)", round, res.RPS, res.P99ms, run.RecordsInTopic)
	}
	return run, nil
}

// TopicRecords sums the latest offsets of every partition of topic.
func TopicRecords(ctx context.Context, brokers []string, topic string, partitions int32) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var total int64
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return 0, fmt.Errorf("list offsets: %w", shard.Err)
		}
		for _, t := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if err := kerrErr(p.ErrorCode); err != nil {
					return 0, fmt.Errorf("list offsets %s/%d: %w", t.Topic, p.Partition, err)
				}
				total += p.Offset
			}
		}
	}
	return total, nil
}

func kerrErr(code int16) error { return kerr.ErrorForCode(code) }
