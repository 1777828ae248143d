package wcpoll

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// lister is the part of wcclient.Client a walk needs.
type lister interface {
	ListPage(ctx context.Context, route string, query url.Values, page, perPage int) (*wcclient.Page, error)
}

// fieldLister is a lister that reads the fields of every record in the
// pass that validates a page (wcclient.Client).
type fieldLister interface {
	ListPageFields(ctx context.Context, route string, query url.Values, page, perPage int, keys []string) (*wcclient.Page, error)
}

// walk reads one resource's list (or its trash) in (date_modified, id) order
// with `modified_after`, and hands out records after its position.
//
// It never walks page numbers of a changing result set. Each request asks
// for the records after `bound` (the position's second minus one, minus the
// overlap) at the offset where the position should be, and checks that the
// first record returned is at or before the position; if not, records have
// left the result set since (they were modified again and moved to its end)
// and the walk steps back until it finds its place. So a record is never
// skipped, and one already emitted is never emitted again while the walk
// keeps its place.
//
// Records of the last `overlap` before the store's clock (the response's
// Date header) are left for the next poll: the position never enters a
// second that may still receive records.
type walk struct {
	res     *resource
	client  lister
	trash   bool
	pos     *streamPos
	perPage int
	overlap int64 // seconds
	log     logger

	buf  []record
	bi   int
	done bool // no more requests this poll
	// page is the page whose bytes buf's records alias: released for
	// reuse once every record was taken (events copy what they keep).
	page *wcclient.Page

	// the last page fetched, for moving the bound forward exactly.
	lastOff   int
	lastSecs  []int64
	lastBound *int64
	rewind    int
	fetchOff  int // >= 0: next request at this offset (stepping back)

	serverNow time.Time
	requests  int

	// bg is the context of prefetches (cancelled when the input closes);
	// pf is the request for the page the walk expects to need next, sent
	// while the current page is emitted.
	bg context.Context
	pf *prefetch
}

// prefetch is one list request running ahead of the walk.
type prefetch struct {
	key    string // encoded query: used only if the walk asks exactly this
	cancel context.CancelFunc
	done   chan struct{}
	page   *wcclient.Page
	err    error
}

type logger interface {
	Warnf(format string, args ...any)
	Debugf(format string, args ...any)
}

// newWalk makes a walk; bg bounds the lifetime of its prefetches (nil:
// no prefetching).
func newWalk(bg context.Context, res *resource, client lister, trash bool, pos *streamPos, perPage int, overlap time.Duration, log logger) *walk {
	ov := int64((overlap + time.Second - 1) / time.Second)
	return &walk{bg: bg, res: res, client: client, trash: trash, pos: pos, perPage: perPage, overlap: ov, log: log, fetchOff: -1}
}

// reset prepares the walk for a new poll.
func (w *walk) reset() {
	w.releasePage()
	w.buf, w.bi, w.done = w.buf[:0], 0, false
	w.requests = 0
}

// peek returns the next record, fetching when needed; ok is false when the
// walk is done for this poll. fetched reports whether a request was made.
func (w *walk) peek(ctx context.Context, mayFetch bool) (rec *record, fetched bool, err error) {
	if w.bi < len(w.buf) {
		return &w.buf[w.bi], false, nil
	}
	if w.done || !mayFetch {
		return nil, false, nil
	}
	if err := w.fill(ctx); err != nil {
		return nil, true, err
	}
	if w.bi < len(w.buf) {
		return &w.buf[w.bi], true, nil
	}
	return nil, true, nil
}

// needsFetch reports whether the next peek would make a request.
func (w *walk) needsFetch() bool { return w.bi >= len(w.buf) && !w.done }

// take consumes the record peek returned and moves the position to it.
func (w *walk) take() record {
	r := w.buf[w.bi]
	w.buf[w.bi] = record{}
	w.bi++
	w.pos.Has, w.pos.Sec, w.pos.ID = true, r.Key.Sec, r.Key.ID
	w.pos.N = w.lastOff + r.idx + 1
	w.pos.Bound = cloneBound(w.lastBound)
	return r
}

// finish ends the poll: the next walk classifies against this position.
func (w *walk) finish() {
	w.pos.FloorHas, w.pos.FloorSec, w.pos.FloorID = w.pos.Has, w.pos.Sec, w.pos.ID
}

func cloneBound(b *int64) *int64 {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

// rebase moves the bound up to the position's second minus one minus the
// overlap when the last page shows exactly how many records of the new,
// smaller result set lie at or before the position.
func (w *walk) rebase() {
	p := w.pos
	if p.NoFilter || !p.Has {
		return
	}
	nb := p.Sec - 1 - w.overlap
	if p.Bound != nil && nb <= *p.Bound {
		return
	}
	if w.lastSecs == nil || !sameBound(w.lastBound, p.Bound) {
		if p.Bound == nil && p.N == 0 {
			// nothing at or before the position is known: start bounded
			p.Bound = &nb
		}
		return
	}
	j := p.N - 1 - w.lastOff // index of the position in the last page
	if j < 0 || j >= len(w.lastSecs) {
		return
	}
	if w.lastOff > 0 && w.lastSecs[0] > nb {
		return // the new result set begins before the last page: keep the bound
	}
	n := 0
	for _, s := range w.lastSecs[:j+1] {
		if s > nb {
			n++
		}
	}
	p.Bound, p.N = &nb, n
	w.lastSecs, w.lastBound, w.lastOff = nil, nil, 0
}

func sameBound(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func (w *walk) query(off int) url.Values {
	q := url.Values{}
	for k, v := range w.res.params {
		q[k] = v
	}
	q.Set("orderby", "modified")
	q.Set("order", "asc")
	q.Set("dates_are_gmt", "true")
	if w.trash {
		q.Set("status", "trash")
	}
	if w.pos.Bound != nil && !w.pos.NoFilter {
		q.Set("modified_after", wcevent.FormatWooTime(time.Unix(*w.pos.Bound, 0)))
	}
	if off > 0 {
		q.Set("offset", strconv.Itoa(off))
	}
	return q
}

// fill fetches until it has records to hand out or the walk is done.
func (w *walk) fill(ctx context.Context) error {
	w.releasePage()
	w.buf, w.bi = w.buf[:0], 0
	for !w.done && len(w.buf) == 0 {
		w.rebase()
		off := w.pos.N - 1
		if w.fetchOff >= 0 {
			off = w.fetchOff
		}
		off = max(off, 0)
		page, err := w.fetch(ctx, w.query(off))
		if err != nil {
			return err
		}
		w.releasePage() // a page before it handed out nothing
		w.page = page
		w.serverNow = serverTime(page.Header)
		recs := make([]record, 0, len(page.Items))
		secs := make([]int64, len(page.Items))
		prev := int64(0)
		if w.pos.Bound != nil {
			prev = *w.pos.Bound + 1
		}
		for i, raw := range page.Items {
			var vals []json.RawMessage
			if page.Fields != nil {
				vals = page.Fields[i]
			}
			rec, err := w.res.parseRecordFields(raw, vals, prev)
			secs[i] = prev
			if err != nil {
				w.log.Warnf("%s: skipping an object the poller cannot read: %v", w.res.name, err)
				continue
			}
			if rec.Modified.IsZero() {
				w.log.Warnf("%s %s: %s missing or unreadable; kept in place", w.res.name, rec.Key.ID, w.res.fields[1])
			}
			rec.idx = i
			prev = rec.Key.Sec
			secs[i] = prev
			recs = append(recs, rec)
		}

		// Verify our place: the first record must be at or before the
		// position, otherwise records before it have left the result set.
		if off > 0 && w.pos.Has && (len(recs) == 0 || w.pos.after(recs[0].Key)) {
			w.rewind = max(w.perPage-1, w.rewind*2)
			w.fetchOff = max(0, off-w.rewind)
			w.log.Debugf("%s: result set shifted under offset %d, stepping back to %d", w.res.name, off, w.fetchOff)
			continue
		}
		w.rewind, w.fetchOff = 0, -1

		// A store that ignores modified_after returns older records.
		if w.pos.Bound != nil && !w.pos.NoFilter {
			ignored := false
			for i := range recs {
				if !recs[i].Modified.IsZero() && recs[i].Key.Sec <= *w.pos.Bound {
					ignored = true
					break
				}
			}
			if ignored {
				w.log.Warnf("%s: the store ignores modified_after on %s (it returned objects modified before the bound, so X-WP-Total does not shrink with the filter); falling back to client-side filtering: every poll now reads the list from its start", w.res.name, w.res.path)
				w.pos.NoFilter, w.pos.Bound, w.pos.N = true, nil, 0
				w.lastSecs, w.lastBound = nil, nil
				continue
			}
		}

		settledBefore := w.serverNow.Unix() - w.overlap
		last := -1 // index of the last record at or before the position
		for i := range recs {
			r := &recs[i]
			if !w.pos.after(r.Key) {
				last = r.idx
				continue
			}
			if r.Key.Sec >= settledBefore {
				w.done = true // this second may still receive records
				break
			}
			w.buf = append(w.buf, *r)
		}
		if last >= 0 {
			w.pos.N = off + last + 1
		}
		w.lastOff, w.lastBound = off, cloneBound(w.pos.Bound)
		w.lastSecs = secs
		if len(page.Items) < w.perPage {
			w.done = true
		} else if len(w.buf) == 0 && !w.done {
			// a full page at or before the position: move on past it
			w.pos.N = off + len(page.Items)
		}
	}
	if !w.done && len(w.buf) > 0 {
		w.startPrefetch()
	}
	return nil
}

// fetch returns the page for q: the prefetched one when it was sent with
// exactly this query, else a new request. Requests of a walk stay
// sequential: a prefetch is sent after the page before it was read, and a
// prefetch for another query is cancelled and not used.
func (w *walk) fetch(ctx context.Context, q url.Values) (*wcclient.Page, error) {
	if pf := w.pf; pf != nil {
		if pf.key == q.Encode() {
			select {
			case <-ctx.Done():
				return nil, ctx.Err() // the prefetch stays for the next try
			case <-pf.done:
			}
			w.pf = nil
			pf.cancel()
			w.requests++
			return pf.page, pf.err
		}
		w.dropPrefetch()
	}
	w.requests++
	return w.list(ctx, q)
}

// list requests one page, with the record fields read in the pass that
// validates it when the client can and the fields are plain keys.
func (w *walk) list(ctx context.Context, q url.Values) (*wcclient.Page, error) {
	if fl, ok := w.client.(fieldLister); ok && w.res.topLevel {
		return fl.ListPageFields(ctx, w.res.path, q, 1, w.perPage, w.res.fields)
	}
	return w.client.ListPage(ctx, w.res.path, q, 1, w.perPage)
}

// startPrefetch sends the request the next fill will make once every
// buffered record has been taken: the walk's state after the last take,
// rebased, at offset N-1. Only this page (per walk) is read ahead, so
// memory stays bounded by one page beyond what is in flight.
func (w *walk) startPrefetch() {
	if w.bg == nil || w.pf != nil || w.bg.Err() != nil {
		return
	}
	last := w.buf[len(w.buf)-1]
	sim := *w
	p := *w.pos
	sim.pos = &p
	p.Has, p.Sec, p.ID = true, last.Key.Sec, last.Key.ID
	p.N = w.lastOff + last.idx + 1
	p.Bound = cloneBound(w.lastBound)
	sim.rebase()
	q := sim.query(max(p.N-1, 0))
	ctx, cancel := context.WithCancel(w.bg)
	pf := &prefetch{key: q.Encode(), cancel: cancel, done: make(chan struct{})}
	w.pf = pf
	go func() {
		defer close(pf.done)
		pf.page, pf.err = w.list(ctx, q)
	}()
}

// releasePage hands the bytes of the page whose records have all been
// taken back to the client for reuse.
func (w *walk) releasePage() {
	if w.page != nil {
		w.page.Release()
		w.page = nil
	}
}

// dropPrefetch cancels an unused prefetch.
func (w *walk) dropPrefetch() {
	if w.pf != nil {
		w.pf.cancel()
		w.pf = nil
	}
}

// serverTime is the store's clock from the Date header, else ours.
func serverTime(h http.Header) time.Time {
	if v := h.Get("Date"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			return t
		}
	}
	return time.Now()
}
