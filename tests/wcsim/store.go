package wcsim

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Test fixture keys. They are fake credentials that only this simulator knows.
const (
	DefaultConsumerKey            = "ck_5f0c3a8e1b2d4c6f8a9e0b1c2d3e4f5a6b7c8d9e"
	DefaultConsumerSecret         = "cs_9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"
	DefaultReadOnlyConsumerKey    = "ck_0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
	DefaultReadOnlyConsumerSecret = "cs_76543210fedcba9876543210fedcba9876543210"
)

// Key permissions, as WooCommerce stores them.
const (
	PermRead      = "read"
	PermWrite     = "write"
	PermReadWrite = "read_write"
)

// Key is a WooCommerce REST API key.
type Key struct {
	ConsumerKey    string
	ConsumerSecret string
	Permissions    string // "read", "write" or "read_write"
}

// String hides the secret.
func (k Key) String() string { return fmt.Sprintf("Key{%s %s}", k.ConsumerKey, k.Permissions) }

// Options configure a Store.
type Options struct {
	// TLS serves HTTPS (self-signed, trusted by Client()). WordPress' is_ssl()
	// is true only then, so Basic and query-string keys only work with TLS.
	TLS bool
	// UTCOffset is the site's timezone offset (site-local = UTC + offset).
	UTCOffset time.Duration
	// Keys accepted by the store; empty means the Default* read_write and
	// read-only keys.
	Keys []Key
	// Now is the initial clock (default time.Now). SetNow/Advance switch the
	// store to a manual clock.
	Now func() time.Time
	// CoalesceWebhooks queues deliveries until Flush (payloads built at flush
	// time, a pending (webhook, object) pair is not queued twice). When false
	// deliveries are sent synchronously by the call that caused them.
	CoalesceWebhooks bool
	// Logf receives diagnostic lines (never secrets). Optional.
	Logf func(string, ...any)
	// Addr is the listen address for Start (default 127.0.0.1:0).
	Addr string
	// HomeURL overrides the WordPress home URL (no trailing slash); needed
	// only when Handler() is mounted without Start.
	HomeURL string
	// DeliveryClient sends webhook deliveries and pings (default: 60 s
	// timeout, redirects not followed, like WordPress).
	DeliveryClient *http.Client

	// TieSeed varies the order in which rows sharing the sort key of a
	// non-unique orderby (modified, date, title, ...) come back; 0 is a fixed
	// default. There is no id order for ties (see ties.go).
	TieSeed int64
	// Latency is added to every REST request (not /__sim). The zero value
	// is DefaultLatency (0-2 ms jitter); NoLatency turns it off.
	Latency Latency
	// PageDelay is added to every list request (GET of orders, products,
	// customers or coupons), like a real store's query time (0.3-10 s for
	// a page of 100 orders). Delays never hold a lock: concurrent requests
	// wait concurrently.
	PageDelay time.Duration
	// RandomFaults answers a fraction of REST requests with a random
	// realistic fault (429 with Retry-After: 1, 500, 502, 503, an HTML
	// error page, a truncated body, a dropped connection). Off when Rate is 0.
	RandomFaults RandomFaults

	// Store quirks, as found on real hosts (used by wooevents doctor's tests).

	// ClockSkew puts the store's real-time clock (Date headers, its notion
	// of now, the OAuth timestamp window, new modification times) this far
	// ahead of this machine's. A clock frozen by SetNow/Advance ignores it.
	ClockSkew time.Duration
	// IgnoreModifiedAfter accepts modified_after/modified_before on list
	// routes without applying them (caching plugins, old WooCommerce):
	// X-WP-Total does not shrink with the filter.
	IgnoreModifiedAfter bool
	// BehindProxy: TLS ends at a proxy that sends no X-Forwarded-Proto, so
	// the store serves HTTPS (with TLS) but is_ssl() is false: Basic and
	// query-string keys are ignored (401 woocommerce_rest_cannot_view) and
	// OAuth 1.0a must be signed for the http:// URL.
	BehindProxy bool
	// StripAuthorization: the host (CGI/FastCGI) drops the Authorization
	// header: Basic and OAuth header credentials are never seen; query-string
	// keys (over HTTPS) and OAuth in the query string still work.
	StripAuthorization bool
	// NoPrettyPermalinks: plain permalinks, so /wp-json/... is WordPress'
	// HTML 404 page and only /?rest_route=/... reaches the REST API.
	NoPrettyPermalinks bool
}

// Resource names accepted by the Go API.
const (
	Orders    = "orders"
	Products  = "products"
	Customers = "customers"
	Coupons   = "coupons"
)

const (
	kindNone uint8 = iota
	kindOrder
	kindProduct
	kindCoupon
	kindCustomer
)

type resDef struct {
	name, singular, postType string
	kind                     uint8
	statuses                 []string // index = status code stored in records
	writeStatuses            []string // enum for create/update
	listStatuses             []string // enum for list ?status=
	anyMask                  uint16   // statuses included by status=any
	trashable                bool
	notFoundCode             string
	notFoundMsg              string
	users                    bool
}

var orderStatuses = []string{"pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "checkout-draft", "auto-draft", "trash"}
var postStatuses = []string{"publish", "draft", "pending", "private", "future", "auto-draft", "trash"}
var userRoles = []string{"customer", "subscriber", "administrator", "shop_manager", "editor", "author", "contributor"}

func statusIndex(list []string, s string) (uint8, bool) {
	for i, v := range list {
		if v == s {
			return uint8(i), true
		}
	}
	return 0, false
}

func maskOf(list []string, names ...string) uint16 {
	var m uint16
	for _, n := range names {
		if i, ok := statusIndex(list, n); ok {
			m |= 1 << i
		}
	}
	return m
}

var resDefs = map[string]*resDef{
	Orders: {
		name: Orders, singular: "order", postType: "shop_order", kind: kindOrder,
		statuses:      orderStatuses,
		writeStatuses: []string{"auto-draft", "pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "checkout-draft"},
		listStatuses:  []string{"any", "trash", "auto-draft", "pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "checkout-draft"},
		anyMask:       maskOf(orderStatuses, "pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "checkout-draft"),
		trashable:     true, notFoundCode: "woocommerce_rest_shop_order_invalid_id", notFoundMsg: "Invalid ID.",
	},
	Products: {
		name: Products, singular: "product", postType: "product", kind: kindProduct,
		statuses:      postStatuses,
		writeStatuses: []string{"draft", "pending", "private", "publish", "future"},
		listStatuses:  []string{"any", "future", "trash", "draft", "pending", "private", "publish"},
		anyMask:       maskOf(postStatuses, "publish", "draft", "pending", "private", "future"),
		trashable:     true, notFoundCode: "woocommerce_rest_product_invalid_id", notFoundMsg: "Invalid ID.",
	},
	Coupons: {
		name: Coupons, singular: "coupon", postType: "shop_coupon", kind: kindCoupon,
		statuses:      postStatuses,
		writeStatuses: []string{"draft", "pending", "private", "publish", "future"},
		listStatuses:  []string{"any", "future", "trash", "draft", "pending", "private", "publish"},
		anyMask:       maskOf(postStatuses, "publish", "draft", "pending", "private", "future"),
		trashable:     true, notFoundCode: "woocommerce_rest_shop_coupon_invalid_id", notFoundMsg: "Invalid ID.",
	},
	Customers: {
		name: Customers, singular: "customer", kind: kindCustomer, users: true,
		statuses: userRoles, anyMask: 0xffff >> (16 - len(userRoles)),
		notFoundCode: "woocommerce_rest_invalid_id", notFoundMsg: "Invalid resource ID.",
	},
}

// record is the compact stored form of one object. Objects that were only
// seeded have ext == nil and render from values derived from their id.
type record struct {
	id       int64
	created  int64 // unix seconds
	modified int64
	aux      int64 // seeded orders: line item id
	kind     uint8
	status   uint8
	ext      *recExt
}

type metaEntry struct {
	id    int64
	key   string
	value []byte // PHP JSON
}

type lineItem struct {
	id, productID, variationID int64
	name, sku                  string
	qty                        int64
	subtotal, total            float64
	price                      float64
	meta                       []metaEntry
}

type recExt struct {
	ov   map[string][]byte // PHP-JSON overrides of top-level fields
	meta []metaEntry
	// orders
	orderKey      string
	customerID    int64
	items         []lineItem
	datePaid      int64
	dateCompleted int64
	// products / coupons / customers
	name, slug, sku, regularPrice, salePrice string
	code, amount                             string
	email, first, last, username             string
	prevStatus                               uint8
}

type coll struct {
	def        *resDef
	byID       oindex
	byCreated  oindex
	byModified oindex
	count      int
}

// Store is a simulated WooCommerce 11 store.
type Store struct {
	opts Options
	off  int64 // site offset, seconds

	clockMu sync.Mutex
	manual  bool
	fixed   time.Time
	nowFn   func() time.Time

	mu        sync.RWMutex
	posts     []record // index = post id (orders, products, coupons share ids)
	users     []record // index = user id
	colls     map[string]*coll
	nextPost  int64
	nextUser  int64
	nextItem  int64
	nextMeta  int64
	codes     map[string]int64 // coupon code -> id
	emails    map[string]int64 // customer email -> id
	usernames map[string]int64

	hooksMu  sync.Mutex
	webhooks []*webhook
	nextHook int64
	queue    []pendingDelivery
	done     []Delivery

	authMu sync.Mutex
	nonces map[string]map[string]int64 // consumer key -> nonce -> timestamp

	faultMu  sync.Mutex
	faults   []*faultState
	reqLog   []*Request
	faultRNG *rand.Rand // RandomFaults draws, guarded by faultMu

	rcfgMu sync.Mutex // serializes writers of rcfg
	rcfg   atomic.Pointer[runtimeCfg]

	srv              *httptest.Server
	home             string
	escHomeS, escFor string
	client           *http.Client
	handler          http.Handler
	keys             map[string]Key
}

// New builds a store. Call Start to serve it.
func New(opts Options) *Store {
	if len(opts.Keys) == 0 {
		opts.Keys = []Key{
			{ConsumerKey: DefaultConsumerKey, ConsumerSecret: DefaultConsumerSecret, Permissions: PermReadWrite},
			{ConsumerKey: DefaultReadOnlyConsumerKey, ConsumerSecret: DefaultReadOnlyConsumerSecret, Permissions: PermRead},
		}
	}
	s := &Store{
		opts:      opts,
		off:       int64(opts.UTCOffset / time.Second),
		nowFn:     opts.Now,
		colls:     map[string]*coll{},
		nextPost:  10,
		nextUser:  2,
		nextItem:  1,
		nextMeta:  1,
		codes:     map[string]int64{},
		emails:    map[string]int64{},
		usernames: map[string]int64{},
		nextHook:  1,
		nonces:    map[string]map[string]int64{},
		keys:      map[string]Key{},
		home:      strings.TrimRight(opts.HomeURL, "/"),
	}
	if s.nowFn == nil {
		s.nowFn = time.Now
	}
	for _, k := range opts.Keys {
		s.keys[k.ConsumerKey] = k
	}
	for name, d := range resDefs {
		s.colls[name] = &coll{def: d}
	}
	s.rcfg.Store(cfgFromOptions(opts))
	s.faultRNG = newFaultRNG(opts.RandomFaults.Seed)
	s.handler = http.HandlerFunc(s.serveHTTP)
	s.escHome()
	return s
}

// Start listens on Options.Addr (default 127.0.0.1:0), plain HTTP or TLS.
func (s *Store) Start() error {
	if s.srv != nil {
		return errors.New("wcsim: already started")
	}
	addr := s.opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("wcsim: listen %s: %w", addr, err)
	}
	srv := httptest.NewUnstartedServer(s.handler)
	srv.Listener.Close()
	srv.Listener = ln
	if s.opts.TLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	s.srv = srv
	if s.home == "" {
		s.home = srv.URL
	}
	s.escHome()
	s.client = srv.Client()
	s.logf("wcsim: serving %s (tls=%v, utc offset %s)", s.home, s.opts.TLS, s.opts.UTCOffset)
	return nil
}

// URL is the store's home URL without trailing slash.
func (s *Store) URL() string { return s.home }

// Client returns an HTTP client that trusts the store's certificate.
func (s *Store) Client() *http.Client {
	if s.client != nil {
		return s.client
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

// Handler is the store's HTTP handler (REST API and /__sim endpoints).
func (s *Store) Handler() http.Handler { return s.handler }

// Close stops the server.
func (s *Store) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Now is the store's clock: real time plus Options.ClockSkew, or the time
// set by SetNow/Advance.
func (s *Store) Now() time.Time {
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	if s.manual {
		return s.fixed
	}
	return s.nowFn().Add(s.cfg().clockSkew)
}

// SetNow freezes the clock at t (it moves only with SetNow/Advance after).
func (s *Store) SetNow(t time.Time) {
	s.clockMu.Lock()
	s.manual, s.fixed = true, t
	s.clockMu.Unlock()
}

// Advance moves the clock forward by d (freezing it if it was real time).
func (s *Store) Advance(d time.Duration) {
	s.clockMu.Lock()
	if !s.manual {
		s.manual, s.fixed = true, s.nowFn().Add(s.cfg().clockSkew)
	}
	s.fixed = s.fixed.Add(d)
	s.clockMu.Unlock()
}

func (s *Store) nowUnix() int64 { return s.Now().Unix() }

// UTCOffset is the configured site offset.
func (s *Store) UTCOffset() time.Duration { return s.opts.UTCOffset }

// Keys returns the configured API keys.
func (s *Store) Keys() []Key { return append([]Key(nil), s.opts.Keys...) }

// ---- records ----

func (s *Store) rec(def *resDef, id int64) *record {
	var tab []record
	if def.users {
		tab = s.users
	} else {
		tab = s.posts
	}
	if id <= 0 || id >= int64(len(tab)) {
		return nil
	}
	r := &tab[id]
	if r.kind != def.kind {
		return nil
	}
	return r
}

func (s *Store) recByKind(kind uint8, id int64) *record {
	if kind == kindCustomer {
		return s.rec(resDefs[Customers], id)
	}
	for _, d := range resDefs {
		if d.kind == kind {
			return s.rec(d, id)
		}
	}
	return nil
}

func (c *coll) indexAdd(r *record) {
	c.byID.insert(mkKey(0, r.id, r.status))
	c.byCreated.insert(mkKey(r.created, r.id, r.status))
	c.byModified.insert(mkKey(r.modified, r.id, r.status))
	c.count++
}

func (c *coll) indexDel(r *record) {
	c.byID.remove(mkKey(0, r.id, r.status))
	c.byCreated.remove(mkKey(r.created, r.id, r.status))
	c.byModified.remove(mkKey(r.modified, r.id, r.status))
	c.count--
}

func (s *Store) allocID(def *resDef) int64 {
	if def.users {
		id := s.nextUser
		s.nextUser++
		for int64(len(s.users)) <= id {
			s.users = append(s.users, record{})
		}
		return id
	}
	id := s.nextPost
	s.nextPost++
	for int64(len(s.posts)) <= id {
		s.posts = append(s.posts, record{})
	}
	return id
}

func (s *Store) slot(def *resDef, id int64) *record {
	if def.users {
		return &s.users[id]
	}
	return &s.posts[id]
}

func lookupDef(resource string) (*resDef, error) {
	d, ok := resDefs[resource]
	if !ok {
		return nil, fmt.Errorf("wcsim: unknown resource %q (want orders, products, customers or coupons)", resource)
	}
	return d, nil
}

// ---- Go mutation API ----

// Create adds an object as a REST create would (firing the same webhooks)
// and returns its id. fields use the wc/v3 names; unknown names are an error.
// Go-API-only extras: "date_created"/"date_created_gmt" (RFC 3339 or
// WooCommerce format) and for customers "role".
func (s *Store) Create(resource string, fields map[string]any) (int64, error) {
	def, err := lookupDef(resource)
	if err != nil {
		return 0, err
	}
	raw, err := toRaw(fields)
	if err != nil {
		return 0, err
	}
	id, evs, aerr := s.create(def, raw, false)
	if aerr != nil {
		return 0, aerr
	}
	s.dispatch(evs)
	return id, nil
}

// Update changes fields of an object as a REST update would.
func (s *Store) Update(resource string, id int64, fields map[string]any) error {
	def, err := lookupDef(resource)
	if err != nil {
		return err
	}
	raw, err := toRaw(fields)
	if err != nil {
		return err
	}
	evs, aerr := s.update(def, id, raw, false, 0)
	if aerr != nil {
		return aerr
	}
	s.dispatch(evs)
	return nil
}

// BulkUpdate applies the same fields to many objects, all stamped with the
// same second.
func (s *Store) BulkUpdate(resource string, ids []int64, fields map[string]any) error {
	def, err := lookupDef(resource)
	if err != nil {
		return err
	}
	raw, err := toRaw(fields)
	if err != nil {
		return err
	}
	now := s.nowUnix()
	var all []event
	for _, id := range ids {
		evs, aerr := s.update(def, id, raw, false, now)
		if aerr != nil {
			s.dispatch(all)
			return fmt.Errorf("wcsim: bulk update %s %d: %w", resource, id, aerr)
		}
		all = append(all, evs...)
	}
	s.dispatch(all)
	return nil
}

// Trash moves an order, product or coupon to the trash (bumping
// date_modified) and fires *.deleted like WooCommerce.
func (s *Store) Trash(resource string, id int64) error {
	return s.mutateAndDispatch(resource, func(def *resDef) ([]event, *apiError) {
		_, evs, aerr := s.trash(def, id)
		return evs, aerr
	})
}

// mutateAndDispatch runs one mutation of resource and fires the webhooks it produced.
func (s *Store) mutateAndDispatch(resource string, op func(*resDef) ([]event, *apiError)) error {
	def, err := lookupDef(resource)
	if err != nil {
		return err
	}
	evs, aerr := op(def)
	if aerr != nil {
		return aerr
	}
	s.dispatch(evs)
	return nil
}

// Restore untrashes an object (wp_untrash_post): previous status back, trash
// meta removed, date_modified bumped, *.restored fired.
func (s *Store) Restore(resource string, id int64) error {
	return s.mutateAndDispatch(resource, func(def *resDef) ([]event, *apiError) { return s.restore(def, id) })
}

// ForceDelete removes an object permanently. No webhook fires, except
// customer.deleted for customers.
func (s *Store) ForceDelete(resource string, id int64) error {
	return s.mutateAndDispatch(resource, func(def *resDef) ([]event, *apiError) {
		_, evs, aerr := s.forceDelete(def, id)
		return evs, aerr
	})
}

// Get returns the wc/v3 JSON of an object (trashed ones included).
func (s *Store) Get(resource string, id int64) (json.RawMessage, bool) {
	def, err := lookupDef(resource)
	if err != nil {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rec(def, id)
	if r == nil {
		return nil, false
	}
	return json.RawMessage(s.render(nil, def, r, nil)), true
}

// Count returns how many objects of a resource exist (trash included).
func (s *Store) Count(resource string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.colls[resource]; ok {
		return c.count
	}
	return 0
}

// IDs returns the ids of a resource's objects in ascending order.
func (s *Store) IDs(resource string) []int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.colls[resource]
	if !ok {
		return nil
	}
	var out []int64
	for _, b := range c.byID.blocks {
		for _, e := range b.items {
			out = append(out, e.id())
		}
	}
	return out
}

func toRaw(fields map[string]any) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("wcsim: field %q: %w", k, err)
		}
		out[k] = b
	}
	return out, nil
}
