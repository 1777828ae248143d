// Package wcwebhook holds the `woocommerce_webhook` input: an HTTP server
// receiving WooCommerce webhook deliveries, verifying their signatures,
// normalizing them into wcevent events and acknowledging them either after
// the pipeline acked (`ack: delivered`) or after a durable bbolt spool write
// (`ack: spooled`). Optionally it registers and heals the store's webhooks and
// confirms `*.deleted` deliveries over the REST API.
package wcwebhook

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
	"github.com/wooevents/wooevents/plugin/wcwebhook/spool"
)

// Config field names.
const (
	fieldAddress           = "address"
	fieldPath              = "path"
	fieldStoreURL          = "store_url"
	fieldSecret            = "secret"
	fieldSecrets           = "secrets"
	fieldStores            = "stores"
	fieldStoreName         = "name"
	fieldStoreURLItem      = "url"
	fieldStoreSecrets      = "secrets"
	fieldTopics            = "topics"
	fieldAck               = "ack"
	fieldSpoolDir          = "spool_dir"
	fieldSpoolMaxBytes     = "spool_max_bytes"
	fieldTimeout           = "timeout"
	fieldMaxBodyBytes      = "max_body_bytes"
	fieldMaxInFlight       = "max_in_flight"
	fieldCertFile          = "cert_file"
	fieldKeyFile           = "key_file"
	fieldRateLimit         = "rate_limit"
	fieldReadHeaderTimeout = "read_header_timeout"
	fieldIdleTimeout       = "idle_timeout"
	fieldConfirmDeletes    = "confirm_deletes"
	fieldRegister          = "register"
	fieldDeliveryURL       = "delivery_url"
	fieldRegisterTopics    = "topics"
	fieldCheckInterval     = "check_interval"
	fieldDeleteOnClose     = "delete_on_close"
)

// Ack modes.
const (
	AckDelivered = "delivered"
	AckSpooled   = "spooled"
)

// Defaults.
const (
	DefaultAddress           = "0.0.0.0:8080"
	DefaultPath              = "/webhooks/woocommerce"
	DefaultTimeout           = 10 * time.Second
	DefaultMaxBodyBytes      = 5 << 20
	DefaultMaxInFlight       = 1024
	DefaultSpoolMaxBytes     = 1 << 30
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultCheckInterval     = 5 * time.Minute
)

// DefaultRegisterTopics are the topics registered when register.topics is
// not set: order, product, customer, coupon × created, updated, deleted,
// restored.
var DefaultRegisterTopics = func() []string {
	var out []string
	for _, r := range []string{"order", "product", "customer", "coupon"} {
		for _, e := range []string{"created", "updated", "deleted", "restored"} {
			out = append(out, r+"."+e)
		}
	}
	return out
}()

// Spec is the woocommerce_webhook config spec.
func Spec() *service.ConfigSpec {
	regFields := append(wcclient.ConnectionFields(),
		service.NewURLField(fieldDeliveryURL).
			Description("Public URL WooCommerce delivers to: this server's `path` (plus `/<store name>` with `stores`) as the store reaches it, usually through a proxy. WordPress only delivers to ports 80, 443 and 8080 and refuses private addresses unless the shop allows them. Leave empty to use the credentials only to confirm deletes.").
			Example("https://events.example.com/webhooks/woocommerce").
			Default(""),
		service.NewStringListField(fieldRegisterTopics).
			Description("Topics to keep one active webhook for.").
			Default(DefaultRegisterTopics),
		service.NewDurationField(fieldCheckInterval).
			Description("How often the webhooks are checked again: missing ones are recreated, `disabled` (WooCommerce disables a hook after repeated failed deliveries) or `paused` ones re-activated, a wrong delivery URL fixed.").
			Default(DefaultCheckInterval.String()),
		service.NewBoolField(fieldDeleteOnClose).
			Description("Delete the webhooks this input manages (the ones named after it) when the input shuts down.").
			Default(false),
	)
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Receives WooCommerce webhook deliveries over HTTP, verifies them and emits normalized change events.").
		Description(`
Runs its own HTTP server. Every delivery's `+"`X-WC-Webhook-Signature`"+` (base64 HMAC-SHA256 of the exact raw body) is checked in
constant time against the store's secrets before anything else is read from it. Answers:

- 200: accepted (after the pipeline acked, or after the spool write, see `+"`ack`"+`); also WooCommerce's unsigned ping
  (`+"`webhook_id=N`"+`, not emitted) and deliveries of topics not listed in `+"`topics`"+` (dropped, so that WooCommerce does not
  count them as failures).
- 401 missing or wrong signature or unknown store, 400 signed but not a JSON object, 404 wrong path or store name,
  405 not POST, 413 body over `+"`max_body_bytes`"+`, 429 rate limited, 503 with `+"`Retry-After`"+` when overloaded, when the
  pipeline nacked or did not ack within `+"`timeout`"+`, or when the spool is full.

Every rejection is counted in `+"`woocommerce_webhook_rejections_total`"+` (label `+"`reason`"+`) and logged without body or secrets.
WooCommerce never redelivers a failed delivery and disables a webhook after repeated failures, so run the
`+"`woocommerce_poll`"+` input's reconciliation alongside, and consider `+"`ack: spooled`"+`.

Each message is the normalized event (`+"`id`, `type`, `resource`, `action`, `object_id`, `store`, `source: webhook`, `occurred_at`, `received_at`, `data`"+`)
with the `+"`woocommerce_*`"+` metadata, plus `+"`woocommerce_topic`, `woocommerce_webhook_id` and `woocommerce_delivery_id`"+`. Resource and
action come from `+"`X-WC-Webhook-Resource`/`-Event`"+` (or the topic); `+"`action.<hook>`"+` topics pass through with resource `+"`action`"+`.
`+"`X-WC-Webhook-Delivery-ID`"+` is not unique (one per webhook and second): deduplicate on the event `+"`id`"+`.

### Deletes

WooCommerce fires both `+"`product.deleted`"+` and `+"`coupon.deleted`"+` (body `+"`{\"id\":N}`"+`) when a product or a coupon is trashed
over REST, so the resource of a delete delivery cannot be trusted. With REST credentials (the `+"`register`"+` block) and
`+"`confirm_deletes`"+`, an order, product or coupon delete is checked with `+"`GET /wc/v3/<resources>/<id>`"+`: 404 means it is the
spurious twin, dropped (debug log, `+"`woocommerce_webhook_delete_checks_total{result=\"spurious\"}`"+`); a trashed object is
emitted with its `+"`date_modified_gmt`"+` as modification time, so its id equals the poll input's delete event. If the check
fails (store unreachable) the delete is emitted as received. **Without credentials, deletes are emitted as received,
including the spurious twin of the other resource.** An object trashed and then permanently deleted before the check
runs is dropped too.

### Registration

With `+"`register`"+`, the input keeps one active webhook per topic pointing at `+"`delivery_url`"+`, signed with the store's first
secret: on start and every `+"`check_interval`"+` it creates missing ones, fixes a wrong delivery URL and re-activates
`+"`disabled`"+` or `+"`paused`"+` ones (a warning says how long a disabled one may have been down;
`+"`woocommerce_webhooks_reenabled_total`"+`). It recognises its webhooks by delivery URL and topic, or by their name
(`+"`wooevents [<label>] <topic>`"+`), so two inputs registering on one store need different labels. A topic the store
refuses as invalid is skipped with a warning. With `+"`stores`"+`, only the deletes of the store whose URL is
`+"`register.store_url`"+` are confirmed.

### Spooled acknowledgement

With `+"`ack: spooled`"+` a delivery is written to a bbolt file in `+"`spool_dir`"+` and fsynced (concurrent requests share commits)
before the 200; the pipeline is fed from the spool and entries are removed only after their ack, nacked ones are
retried. After a crash every delivery answered 200 is emitted on restart (at least once). When the spool holds
`+"`spool_max_bytes`"+` the input answers 503 rather than dropping. Gauge: `+"`woocommerce_spool_depth`"+`.
`).
		Fields(
			service.NewStringField(fieldAddress).
				Description("Address to listen on. WordPress only delivers to ports 80, 443 and 8080 unless the shop changes the `http_allowed_safe_ports` filter.").
				Default(DefaultAddress),
			service.NewStringField(fieldPath).
				Description("Path deliveries are posted to. With `stores`, `<path>/<store name>` selects a store.").
				Default(DefaultPath),
			service.NewStringField(fieldStoreURL).
				Description("Single-store shortcut: the store's URL, used as the event's `store`. Empty: taken from `X-WC-Webhook-Source`.").
				Example("https://shop.example.com").
				Default(""),
			service.NewStringField(fieldSecret).
				Description("Single-store shortcut: the webhook secret.").
				Secret().
				Default(""),
			service.NewStringListField(fieldSecrets).
				Description("Single-store shortcut: several accepted secrets (rotation). Combined with `secret`; the first one is used when registering.").
				Secret().
				Default([]string{}),
			service.NewObjectListField(fieldStores,
				service.NewStringField(fieldStoreName).
					Description("Path segment selecting the store (`<path>/<name>`)."),
				service.NewStringField(fieldStoreURLItem).
					Description("The store's URL: the event's `store`, and matched against `X-WC-Webhook-Source` for deliveries to `path` itself."),
				service.NewStringListField(fieldStoreSecrets).
					Description("Accepted webhook secrets; the first one is used when registering.").
					Secret(),
			).
				Description("Several stores on one endpoint, instead of the single-store fields.").
				Default([]any{}).
				Advanced(),
			service.NewStringListField(fieldTopics).
				Description("Topics to emit; others are answered 200 and dropped. Accepts `resource.*` and `*.event`. Empty: all.").
				Example([]string{"order.*"}).
				Default([]string{}),
			service.NewStringAnnotatedEnumField(fieldAck, map[string]string{
				AckDelivered: "Answer 200 once the pipeline acked the message; 503 on nack or after `timeout`, like `http_server`.",
				AckSpooled:   "Answer 200 once the delivery is fsynced to the spool in `spool_dir`; the pipeline is fed from the spool.",
			}).
				Description("When a delivery is acknowledged to WooCommerce.").
				Default(AckDelivered),
			service.NewStringField(fieldSpoolDir).
				Description("Directory of the spool (`ack: spooled`).").
				Default(""),
			service.NewIntField(fieldSpoolMaxBytes).
				Description("Bound of the spooled deliveries' total size; beyond it deliveries get 503.").
				Default(DefaultSpoolMaxBytes).
				Advanced(),
			service.NewDurationField(fieldTimeout).
				Description("Longest wait for the pipeline's ack (`ack: delivered`). WooCommerce gives up after 60s.").
				Default(DefaultTimeout.String()),
			service.NewIntField(fieldMaxBodyBytes).
				Description("Largest accepted body; larger ones get 413.").
				Default(DefaultMaxBodyBytes).
				Advanced(),
			service.NewIntField(fieldMaxInFlight).
				Description("Most requests handled at once; more get 503 with `Retry-After`. 0: unbounded.").
				Default(DefaultMaxInFlight).
				Advanced(),
			service.NewStringField(fieldCertFile).
				Description("TLS certificate file; with `key_file`, serve HTTPS.").
				Default("").
				Advanced(),
			service.NewStringField(fieldKeyFile).
				Description("TLS private key file.").
				Default("").
				Advanced(),
			service.NewStringField(fieldRateLimit).
				Description("Name of a `rate_limit` resource; requests over it get 429 with `Retry-After`.").
				Default("").
				Advanced(),
			service.NewDurationField(fieldReadHeaderTimeout).
				Description("Time allowed to read request headers (slow clients).").
				Default(DefaultReadHeaderTimeout.String()).
				Advanced(),
			service.NewDurationField(fieldIdleTimeout).
				Description("Time an idle keep-alive connection is kept.").
				Default(DefaultIdleTimeout.String()).
				Advanced(),
			service.NewBoolField(fieldConfirmDeletes).
				Description("Confirm `*.deleted` deliveries over REST (needs `register` credentials). Default: true when credentials are set.").
				Optional().
				Advanced(),
			service.NewObjectField(fieldRegister, regFields...).
				Description("REST credentials of the store, to register and heal its webhooks and to confirm deletes.").
				Optional(),
		).
		Example("Single store", "Receive one store's webhooks and keep them registered.", `
input:
  woocommerce_webhook:
    address: 0.0.0.0:8080
    store_url: https://shop.example.com
    secret: ${WC_WEBHOOK_SECRET}
    ack: spooled
    spool_dir: /var/lib/wooevents/spool
    register:
      store_url: https://shop.example.com
      consumer_key: ${WC_CONSUMER_KEY}
      consumer_secret: ${WC_CONSUMER_SECRET}
      delivery_url: https://events.example.com/webhooks/woocommerce
`).
		Example("Several stores", "Two stores on one endpoint, selected by path segment.", `
input:
  woocommerce_webhook:
    stores:
      - name: eu
        url: https://eu.shop.example.com
        secrets: [ "${EU_SECRET}", "${EU_OLD_SECRET}" ]
      - name: us
        url: https://us.shop.example.com
        secrets: [ "${US_SECRET}" ]
`)
}

func init() {
	err := service.RegisterBatchInput("woocommerce_webhook", Spec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
			c, err := ConfigFromParsed(conf, mgr)
			if err != nil {
				return nil, err
			}
			return New(c, mgr)
		})
	if err != nil {
		panic(err)
	}
}

// StoreConfig is one store the input accepts deliveries from.
type StoreConfig struct {
	Name    string // path segment; "" for the single-store shortcut
	URL     string
	Secrets []string
}

// RegisterConfig enables webhook registration and healing.
type RegisterConfig struct {
	DeliveryURL   string
	Topics        []string
	CheckInterval time.Duration
	DeleteOnClose bool
}

// Config is the input's configuration (see Spec for the meaning of fields;
// zero values take the defaults).
type Config struct {
	Address           string
	Path              string
	Stores            []StoreConfig
	Topics            []string
	Ack               string
	SpoolDir          string
	SpoolMaxBytes     int64
	Timeout           time.Duration
	MaxBodyBytes      int64
	MaxInFlight       int // negative: unbounded
	CertFile, KeyFile string
	RateLimit         string
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// Client holds REST credentials (from the register block); nil without.
	Client *wcclient.Config
	// ConfirmDeletes checks *.deleted deliveries of Client's store over REST.
	ConfirmDeletes bool
	// Register, when set (and Client too), registers and heals webhooks.
	Register *RegisterConfig
}

// ConfigFromParsed reads the spec's fields.
func ConfigFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (Config, error) {
	var c Config
	var err error
	if c.Address, err = conf.FieldString(fieldAddress); err != nil {
		return c, err
	}
	if c.Path, err = conf.FieldString(fieldPath); err != nil {
		return c, err
	}
	storeURL, err := conf.FieldString(fieldStoreURL)
	if err != nil {
		return c, err
	}
	secret, err := conf.FieldString(fieldSecret)
	if err != nil {
		return c, err
	}
	secrets, err := conf.FieldStringList(fieldSecrets)
	if err != nil {
		return c, err
	}
	if secret != "" {
		secrets = append([]string{secret}, secrets...)
	}
	storeConfs, err := conf.FieldObjectList(fieldStores)
	if err != nil {
		return c, err
	}
	if len(storeConfs) > 0 && (storeURL != "" || len(secrets) > 0) {
		return c, fmt.Errorf("use either %s or the single-store fields (%s, %s, %s), not both", fieldStores, fieldStoreURL, fieldSecret, fieldSecrets)
	}
	if len(storeConfs) == 0 {
		c.Stores = []StoreConfig{{URL: storeURL, Secrets: secrets}}
	}
	for i, sc := range storeConfs {
		var s StoreConfig
		if s.Name, err = sc.FieldString(fieldStoreName); err != nil {
			return c, fmt.Errorf("%s[%d]: %w", fieldStores, i, err)
		}
		if s.URL, err = sc.FieldString(fieldStoreURLItem); err != nil {
			return c, fmt.Errorf("%s[%d]: %w", fieldStores, i, err)
		}
		if s.Secrets, err = sc.FieldStringList(fieldStoreSecrets); err != nil {
			return c, fmt.Errorf("%s[%d]: %w", fieldStores, i, err)
		}
		c.Stores = append(c.Stores, s)
	}
	if c.Topics, err = conf.FieldStringList(fieldTopics); err != nil {
		return c, err
	}
	if c.Ack, err = conf.FieldString(fieldAck); err != nil {
		return c, err
	}
	if c.SpoolDir, err = conf.FieldString(fieldSpoolDir); err != nil {
		return c, err
	}
	n, err := conf.FieldInt(fieldSpoolMaxBytes)
	if err != nil {
		return c, err
	}
	c.SpoolMaxBytes = int64(n)
	if c.Timeout, err = conf.FieldDuration(fieldTimeout); err != nil {
		return c, err
	}
	if n, err = conf.FieldInt(fieldMaxBodyBytes); err != nil {
		return c, err
	}
	c.MaxBodyBytes = int64(n)
	if c.MaxInFlight, err = conf.FieldInt(fieldMaxInFlight); err != nil {
		return c, err
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = -1
	}
	if c.CertFile, err = conf.FieldString(fieldCertFile); err != nil {
		return c, err
	}
	if c.KeyFile, err = conf.FieldString(fieldKeyFile); err != nil {
		return c, err
	}
	if c.RateLimit, err = conf.FieldString(fieldRateLimit); err != nil {
		return c, err
	}
	if c.ReadHeaderTimeout, err = conf.FieldDuration(fieldReadHeaderTimeout); err != nil {
		return c, err
	}
	if c.IdleTimeout, err = conf.FieldDuration(fieldIdleTimeout); err != nil {
		return c, err
	}
	if conf.Contains(fieldRegister) {
		rc := conf.Namespace(fieldRegister)
		cc, err := wcclient.ConfigFromParsed(rc, mgr)
		if err != nil {
			return c, fmt.Errorf("%s: %w", fieldRegister, err)
		}
		c.Client = &cc
		c.ConfirmDeletes = true
		var r RegisterConfig
		if r.DeliveryURL, err = rc.FieldString(fieldDeliveryURL); err != nil {
			return c, err
		}
		if r.Topics, err = rc.FieldStringList(fieldRegisterTopics); err != nil {
			return c, err
		}
		if r.CheckInterval, err = rc.FieldDuration(fieldCheckInterval); err != nil {
			return c, err
		}
		if r.DeleteOnClose, err = rc.FieldBool(fieldDeleteOnClose); err != nil {
			return c, err
		}
		if r.DeliveryURL != "" {
			c.Register = &r
		}
	}
	if conf.Contains(fieldConfirmDeletes) {
		if c.ConfirmDeletes, err = conf.FieldBool(fieldConfirmDeletes); err != nil {
			return c, err
		}
		if c.ConfirmDeletes && c.Client == nil {
			return c, fmt.Errorf("%s needs REST credentials in %s", fieldConfirmDeletes, fieldRegister)
		}
	}
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.Ack == "" {
		c.Ack = AckDelivered
	}
	if c.SpoolMaxBytes == 0 {
		c.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if r := c.Register; r != nil {
		if len(r.Topics) == 0 {
			r.Topics = DefaultRegisterTopics
		}
		if r.CheckInterval <= 0 {
			r.CheckInterval = DefaultCheckInterval
		}
	}
}

func (c *Config) validate() error {
	if !strings.HasPrefix(c.Path, "/") {
		return fmt.Errorf("%s must start with /", fieldPath)
	}
	if len(c.Stores) == 0 {
		return fmt.Errorf("no store configured: set %s (or %s) or %s", fieldSecret, fieldSecrets, fieldStores)
	}
	names := map[string]bool{}
	for i, s := range c.Stores {
		if len(s.Secrets) == 0 {
			return fmt.Errorf("store %d (%q) has no secret: unsigned deliveries are never accepted", i, s.Name)
		}
		for _, sec := range s.Secrets {
			if sec == "" {
				return fmt.Errorf("store %d (%q) has an empty secret", i, s.Name)
			}
		}
		if s.Name == "" && len(c.Stores) > 1 {
			return fmt.Errorf("%s[%d]: %s is required", fieldStores, i, fieldStoreName)
		}
		if strings.Contains(s.Name, "/") {
			return fmt.Errorf("%s[%d]: %s must not contain /", fieldStores, i, fieldStoreName)
		}
		if s.Name != "" && s.URL == "" {
			return fmt.Errorf("%s[%d]: %s is required", fieldStores, i, fieldStoreURLItem)
		}
		if names[s.Name] {
			return fmt.Errorf("%s: store name %q used twice", fieldStores, s.Name)
		}
		names[s.Name] = true
	}
	switch c.Ack {
	case AckDelivered:
	case AckSpooled:
		if c.SpoolDir == "" {
			return fmt.Errorf("%s: %s needs %s", fieldAck, AckSpooled, fieldSpoolDir)
		}
	default:
		return fmt.Errorf("%s: unknown mode %q (want %s or %s)", fieldAck, c.Ack, AckDelivered, AckSpooled)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%s and %s go together", fieldCertFile, fieldKeyFile)
	}
	if c.Register != nil && c.Client == nil {
		return fmt.Errorf("%s needs REST credentials", fieldRegister)
	}
	if c.ConfirmDeletes && c.Client == nil {
		return fmt.Errorf("%s needs REST credentials", fieldConfirmDeletes)
	}
	return nil
}

// Input is the woocommerce_webhook input. It implements service.BatchInput.
type Input struct {
	conf Config
	log  *service.Logger
	m    *metrics
	h    *handler

	client   *wcclient.Client
	confirm  *deleteConfirmer
	reg      *registrar
	regStop  context.CancelFunc
	regDone  chan struct{}
	regStore string

	// ack: delivered
	pending chan *pending
	closing chan struct{}
	// ack: spooled
	feeder *spoolFeeder

	mu        sync.Mutex
	srv       *http.Server
	addr      net.Addr
	serveErr  chan error
	connected bool
	closed    bool
	closeOnce sync.Once
}

// New builds the input and, with ack: spooled, opens the spool. mgr provides
// logging, metrics and the rate_limit resource; service.MockResources() works
// for tests and benchmarks. Close releases what New took.
func New(conf Config, mgr *service.Resources) (*Input, error) {
	conf.applyDefaults()
	if err := conf.validate(); err != nil {
		return nil, err
	}
	if mgr == nil {
		mgr = service.MockResources()
	}
	in := &Input{
		conf:    conf,
		log:     mgr.Logger(),
		m:       newMetrics(mgr.Metrics()),
		closing: make(chan struct{}),
	}
	maxInFlight := conf.MaxInFlight
	if maxInFlight < 0 {
		maxInFlight = 0
	}
	h, err := newHandler(conf.Path, conf.Stores, conf.Topics, conf.MaxBodyBytes, maxInFlight)
	if err != nil {
		return nil, err
	}
	h.log, h.m = in.log, in.m
	if conf.RateLimit != "" {
		if !mgr.HasRateLimit(conf.RateLimit) {
			return nil, fmt.Errorf("%s: rate limit resource %q not found", fieldRateLimit, conf.RateLimit)
		}
		name := conf.RateLimit
		h.rateLimit = func(ctx context.Context) (wait time.Duration, err error) {
			if aerr := mgr.AccessRateLimit(ctx, name, func(r service.RateLimit) { wait, err = r.Access(ctx) }); aerr != nil {
				return 0, aerr
			}
			return wait, err
		}
	}
	in.h = h
	if conf.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(conf.CertFile, conf.KeyFile); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", fieldCertFile, fieldKeyFile, err)
		}
	}

	if conf.Client != nil {
		cc := *conf.Client
		if cc.Logger == nil {
			cc.Logger = in.log
		}
		client, err := wcclient.New(cc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldRegister, err)
		}
		in.client = client
		in.regStore = wcevent.NormalizeStore(cc.StoreURL)
		if conf.ConfirmDeletes {
			in.confirm = &deleteConfirmer{client: client, store: in.regStore, log: in.log, m: in.m,
				anyStore: len(conf.Stores) == 1 && conf.Stores[0].Name == ""}
		}
		if conf.Register != nil {
			secret, err := registerSecret(conf.Stores, in.regStore)
			if err != nil {
				return nil, err
			}
			in.reg = newRegistrar(client, *conf.Register, secret, mgr.Label(), in.log, in.m)
		}
	}

	switch conf.Ack {
	case AckSpooled:
		// Opened here rather than in Connect: a spool locked by another
		// process is a configuration error to report at once.
		sp, err := spool.Open(conf.SpoolDir, spool.Options{
			MaxBytes: conf.SpoolMaxBytes,
			OnCommit: func(depth int64) { in.m.spoolDepth.Set(depth) },
			OnRemoveError: func(n int, err error) {
				in.log.Errorf("woocommerce_webhook: removing %d acked spool records: %v (they will be emitted again after a restart)", n, err)
			},
		})
		if err != nil {
			if in.client != nil {
				in.client.Close()
			}
			return nil, err
		}
		in.m.spoolDepth.Set(sp.Depth())
		if d := sp.Depth(); d > 0 {
			in.log.Infof("woocommerce_webhook: %d spooled deliveries from a previous run will be emitted", d)
		}
		in.feeder = &spoolFeeder{sp: sp, log: in.log, m: in.m, confirm: in.confirm, retryKick: make(chan struct{}, 1)}
		h.sink = &spoolSink{f: in.feeder}
	default:
		in.pending = make(chan *pending)
		h.sink = &deliveredSink{in: in}
	}
	return in, nil
}

// registerSecret is the secret webhooks are registered with: the first one
// of the store the credentials belong to.
func registerSecret(stores []StoreConfig, store string) (string, error) {
	if len(stores) == 1 && stores[0].Name == "" {
		return stores[0].Secrets[0], nil
	}
	for _, s := range stores {
		if wcevent.NormalizeStore(s.URL) == store {
			return s.Secrets[0], nil
		}
	}
	return "", fmt.Errorf("%s.%s %q matches none of the %s", fieldRegister, wcclient.FieldStoreURL, store, fieldStores)
}

// Handler is the input's HTTP handler (for mounting in tests or benchmarks
// without the network). Deliveries it accepts go to the pipeline as usual.
func (in *Input) Handler() http.Handler { return in.h }

// Addr is the address the server listens on once connected (useful with
// port 0), nil before.
func (in *Input) Addr() net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.addr
}

// Connect starts the HTTP server and the webhook registration.
func (in *Input) Connect(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return service.ErrEndOfInput
	}
	if in.connected {
		return nil
	}
	ln, err := net.Listen("tcp", in.conf.Address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", in.conf.Address, err)
	}
	srv := &http.Server{
		Handler:           in.h,
		ReadHeaderTimeout: in.conf.ReadHeaderTimeout,
		ReadTimeout:       in.conf.ReadHeaderTimeout + in.conf.Timeout,
		WriteTimeout:      in.conf.ReadHeaderTimeout + 2*in.conf.Timeout + 5*time.Second,
		IdleTimeout:       in.conf.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		// Handshake errors and the like from port scanners: debug only.
		ErrorLog: log.New(debugWriter{in.log}, "", 0),
	}
	errCh := make(chan error, 1)
	go func() {
		var err error
		if in.conf.CertFile != "" {
			err = srv.ServeTLS(ln, in.conf.CertFile, in.conf.KeyFile)
		} else {
			err = srv.Serve(ln)
		}
		errCh <- err
	}()
	in.srv, in.addr, in.serveErr, in.connected = srv, ln.Addr(), errCh, true
	scheme := "http"
	if in.conf.CertFile != "" {
		scheme = "https"
	}
	in.log.Infof("woocommerce_webhook: receiving on %s://%s%s (ack: %s)", scheme, ln.Addr(), in.conf.Path, in.conf.Ack)

	if in.reg != nil && in.regStop == nil {
		rctx, cancel := context.WithCancel(context.Background())
		in.regStop, in.regDone = cancel, make(chan struct{})
		go func() {
			defer close(in.regDone)
			in.reg.run(rctx)
		}()
	}
	return nil
}

// serverFailed reports (once) a server that stopped on its own, so that
// ReadBatch can ask for a reconnect.
func (in *Input) serverFailed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.connected {
		return true
	}
	select {
	case err := <-in.serveErr:
		in.log.Errorf("woocommerce_webhook: server stopped: %v", err)
		in.connected = false
		return true
	default:
		return false
	}
}

// ReadBatch returns the next delivery as a one-message batch.
func (in *Input) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	if in.serverFailed() {
		return nil, nil, service.ErrNotConnected
	}
	if in.feeder != nil {
		return in.feeder.read(ctx)
	}
	select {
	case p := <-in.pending:
		return service.MessageBatch{p.msg}, func(_ context.Context, err error) error {
			p.done <- err
			return nil
		}, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-in.closing:
		return nil, nil, service.ErrEndOfInput
	}
}

// Close stops the server gracefully (in-flight requests finish within ctx),
// closes the spool, stops registration and, with delete_on_close, removes the
// managed webhooks.
func (in *Input) Close(ctx context.Context) error {
	var err error
	in.closeOnce.Do(func() {
		in.mu.Lock()
		in.closed = true
		srv := in.srv
		in.mu.Unlock()
		close(in.closing)
		if srv != nil {
			if serr := srv.Shutdown(ctx); serr != nil {
				err = fmt.Errorf("shutting down the server: %w", serr)
				_ = srv.Close()
			}
		}
		if in.feeder != nil {
			if cerr := in.feeder.sp.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
		if in.regStop != nil {
			in.regStop()
			select {
			case <-in.regDone:
			case <-ctx.Done():
			}
		}
		if in.reg != nil && in.conf.Register.DeleteOnClose {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if derr := in.reg.deleteManaged(dctx); derr != nil {
				in.log.Errorf("woocommerce_webhook: delete_on_close: %v", derr)
			}
			cancel()
		}
		if in.client != nil {
			in.client.Close()
		}
	})
	return err
}

// debugWriter sends net/http's own error log lines to the debug log.
type debugWriter struct{ log *service.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debugf("woocommerce_webhook: http server: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// pending is a delivery waiting for its pipeline ack (ack: delivered).
type pending struct {
	msg  *service.Message
	done chan error
}

// deliveredSink hands deliveries to ReadBatch and waits for the ack.
type deliveredSink struct {
	in *Input
}

func (s *deliveredSink) accept(ctx context.Context, d *delivery, f wcevent.ObjectFields) outcome {
	timer := time.NewTimer(s.in.conf.Timeout)
	defer timer.Stop()
	ev := d.event(f)
	if s.in.confirm != nil && s.in.confirm.applies(&ev) {
		// Keep half the budget for the pipeline.
		cctx, cancel := context.WithTimeout(ctx, s.in.conf.Timeout/2)
		emit := s.in.confirm.check(cctx, &ev)
		cancel()
		if !emit {
			return ok200
		}
	}
	p := &pending{msg: d.message(&ev), done: make(chan error, 1)}
	select {
	case s.in.pending <- p:
	case <-timer.C:
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonTimeout, retryAfter: 5}
	case <-s.in.closing:
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonShuttingDown, retryAfter: 5}
	case <-ctx.Done():
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonClientGone, retryAfter: 5}
	}
	select {
	case err := <-p.done:
		if err != nil {
			return outcome{status: http.StatusServiceUnavailable, reason: ReasonNacked, retryAfter: 5}
		}
		return ok200
	case <-timer.C:
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonTimeout, retryAfter: 5}
	case <-ctx.Done():
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonClientGone, retryAfter: 5}
	}
}
