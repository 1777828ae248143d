// Package wcpoll holds the woocommerce_poll input: it polls a WooCommerce
// store's REST API for changed, new, trashed, restored and deleted objects
// and emits them as normalized events (plugin/wcevent), at least once, with
// a checkpoint that only moves past acknowledged events.
//
// Each resource has a producer goroutine (producer.go) that polls on its own
// schedule and hands chunks of records, in order, to the reading goroutine
// (ReadBatch), which classifies them into events, stages their state
// changes and tracks them (checkpoint.go); acknowledgements release state
// changes and positions in emission order. The list walk that is exact
// whatever order the store returns objects sharing a second in is in
// reader.go, the concurrent backfill in feed.go, the scan of resources
// without date filters in scan.go, the adaptive request limit in
// limiter.go.
package wcpoll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	fieldMaxConcurrency    = "max_concurrency"
	fieldScanInterval      = "scan_interval"
	fieldScanMaxPages      = "scan_max_pages"
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
	metricRequests    = "woocommerce_poll_requests_total"
	metricEvents      = "woocommerce_events_total"
	metricLag         = "woocommerce_watermark_lag_seconds"
	metricRemaining   = "woocommerce_backfill_remaining"
	metricLastPoll    = "woocommerce_last_poll_timestamp_seconds"
	metricScanAge     = "woocommerce_scan_age_seconds"
	metricConcurrency = "woocommerce_poll_concurrency"
)

// checkpointFlushInterval is how often the acknowledged position is
// written while it moves. A crash therefore repeats the events emitted but
// not yet acknowledged (at most checkpoint_limit) plus those acknowledged
// in the last checkpointFlushInterval (and, for a scan, the page in
// progress).
const checkpointFlushInterval = 250 * time.Millisecond

// segmentPages is the size of a backfill segment in pages (see runSegments).
const segmentPages = 10

func pollSpec() *service.ConfigSpec {
	fields := wcclient.ConnectionFields()
	fields = append(fields,
		service.NewObjectListField(fieldResources, resourceFields()...).
			Description("The resources to poll. Each is polled on its own schedule, concurrently with the others (within `max_concurrency`), so one resource's backfill does not hold the others back.").
			Default(defaultResources()),
		service.NewDurationField(fieldInterval).
			Description("Time between the starts of two polls of a resource. A poll that finds a full page continues at once until it has caught up; changes held back because they were younger than `overlap` are fetched again as soon as they are older, so a change comes out within `interval + overlap` plus request time.").
			Default("1m"),
		service.NewStringField(fieldStartFrom).
			Description("Where to start when no checkpoint exists: `now` (changes from now on), `beginning` (a backfill: every existing object is emitted once, as `created`), or an RFC 3339 time (objects modified since then). Ignored once a checkpoint exists.").
			Default(StartNow).
			Example(StartBeginning).
			Example("2026-01-01T00:00:00Z"),
		service.NewIntField(fieldPageSize).
			Description("Objects per request (`per_page`, 1 to 100); at most this many events per batch.").
			Default(wcclient.MaxPerPage).
			Advanced(),
		service.NewDurationField(fieldOverlap).
			Description("Hold-back for WooCommerce's second-grained `modified_after`: objects modified less than this before the store's clock (its `Date` header) are left for a fetch as soon as they are older, so a second that can still receive writes is never passed. Rounded up to whole seconds.").
			Default("1s").
			Advanced(),
		service.NewIntField(fieldMaxConcurrency).
			Description("Most requests in flight to the store at once, across all resources. A backfill far behind is read as segments of "+strconv.Itoa(segmentPages)+" pages fetched concurrently and emitted in order. The limit halves when the store answers 429 or 5xx or a transport error occurs, steps down when pages answer three times slower than the fastest recent ones, and climbs back after healthy answers (metric `"+metricConcurrency+"`).").
			Default(2),
		service.NewDurationField(fieldScanInterval).
			Description("For resources scanned in id order (strategy `scan`: customers): the least time between the starts of two passes over the whole list. `0s`: a new pass starts at the first poll after the previous one ended.").
			Default("0s"),
		service.NewIntField(fieldScanMaxPages).
			Description("For scanned resources: most pages of a pass read per poll. A pass reads `_fields=id,date_modified_gmt,date_created_gmt` pages of `page_size`, so with the defaults a store of up to 10,000 customers is compared in full on every poll (100 light requests, plus one `include=` request per 100 changed customers and one request for new ids); on larger stores a pass continues over several polls.").
			Default(100).
			Advanced(),
		service.NewBoolField(fieldDetectDeletes).
			Description("Query `status=trash` (with the same `modified_after` bound) on resources with a trash (orders, products, coupons) and emit `deleted` for trashed objects; an object seen trashed that comes back emits `restored`. Restoring an order with a status update fires no webhook, so the poller is the only source of `restored`.").
			Default(true),
		service.NewDurationField(fieldReconcileInterval).
			Description("Time between reconciliations that find permanently deleted objects (which leave no trace in any list): the ids the poller has emitted are looked up in `include=` batches of `page_size` in the list and the trash, and ids in neither are confirmed with a GET of the object (404) before `deleted` is emitted with `{\"id\":N}` data. `0s` disables it for `modified_after` resources (ids are then not recorded); scanned resources find deletions in every pass anyway.").
			Default("0s"),
		service.NewStringField(fieldStatePath).
			Description("bbolt file for per-object state (trashed ids, the scan state, ids for reconciliation), so memory stays flat whatever the store's size. Empty uses a temporary file that is removed on close: state is then lost on restart (restores after a restart are reported as updates, and the customers baseline is rebuilt). Also holds the checkpoint when `checkpoint_cache` is empty. May be the file of a `bbolt` cache resource.").
			Default("").
			Example("/var/lib/wooevents/poll-state.db"),
		service.NewStringField(fieldCheckpointCache).
			Description("A cache resource holding the poll position. The stored position only moves past an event once it and every event before it have been acknowledged, so after a crash or restart polling resumes without losing changes (some may be emitted again: those in flight, at most `checkpoint_limit`, and those acknowledged in the last 250 ms). Empty stores the position in `state_path`, or only in memory when that is empty too.").
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

**Orders, products, coupons** and any route built on WooCommerce's CRUD controller are read with
`+"`orderby=modified&order=asc&dates_are_gmt=true&modified_after=<naive UTC>`"+`, and the position is a watermark of
whole seconds: every object modified at or before it has been emitted. A real store returns objects that share a
modification second (bulk edits, imports, the batch endpoint) in no fixed order, different from one
LIMIT/OFFSET query to the next, so the poller never pages through a second by number or offset: each request asks
for everything after the watermark from the start, takes the seconds the page holds completely (all but its last
one) and moves the watermark to the end of them. A page that is a single second is read again by id
(`+"`orderby=id`"+` with that second's bounds, which pages consistently), checking at every page that the previous
page's last object is still in place. Cost: an idle poll is one request per resource plus one for the trash; N
changes spread over distinct seconds take about N/(page_size−1) requests; N objects sharing one second take, when N
reaches page_size, one request, ⌈N/(page_size−1)⌉ requests in id order and one for what follows (with the default
page size: 1 object 1 request, 100 objects 4, 10,000 objects 104), and fewer than page_size take one.

A list far behind (a backfill) is read as segments fetched concurrently (`+"`max_concurrency`"+`) and emitted in order;
the trash is read beside the list and merged with it in (second, id) order.

**Customers** have no date filter (strategy `+"`scan`"+`): every poll asks for ids above the highest known one, and a
pass over the whole list in id order compares each object's `+"`date_modified_gmt`"+` with the state in `+"`state_path`"+`,
asking only for ids and dates and then for the changed objects with `+"`include=`"+` (see `+"`scan_max_pages`"+`). A route whose
store ignores `+"`modified_after`"+` is detected and scanned the same way.

Events are the shared normalized event with `+"`source: poll`"+`, one batch per page. An event is `+"`created`"+` when the
object was never emitted before (a backfill from `+"`beginning`"+` emits every object once as created), `+"`updated`"+`
otherwise, `+"`deleted`"+` when it turns up in the trash or goes missing (reconciliation, scans) and `+"`restored`"+` when an
object seen trashed comes back. An object created and changed again before a poll sees it is one `+"`created`"+` event
with the latest state; created and trashed between polls is only `+"`deleted`"+`.

Store faults (429 with Retry-After, 5xx, timeouts, HTML pages, truncated JSON) are retried with backoff and never move
the position past objects not yet emitted. A poll that still fails (authentication, a misspelled resource, a store that
is down) is logged once and retried with a backoff growing from 5 s to 5 minutes; the other resources keep polling.

Logs: at info the start of a poll that finds work (a backfill with its `+"`X-WP-Total`"+`), progress every 10 s
(done/total, rate, ETA) and "caught up"; each request at debug. Metrics: `+"`"+metricRequests+"{resource,status}`"+`,
`+"`"+metricEvents+"{resource,action}`"+`, `+"`"+metricLag+"{resource}`"+` (for `+"`modified_after`"+` resources: the store's clock
minus the watermark), `+"`"+metricRemaining+"{resource}`"+`, `+"`"+metricLastPoll+"{resource}`"+` (Unix time of the last
successful poll), `+"`"+metricScanAge+"{resource}`"+` (for scanned resources: seconds since the last complete pass began)
and `+"`"+metricConcurrency+"`"+`.`).
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
	overlap           int64 // seconds
	maxConcurrency    int
	scanInterval      time.Duration
	scanMaxPages      int
	reconcileInterval time.Duration
	startFrom         string
	startTime         time.Time
	pageSize          int
	detectDeletes     bool
	statePath         string
	ckptCache         string
	ckptKey           string
	ckptLimit         int

	clock  clock
	manual bool // producers poll only when kicked (tests)

	lim       *limiter
	mRequests *service.MetricCounter
	mEvents   *service.MetricCounter
	mLag      *service.MetricGauge
	mRemain   *service.MetricGauge
	mLastPoll *service.MetricGauge
	mScanAge  *service.MetricGauge
	routeRes  map[string]string

	// set by Connect
	connected atomic.Bool // Connect and ReadBatch run on one goroutine, Close on another
	client    *wcclient.Client
	state     *stateStore
	ckStore   checkpointStore
	acks      *ackLog
	idle      *idleWatch     // nil without an IdleNotifier
	doc       *checkpointDoc // positions of what was emitted (reading goroutine)
	producers []*producer
	chunks    chan *chunk
	stop      context.CancelFunc
	wg        sync.WaitGroup
	trashSeen map[string]bool // resources whose trashed-ids bucket may hold entries

	saveMu    sync.Mutex
	lastSaved []byte
	saveErr   string

	// reading goroutine
	held     *batch
	cur      *chunk
	curIdx   int
	curKnown []stateVal   // the known-ids state of cur's records, read at once
	onChunk  func(*chunk) // tests: after a chunk has been handled
}

func newPollInput(conf *service.ParsedConfig, mgr *service.Resources) (*pollInput, error) {
	in := &pollInput{mgr: mgr, log: mgr.Logger(), clock: realClock{}}
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
	overlap, err := conf.FieldDuration(fieldOverlap)
	if err != nil {
		return nil, err
	}
	if overlap < 0 {
		return nil, fmt.Errorf("%s must not be negative", fieldOverlap)
	}
	in.overlap = int64((overlap + time.Second - 1) / time.Second)
	if in.maxConcurrency, err = conf.FieldInt(fieldMaxConcurrency); err != nil {
		return nil, err
	}
	if in.maxConcurrency < 1 {
		return nil, fmt.Errorf("%s must be at least 1, got %d", fieldMaxConcurrency, in.maxConcurrency)
	}
	if in.scanInterval, err = conf.FieldDuration(fieldScanInterval); err != nil {
		return nil, err
	}
	if in.scanInterval < 0 {
		return nil, fmt.Errorf("%s must not be negative", fieldScanInterval)
	}
	if in.scanMaxPages, err = conf.FieldInt(fieldScanMaxPages); err != nil {
		return nil, err
	}
	if in.scanMaxPages < 1 {
		return nil, fmt.Errorf("%s must be at least 1, got %d", fieldScanMaxPages, in.scanMaxPages)
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
	in.mRemain = m.NewGauge(metricRemaining, "resource")
	in.mLastPoll = m.NewGauge(metricLastPoll, "resource")
	in.mScanAge = m.NewGauge(metricScanAge, "resource")
	in.lim = newLimiter(in.maxConcurrency, m.NewGauge(metricConcurrency))

	in.routeRes = map[string]string{}
	for _, r := range in.resources {
		for _, p := range []string{r.path, strings.TrimPrefix(r.path, "/wp-json")} {
			if _, ok := in.routeRes[p]; !ok {
				in.routeRes[p] = r.name
			}
		}
	}
	cfg := in.clientCfg
	cfg.OnRequest = in.onRequest
	in.clientCfg = cfg
	return in, nil
}

// onRequest counts every attempt and tells the limiter about overload.
func (in *pollInput) onRequest(ri wcclient.RequestInfo) {
	status := "error"
	if ri.Status > 0 {
		status = strconv.Itoa(ri.Status)
	}
	path := strings.TrimSuffix(ri.Path, "/{id}")
	name := in.routeRes[path]
	if name == "" {
		name = ri.Path
	}
	in.mRequests.Incr(1, name, status)
	if ri.Status == 0 || ri.Status == 429 || ri.Status >= 500 {
		in.lim.failure()
	}
}

// Connect opens the state and the checkpoint and starts a producer per
// resource. It does not call the store: store failures are the producers'
// to retry and log (once per attempt), so a store that is down or refuses
// the keys never makes benthos reconnect in a loop. Nothing is kept from a
// Connect that fails, so the next one starts over.
func (in *pollInput) Connect(ctx context.Context) (err error) {
	if in.connected.Load() {
		return nil
	}
	client, err := wcclient.New(in.clientCfg)
	if err != nil {
		return err
	}
	if in.statePath == "" {
		in.log.Warnf("woocommerce_poll: %s is empty: per-object state lives in a temporary file and is lost on restart", fieldStatePath)
	}
	st, err := openStateStore(in.statePath)
	if err != nil {
		client.Close()
		return err
	}
	defer func() {
		if err != nil {
			_ = st.close()
			client.Close()
		}
	}()
	var ck checkpointStore
	switch {
	case in.ckptCache != "":
		ck = cacheCheckpoints{mgr: in.mgr, cache: in.ckptCache, key: in.ckptKey}
	case in.statePath != "":
		ck = fileCheckpoints{state: st, key: in.ckptKey}
	default:
		in.log.Warnf("woocommerce_poll: neither %s nor %s is set: the position is kept in memory only and a restart begins again at start_from", fieldCheckpointCache, fieldStatePath)
		ck = memoryCheckpoints{}
	}
	raw, err := ck.load(ctx)
	if err != nil {
		return fmt.Errorf("reading checkpoint %q: %w", in.ckptKey, err)
	}
	doc := &checkpointDoc{Version: checkpointVersion, Store: in.store, Resources: map[string]*resourceState{}}
	if raw != nil {
		if doc, err = parseCheckpoint(raw, in.store); err != nil {
			return err
		}
		in.log.Infof("woocommerce_poll: resuming from checkpoint %q", in.ckptKey)
	}
	trashSeen := map[string]bool{}
	for _, r := range in.resources {
		if doc.Resources[r.name] == nil {
			doc.Resources[r.name] = &resourceState{}
		}
		empty, err := st.empty(bucketTrashed + r.name)
		if err != nil {
			return err
		}
		trashSeen[r.name] = !empty
	}

	in.client, in.state, in.ckStore, in.doc, in.trashSeen = client, st, ck, doc, trashSeen
	in.acks = newAckLog(in.ckptLimit)
	in.idle = newIdleWatch(idleNotifierOf(in.mgr), len(in.resources), in.acks.inFlight, in.clock.Now)
	in.lastSaved = raw
	in.chunks = make(chan *chunk, 2*len(in.resources))
	d := &deps{
		fetch:     &fetcher{client: client, lim: in.lim, log: in.log, perPage: in.pageSize},
		state:     st,
		clock:     in.clock,
		log:       in.log,
		out:       in.chunks,
		overlap:   in.overlap,
		interval:  in.interval,
		startFrom: in.startFrom,
		startTime: in.startTime,
		detectDel: in.detectDeletes,
		reconcile: in.reconcileInterval,
		scanEvery: in.scanInterval,
		scanPages: in.scanMaxPages,
		segPages:  segmentPages,
		maxConc:   in.maxConcurrency,
		mLag:      in.mLag, mRemaining: in.mRemain, mLastPoll: in.mLastPoll, mScanAge: in.mScanAge,
		idle: in.idle,
	}
	runCtx, stop := context.WithCancel(context.Background())
	in.stop = stop
	names := make([]string, len(in.resources))
	for i, r := range in.resources {
		p := newProducer(d, r, doc.Resources[r.name])
		in.producers = append(in.producers, p)
		names[i] = r.name + " (" + r.strategy + ")"
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			p.run(runCtx, in.manual)
		}()
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.flushLoop(runCtx)
	}()
	in.connected.Store(true)
	in.log.Infof("woocommerce_poll: polling %s at %s every %s (up to %d requests at once)", strings.Join(names, ", "), in.store, in.interval, in.maxConcurrency)
	return nil
}

// batch is events of one resource and the state changes they carry.
type batch struct {
	msgs   service.MessageBatch
	ops    []stateOp
	res    *resource
	state  *resourceState // the resource's position after the batch (last batch of a chunk)
	counts []eventCount   // events not yet added to woocommerce_events_total
}

// eventCount is a number of events of one resource and action.
type eventCount struct {
	action string
	n      int64
}

// ReadBatch returns the next batch of events (at most page_size), waiting
// for the producers.
func (in *pollInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	if !in.connected.Load() {
		return nil, nil, service.ErrNotConnected
	}
	if b := in.held; b != nil {
		in.held = nil
		return in.emit(ctx, b)
	}
	b, err := in.next(ctx)
	if err != nil {
		return nil, nil, err
	}
	return in.emit(ctx, b)
}

// next classifies chunks until it has a batch with events; chunks and
// batches without events move positions and state at once (or behind the
// batches still in flight).
func (in *pollInput) next(ctx context.Context) (*batch, error) {
	for {
		if in.cur == nil {
			select {
			case c := <-in.chunks:
				in.cur, in.curIdx, in.curKnown = c, 0, nil
				if c.kind != kindEndPoll {
					in.idle.busy(c.res.name)
				}
				if c.kind == kindRecords && len(c.recs) > 1 {
					in.curKnown = in.lookupKnown(c)
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		c := in.cur
		b := &batch{res: c.res}
		in.fill(b, c)
		done := in.cur == nil
		if done {
			b.state = c.state
		}
		if len(b.msgs) == 0 && (b.state != nil || len(b.ops) > 0) {
			in.note(b)
		}
		if done && c.kind == kindEndPoll {
			if c.err == nil && !c.early {
				in.idle.ended(c.res.name, c.next)
			} else {
				in.idle.busy(c.res.name)
			}
		}
		if done && in.onChunk != nil {
			in.onChunk(c)
		}
		if len(b.msgs) > 0 {
			return b, nil
		}
	}
}

// fill classifies the chunk's records into b, up to page_size events.
func (in *pollInput) fill(b *batch, c *chunk) {
	r := c.res
	for in.curIdx < len(c.recs) && len(b.msgs) < in.pageSize {
		rec := &c.recs[in.curIdx]
		in.curIdx++
		switch c.kind {
		case kindRecords:
			var known *stateVal
			if in.curKnown != nil {
				known = &in.curKnown[in.curIdx-1]
			}
			in.classifyListed(b, r, c.info, rec, known)
		case kindScan:
			in.classifyScanned(b, r, c.scan, rec)
		}
		rec.pg.done() // the event copied what it keeps
		rec.Raw = nil
	}
	if in.curIdx < len(c.recs) {
		return
	}
	// gone ids and quiet state follow the records
	gi := in.curIdx - len(c.recs)
	for gi < len(c.gone) && len(b.msgs) < in.pageSize {
		in.classifyGone(b, r, c.gone[gi])
		gi++
		in.curIdx++
	}
	if gi < len(c.gone) {
		return
	}
	for _, q := range c.quiet {
		b.ops = append(b.ops, in.state.stage(q.bucket, q.id, q.sec, q.del))
	}
	in.cur = nil
}

// classifyListed decides the event of a record of a modified_after poll:
// deleted from the trash, restored when it was seen trashed, created when
// it was never emitted (the known-ids state) and created after start_from,
// updated otherwise.
func (in *pollInput) classifyListed(b *batch, r *resource, info *pollInfo, rec *record, prefetched *stateVal) {
	var action string
	known, trashedB := bucketKnown+r.name, bucketTrashed+r.name
	withTrash := in.detectDeletes && r.trash
	switch {
	case rec.src == srcTrash:
		action = wcevent.ActionDeleted
		b.ops = append(b.ops, in.state.stage(trashedB, rec.ID, rec.Sec, false))
		in.trashSeen[r.name] = true
	case strings.EqualFold(rec.Status, "trash"):
		if withTrash {
			return // the trash list reports it
		}
		action = wcevent.ActionDeleted
	default:
		var kv stateVal
		if prefetched != nil {
			kv = in.state.pendingOr(known, rec.ID, *prefetched)
		} else {
			kv.sec, kv.mark, kv.ok = in.stateGetMark(r, known, rec.ID)
		}
		sec, mark, seen := kv.sec, kv.mark, kv.ok
		if seen && sec == rec.Sec && markAction[mark] != "" {
			// This version was emitted before (read again after a crash
			// or a restart): the same event again, with the same id.
			action = markAction[mark]
			break
		}
		if withTrash && in.trashSeen[r.name] {
			if _, was := in.stateGet(r, trashedB, rec.ID); was {
				action = wcevent.ActionRestored
				b.ops = append(b.ops, in.state.stage(trashedB, rec.ID, rec.Sec, true))
			}
		}
		if action == "" {
			action = wcevent.ActionUpdated
			if !seen && info.createdSince(rec) || r.createdByTolerance(rec) {
				action = wcevent.ActionCreated
			}
		}
	}
	b.ops = append(b.ops, in.state.stageMark(known, rec.ID, rec.Sec, actionMark[action], false))
	in.addEvent(b, r, action, rec.ID, rec.Modified, rec.Raw)
}

// lookupKnown reads the known-ids state of a chunk's records in one read
// (nil on error: each record is then looked up on its own).
func (in *pollInput) lookupKnown(c *chunk) []stateVal {
	ids := make([]string, len(c.recs))
	for i := range c.recs {
		ids[i] = c.recs[i].ID
	}
	vals, err := in.state.getMany(bucketKnown+c.res.name, ids)
	if err != nil {
		in.log.Errorf("woocommerce_poll %s: reading the known-ids state: %v", c.res.name, err)
		return nil
	}
	return vals
}

// Marks stored with a known id: the event emitted for its version.
var (
	actionMark = map[string]byte{wcevent.ActionCreated: 'c', wcevent.ActionUpdated: 'u', wcevent.ActionRestored: 'r', wcevent.ActionDeleted: 'd'}
	markAction = map[byte]string{'c': wcevent.ActionCreated, 'u': wcevent.ActionUpdated, 'r': wcevent.ActionRestored, 'd': wcevent.ActionDeleted}
)

// stateGetMark is stateGet that also returns the stored mark.
func (in *pollInput) stateGetMark(r *resource, bucket, id string) (int64, byte, bool) {
	sec, mark, ok, err := in.state.getMark(bucket, id)
	if err != nil {
		in.log.Errorf("woocommerce_poll %s: reading the state of %s: %v", r.name, id, err)
	}
	return sec, mark, ok
}

// stateGet reads the per-id state; a read error is logged and reads as
// absent.
func (in *pollInput) stateGet(r *resource, bucket, id string) (int64, bool) {
	sec, ok, err := in.state.get(bucket, id)
	if err != nil {
		in.log.Errorf("woocommerce_poll %s: reading the state of %s: %v", r.name, id, err)
	}
	return sec, ok
}

// classifyScanned decides the event of a record found by a scan, against
// the state (so an object already emitted in this version is skipped).
func (in *pollInput) classifyScanned(b *batch, r *resource, si *scanInfo, rec *record) {
	known, trashedB := bucketKnown+r.name, bucketTrashed+r.name
	get := func(bucket string) (int64, bool) { return in.stateGet(r, bucket, rec.ID) }
	var action string
	if rec.src == srcTrash {
		if sec, ok := get(trashedB); ok && rec.Sec <= sec {
			return
		}
		action = wcevent.ActionDeleted
		b.ops = append(b.ops,
			in.state.stage(trashedB, rec.ID, rec.Sec, false),
			in.state.stage(known, rec.ID, 0, true))
		in.trashSeen[r.name] = true
	} else {
		sec, ok := get(known)
		if ok && rec.Sec <= sec {
			return
		}
		switch {
		case ok:
			action = wcevent.ActionUpdated
		case si.trash:
			if _, was := get(trashedB); was {
				action = wcevent.ActionRestored
				b.ops = append(b.ops, in.state.stage(trashedB, rec.ID, 0, true))
			}
		}
		if action == "" {
			action = wcevent.ActionCreated
			if si.firstPass && in.startTime.Unix() > 0 && in.startFrom != StartBeginning && in.startFrom != StartNow {
				// the first pass from a start time: older objects are recorded quietly
				start := in.startTime.Unix()
				switch {
				case rec.Sec < start:
					action = ""
				case rec.HasCreated && rec.Created < start:
					action = wcevent.ActionUpdated
				}
			}
		}
		b.ops = append(b.ops, in.state.stage(known, rec.ID, rec.Sec, false))
	}
	if action != "" {
		in.addEvent(b, r, action, rec.ID, rec.Modified, rec.Raw)
	}
}

// classifyGone emits deleted for an object found permanently deleted, if
// it is still known.
func (in *pollInput) classifyGone(b *batch, r *resource, id string) {
	known, trashedB := bucketKnown+r.name, bucketTrashed+r.name
	_, k, err1 := in.state.get(known, id)
	_, t, err2 := in.state.get(trashedB, id)
	if err := errors.Join(err1, err2); err != nil {
		in.log.Errorf("woocommerce_poll %s: reading the state of %s: %v", r.name, id, err)
	}
	if !k && !t {
		return
	}
	b.ops = append(b.ops, in.state.stage(known, id, 0, true), in.state.stage(trashedB, id, 0, true))
	in.addEvent(b, r, wcevent.ActionDeleted, id, time.Time{}, deletedData(id))
}

// addEvent appends the message of one change to b.
func (in *pollInput) addEvent(b *batch, r *resource, action, id string, modified time.Time, data []byte) {
	ev := wcevent.Event{
		Store:       in.store,
		Resource:    r.resource,
		ResourceKey: r.name,
		Action:      action,
		ObjectID:    id,
		Source:      wcevent.SourcePoll,
		Modified:    modified,
		ReceivedAt:  in.clock.Now(),
		Data:        data,
	}
	b.msgs = append(b.msgs, ev.NewMessage())
	for i := range b.counts {
		if b.counts[i].action == action {
			b.counts[i].n++
			return
		}
	}
	b.counts = append(b.counts, eventCount{action: action, n: 1})
}

// emit registers the batch with the ack log and hands it out.
func (in *pollInput) emit(ctx context.Context, b *batch) (service.MessageBatch, service.AckFunc, error) {
	if b.state != nil {
		in.doc.Resources[b.res.name] = b.state
		b.state = nil
	}
	release, err := in.acks.track(ctx, in.doc.marshal(), b.ops, len(b.msgs))
	if err != nil {
		in.held = b // the producers have moved past these events: keep them
		return nil, nil, err
	}
	for _, c := range b.counts {
		in.mEvents.Incr(c.n, b.res.name, c.action)
	}
	b.counts = nil
	n := len(b.msgs)
	return b.msgs, func(ctx context.Context, err error) error {
		if err != nil {
			in.log.Warnf("woocommerce_poll %s: %d events were rejected downstream and are dropped (auto_replay_nacks: false): %v", b.res.name, n, err)
		}
		release()
		in.idle.check()
		return nil
	}, nil
}

// note records a position and state changes that carry no events.
func (in *pollInput) note(b *batch) {
	if b.state != nil {
		in.doc.Resources[b.res.name] = b.state
	}
	in.acks.note(in.doc.marshal(), b.ops)
}

// flushLoop writes what acknowledgements released, at most every
// checkpointFlushInterval, and sleeps while nothing is released.
func (in *pollInput) flushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-in.acks.released:
		}
		select { // gather what the next acknowledgements release
		case <-ctx.Done():
			return
		case <-time.After(checkpointFlushInterval):
		}
		if err := in.flush(ctx); err != nil {
			if msg := err.Error(); msg != in.saveErr {
				in.saveErr = msg
				in.log.Errorf("woocommerce_poll: storing the checkpoint: %v (retrying)", err)
			}
		} else {
			in.saveErr = ""
		}
	}
}

// flush writes the released state changes, then stores the released
// position if it changed.
func (in *pollInput) flush(ctx context.Context) error {
	in.saveMu.Lock()
	defer in.saveMu.Unlock()
	ops, b := in.acks.take()
	if err := in.state.apply(ops); err != nil {
		in.acks.putBack(ops, b)
		return fmt.Errorf("writing state: %w", err)
	}
	if b == nil || bytes.Equal(b, in.lastSaved) {
		return nil
	}
	if err := in.ckStore.save(ctx, b); err != nil {
		in.acks.putBack(nil, b)
		return fmt.Errorf("storing checkpoint %q: %w", in.ckptKey, err)
	}
	in.lastSaved = b
	return nil
}

// Close stops the producers, stores the last acknowledged position and
// releases the state file.
func (in *pollInput) Close(ctx context.Context) error {
	if !in.connected.CompareAndSwap(true, false) {
		return nil
	}
	in.stop()
	in.wg.Wait()
	errs := []error{in.flush(ctx), in.state.close()}
	in.client.Close()
	return errors.Join(errs...)
}
