// Package wcpoll holds the woocommerce_poll input: it polls a WooCommerce
// store's REST API for changed, new, trashed, restored and deleted objects
// and emits them as normalized events (plugin/wcevent), at least once, with
// a checkpoint that only moves past acknowledged events.
package wcpoll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/Jeffail/checkpoint"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// Config field names.
const (
	fieldResources         = "resources"
	fieldInterval          = "interval"
	fieldStartFrom         = "start_from"
	fieldPageSize          = "page_size"
	fieldOverlap           = "overlap"
	fieldScanInterval      = "scan_interval"
	fieldDetectDeletes     = "detect_deletes"
	fieldReconcileInterval = "reconcile_interval"
	fieldStatePath         = "state_path"
	fieldCheckpointCache   = "checkpoint_cache"
	fieldCheckpointKey     = "checkpoint_key"
	fieldCheckpointLimit   = "checkpoint_limit"
)

// Start positions.
const (
	StartNow       = "now"
	StartBeginning = "beginning"
)

// Metric names.
const (
	metricRequests = "woocommerce_poll_requests_total"
	metricEvents   = "woocommerce_events_total"
	metricLag      = "woocommerce_watermark_lag_seconds"
)

// checkpointFlushInterval bounds how often an advancing checkpoint is
// written while events flow (a crash repeats at most this much).
const checkpointFlushInterval = 250 * time.Millisecond

func pollSpec() *service.ConfigSpec {
	fields := wcclient.ConnectionFields()
	fields = append(fields,
		service.NewObjectListField(fieldResources, resourceFields()...).
			Description("The resources to poll, in this order on every poll.").
			Default(defaultResources),
		service.NewDurationField(fieldInterval).
			Description("Time between the starts of two polls. A poll that finds a full page continues at once until it has caught up.").
			Default("1m"),
		service.NewStringField(fieldStartFrom).
			Description("Where to start when no checkpoint exists: `now` (changes from now on), `beginning` (a backfill: every existing object is emitted once, as `created`), or an RFC 3339 time (objects modified since then). Ignored once a checkpoint exists.").
			Default(StartNow).
			Example(StartBeginning).
			Example("2026-01-01T00:00:00Z"),
		service.NewIntField(fieldPageSize).
			Description("Objects per request (`per_page`, 1 to 100). Each page is emitted as one batch.").
			Default(wcclient.MaxPerPage).
			Advanced(),
		service.NewDurationField(fieldOverlap).
			Description("Safety window for WooCommerce's exclusive, second-grained `modified_after`: the query reaches back this much further than the position, and objects modified less than this before the store's clock (its `Date` header) are left for the next poll, so an object saved late within a second is never passed over. Rounded up to whole seconds.").
			Default("1s").
			Advanced(),
		service.NewDurationField(fieldScanInterval).
			Description("For resources with strategy `scan` (customers): time between full scans, which find changed and deleted objects. New objects are looked for on every poll.").
			Default("1h"),
		service.NewBoolField(fieldDetectDeletes).
			Description("Query `status=trash` (with the same `modified_after` bound) on resources with a trash (orders, products, coupons) and emit `deleted` for trashed objects; an object seen trashed that comes back emits `restored`. Restoring an order with a status update fires no webhook, so the poller is the only source of `restored`.").
			Default(true),
		service.NewDurationField(fieldReconcileInterval).
			Description("Time between reconciliations that find permanently deleted objects (which leave no trace in any list): the ids the poller has seen are looked up in `include=` batches, and ids missing from both the list and the trash emit `deleted` with `{\"id\":N}` data. `0s` disables it for `modified_after` resources (ids are then not recorded); resources with strategy `scan` find deletions in every full scan anyway.").
			Default("0s"),
		service.NewStringField(fieldStatePath).
			Description("bbolt file for per-object state (trashed ids, the customers scan state, ids for reconciliation), so memory stays flat whatever the store's size. Empty uses a temporary file that is removed on close: state is then lost on restart (restores after a restart are reported as updates, and the customers baseline is rebuilt). Also holds the checkpoint when `checkpoint_cache` is empty. May be the file of a `bbolt` cache resource.").
			Default("").
			Example("/var/lib/wooevents/poll-state.db"),
		service.NewStringField(fieldCheckpointCache).
			Description("A cache resource holding the poll position. The stored position only moves past an event once it and every event before it have been acknowledged, so after a crash or restart polling resumes without losing changes (some may be emitted again). Empty stores the position in `state_path`, or only in memory when that is empty too.").
			Default("").
			Example("poll_checkpoints"),
		service.NewStringField(fieldCheckpointKey).
			Description("Key of the position in the checkpoint cache. Give each store its own key.").
			Default("woocommerce_poll"),
		service.NewIntField(fieldCheckpointLimit).
			Description("Maximum number of events in flight (emitted, not yet acknowledged). Reading pauses at this limit.").
			Default(1024).
			Advanced(),
		service.NewAutoRetryNacksToggleField(),
	)
	return service.NewConfigSpec().
		Stable().
		Categories("Services").
		Summary("Polls a WooCommerce store's REST API for created, updated, deleted and restored objects and emits normalized events, at least once, with checkpoints.").
		Description(`
Polling is the source of truth: webhooks get lost, coalesced and disabled, polling does not.

For orders, products, coupons and any route built on WooCommerce's CRUD controller the poller asks for
`+"`orderby=modified&order=asc&dates_are_gmt=true&modified_after=<naive UTC>`"+` and keeps a position of
(modification second, id). Because `+"`modified_after`"+` is exclusive and second-grained, and bulk edits stamp
hundreds of objects with the same second, it asks from one second before the position and skips what it has
already emitted, and it re-queries from its position instead of walking page numbers of a changing list
(page walking skips objects that move to the end while it walks). An idle poll costs one request per resource,
plus one for the trash.

Customers have no date filter: on every poll new customers are found by id (`+"`orderby=id&order=desc`"+`), and every
`+"`scan_interval`"+` a full scan compares each customer's `+"`date_modified_gmt`"+` with the state in `+"`state_path`"+`.

Events are the shared normalized event with `+"`source: poll`"+`, ordered by modification time within a resource
(trash and list merged), one batch per page. An event is `+"`created`"+` when the object was created after the position
of the previous poll (a backfill from `+"`beginning`"+` emits every object once as created), `+"`updated`"+` otherwise,
`+"`deleted`"+` when it turns up in the trash or goes missing (reconciliation, scans) and `+"`restored`"+` when an object seen
trashed comes back.

Store faults (429 with Retry-After, 5xx, timeouts, HTML pages, truncated JSON) are retried with backoff and never move
the position past objects not yet emitted. Authentication failures (401/403) are logged once with a hint and the
input reconnects with a growing backoff (up to 5 minutes) until the credentials work.

Metrics: `+"`woocommerce_poll_requests_total{resource,status}`"+`, `+"`woocommerce_events_total{resource,action}`"+`,
`+"`woocommerce_watermark_lag_seconds{resource}`"+` (how far the emitted changes trail the store's clock: while
catching up, the store's time minus the position; once caught up, the hold-back `+"`overlap`"+`; for `+"`scan`"+` resources,
the time since the last full scan).`).
		Fields(fields...).
		Example("Orders and customers with a durable checkpoint", "", `
input:
  woocommerce_poll:
    store_url: https://shop.example.com
    consumer_key: "${WC_KEY}"
    consumer_secret: "${WC_SECRET}"
    resources:
      - name: orders
      - name: customers
        params:
          role: all
    interval: 1m
    start_from: now
    state_path: /var/lib/wooevents/poll-state.db
    checkpoint_cache: poll_checkpoints

cache_resources:
  - label: poll_checkpoints
    bbolt:
      path: /var/lib/wooevents/checkpoints.db
`)
}

func init() {
	service.MustRegisterBatchInput("woocommerce_poll", pollSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
			in, err := newPollInput(conf, mgr)
			if err != nil {
				return nil, err
			}
			return service.AutoRetryNacksBatchedToggled(conf, in)
		})
}

// pollInput is the woocommerce_poll input.
type pollInput struct {
	mgr *service.Resources
	log *service.Logger

	clientCfg         wcclient.Config
	store             string
	resources         []*resource
	interval          time.Duration
	overlap           time.Duration
	scanInterval      time.Duration
	reconcileInterval time.Duration
	startFrom         string
	startTime         time.Time
	pageSize          int
	detectDeletes     bool
	statePath         string
	ckptCache         string
	ckptKey           string
	ckptLimit         int
	now               func() time.Time

	mRequests *service.MetricCounter
	mEvents   *service.MetricCounter
	mLag      *service.MetricGauge

	// bg bounds background work (page prefetches); cancelled by Close.
	bg       context.Context
	bgCancel context.CancelFunc

	// set by Connect
	client   *wcclient.Client
	state    *stateStore
	ckpt     *checkpointDoc // live positions, owned by the reading goroutine
	tracker  *checkpoint.Capped[[]byte]
	runners  []runner
	routeRes map[string]string

	ckptMu      sync.Mutex // serialises checkpoint writes
	lastStored  []byte
	unsaved     []byte
	lastStoreAt time.Time

	// poll loop (reading goroutine)
	held      *batch // read but not handed out (Track was interrupted)
	inPoll    bool
	cur       int
	nextPoll  time.Time
	failedRes *resource
	authWait  time.Duration
	authSeen  string
}

func newPollInput(conf *service.ParsedConfig, mgr *service.Resources) (*pollInput, error) {
	in := &pollInput{mgr: mgr, log: mgr.Logger(), now: time.Now}
	in.bg, in.bgCancel = context.WithCancel(context.Background())
	var err error
	if in.clientCfg, err = wcclient.ConfigFromParsed(conf, mgr); err != nil {
		return nil, err
	}
	in.store = wcevent.NormalizeStore(in.clientCfg.StoreURL)
	resConfs, err := conf.FieldObjectList(fieldResources)
	if err != nil {
		return nil, err
	}
	if len(resConfs) == 0 {
		return nil, fmt.Errorf("%s must list at least one resource", fieldResources)
	}
	seen := map[string]bool{}
	for _, rc := range resConfs {
		r, err := resourceFromParsed(rc)
		if err != nil {
			return nil, err
		}
		if seen[r.name] {
			return nil, fmt.Errorf("%s: name %q appears twice", fieldResources, r.name)
		}
		seen[r.name] = true
		in.resources = append(in.resources, r)
	}
	if in.interval, err = conf.FieldDuration(fieldInterval); err != nil {
		return nil, err
	}
	if in.interval <= 0 {
		return nil, fmt.Errorf("%s must be positive", fieldInterval)
	}
	if in.startFrom, err = conf.FieldString(fieldStartFrom); err != nil {
		return nil, err
	}
	switch in.startFrom {
	case StartNow, StartBeginning:
	default:
		t, err := time.Parse(time.RFC3339, in.startFrom)
		if err != nil {
			return nil, fmt.Errorf("%s: want now, beginning or an RFC 3339 time, got %q", fieldStartFrom, in.startFrom)
		}
		in.startTime = t.UTC()
	}
	if in.pageSize, err = conf.FieldInt(fieldPageSize); err != nil {
		return nil, err
	}
	if in.pageSize < 1 || in.pageSize > wcclient.MaxPerPage {
		return nil, fmt.Errorf("%s must be between 1 and %d, got %d", fieldPageSize, wcclient.MaxPerPage, in.pageSize)
	}
	if in.overlap, err = conf.FieldDuration(fieldOverlap); err != nil {
		return nil, err
	}
	if in.overlap < 0 {
		return nil, fmt.Errorf("%s must not be negative", fieldOverlap)
	}
	if in.scanInterval, err = conf.FieldDuration(fieldScanInterval); err != nil {
		return nil, err
	}
	if in.scanInterval <= 0 {
		return nil, fmt.Errorf("%s must be positive", fieldScanInterval)
	}
	if in.detectDeletes, err = conf.FieldBool(fieldDetectDeletes); err != nil {
		return nil, err
	}
	if in.reconcileInterval, err = conf.FieldDuration(fieldReconcileInterval); err != nil {
		return nil, err
	}
	if in.statePath, err = conf.FieldString(fieldStatePath); err != nil {
		return nil, err
	}
	if in.ckptCache, err = conf.FieldString(fieldCheckpointCache); err != nil {
		return nil, err
	}
	if in.ckptCache != "" && !mgr.HasCache(in.ckptCache) {
		return nil, fmt.Errorf("%s: cache resource %q not found", fieldCheckpointCache, in.ckptCache)
	}
	if in.ckptKey, err = conf.FieldString(fieldCheckpointKey); err != nil {
		return nil, err
	}
	if in.ckptKey == "" {
		return nil, fmt.Errorf("%s must not be empty", fieldCheckpointKey)
	}
	if in.ckptLimit, err = conf.FieldInt(fieldCheckpointLimit); err != nil {
		return nil, err
	}
	if in.ckptLimit < 1 {
		return nil, fmt.Errorf("%s must be at least 1", fieldCheckpointLimit)
	}

	m := mgr.Metrics()
	in.mRequests = m.NewCounter(metricRequests, "resource", "status")
	in.mEvents = m.NewCounter(metricEvents, "resource", "action")
	in.mLag = m.NewGauge(metricLag, "resource")

	in.routeRes = map[string]string{}
	for _, r := range in.resources {
		if _, ok := in.routeRes[r.path]; !ok {
			in.routeRes[r.path] = r.name
		}
	}
	cfg := in.clientCfg
	cfg.OnRequest = func(ri wcclient.RequestInfo) {
		status := "error"
		if ri.Status > 0 {
			status = strconv.Itoa(ri.Status)
		}
		name := in.routeRes[ri.Path]
		if name == "" {
			name = ri.Path
		}
		in.mRequests.Incr(1, name, status)
	}
	in.clientCfg = cfg
	return in, nil
}

// Connect opens the state, loads the checkpoint and checks that the store
// answers with the configured credentials.
func (in *pollInput) Connect(ctx context.Context) error {
	if in.client == nil {
		c, err := wcclient.New(in.clientCfg)
		if err != nil {
			return err
		}
		in.client = c
	}
	if in.state == nil {
		if in.statePath == "" {
			in.log.Warnf("woocommerce_poll: %s is empty: per-object state lives in a temporary file and is lost on restart", fieldStatePath)
		}
		st, err := openStateStore(in.statePath)
		if err != nil {
			return err
		}
		in.state = st
	}
	if in.ckpt == nil {
		ck, err := in.loadCheckpoint(ctx)
		if err != nil {
			return err
		}
		in.ckpt = ck
		in.tracker = checkpoint.NewCapped[[]byte](int64(in.ckptLimit))
		in.runners = nil
		for _, r := range in.resources {
			st := ck.Resources[r.name]
			if st == nil {
				st = &resourceState{}
				ck.Resources[r.name] = st
			}
			if r.strategy == StrategyScan {
				in.runners = append(in.runners, newScanRunner(in, r, st))
			} else {
				mr, err := newModRunner(in, r, st)
				if err != nil {
					return err
				}
				in.runners = append(in.runners, mr)
			}
		}
	}
	probe := in.resources[0]
	if in.failedRes != nil {
		probe = in.failedRes
	}
	if _, err := in.client.ListPage(ctx, probe.path, probe.params, 1, 1); err != nil {
		return in.connectError(probe, err)
	}
	if in.failedRes != nil {
		in.log.Infof("woocommerce_poll: %s answers again, resuming", probe.name)
	}
	in.failedRes, in.authWait, in.authSeen = nil, 0, ""
	return nil
}

// permanent reports whether err is a store answer that retrying will not
// fix: authentication, permissions, unknown route or parameter.
func permanent(err error) bool {
	switch wcclient.StatusCode(err) {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		var be *wcclient.BodyError
		return !errors.As(err, &be) || wcclient.StatusCode(err) != http.StatusNotFound
	}
	return false
}

// connectError logs a permanent failure once and asks benthos to wait
// before the next Connect, growing to five minutes.
func (in *pollInput) connectError(res *resource, err error) error {
	if !permanent(err) {
		return fmt.Errorf("woocommerce_poll %s: %w", res.name, err)
	}
	in.failedRes = res
	if msg := err.Error(); msg != in.authSeen {
		in.authSeen = msg
		in.log.Errorf("woocommerce_poll: the store refuses %s (%s); polling is paused and retried with backoff until this is fixed: %v", res.name, res.path, err)
	}
	switch {
	case in.authWait == 0:
		in.authWait = 5 * time.Second
	case in.authWait < 5*time.Minute:
		in.authWait = min(in.authWait*2, 5*time.Minute)
	}
	return service.NewErrBackOff(fmt.Errorf("woocommerce_poll %s: %w", res.name, err), in.authWait)
}

// ReadBatch returns the next page of events, polling every interval.
func (in *pollInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	if b := in.held; b != nil {
		in.held = nil
		return in.emit(ctx, b)
	}
	for {
		if !in.inPoll {
			if wait := in.nextPoll.Sub(in.now()); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil, nil, ctx.Err()
				case <-t.C:
				}
			}
			in.beginPoll()
		}
		b, err := in.step(ctx)
		if err != nil {
			return nil, nil, err
		}
		if b == nil {
			continue // the poll is over
		}
		return in.emit(ctx, b)
	}
}

// beginPoll starts a poll of every resource.
func (in *pollInput) beginPoll() {
	in.nextPoll = in.now().Add(in.interval)
	in.inPoll, in.cur = true, 0
	for _, r := range in.runners {
		r.begin()
	}
}

// step returns the next batch with events of the current poll, or nil when
// the poll is over (the checkpoint is then flushed).
func (in *pollInput) step(ctx context.Context) (*batch, error) {
	for in.inPoll {
		if in.cur >= len(in.runners) {
			in.inPoll = false
			in.flushIdle(ctx)
			return nil, nil
		}
		r := in.runners[in.cur]
		b, err := r.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if permanent(err) {
				in.failedRes = r.resourceOf()
				in.authSeen = err.Error()
				in.log.Errorf("woocommerce_poll: the store refuses %s (%s); polling is paused and retried with backoff until this is fixed: %v", r.resourceOf().name, r.resourceOf().path, err)
				return nil, service.ErrNotConnected
			}
			return nil, fmt.Errorf("woocommerce_poll %s: %w (the position stays before every object not yet emitted; retrying)", r.resourceOf().name, err)
		}
		if b == nil {
			in.cur++
			continue
		}
		if len(b.msgs) == 0 {
			// positions moved or state was recorded without events
			if err := in.state.apply(b.ops); err != nil {
				return nil, err
			}
			continue
		}
		in.countEvents(b)
		return b, nil
	}
	return nil, nil
}

// batch is one page of events and the state changes they carry.
type batch struct {
	msgs   service.MessageBatch
	ops    []stateOp
	counts []eventCount // events not yet added to woocommerce_events_total
}

// eventCount is a number of events of one resource and action.
type eventCount struct {
	res, action string
	n           int64
}

func (in *pollInput) emit(ctx context.Context, b *batch) (service.MessageBatch, service.AckFunc, error) {
	snap := in.ckpt.marshal()
	resolve, err := in.tracker.Track(ctx, snap, int64(len(b.msgs)))
	if err != nil {
		in.held = b // the walks have moved past these events: keep them
		return nil, nil, err
	}
	ops := b.ops
	return b.msgs, func(ctx context.Context, err error) error {
		if err != nil {
			in.log.Warnf("woocommerce_poll: %d events were rejected downstream and are dropped (auto_replay_nacks: false): %v", len(b.msgs), err)
		}
		applyErr := in.state.apply(ops)
		in.ckptMu.Lock()
		defer in.ckptMu.Unlock()
		if h := resolve(); h != nil {
			in.unsaved = *h
		}
		var storeErr error
		if in.unsaved != nil && in.now().Sub(in.lastStoreAt) >= checkpointFlushInterval {
			storeErr = in.storeLocked(ctx, in.unsaved)
		}
		return errors.Join(applyErr, storeErr)
	}, nil
}

// flushIdle writes the checkpoint at the end of a poll: the latest
// acknowledged snapshot, or the live positions when nothing is in flight.
func (in *pollInput) flushIdle(ctx context.Context) {
	in.ckptMu.Lock()
	defer in.ckptMu.Unlock()
	b := in.unsaved
	if in.tracker.Pending() == 0 {
		b = in.ckpt.marshal()
	}
	if b == nil {
		return
	}
	if err := in.storeLocked(ctx, b); err != nil {
		in.log.Errorf("woocommerce_poll: storing the checkpoint: %v", err)
	}
}

func (in *pollInput) storeLocked(ctx context.Context, b []byte) error {
	if bytes.Equal(b, in.lastStored) {
		in.unsaved = nil
		return nil
	}
	var err error
	switch {
	case in.ckptCache != "":
		if aerr := in.mgr.AccessCache(ctx, in.ckptCache, func(c service.Cache) {
			err = c.Set(ctx, in.ckptKey, b, nil)
		}); aerr != nil {
			err = aerr
		}
	case in.statePath != "":
		err = in.state.root.Set(in.ckptKey, b, nil)
	}
	if err != nil {
		return fmt.Errorf("storing checkpoint: %w", err)
	}
	in.lastStored, in.unsaved, in.lastStoreAt = b, nil, in.now()
	return nil
}

func (in *pollInput) loadCheckpoint(ctx context.Context) (*checkpointDoc, error) {
	var raw []byte
	var err error
	switch {
	case in.ckptCache != "":
		if aerr := in.mgr.AccessCache(ctx, in.ckptCache, func(c service.Cache) {
			raw, err = c.Get(ctx, in.ckptKey)
		}); aerr != nil {
			return nil, fmt.Errorf("%s: %w", fieldCheckpointCache, aerr)
		}
		if errors.Is(err, service.ErrKeyNotFound) {
			raw, err = nil, nil
		}
	case in.statePath != "":
		raw, err = in.state.root.Get(in.ckptKey)
		if errors.Is(err, service.ErrKeyNotFound) {
			raw, err = nil, nil
		}
	default:
		in.log.Warnf("woocommerce_poll: neither %s nor %s is set: the position is kept in memory only and a restart begins again at start_from", fieldCheckpointCache, fieldStatePath)
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint %q: %w", in.ckptKey, err)
	}
	if raw == nil {
		return &checkpointDoc{Version: checkpointVersion, Store: in.store, Resources: map[string]*resourceState{}}, nil
	}
	ck, err := parseCheckpoint(raw, in.store)
	if err != nil {
		return nil, err
	}
	in.lastStored = raw
	in.log.Infof("woocommerce_poll: resuming from checkpoint %q", in.ckptKey)
	return ck, nil
}

// Close stores the last acknowledged position and releases the state file.
func (in *pollInput) Close(ctx context.Context) error {
	in.bgCancel()
	var errs []error
	in.ckptMu.Lock()
	if in.unsaved != nil {
		errs = append(errs, in.storeLocked(ctx, in.unsaved))
	}
	in.ckptMu.Unlock()
	if in.state != nil {
		errs = append(errs, in.state.close())
		in.state = nil
	}
	if in.client != nil {
		in.client.Close()
	}
	return errors.Join(errs...)
}

// runner polls one resource.
type runner interface {
	begin()
	// next returns the next batch (possibly without messages when only
	// positions moved), or nil when the resource is done for this poll.
	next(ctx context.Context) (*batch, error)
	resourceOf() *resource
}

// addEvent appends the message of one change to b and counts it there
// (see countEvents).
func (in *pollInput) addEvent(b *batch, r *resource, action, id string, modified time.Time, data []byte) {
	b.msgs = append(b.msgs, in.newEvent(r, action, id, modified, data))
	for i := range b.counts {
		if c := &b.counts[i]; c.res == r.name && c.action == action {
			c.n++
			return
		}
	}
	b.counts = append(b.counts, eventCount{res: r.name, action: action, n: 1})
}

// countEvents adds a batch's events to woocommerce_events_total: one
// counter update per resource and action instead of one per event (a
// labelled update is a lookup by label values).
func (in *pollInput) countEvents(b *batch) {
	for _, c := range b.counts {
		in.mEvents.Incr(c.n, c.res, c.action)
	}
	b.counts = nil
}

// newEvent builds the message of one change.
func (in *pollInput) newEvent(r *resource, action, id string, modified time.Time, data []byte) *service.Message {
	ev := wcevent.Event{
		Store:       in.store,
		Resource:    r.resource,
		ResourceKey: r.name,
		Action:      action,
		ObjectID:    id,
		Source:      wcevent.SourcePoll,
		Modified:    modified,
		ReceivedAt:  in.now(),
		Data:        data,
	}
	return ev.NewMessage()
}

// deletedData is the body of a delete found by reconciliation: {"id":N}.
func deletedData(id string) []byte {
	if isDecimal(id) {
		return []byte(`{"id":` + id + `}`)
	}
	return []byte(`{"id":` + strconv.Quote(id) + `}`)
}

// startPosition applies start_from to a fresh stream position.
func (in *pollInput) startPosition(p *streamPos, now time.Time) {
	switch in.startFrom {
	case StartBeginning:
		*p = streamPos{}
	case StartNow:
		*p = streamPos{Has: true, Sec: now.Unix(), FloorHas: true, FloorSec: now.Unix()}
	default:
		s := in.startTime.Unix()
		*p = streamPos{Has: true, Sec: s - 1, ID: "", FloorHas: true, FloorSec: s - 1}
	}
}

// probeNow asks the store for its clock (the Date header of a one-object
// list request).
func (in *pollInput) probeNow(ctx context.Context, r *resource) (time.Time, error) {
	q := url.Values{}
	for k, v := range r.params {
		q[k] = v
	}
	p, err := in.client.ListPage(ctx, r.path, q, 1, 1)
	if err != nil {
		return time.Time{}, err
	}
	return serverTime(p.Header), nil
}
