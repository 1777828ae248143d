// Package wcwebhook holds the `woocommerce_webhook` input: an HTTP server
// receiving WooCommerce webhook deliveries, verifying their signatures,
// normalizing them into wcevent events and handing them to a sink, one per
// ack mode: the delivered sink answers after the pipeline acked (`ack:
// delivered`), the spooled sink after a durable spool write (`ack:
// spooled`, package spool: an append-only log of segment files). Per store, it optionally registers and heals the store's
// webhooks and confirms `*.deleted` deliveries over the REST API.
//
// Files: input.go (spec, lifecycle), config.go (parsing, no defaults outside
// the spec), handler.go (HTTP: routing, limits, verification), sink.go (the
// sink interface and the delivered sink), spooled.go (the spooled sink),
// delivery.go (a verified delivery, its event, message and spool record),
// confirm.go (delete checks), register.go (webhook registration), mount.go
// (serving on a host's listener instead of its own).
package wcwebhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/wcclient"
)

// Config field names.
const (
	fieldAddress            = "address"
	fieldPath               = "path"
	fieldPublicURL          = "public_url"
	fieldStoreURL           = "store_url"
	fieldSecret             = "secret"
	fieldSecrets            = "secrets"
	fieldStores             = "stores"
	fieldStoreName          = "name"
	fieldStoreURLItem       = "url"
	fieldStoreSecrets       = "secrets"
	fieldTopics             = "topics"
	fieldAck                = "ack"
	fieldSpoolDir           = "spool_dir"
	fieldSpoolMaxBytes      = "spool_max_bytes"
	fieldTimeout            = "timeout"
	fieldMaxBodyBytes       = "max_body_bytes"
	fieldMaxInFlight        = "max_in_flight"
	fieldCertFile           = "cert_file"
	fieldKeyFile            = "key_file"
	fieldRateLimit          = "rate_limit"
	fieldReadHeaderTimeout  = "read_header_timeout"
	fieldIdleTimeout        = "idle_timeout"
	fieldConfirmDeletes     = "confirm_deletes"
	fieldDeleteCheckTimeout = "delete_check_timeout"
	fieldRegister           = "register"
	fieldDeliveryURL        = "delivery_url"
	fieldRegisterTopics     = "topics"
	fieldCheckInterval      = "check_interval"
	fieldDeleteOnClose      = "delete_on_close"
)

// Ack modes.
const (
	AckDelivered = "delivered"
	AckSpooled   = "spooled"
)

// DefaultPath is the default of `path` (tests and benchmarks post to it).
const DefaultPath = "/webhooks/woocommerce"

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

// lintRule is the input's cross-field check, run by `wooevents lint` (and by
// every config load) before anything starts. `this` is the input's config
// as written, without defaults.
const lintRule = `
let stores = this.stores.or([])
let single = this.store_url.or("") != "" || this.secret.or("") != "" || this.secrets.or([]).length() > 0 || this.exists("register")
root = [
  if this.ack.or("delivered") == "spooled" && this.spool_dir.or("") == "" { "ack: spooled needs spool_dir, the directory of the spool file" } else { null },
  if this.cert_file.or("") != "" && this.key_file.or("") == "" { "cert_file needs key_file (the certificate's private key)" } else { null },
  if this.key_file.or("") != "" && this.cert_file.or("") == "" { "key_file needs cert_file (the certificate)" } else { null },
  if $stores.length() > 0 && $single { "stores replaces the single-store fields store_url, secret, secrets and register: give each store its own url, secrets and register" } else { null },
  if $stores.length() == 0 && !$single { "no store configured: set secret (or secrets) or stores" } else { null },
  if $stores.length() > 0 && $stores.map_each(s -> s.name.or("")).unique().length() != $stores.length() { "stores: every store needs a name of its own" } else { null },
  if this.spool_max_bytes.or(1) <= 0 { "spool_max_bytes must be positive: it bounds the spool, there is no unbounded spool" } else { null },
  if this.max_in_flight.or(0) < 0 { "max_in_flight must be 0 (unbounded) or positive" } else { null },
  if this.confirm_deletes.or(false) && !this.exists("register") && $stores.filter(s -> s.exists("register")).length() == 0 { "confirm_deletes needs REST credentials: a register block" } else { null },
].filter(e -> e != null)
`

// registerFields are the fields of a register block after its store_url.
func registerFields() []*service.ConfigField {
	return append(wcclient.ClientFields(),
		service.NewURLField(fieldDeliveryURL).
			Description("Public URL WooCommerce delivers to: this server's `path` (plus `/<store name>` for an entry of `stores`) as the store reaches it, usually through a proxy. Empty: `public_url` + `path` (+ `/<name>`) when `public_url` is set; without either, the credentials only confirm deletes. WordPress only delivers to ports 80, 443 and 8080 and refuses private addresses unless the shop allows them.").
			Example("https://events.example.com/webhooks/woocommerce").
			Default(""),
		service.NewStringListField(fieldRegisterTopics).
			Description("Topics to keep one active webhook for.").
			Default(DefaultRegisterTopics),
		service.NewDurationField(fieldCheckInterval).
			Description("How often the webhooks are checked again: missing ones are recreated, `disabled` (WooCommerce disables a hook after repeated failed deliveries) or `paused` ones re-activated, a wrong delivery URL fixed. A failed check is retried after 5s, doubling up to this interval.").
			Default("5m"),
		service.NewBoolField(fieldDeleteOnClose).
			Description("Delete the webhooks this input manages (the ones named after it) when the input shuts down, after any check in flight has finished.").
			Default(false),
	)
}

// Spec is the woocommerce_webhook config spec: the one place that holds the
// input's defaults.
func Spec() *service.ConfigSpec {
	singleRegister := append(wcclient.ConnectionFields()[:1], registerFields()...)
	storeRegister := append([]*service.ConfigField{
		service.NewURLField(fieldStoreURL).
			Description("The store's WordPress home URL for REST calls. Empty: the store's `url`.").
			Default(""),
	}, registerFields()...)
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Receives WooCommerce webhook deliveries over HTTP, verifies them and emits normalized change events.").
		Description(`
Runs its own HTTP server on `+"`address`"+`, unless the program running the pipeline serves it on a listener of its own
(`+"`wooevents serve`"+` mounts every webhook instance's input on its API listener; `+"`address`"+`, `+"`cert_file`"+`, `+"`key_file`"+`,
`+"`read_header_timeout`"+` and `+"`idle_timeout`"+` are then unused). Every delivery's `+"`X-WC-Webhook-Signature`"+` (base64
HMAC-SHA256 of the exact raw body) is checked in constant time against the store's secrets before anything else is
read from it. Answers:

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
with the `+"`woocommerce_*`"+` metadata, plus `+"`woocommerce_topic`, `woocommerce_webhook_id` and `woocommerce_delivery_id`"+`, and
`+"`woocommerce_store_name`"+` for a store of `+"`stores`"+`. Resource and action come from `+"`X-WC-Webhook-Resource`/`-Event`"+` (or the
topic); `+"`action.<hook>`"+` topics pass through with resource `+"`action`"+`. `+"`X-WC-Webhook-Delivery-ID`"+` is not unique (one per
webhook and second): deduplicate on the event `+"`id`"+`.

### Several stores

With `+"`stores`"+`, each store has a name, a URL and its own secrets, and optionally its own `+"`register`"+` block (REST
credentials, webhook registration, delete checks). A delivery to `+"`<path>/<name>`"+` belongs to that store; one to `+"`path`"+`
itself is matched by `+"`X-WC-Webhook-Source`"+`. The store paths are logged at start. `+"`stores`"+` replaces the single-store
fields `+"`store_url`"+`, `+"`secret`"+`, `+"`secrets`"+` and `+"`register`"+` (lint error when both are set).

### Deletes

WooCommerce fires both `+"`product.deleted`"+` and `+"`coupon.deleted`"+` (body `+"`{\"id\":N}`"+`) when a product or a coupon is trashed
over REST, so the resource of a delete delivery cannot be trusted. For a store with REST credentials (its `+"`register`"+`
block) and `+"`confirm_deletes`"+`, an order, product or coupon delete is checked with `+"`GET /wc/v3/<resources>/<id>`"+`:

- 404: the spurious twin, dropped (debug log, `+"`woocommerce_webhook_delete_checks_total{result=\"spurious\"}`"+`);
- in the trash: emitted with its `+"`date_modified_gmt`"+` as modification time, so its id equals the poll input's delete event;
  metadata `+"`woocommerce_delete_confirmed: true`"+`, `+"`woocommerce_delete_check: confirmed`"+`;
- found but not trashed (restored since): emitted as received, `+"`woocommerce_delete_check: not_trash`"+`;
- no answer within `+"`delete_check_timeout`"+` (retries included; with `+"`ack: delivered`"+` at most half of `+"`timeout`"+`): emitted as
  received, `+"`woocommerce_delete_check: timeout`"+`; any other failure: `+"`error`"+`. After a failed check the store's next
  checks are skipped (`+"`skipped`"+`) for 5s, doubling up to 5m while checks keep failing, so a store that is down does not
  hold the feed: every delete is then emitted at once as received.

In all but the first case `+"`woocommerce_delete_confirmed`"+` is `+"`false`"+`: the resource may be the wrong one. Deletes of stores
without credentials are emitted as received, without these two keys, including the spurious twin of the other resource.

### Registration

With a delivery URL (`+"`register.delivery_url`"+`, or `+"`public_url`"+` + `+"`path`"+` [+ `+"`/<name>`"+`]), the input keeps one active
webhook per topic pointing at it, signed with the store's first secret: on start and every `+"`check_interval`"+` it creates
missing ones, fixes a wrong delivery URL and re-activates `+"`disabled`"+` or `+"`paused`"+` ones (a warning says how long a
disabled one may have been down; `+"`woocommerce_webhooks_reenabled_total`"+`). A failed check is retried after 5s, doubling
up to `+"`check_interval`"+`. It recognises its webhooks by delivery URL and topic, or by their name
(`+"`wooevents [<label>] <topic>`"+`), so two inputs registering on one store need different labels. A topic the store
refuses as invalid is skipped with a warning.

### Spooled acknowledgement

With `+"`ack: spooled`"+` a delivery is appended to a log of segment files in `+"`spool_dir`"+` and fdatasynced (concurrent
requests share one write and one sync) before the 200; the pipeline is fed from the spool and entries are removed
only after their ack, nacked ones are retried. After a crash every delivery answered 200 is emitted on restart (at least once). When the spool holds
`+"`spool_max_bytes`"+` the input answers 503 rather than dropping. Gauge: `+"`woocommerce_spool_depth`"+`.
`).
		Fields(
			service.NewStringField(fieldAddress).
				Description("Address to listen on. WordPress only delivers to ports 80, 443 and 8080 unless the shop changes the `http_allowed_safe_ports` filter. Unused when the program running the pipeline serves the input on its own listener (`wooevents serve`).").
				Default("0.0.0.0:8080"),
			service.NewStringField(fieldPath).
				Description("Path deliveries are posted to. With `stores`, `<path>/<store name>` selects a store.").
				Default(DefaultPath),
			service.NewStringField(fieldPublicURL).
				Description("The URL at which the store reaches this server, without `path` (scheme, host, port and any proxy prefix). Registration delivers to `<public_url><path>` (single store) or `<public_url><path>/<name>` (each entry of `stores`) unless a `delivery_url` is given.").
				Example("https://events.example.com").
				Default(""),
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
				Default([]any{}),
			service.NewObjectListField(fieldStores,
				service.NewStringField(fieldStoreName).
					Description("Path segment selecting the store (`<path>/<name>`), and the `woocommerce_store_name` metadata of its events."),
				service.NewStringField(fieldStoreURLItem).
					Description("The store's URL: the event's `store`, and matched against `X-WC-Webhook-Source` for deliveries to `path` itself."),
				service.NewStringListField(fieldStoreSecrets).
					Description("Accepted webhook secrets; the first one is used when registering.").
					Secret(),
				service.NewObjectField(fieldRegister, storeRegister...).
					Description("This store's REST credentials, to register and heal its webhooks (delivery URL default: `<public_url><path>/<name>`) and to confirm its deletes.").
					Optional(),
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
				Description("Directory of the spool (`ack: spooled`, required there): segment files `<id>.seg`, the removals file `acks` and `spool.lock`, which keeps a second process out. A `webhook-spool.db` left by an earlier version (a bbolt spool) is migrated into it at start.").
				Default(""),
			service.NewIntField(fieldSpoolMaxBytes).
				Description("Bound of the spooled deliveries' total size; beyond it deliveries get 503. Must be positive: there is no unbounded spool. The files can take more room than this: a segment file (a sixteenth of this bound, 1 to 32 MiB) is deleted once every delivery in it is acknowledged, so the directory holds at most about four times the unacknowledged deliveries plus a few segments.").
				Default(1<<30).
				Advanced(),
			service.NewDurationField(fieldTimeout).
				Description("Longest wait for the pipeline's ack (`ack: delivered`). WooCommerce gives up after 60s.").
				Default("10s"),
			service.NewIntField(fieldMaxBodyBytes).
				Description("Largest accepted body; larger ones get 413.").
				Default(5<<20).
				Advanced(),
			service.NewIntField(fieldMaxInFlight).
				Description("Most requests handled at once; more get 503 with `Retry-After`. `0` means unbounded; negative values are refused.").
				Default(1024).
				Advanced(),
			service.NewStringField(fieldCertFile).
				Description("TLS certificate file; with `key_file`, serve HTTPS. One without the other is a lint error.").
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
				Default("10s").
				Advanced(),
			service.NewDurationField(fieldIdleTimeout).
				Description("Time an idle keep-alive connection is kept.").
				Default("60s").
				Advanced(),
			service.NewBoolField(fieldConfirmDeletes).
				Description("Confirm `*.deleted` deliveries over REST (needs `register` credentials). Default: true for every store with credentials.").
				Optional().
				Advanced(),
			service.NewDurationField(fieldDeleteCheckTimeout).
				Description("Budget of one delete check, retries included (with `ack: delivered` at most half of `timeout`). When it runs out the delete is emitted as received with `woocommerce_delete_check: timeout`.").
				Default("5s").
				Advanced(),
			service.NewObjectField(fieldRegister, singleRegister...).
				Description("Single-store shortcut: REST credentials of the store, to register and heal its webhooks and to confirm deletes.").
				Optional(),
		).
		LintRule(lintRule).
		Example("Single store", "Receive one store's webhooks and keep them registered.", `
input:
  woocommerce_webhook:
    address: 0.0.0.0:8080
    public_url: https://events.example.com
    store_url: https://shop.example.com
    secret: ${WC_WEBHOOK_SECRET}
    ack: spooled
    spool_dir: /var/lib/wooevents/spool
    register:
      store_url: https://shop.example.com
      consumer_key: ${WC_CONSUMER_KEY}
      consumer_secret: ${WC_CONSUMER_SECRET}
`).
		Example("Several stores", "Two stores on one endpoint, selected by path segment, each registering its own webhooks at https://events.example.com/webhooks/woocommerce/<name>.", `
input:
  woocommerce_webhook:
    public_url: https://events.example.com
    stores:
      - name: eu
        url: https://eu.shop.example.com
        secrets: [ "${EU_SECRET}", "${EU_OLD_SECRET}" ]
        register:
          consumer_key: ${EU_CONSUMER_KEY}
          consumer_secret: ${EU_CONSUMER_SECRET}
      - name: us
        url: https://us.shop.example.com
        secrets: [ "${US_SECRET}" ]
        register:
          consumer_key: ${US_CONSUMER_KEY}
          consumer_secret: ${US_CONSUMER_SECRET}
          topics: [ order.created, order.updated, order.deleted ]
`)
}

func init() {
	err := service.RegisterBatchInput("woocommerce_webhook", Spec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
			return New(conf, mgr)
		})
	if err != nil {
		panic(err)
	}
}

// Input is the woocommerce_webhook input. It implements service.BatchInput.
type Input struct {
	conf    inputConfig
	log     *service.Logger
	m       *metrics
	h       *handler
	sink    sink
	stores  []*storeREST // stores with REST credentials
	mounter Mounter      // the host's listener (SetMounter); nil: the input listens on address

	mu        sync.Mutex
	srv       *http.Server
	unmount   func() // while mounted on the host's listener
	addr      net.Addr
	serveErr  chan error
	connected bool
	closed    bool
	regs      *registrations // running registrars, nil before Connect
	closeOnce sync.Once
}

// New builds the input from its parsed config and, with ack: spooled, opens
// the spool. mgr provides logging, metrics and the rate_limit resource.
// Close releases what New took.
func New(conf *service.ParsedConfig, mgr *service.Resources) (*Input, error) {
	c, err := parseConfig(conf, mgr)
	if err != nil {
		return nil, err
	}
	in := &Input{conf: c, log: mgr.Logger(), m: newMetrics(mgr.Metrics()), mounter: mounterOf(mgr)}
	if c.certFile != "" {
		if _, err := tls.LoadX509KeyPair(c.certFile, c.keyFile); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", fieldCertFile, fieldKeyFile, err)
		}
	}
	var rateLimit func(context.Context) (time.Duration, error)
	if c.rateLimit != "" {
		if !mgr.HasRateLimit(c.rateLimit) {
			return nil, fmt.Errorf("%s: rate limit resource %q not found", fieldRateLimit, c.rateLimit)
		}
		name := c.rateLimit
		rateLimit = func(ctx context.Context) (wait time.Duration, err error) {
			if aerr := mgr.AccessRateLimit(ctx, name, func(r service.RateLimit) { wait, err = r.Access(ctx) }); aerr != nil {
				return 0, aerr
			}
			return wait, err
		}
	}

	checks := &deleteChecks{byStore: map[string]*deleteChecker{}, budget: c.deleteCheckTimeout}
	for i := range c.stores {
		s := &c.stores[i]
		if s.rest == nil {
			continue
		}
		rest, err := newStoreREST(s, &c, mgr.Label(), in.log, in.m)
		if err != nil {
			in.closeClients()
			return nil, err
		}
		in.stores = append(in.stores, rest)
		if rest.check != nil {
			checks.byStore[s.name] = rest.check
		}
	}

	switch c.ack {
	case AckSpooled:
		// Opened here rather than in Connect: a spool locked by another
		// process is a configuration error to report at once.
		sk, err := openSpooledSink(c.spoolDir, c.spoolMaxBytes, checks, in.log, in.m)
		if err != nil {
			in.closeClients()
			return nil, err
		}
		in.sink = sk
	default:
		in.sink = newDeliveredSink(c.timeout, checks)
	}
	in.h = newHandler(handlerConfig{
		path:        c.path,
		stores:      c.stores,
		topics:      c.topics,
		maxBody:     c.maxBodyBytes,
		maxInFlight: c.maxInFlight,
		rateLimit:   rateLimit,
	}, in.sink, in.log, in.m)
	return in, nil
}

func (in *Input) closeClients() {
	for _, s := range in.stores {
		s.client.Close()
	}
}

// Handler is the input's HTTP handler (for mounting in tests or benchmarks
// without the network). Deliveries it accepts go to the pipeline as usual.
func (in *Input) Handler() http.Handler { return in.h }

// Addr is the address the server listens on once connected (useful with
// port 0), nil before, and nil when the input is mounted on its host's
// listener (SetMounter).
func (in *Input) Addr() net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.addr
}

// Connect starts the HTTP server, or mounts the handler on the host's
// listener (SetMounter), and the webhook registration.
func (in *Input) Connect(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return service.ErrEndOfInput
	}
	if in.connected {
		return nil
	}
	if in.mounter != nil {
		unmount, err := in.mounter.Mount(in.conf.path, in.h)
		if err != nil {
			return fmt.Errorf("mounting on the host's listener: %w", err)
		}
		in.unmount, in.connected = unmount, true
		in.log.Infof("woocommerce_webhook: receiving %s on the host's listener (ack: %s)", in.conf.path, in.conf.ack)
		in.startRegistrations()
		return nil
	}
	ln, err := net.Listen("tcp", in.conf.address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", in.conf.address, err)
	}
	srv := &http.Server{
		Handler:           in.h,
		ReadHeaderTimeout: in.conf.readHeaderTimeout,
		ReadTimeout:       in.conf.readHeaderTimeout + in.conf.timeout,
		WriteTimeout:      in.conf.readHeaderTimeout + 2*in.conf.timeout + 5*time.Second,
		IdleTimeout:       in.conf.idleTimeout,
		MaxHeaderBytes:    64 << 10,
		// Handshake errors and the like from port scanners: debug only.
		ErrorLog: log.New(debugWriter{in.log}, "", 0),
	}
	errCh := make(chan error, 1)
	go func() {
		var err error
		if in.conf.certFile != "" {
			err = srv.ServeTLS(ln, in.conf.certFile, in.conf.keyFile)
		} else {
			err = srv.Serve(ln)
		}
		errCh <- err
	}()
	in.srv, in.addr, in.serveErr, in.connected = srv, ln.Addr(), errCh, true
	in.logRoutes(ln.Addr())
	in.startRegistrations()
	return nil
}

// startRegistrations starts the webhook registration once (a reconnect
// keeps it running). Called under mu.
func (in *Input) startRegistrations() {
	if in.regs == nil {
		in.regs = startRegistrations(in.stores)
	}
}

// logRoutes says where each store's deliveries are received.
func (in *Input) logRoutes(addr net.Addr) {
	scheme := "http"
	if in.conf.certFile != "" {
		scheme = "https"
	}
	base := fmt.Sprintf("%s://%s%s", scheme, addr, strings.TrimRight(in.conf.path, "/"))
	in.log.Infof("woocommerce_webhook: receiving on %s (ack: %s)", base, in.conf.ack)
	for _, s := range in.conf.stores {
		if s.name == "" {
			continue
		}
		reg := "not registered"
		if s.register != nil {
			reg = "registered at " + s.register.deliveryURL
		}
		in.log.Infof("woocommerce_webhook: store %q (%s) on %s/%s, %s", s.name, s.url, base, s.name, reg)
	}
}

// serverFailed reports (once) a server that stopped on its own, so that
// ReadBatch can ask for a reconnect. A mounted input has no server of its
// own (serveErr is nil and never ready).
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
	return in.sink.read(ctx)
}

// Close stops the server gracefully (in-flight requests finish within ctx)
// or unmounts the handler from the host's listener, closes the sink, stops
// registration once any check in flight has finished and, with
// delete_on_close, then removes the managed webhooks.
func (in *Input) Close(ctx context.Context) error {
	var err error
	in.closeOnce.Do(func() {
		in.mu.Lock()
		in.closed = true
		srv, regs, unmount := in.srv, in.regs, in.unmount
		in.unmount = nil
		in.mu.Unlock()
		if unmount != nil {
			unmount() // the host answers new deliveries itself from now on
		}
		in.sink.stop()
		if srv != nil {
			if serr := srv.Shutdown(ctx); serr != nil {
				err = fmt.Errorf("shutting down the server: %w", serr)
				_ = srv.Close()
			}
		}
		err = errors.Join(err, in.sink.close())
		in.m.accepted.flush()
		if regs != nil {
			regs.stop(ctx, in.log)
		}
		in.closeClients()
	})
	return err
}

// debugWriter sends net/http's own error log lines to the debug log.
type debugWriter struct{ log *service.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debugf("woocommerce_webhook: http server: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}
