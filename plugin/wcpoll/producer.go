package wcpoll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/internal/retry"
	"github.com/wooevents/wooevents/plugin/wcclient"
)

// deps is what a resource's producer needs from the input.
type deps struct {
	fetch     *fetcher
	state     *stateStore
	clock     clock
	log       logger
	out       chan<- *chunk
	overlap   int64 // seconds
	interval  time.Duration
	startFrom string
	startTime time.Time
	detectDel bool
	reconcile time.Duration
	scanEvery time.Duration
	scanPages int
	segPages  int
	maxConc   int

	mLag, mRemaining, mLastPoll, mScanAge *service.MetricGauge
	idle                                  *idleWatch // nil without an IdleNotifier
}

// chunkKind says what a chunk handed to the reading goroutine carries.
type chunkKind uint8

const (
	kindRecords   chunkKind = iota // records of a modified_after poll
	kindScan                       // records and deletions found by a scan
	kindEndPoll                    // a poll ended (carries the state after it)
	kindStateOnly                  // a position and/or quiet state changes, no records
)

// chunk is one unit handed from a producer to the reading goroutine.
type chunk struct {
	kind   chunkKind
	res    *resource
	recs   []record       // sorted for emission
	gone   []string       // ids found permanently deleted (kindScan, reconciliation)
	quiet  []quietEntry   // state to record without events (a silent baseline)
	state  *resourceState // the resource's position after this chunk (nil: unchanged)
	info   *pollInfo      // kindRecords: how to classify
	scan   *scanInfo      // kindScan: how to classify
	kicked bool           // kindEndPoll: the poll was started by a kick
	err    error          // kindEndPoll: the poll failed
	next   time.Time      // kindEndPoll: when the resource polls again
	early  bool           // kindEndPoll: that is a recheck of held-back seconds, before the interval
}

// quietEntry is an id and modification second recorded without an event.
type quietEntry struct {
	bucket string
	id     string
	sec    int64
	del    bool
}

// producer polls one resource on its own schedule and hands what it finds,
// in order, to the reading goroutine, which classifies, emits and tracks
// it. It retries failed polls from the last position it handed on, with a
// growing backoff (5 s doubling to 5 min) and one log line per attempt.
type producer struct {
	d   *deps
	res *resource
	st  *resourceState // the position after the last chunk handed on
	// kick starts a poll now (tests; also used after a held-back second
	// settles).
	kick chan struct{}

	backoff  *retry.Growing
	failWait time.Duration // the wait after the last failure (0: none)
	lastErr  string
}

func newProducer(d *deps, r *resource, st *resourceState) *producer {
	return &producer{d: d, res: r, st: st.clone(), kick: make(chan struct{}, 1),
		backoff: retry.NewGrowing(5*time.Second, 5*time.Minute)}
}

// run polls until ctx ends. manual: wait for a kick before every poll.
func (p *producer) run(ctx context.Context, manual bool) {
	var wake <-chan time.Time
	if !manual {
		wake = p.d.clock.After(0)
	}
	for {
		kicked := false
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-p.kick:
			kicked = true
		}
		p.d.idle.busy(p.res.name)
		start := p.d.clock.Now()
		recheck, err := p.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			wait := p.failed(err)
			wake = p.d.clock.After(wait)
			if !p.send(ctx, &chunk{kind: kindEndPoll, res: p.res, kicked: kicked, err: err}) {
				return
			}
			continue
		}
		p.recovered()
		now := p.d.clock.Now()
		next := start.Add(p.d.interval).Sub(now)
		early := recheck > 0 && recheck < next
		if early {
			next = recheck
		}
		wake = p.d.clock.After(next)
		p.d.mLastPoll.Set(now.Unix(), p.res.name)
		end := &chunk{kind: kindEndPoll, res: p.res, state: p.st.clone(), kicked: kicked, next: now.Add(next), early: early}
		if !p.send(ctx, end) {
			return
		}
	}
}

// failed logs a failed poll once and returns the wait before the next try.
func (p *producer) failed(err error) time.Duration {
	p.failWait = p.backoff.Next()
	hint := "retrying"
	var we *wcclient.Error
	switch {
	case errors.As(err, &we) && we.Code == "rest_no_route":
		hint = fmt.Sprintf("the store has no route %s: check this resource's name and path; retrying", p.res.path)
	case permanent(err):
		hint = "the store refuses the request; fix the cause (see the error); retrying"
	}
	repeat := ""
	if msg := err.Error(); msg == p.lastErr {
		repeat = " (again)"
	} else {
		p.lastErr = msg
	}
	p.d.log.Errorf("woocommerce_poll %s: poll failed%s: %v; %s in %s (the position stays before every change not yet emitted; the other resources keep polling)",
		p.res.name, repeat, err, hint, p.failWait)
	return p.failWait
}

func (p *producer) recovered() {
	if p.failWait > 0 {
		p.d.log.Infof("woocommerce_poll %s: the store answers again, polling resumed", p.res.name)
	}
	p.failWait, p.lastErr = 0, ""
	p.backoff.Reset()
}

// permanent reports whether err is a store answer that retrying soon will
// not fix: authentication, permissions, unknown route or parameter, a page
// that is not the REST API.
func permanent(err error) bool {
	switch wcclient.StatusCode(err) {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		return true
	}
	return false
}

func (p *producer) send(ctx context.Context, c *chunk) bool {
	c.res = p.res
	select {
	case p.d.out <- c:
		return true
	case <-ctx.Done():
		return false
	}
}

// poll runs one complete poll: start_from on the first, then the
// resource's strategy, then a reconciliation when due. It returns when to
// poll again early (0: at the next interval) to pick up held-back changes.
func (p *producer) poll(ctx context.Context) (time.Duration, error) {
	if !p.st.Started {
		if err := p.start(ctx); err != nil {
			return 0, err
		}
	}
	var recheck time.Duration
	var err error
	if p.res.strategy == StrategyScan || p.st.Scanning {
		err = p.pollScan(ctx)
	} else {
		recheck, err = p.pollModified(ctx)
		if errors.Is(err, errFilterIgnored) {
			p.d.log.Warnf("woocommerce_poll %s: %v (%s); scanning this resource in id order from now on, like customers (see the strategy field)", p.res.name, err, p.res.path)
			p.st.Scanning = true
			if !p.send(ctx, &chunk{kind: kindStateOnly, state: p.st.clone()}) {
				return 0, ctx.Err()
			}
			err = p.pollScan(ctx)
		}
	}
	if err != nil {
		return 0, err
	}
	if p.d.reconcile > 0 && p.res.strategy != StrategyScan && !p.st.Scanning &&
		p.d.clock.Now().Unix()-p.st.LastReconcile >= int64(p.d.reconcile/time.Second) {
		if err := p.reconcileDeletes(ctx); err != nil {
			return 0, err
		}
	}
	return recheck, nil
}

// start applies start_from.
func (p *producer) start(ctx context.Context) error {
	switch p.d.startFrom {
	case StartBeginning:
	case StartNow:
		q := p.res.query()
		pg, _, err := p.d.fetch.list(ctx, p.res, q, 1, 1)
		if err != nil {
			return err
		}
		w := serverTime(pg.Header).Unix() - 1
		p.st.Watermark, p.st.Since = intp(w), intp(w)
	default:
		w := p.d.startTime.Unix() - 1
		p.st.Watermark, p.st.Since = intp(w), intp(w)
	}
	p.st.Started = true
	if !p.send(ctx, &chunk{kind: kindStateOnly, state: p.st.clone()}) {
		return ctx.Err()
	}
	return nil
}

// mergeSrc is one list of a modified_after poll: the list or the trash.
type mergeSrc struct {
	trash bool
	ch    chan item
	buf   []record // read, not yet handed on, sorted
	cw    *int64   // complete through: every object modified at or before it is read
	done  bool
	held  []record
	now   time.Time
	total int
	first bool
}

// pollModified reads everything modified after the watermark, from the list
// and (with detect_deletes) the trash, and hands it on in (second, id)
// order: the two lists are read concurrently and merged, and records are
// handed on only up to the second both lists are complete through.
func (p *producer) pollModified(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	env := &feedEnv{f: p.d.fetch, res: p.res, overlap: p.d.overlap, segPages: p.d.segPages, maxConc: p.d.maxConc}
	w0 := cloneInt(p.st.Watermark)
	info := &pollInfo{since: cloneInt(p.st.Since)}
	start := func(trash bool, pos *int64, segmented bool) *mergeSrc {
		s := &mergeSrc{trash: trash, ch: make(chan item, 2), cw: cloneInt(pos), first: true}
		go runFeed(ctx, env, trash, pos, segmented, s.ch)
		return s
	}
	srcs := []*mergeSrc{start(false, w0, true)}
	if p.d.detectDel && p.res.trash {
		srcs = append(srcs, start(true, w0, false))
	}
	prog := p.newProgress(w0)
	for {
		// read from the list that holds the others back
		var next *mergeSrc
		for _, s := range srcs {
			if !s.done && (next == nil || lessPos(s.cw, next.cw)) {
				next = s
			}
		}
		if next == nil {
			// Both are read. A list that finished earlier may be complete
			// through an earlier second than records the other holds: read
			// it again from there.
			lag := srcs[0]
			for _, s := range srcs[1:] {
				if lessPos(s.cw, lag.cw) {
					lag = s
				}
			}
			if other := otherBeyond(srcs, lag); other != nil && lag.now.Unix() < other.now.Unix() {
				srcs = replace(srcs, lag, start(lag.trash, lag.cw, false))
				continue
			}
			break
		}
		var it item
		select {
		case it = <-next.ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if it.err != nil {
			return 0, it.err
		}
		c := it.c
		if c == nil {
			return 0, fmt.Errorf("%s: list reader ended early", p.res.name)
		}
		next.buf = mergeSorted(next.buf, c.recs)
		if c.pos != nil && (next.cw == nil || *c.pos > *next.cw) {
			next.cw = cloneInt(c.pos)
		}
		next.done = c.done
		next.held = append(next.held, c.held...)
		next.now = c.serverNow
		if next.first {
			next.first = false
			next.total = c.total
			if !next.trash {
				prog.begin(c.total, len(c.recs) > 0 || !c.done)
			}
		}
		// hand on what every list is complete through
		m := srcs[0].cw
		for _, s := range srcs[1:] {
			if lessPos(s.cw, m) {
				m = s.cw
			}
		}
		if m == nil {
			continue
		}
		var out []record
		for _, s := range srcs {
			n := 0
			for n < len(s.buf) && s.buf[n].Sec <= *m {
				n++
			}
			out = mergeSorted(out, s.buf[:n])
			s.buf = s.buf[n:]
		}
		if len(out) == 0 && p.st.Watermark != nil && *m <= *p.st.Watermark {
			continue
		}
		p.st.Watermark = cloneInt(m)
		if !p.send(ctx, &chunk{kind: kindRecords, recs: out, state: p.st.clone(), info: info}) {
			return 0, ctx.Err()
		}
		prog.add(len(out), srcs[0].now, m)
	}

	// The poll is complete. Held-back records and what a list read beyond
	// the watermark are picked up as soon as they settle.
	var heldMax int64
	now := srcs[0].now
	for _, s := range srcs {
		for _, r := range s.held {
			heldMax = max(heldMax, r.Sec)
		}
		for _, r := range s.buf {
			heldMax = max(heldMax, r.Sec)
		}
		if s.now.Before(now) {
			now = s.now
		}
	}
	prog.end(now, p.st.Watermark)
	var recheck time.Duration
	if heldMax > 0 {
		settles := heldMax + p.d.overlap + 1 // the first Date at which heldMax is settled
		recheck = max(time.Duration(settles-now.Unix())*time.Second, 200*time.Millisecond)
	}
	return recheck, nil
}

// lessPos orders positions, nil (nothing read yet) first.
func lessPos(a, b *int64) bool {
	if a == nil {
		return b != nil
	}
	return b != nil && *a < *b
}

// otherBeyond returns another list that holds records after lag's position
// (records that cannot be handed on until lag is read further), or nil.
func otherBeyond(srcs []*mergeSrc, lag *mergeSrc) *mergeSrc {
	for _, s := range srcs {
		if s != lag && len(s.buf) > 0 && lessPos(lag.cw, intp(s.buf[0].Sec)) {
			return s
		}
	}
	return nil
}

func replace(srcs []*mergeSrc, old, nu *mergeSrc) []*mergeSrc {
	for i, s := range srcs {
		if s == old {
			nu.buf = old.buf
			srcs[i] = nu
		}
	}
	return srcs
}

// mergeSorted merges two sorted record slices. It never writes into a or b
// (it may return either), so slices of a buffer can be merged safely.
func mergeSorted(a, b []record) []record {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]record, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if cmpRec(&a[i], &b[j]) <= 0 {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// pollInfo is what the reading goroutine needs to classify the records of
// a modified_after poll.
type pollInfo struct {
	since *int64 // resourceState.Since
}

// createdSince reports whether an object not emitted before counts as
// created: always in a backfill from the beginning, else when it was
// created after start_from.
func (pi *pollInfo) createdSince(rec *record) bool {
	return pi.since == nil || (rec.HasCreated && rec.Created > *pi.since)
}

// progress logs a poll's work: its start when it finds work, every ~10 s
// while it lasts, and when it has caught up; and keeps the backfill and
// watermark gauges.
type progress struct {
	p        *producer
	from     *int64
	started  time.Time
	lastLog  time.Time
	total    int
	done     int
	backfill bool
	working  bool
	scan     bool // a pass of a scanned resource
	begun    bool
}

const progressEvery = 10 * time.Second

func (p *producer) newProgress(from *int64) *progress {
	now := time.Now()
	return &progress{p: p, from: cloneInt(from), started: now, lastLog: now}
}

func (g *progress) begin(total int, work bool) {
	if g.begun {
		return // a list read again in the same poll
	}
	g.begun = true
	g.total = total
	if !work {
		return
	}
	g.working = true
	name := g.p.res.name
	switch {
	case g.scan:
		g.p.d.log.Infof("woocommerce_poll %s: first pass over %d objects (X-WP-Total), %d per page", name, total, g.p.d.fetch.perPage)
	case g.from == nil || total > 10*g.p.d.fetch.perPage:
		g.backfill = true
		since := "the beginning"
		if g.from != nil {
			since = time.Unix(*g.from, 0).UTC().Format(time.RFC3339)
		}
		g.p.d.log.Infof("woocommerce_poll %s: backfill of %d objects modified since %s (X-WP-Total), up to %d requests at once", name, total, since, g.p.d.maxConc)
	default:
		g.p.d.log.Infof("woocommerce_poll %s: %d changes since %s", name, total, time.Unix(*g.from, 0).UTC().Format(time.RFC3339))
	}
	if !g.scan {
		g.p.d.mRemaining.Set(int64(total), name)
	}
}

func (g *progress) add(n int, storeNow time.Time, w *int64) {
	g.done += n
	if w != nil && !storeNow.IsZero() {
		g.p.d.mLag.SetFloat64(max(storeNow.Sub(time.Unix(*w, 0)).Seconds(), 0), g.p.res.name)
	}
	if !g.working {
		return
	}
	if !g.scan {
		g.p.d.mRemaining.Set(int64(max(g.total-g.done, 0)), g.p.res.name)
	}
	now := time.Now()
	if now.Sub(g.lastLog) < progressEvery {
		return
	}
	g.lastLog = now
	el := now.Sub(g.started).Seconds()
	rate := float64(g.done) / max(el, 0.001)
	eta := "unknown"
	if rate > 0 && g.total > g.done {
		eta = (time.Duration(float64(g.total-g.done)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if g.total > 0 {
		pct = 100 * float64(min(g.done, g.total)) / float64(g.total)
	}
	g.p.d.log.Infof("woocommerce_poll %s: %d/%d (%.0f%%), %.0f/s, ETA %s", g.p.res.name, g.done, g.total, pct, rate, eta)
}

func (g *progress) end(storeNow time.Time, w *int64) {
	if !g.scan {
		g.p.d.mRemaining.Set(0, g.p.res.name)
	}
	if w != nil && !storeNow.IsZero() {
		g.p.d.mLag.SetFloat64(max(storeNow.Sub(time.Unix(*w, 0)).Seconds(), 0), g.p.res.name)
	}
	if !g.working {
		return
	}
	took := time.Since(g.started).Round(time.Millisecond)
	if g.scan {
		g.p.d.log.Infof("woocommerce_poll %s: caught up: %d changes in %s", g.p.res.name, g.done, took)
		return
	}
	at := "nothing yet"
	if w != nil {
		at = time.Unix(*w, 0).UTC().Format(time.RFC3339)
	}
	g.p.d.log.Infof("woocommerce_poll %s: caught up: %d changes in %s; everything modified up to %s is read", g.p.res.name, g.done, took, at)
}

// deletedData is the body of a permanent delete: {"id":N}.
func deletedData(id string) []byte {
	if isDecimal(id) {
		return []byte(`{"id":` + id + `}`)
	}
	return []byte(`{"id":` + strconv.Quote(id) + `}`)
}

// Buckets of the state file, per resource name.
const (
	bucketTrashed = "wcpoll_trashed_"   // ids seen in trash → modification second
	bucketKnown   = "wcpoll_known_"     // ids seen (scan state, reconciliation) → modification second
	bucketCkpt    = "wcpoll_checkpoint" // checkpoint when no checkpoint_cache is set
)

// joinIDs joins ids with commas (include=).
func joinIDs(ids []string) string { return strings.Join(ids, ",") }
