// Package kafkafranz provides the kafka_franz batch output: it writes message
// batches to Kafka with github.com/twmb/franz-go and acknowledges a message
// only once the cluster has acknowledged its record. Field names follow the
// kafka_franz output of Redpanda Connect so existing configs keep working.
package kafkafranz

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/internal/retry"
)

// OutputName is the name the output is registered under.
const OutputName = "kafka_franz"

const (
	kfoFieldSeedBrokers            = "seed_brokers"
	kfoFieldTopic                  = "topic"
	kfoFieldKey                    = "key"
	kfoFieldPartitioner            = "partitioner"
	kfoFieldPartition              = "partition"
	kfoFieldClientID               = "client_id"
	kfoFieldIdempotentWrite        = "idempotent_write"
	kfoFieldMetadata               = "metadata"
	kfoFieldTimestampMs            = "timestamp_ms"
	kfoFieldMaxInFlight            = "max_in_flight"
	kfoFieldTimeout                = "timeout"
	kfoFieldBatching               = "batching"
	kfoFieldMaxMessageBytes        = "max_message_bytes"
	kfoFieldCompression            = "compression"
	kfoFieldAllowAutoTopicCreation = "allow_auto_topic_creation"
	kfoFieldTLS                    = "tls"
	kfoFieldSASL                   = "sasl"
	kfoFieldSASLMechanism          = "mechanism"
	kfoFieldSASLUsername           = "username"
	kfoFieldSASLPassword           = "password"
)

const (
	partitionerMurmur2    = "murmur2_hash"
	partitionerRoundRobin = "round_robin"
	partitionerLeastBack  = "least_backup"
	partitionerManual     = "manual"

	saslPlain       = "PLAIN"
	saslScramSHA256 = "SCRAM-SHA-256"
	saslScramSHA512 = "SCRAM-SHA-512"
)

// Connect back-off. Benthos retries a failing Connect after 0.5s to 1s, which
// would hammer a cluster (and a SASL account lockout policy) forever, so
// Connect returns a service.ErrBackOff growing from these bases to these caps.
const (
	unreachableBackoffBase = time.Second
	unreachableBackoffMax  = 30 * time.Second
	authBackoffBase        = 10 * time.Second
	authBackoffMax         = 5 * time.Minute
)

func outputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Services").
		Summary("Writes batches of messages to Kafka with the franz-go client and acknowledges them only once every record is acknowledged by the cluster.").
		Description(`
Field names match the `+"`kafka_franz`"+` output of Redpanda Connect, so an existing config of that output works unchanged.

A batch is acknowledged once every record of it is acknowledged by the cluster. When some records of a batch fail, only those
messages are reported as failed (a batch error naming their indexes), so an input that retries nacks resends only those.
A message whose `+"`topic`, `key`, `partition` or `timestamp_ms`"+` interpolation fails is failed with that error and nothing
is produced for it.

The connection is checked when the output connects. When the cluster is unreachable or rejects the SASL credentials the
output retries with a growing back-off (1s to 30s when unreachable, 10s to 5m when the credentials are rejected).

To keep the events of one WooCommerce object in order, key records by the object (see the example) so they land on one
partition, and set `+"`max_in_flight: 1`"+` with `+"`batching`"+` for throughput: with several batches in flight, two of them
can reach a partition in either order (Benthos hands them to the output concurrently). A batch that fails and is
retried can still land after later ones.`).
		Fields(
			service.NewStringListField(kfoFieldSeedBrokers).
				Description("A list of broker addresses to connect to in order to establish connections. An item that contains commas is split into several addresses.").
				Example([]string{"localhost:9092"}).
				Example([]string{"foo:9092", "bar:9092"}).
				Example([]string{"foo:9092,bar:9092"}),
			service.NewInterpolatedStringField(kfoFieldTopic).
				Description("The topic to write each message to. A message whose topic resolves to an empty string is failed instead of being produced.").
				Example("woocommerce-events").
				Example(`woocommerce-${! meta("woocommerce_resource") }`),
			service.NewInterpolatedStringField(kfoFieldKey).
				Description("An optional key to set on each record. Records with the same key land on the same partition (with the `murmur2_hash` partitioner), which keeps them in order for consumers. When not set (or set to an empty string) records have no key; a key that resolves to an empty string for a message is sent as an empty key.").
				Example(`${! meta("woocommerce_store") }|${! meta("woocommerce_resource") }|${! meta("woocommerce_object_id") }`).
				Optional(),
			service.NewStringAnnotatedEnumField(kfoFieldPartitioner, map[string]string{
				partitionerMurmur2:    "Kafka's default hash partitioner: the partition is the 32-bit murmur2 hash of the key, masked to positive, modulo the partition count, exactly as the Java client places keyed records. Records without a key stick to one partition per batch.",
				partitionerRoundRobin: "Round-robin records through all available partitions. Spreads records evenly but creates smaller batches and more load on the brokers.",
				partitionerLeastBack:  "Chooses the least backed up partition (the partition with the fewest buffered records); partitions are chosen per batch.",
				partitionerManual:     "Sends each record to the partition given by the `partition` field, which must then be set.",
			}).
				Description("The partitioning algorithm to use.").
				Default(partitionerMurmur2).
				Advanced(),
			service.NewInterpolatedStringField(kfoFieldPartition).
				Description("The partition to write each message to, only used (and then required) with `partitioner: manual`. It must resolve to a non-negative integer.").
				Example(`${! meta("partition") }`).
				Optional().
				Advanced(),
			service.NewStringField(kfoFieldClientID).
				Description("An identifier for the client connection, visible in broker logs and quotas.").
				Default("wooevents").
				Advanced(),
			service.NewBoolField(kfoFieldIdempotentWrite).
				Description("Enable the idempotent producer, so that retried produce requests never write duplicates within a partition. Requires the IDEMPOTENT_WRITE permission on the cluster (implied by WRITE on recent Kafka versions); disable it when that permission is not available.").
				Default(true).
				Advanced(),
			service.NewMetadataFilterField(kfoFieldMetadata).
				Description("Which metadata values, if any, are added to each record as headers. By default none are.").
				Example(map[string]any{"include_prefixes": []string{"woocommerce_"}}).
				Optional(),
			service.NewInterpolatedStringField(kfoFieldTimestampMs).
				Description("An optional record timestamp in milliseconds since the Unix epoch. When not set the time of producing is used. It must resolve to an integer.").
				Example(`${! timestamp_unix_milli() }`).
				Example(`${! meta("woocommerce_occurred_at").ts_parse("2006-01-02T15:04:05Z07:00").ts_unix_milli() }`).
				Optional().
				Advanced(),
			service.NewIntField(kfoFieldMaxInFlight).
				Description("The maximum number of batches to be sending in parallel at any given time.").
				Default(10),
			service.NewDurationField(kfoFieldTimeout).
				Description("The maximum period of time to wait for a batch to be sent before abandoning the records that are not yet on the wire and failing them, so they are retried. It also bounds the reachability check when connecting. Records already sent to a broker are never abandoned while the idempotent producer is on: their outcome is awaited so retries cannot create duplicates.").
				Default("10s").
				Advanced(),
			service.NewBatchPolicyField(kfoFieldBatching),
			service.NewStringField(kfoFieldMaxMessageBytes).
				Description("The maximum size of a record batch sent to a partition (before compression); a single record larger than this is rejected. It corresponds to Kafka's `max.message.bytes` and should not exceed the topic's setting.").
				Default("1MB").
				Example("100MB").
				Example("50mib").
				Advanced(),
			service.NewStringEnumField(kfoFieldCompression, "none", "gzip", "snappy", "lz4", "zstd").
				Description("Compression codec for record batches. When not set, snappy is used when the broker supports it, else none. A batch is only sent compressed when that makes it smaller.").
				Optional().
				Advanced(),
			service.NewBoolField(kfoFieldAllowAutoTopicCreation).
				Description("Let the cluster create a topic that does not exist yet when it is first written to (the broker must allow it too, `auto.create.topics.enable`).").
				Default(true).
				Advanced(),
			service.NewTLSToggledField(kfoFieldTLS).
				Description("TLS settings for the connections to the brokers.").
				Advanced(),
			service.NewObjectListField(kfoFieldSASL,
				service.NewStringAnnotatedEnumField(kfoFieldSASLMechanism, map[string]string{
					saslPlain:       "Plain text authentication. Use it only together with TLS.",
					saslScramSHA256: "SCRAM based authentication as specified in RFC5802, with SHA-256.",
					saslScramSHA512: "SCRAM based authentication as specified in RFC5802, with SHA-512.",
				}).
					Description("The SASL mechanism to use."),
				service.NewStringField(kfoFieldSASLUsername).
					Description("The user to authenticate as.").
					Default(""),
				service.NewStringField(kfoFieldSASLPassword).
					Description("The password of the user.").
					Default("").
					Secret(),
			).
				Description("SASL authentication mechanisms, in order of preference; the first one the brokers support is used.").
				Example([]any{map[string]any{
					kfoFieldSASLMechanism: saslScramSHA512,
					kfoFieldSASLUsername:  "wooevents",
					kfoFieldSASLPassword:  "${KAFKA_PASSWORD}",
				}}).
				Optional().
				Advanced(),
		).
		LintRule(`
let manual = this.partitioner.or("` + partitionerMurmur2 + `") == "` + partitionerManual + `"
let has_partition = this.partition.or("") != ""
root = match {
  $has_partition && !$manual => [ "field ` + "`partition`" + ` can only be set when ` + "`partitioner`" + ` is ` + "`manual`" + `" ],
  $manual && !$has_partition => [ "field ` + "`partition`" + ` must be set when ` + "`partitioner`" + ` is ` + "`manual`" + `" ],
}
`)
}

func init() {
	service.MustRegisterBatchOutput(OutputName, outputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (out service.BatchOutput, policy service.BatchPolicy, maxInFlight int, err error) {
			if maxInFlight, err = conf.FieldInt(kfoFieldMaxInFlight); err != nil {
				return
			}
			if maxInFlight < 1 {
				err = fmt.Errorf("field %s must be at least 1, got %d", kfoFieldMaxInFlight, maxInFlight)
				return
			}
			if policy, err = conf.FieldBatchPolicy(kfoFieldBatching); err != nil {
				return
			}
			out, err = newFranzOutput(conf, mgr)
			return
		})
}

// saslCredential describes one configured SASL login, without its password,
// for error messages.
type saslCredential struct {
	mechanism string
	username  string
}

func (c saslCredential) String() string {
	return fmt.Sprintf("%s as user %q", c.mechanism, c.username)
}

type franzOutput struct {
	log *service.Logger

	seedBrokers []string
	clientOpts  []kgo.Opt
	timeout     time.Duration
	sasl        []saslCredential

	topic       *service.InterpolatedString
	key         *service.InterpolatedString
	partition   *service.InterpolatedString
	timestampMs *service.InterpolatedString
	headers     *service.MetadataFilter

	mu        sync.RWMutex
	client    *kgo.Client
	saslWatch *saslWatch
	// Connect's back-off: one growing wait per kind of failure, reset on
	// success.
	authWait, netWait *retry.Growing
}

// ErrSASLAuthentication marks errors caused by the brokers rejecting the
// configured SASL credentials.
var ErrSASLAuthentication = errors.New("SASL authentication rejected")

// saslWatch is a franz-go hook noticing a broker hanging up on a
// SASLAuthenticate request. Brokers answering SaslHandshake v0 (and kfake)
// close the connection instead of replying SASL_AUTHENTICATION_FAILED, so the
// client only sees an EOF; this hook tells that EOF apart from an outage.
type saslWatch struct {
	rejected atomic.Bool
}

func (w *saslWatch) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == int16(kmsg.SASLAuthenticate) && err != nil {
		w.rejected.Store(true)
	}
}

func newFranzOutput(conf *service.ParsedConfig, mgr *service.Resources) (*franzOutput, error) {
	o := &franzOutput{log: mgr.Logger(),
		authWait: retry.NewGrowing(authBackoffBase, authBackoffMax),
		netWait:  retry.NewGrowing(unreachableBackoffBase, unreachableBackoffMax)}

	rawSeeds, err := conf.FieldStringList(kfoFieldSeedBrokers)
	if err != nil {
		return nil, err
	}
	for _, item := range rawSeeds {
		for addr := range strings.SplitSeq(item, ",") {
			if addr = strings.TrimSpace(addr); addr != "" {
				o.seedBrokers = append(o.seedBrokers, addr)
			}
		}
	}
	if len(o.seedBrokers) == 0 {
		return nil, fmt.Errorf("field %s must list at least one broker address", kfoFieldSeedBrokers)
	}

	if o.topic, err = conf.FieldInterpolatedString(kfoFieldTopic); err != nil {
		return nil, err
	}
	if o.key, err = optionalInterpolatedString(conf, kfoFieldKey); err != nil {
		return nil, err
	}
	if o.timestampMs, err = optionalInterpolatedString(conf, kfoFieldTimestampMs); err != nil {
		return nil, err
	}
	if conf.Contains(kfoFieldMetadata) {
		if o.headers, err = conf.FieldMetadataFilter(kfoFieldMetadata); err != nil {
			return nil, err
		}
	}

	partitionerName, err := conf.FieldString(kfoFieldPartitioner)
	if err != nil {
		return nil, err
	}
	if o.partition, err = optionalInterpolatedString(conf, kfoFieldPartition); err != nil {
		return nil, err
	}
	hasPartition := o.partition != nil
	var partitioner kgo.Partitioner
	switch partitionerName {
	case partitionerMurmur2:
		partitioner = kgo.StickyKeyPartitioner(nil)
	case partitionerRoundRobin:
		partitioner = kgo.RoundRobinPartitioner()
	case partitionerLeastBack:
		partitioner = kgo.LeastBackupPartitioner()
	case partitionerManual:
		partitioner = kgo.ManualPartitioner()
	default:
		return nil, fmt.Errorf("field %s: unknown partitioner %q", kfoFieldPartitioner, partitionerName)
	}
	if partitionerName == partitionerManual && !hasPartition {
		return nil, fmt.Errorf("field %s must be set when %s is %s", kfoFieldPartition, kfoFieldPartitioner, partitionerManual)
	}
	if partitionerName != partitionerManual && hasPartition {
		return nil, fmt.Errorf("field %s can only be set when %s is %s", kfoFieldPartition, kfoFieldPartitioner, partitionerManual)
	}

	clientID, err := conf.FieldString(kfoFieldClientID)
	if err != nil {
		return nil, err
	}
	if o.timeout, err = conf.FieldDuration(kfoFieldTimeout); err != nil {
		return nil, err
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("field %s must be positive, got %v", kfoFieldTimeout, o.timeout)
	}

	maxBytesStr, err := conf.FieldString(kfoFieldMaxMessageBytes)
	if err != nil {
		return nil, err
	}
	maxBytes, err := humanize.ParseBytes(maxBytesStr)
	if err != nil {
		return nil, fmt.Errorf("field %s: %w", kfoFieldMaxMessageBytes, err)
	}
	if maxBytes < 512 || maxBytes > math.MaxInt32 {
		return nil, fmt.Errorf("field %s must be between 512B and 2GiB, got %s", kfoFieldMaxMessageBytes, maxBytesStr)
	}

	o.clientOpts = []kgo.Opt{
		kgo.SeedBrokers(o.seedBrokers...),
		kgo.ClientID(clientID),
		kgo.RecordPartitioner(partitioner),
		kgo.ProducerBatchMaxBytes(int32(maxBytes)),
		kgo.WithLogger(kgoLogger{o.log}),
		// WriteBatch hands a whole batch over at once and waits for it, so
		// lingering would only add latency to every batch.
		kgo.ProducerLinger(0),
	}

	idempotent, err := conf.FieldBool(kfoFieldIdempotentWrite)
	if err != nil {
		return nil, err
	}
	if !idempotent {
		o.clientOpts = append(o.clientOpts, kgo.DisableIdempotentWrite())
	}

	autoCreate, err := conf.FieldBool(kfoFieldAllowAutoTopicCreation)
	if err != nil {
		return nil, err
	}
	if autoCreate {
		o.clientOpts = append(o.clientOpts, kgo.AllowAutoTopicCreation())
	}

	if conf.Contains(kfoFieldCompression) {
		name, err := conf.FieldString(kfoFieldCompression)
		if err != nil {
			return nil, err
		}
		var codec kgo.CompressionCodec
		switch name {
		case "none":
			codec = kgo.NoCompression()
		case "gzip":
			codec = kgo.GzipCompression()
		case "snappy":
			codec = kgo.SnappyCompression()
		case "lz4":
			codec = kgo.Lz4Compression()
		case "zstd":
			codec = kgo.ZstdCompression()
		default:
			return nil, fmt.Errorf("field %s: unknown codec %q", kfoFieldCompression, name)
		}
		o.clientOpts = append(o.clientOpts, kgo.ProducerBatchCompression(codec))
	}

	tlsConf, tlsEnabled, err := conf.FieldTLSToggled(kfoFieldTLS)
	if err != nil {
		return nil, err
	}
	if tlsEnabled {
		o.clientOpts = append(o.clientOpts, kgo.DialTLSConfig(tlsConf))
	}

	if conf.Contains(kfoFieldSASL) {
		mechs, creds, err := saslFromConfig(conf)
		if err != nil {
			return nil, err
		}
		if len(mechs) > 0 {
			o.clientOpts = append(o.clientOpts, kgo.SASL(mechs...))
			o.sasl = creds
		}
	}

	// Validate the client options now so that a bad config fails at start
	// instead of in every Connect. A client does not dial until it is used.
	probe, err := kgo.NewClient(o.clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("invalid kafka client config: %w", err)
	}
	probe.Close()
	return o, nil
}

// optionalInterpolatedString returns nil when the field is absent or set to
// an empty string, as the linter treats both as unset.
func optionalInterpolatedString(conf *service.ParsedConfig, field string) (*service.InterpolatedString, error) {
	if !conf.Contains(field) {
		return nil, nil
	}
	is, err := conf.FieldInterpolatedString(field)
	if err != nil {
		return nil, err
	}
	if static, ok := is.Static(); ok && static == "" {
		return nil, nil
	}
	return is, nil
}

func saslFromConfig(conf *service.ParsedConfig) ([]sasl.Mechanism, []saslCredential, error) {
	items, err := conf.FieldObjectList(kfoFieldSASL)
	if err != nil {
		return nil, nil, err
	}
	var (
		mechs []sasl.Mechanism
		creds []saslCredential
	)
	for i, item := range items {
		mechanism, err := item.FieldString(kfoFieldSASLMechanism)
		if err != nil {
			return nil, nil, err
		}
		user, err := item.FieldString(kfoFieldSASLUsername)
		if err != nil {
			return nil, nil, err
		}
		pass, err := item.FieldString(kfoFieldSASLPassword)
		if err != nil {
			return nil, nil, err
		}
		if user == "" {
			return nil, nil, fmt.Errorf("field %s[%d].%s must be set for mechanism %s", kfoFieldSASL, i, kfoFieldSASLUsername, mechanism)
		}
		switch mechanism {
		case saslPlain:
			mechs = append(mechs, plain.Auth{User: user, Pass: pass}.AsMechanism())
		case saslScramSHA256:
			mechs = append(mechs, scram.Auth{User: user, Pass: pass}.AsSha256Mechanism())
		case saslScramSHA512:
			mechs = append(mechs, scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())
		default:
			return nil, nil, fmt.Errorf("field %s[%d].%s: unsupported mechanism %q (supported: %s, %s, %s)",
				kfoFieldSASL, i, kfoFieldSASLMechanism, mechanism, saslPlain, saslScramSHA256, saslScramSHA512)
		}
		creds = append(creds, saslCredential{mechanism: mechanism, username: user})
	}
	return mechs, creds, nil
}

// Connect creates the client and checks that a broker answers (and accepts
// the SASL credentials). A failure is returned wrapped in a
// service.ErrBackOff so that benthos waits before the next attempt.
func (o *franzOutput) Connect(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.client != nil {
		return nil
	}

	watch := &saslWatch{}
	cl, err := kgo.NewClient(append(slices.Clip(o.clientOpts), kgo.WithHooks(watch))...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, o.timeout)
	err = cl.Ping(pingCtx)
	cancel()
	if err != nil {
		cl.Close()
		return o.connectError(err, watch)
	}

	// A broker may have hung up on the handshake before another accepted it.
	watch.rejected.Store(false)
	o.authWait.Reset()
	o.netWait.Reset()
	o.client = cl
	o.saslWatch = watch
	o.log.Infof("Connected to kafka seed brokers %v", o.seedBrokers)
	return nil
}

func (o *franzOutput) connectError(err error, watch *saslWatch) error {
	switch {
	case isAuthError(err):
		return service.NewErrBackOff(
			fmt.Errorf("%w by kafka brokers %v (%s): %w", ErrSASLAuthentication, o.seedBrokers, o.saslDescription(), err), o.authWait.Next())
	case watch.rejected.Load():
		return service.NewErrBackOff(
			fmt.Errorf("%w by kafka brokers %v (%s): the broker closed the connection during authentication: %w", ErrSASLAuthentication, o.seedBrokers, o.saslDescription(), err), o.authWait.Next())
	}
	return service.NewErrBackOff(
		fmt.Errorf("kafka brokers %v not reachable: %w", o.seedBrokers, err), o.netWait.Next())
}

func (o *franzOutput) saslDescription() string {
	if len(o.sasl) == 0 {
		return "no SASL configured"
	}
	parts := make([]string, len(o.sasl))
	for i, c := range o.sasl {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

func isAuthError(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState)
}

// recordFailure is a message of a batch that failed, with its index.
type recordFailure struct {
	index int
	err   error
}

// WriteBatch produces one record per message and returns once every record is
// acknowledged or failed. Failed messages are reported in a
// *service.BatchError naming their indexes.
func (o *franzOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	o.mu.RLock()
	cl, watch := o.client, o.saslWatch
	o.mu.RUnlock()
	if cl == nil {
		return service.ErrNotConnected
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	records, failures := o.buildRecords(batch)

	var wg sync.WaitGroup
	produceErrs := make([]error, len(records))
	for i, rec := range records {
		if rec == nil {
			continue
		}
		wg.Add(1)
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			produceErrs[i] = err
			wg.Done()
		})
	}
	o.awaitAcks(ctx, &wg, len(batch))

	authFailed := watch.rejected.Load()
	for i, err := range produceErrs {
		if err == nil {
			continue
		}
		rec := records[i]
		failures = append(failures, recordFailure{i, fmt.Errorf("producing to topic %q: %w", rec.Topic, err)})
		authFailed = authFailed || isAuthError(err)
	}
	if authFailed && len(failures) > 0 {
		// The credentials stopped working (rotated or revoked). Drop the
		// client so that the next write goes through Connect and its
		// back-off instead of retrying at full speed.
		o.dropClient(cl)
	}
	if len(failures) == 0 {
		return nil
	}

	slices.SortFunc(failures, func(a, b recordFailure) int { return a.index - b.index })
	headline := fmt.Errorf("%d of %d messages failed, first (index %d): %w",
		len(failures), len(batch), failures[0].index, failures[0].err)
	bErr := service.NewBatchError(batch, headline)
	for _, f := range failures {
		bErr = bErr.Failed(f.index, f.err)
	}
	return bErr
}

// awaitAcks waits for every promise. When the write timeout passes first,
// franz-go fails the records not yet sent, but records already sent are only
// failed once their outcome is known (with the idempotent producer), so
// awaitAcks logs that and keeps waiting.
func (o *franzOutput) awaitAcks(ctx context.Context, wg *sync.WaitGroup, n int) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		select {
		case <-done:
			return
		default:
		}
		o.log.Warnf("Write of %d messages to kafka brokers %v not acknowledged within %v: unsent records fail and are retried, records already sent are awaited", n, o.seedBrokers, o.timeout)
		<-done
	}
}

func (o *franzOutput) dropClient(cl *kgo.Client) {
	o.mu.Lock()
	if o.client == cl {
		o.client = nil
		o.saslWatch = nil
		o.log.Errorf("Kafka brokers %v rejected SASL authentication (%s); reconnecting", o.seedBrokers, o.saslDescription())
		go cl.Close()
	}
	o.mu.Unlock()
}

// buildRecords turns every message into a record. A message whose record
// cannot be built leaves a nil record and a failure.
func (o *franzOutput) buildRecords(batch service.MessageBatch) ([]*kgo.Record, []recordFailure) {
	topicExec := batch.InterpolationExecutor(o.topic)
	var keyExec, partitionExec, timestampExec *service.MessageBatchInterpolationExecutor
	if o.key != nil {
		keyExec = batch.InterpolationExecutor(o.key)
	}
	if o.partition != nil {
		partitionExec = batch.InterpolationExecutor(o.partition)
	}
	if o.timestampMs != nil {
		timestampExec = batch.InterpolationExecutor(o.timestampMs)
	}

	records := make([]*kgo.Record, len(batch))
	var failures []recordFailure
	for i, msg := range batch {
		rec, err := o.buildRecord(i, msg, topicExec, keyExec, partitionExec, timestampExec)
		if err != nil {
			failures = append(failures, recordFailure{i, err})
			continue
		}
		records[i] = rec
	}
	return records, failures
}

func (o *franzOutput) buildRecord(i int, msg *service.Message, topicExec, keyExec, partitionExec, timestampExec *service.MessageBatchInterpolationExecutor) (*kgo.Record, error) {
	topic, err := topicExec.TryString(i)
	if err != nil {
		return nil, fmt.Errorf("interpolating %s: %w", kfoFieldTopic, err)
	}
	if topic == "" {
		return nil, fmt.Errorf("%s resolved to an empty string", kfoFieldTopic)
	}

	value, err := msg.AsBytes()
	if err != nil {
		return nil, fmt.Errorf("reading message content: %w", err)
	}
	rec := &kgo.Record{Topic: topic, Value: value}

	if keyExec != nil {
		key, err := keyExec.TryBytes(i)
		if err != nil {
			return nil, fmt.Errorf("interpolating %s: %w", kfoFieldKey, err)
		}
		if key == nil {
			key = []byte{}
		}
		rec.Key = key
	}

	if partitionExec != nil {
		s, err := partitionExec.TryString(i)
		if err != nil {
			return nil, fmt.Errorf("interpolating %s: %w", kfoFieldPartition, err)
		}
		p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil || p < 0 {
			return nil, fmt.Errorf("%s resolved to %q, not a non-negative integer", kfoFieldPartition, s)
		}
		rec.Partition = int32(p)
	}

	if timestampExec != nil {
		s, err := timestampExec.TryString(i)
		if err != nil {
			return nil, fmt.Errorf("interpolating %s: %w", kfoFieldTimestampMs, err)
		}
		ms, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s resolved to %q, not an integer of milliseconds", kfoFieldTimestampMs, s)
		}
		rec.Timestamp = time.UnixMilli(ms)
	}

	if o.headers != nil {
		_ = o.headers.Walk(msg, func(k, v string) error {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
			return nil
		})
		slices.SortFunc(rec.Headers, func(a, b kgo.RecordHeader) int { return strings.Compare(a.Key, b.Key) })
	}
	return rec, nil
}

// Close flushes buffered records and closes the client.
func (o *franzOutput) Close(ctx context.Context) error {
	o.mu.Lock()
	cl := o.client
	o.client, o.saslWatch = nil, nil
	o.mu.Unlock()
	if cl == nil {
		return nil
	}
	err := cl.Flush(ctx)
	cl.Close()
	if err != nil {
		return fmt.Errorf("flushing kafka records on close: %w", err)
	}
	return nil
}

// kgoLogger routes franz-go's logs to the benthos logger, one level lower
// than franz-go's own (its info level is chatty connection bookkeeping).
type kgoLogger struct {
	l *service.Logger
}

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := k.l.With(keyvals...)
	switch level {
	case kgo.LogLevelError:
		l.Error(msg)
	case kgo.LogLevelWarn:
		l.Warn(msg)
	case kgo.LogLevelInfo:
		l.Debug(msg)
	default:
		l.Trace(msg)
	}
}
