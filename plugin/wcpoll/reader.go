package wcpoll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// errFilterIgnored: the store answered a modified_after query with objects
// at or before the bound (or out of modification order): it ignores the
// filter on this route.
var errFilterIgnored = errors.New("the store ignores modified_after on this route (it returned objects modified at or before the bound)")

// fetcher makes the poller's list requests: through the limiter, with a
// debug line per request and latency feedback for the limiter.
type fetcher struct {
	client  *wcclient.Client
	lim     *limiter
	log     logger
	perPage int
	seq     atomic.Uint64 // fetch order of answers
}

// list requests one page. The page's bytes are owned by the records parsed
// from it (it is never released to the client's buffer pool).
func (f *fetcher) list(ctx context.Context, r *resource, q url.Values, page, perPage int) (*wcclient.Page, uint64, error) {
	if err := f.lim.acquire(ctx); err != nil {
		return nil, 0, err
	}
	start := time.Now()
	var keys []string
	if r.topLevel {
		keys = r.fields
	}
	p, err := f.client.ListPageFields(ctx, r.path, q, page, perPage, keys)
	d := time.Since(start)
	f.lim.release()
	if err != nil {
		f.log.Debugf("woocommerce_poll %s: GET %s: failed after %s: %v", r.name, r.path, d.Round(time.Millisecond), err)
		return nil, 0, err
	}
	seq := f.seq.Add(1)
	if perPage == f.perPage && q.Get("_fields") == "" && len(p.Items) == perPage {
		f.lim.success(d)
	}
	f.log.Debugf("woocommerce_poll %s: GET %s: 200, %d objects (X-WP-Total %d) in %s", r.name, p.URL, len(p.Items), p.Total, d.Round(time.Millisecond))
	return p, seq, nil
}

// span is what a reader hands on: records complete for the seconds up to
// pos, sorted for emission.
type span struct {
	recs []record
	pos  *int64 // every object of the source modified at or before it is delivered
	done bool   // the reader's window is read (caught up, for the present)
	tail bool   // with done: the reader stopped at the store's present (the hold-back), not at its window's end

	held      []record // seen but modified within overlap of the store's clock
	serverNow time.Time
	total     int // X-WP-Total of the answer
}

// reader walks one window of a list (or of its trash) in modification
// order: objects modified after pos (nil: from the beginning) up to hi
// (nil: the store's present, less the hold-back `overlap`).
//
// The store sorts by the modification second but returns objects sharing a
// second in no fixed order, different from one LIMIT/OFFSET query to the
// next, so the reader never pages by number or offset through a second:
// each request asks for `modified_after=<pos>` from the start, takes the
// seconds the page holds completely (all but its last second, which may
// continue on the next page) and moves pos to the end of them. A page that
// holds a single second is read again by id (`orderby=id`, which pages
// consistently), every object of that second, checking at every page that
// the previous page's last object is still in place.
type reader struct {
	f       *fetcher
	res     *resource
	trash   bool
	overlap int64 // seconds

	pos *int64
	hi  *int64
	// a backfill segment's first request: the object at this offset of
	// the walk from base (nil: beginning) gives the segment's first second.
	offset int
	base   *int64
	// hiFor, when set, supplies hi once known (a segment learns its end from
	// the next segment's first answer); nil result: unbounded.
	hiFor func(ctx context.Context) (*int64, error)

	// onBoundary receives the first second of a segment (nil: none, the
	// offset is past the end) after its first request.
	onBoundary func(*int64)

	done bool
}

func (rd *reader) query() url.Values {
	q := rd.res.query()
	q.Set("orderby", "modified")
	q.Set("order", "asc")
	q.Set("dates_are_gmt", "true")
	if rd.trash {
		q.Set("status", "trash")
	}
	return q
}

func setWooTime(q url.Values, key string, sec int64) {
	q.Set(key, wcevent.FormatWooTime(time.Unix(sec, 0)))
}

// step makes the next request(s) and returns what they settled.
func (rd *reader) step(ctx context.Context) (*span, error) {
	if rd.done {
		return &span{pos: cloneInt(rd.pos), done: true}, nil
	}
	P := rd.f.perPage
	q := rd.query()
	first := rd.offset > 0
	if first {
		if rd.base != nil {
			setWooTime(q, "modified_after", *rd.base)
		}
		q.Set("offset", strconv.Itoa(rd.offset))
	} else {
		if err := rd.resolveHi(ctx); err != nil {
			return nil, err
		}
		if rd.pos != nil {
			setWooTime(q, "modified_after", *rd.pos)
		}
		if rd.hi != nil {
			setWooTime(q, "modified_before", *rd.hi+1)
		}
	}
	page, seq, err := rd.f.list(ctx, rd.res, q, 1, P)
	if err != nil {
		return nil, err
	}
	recs := rd.res.pageRecords(page, rd.f.log)
	for i := range recs {
		recs[i].seq = seq
		if rd.trash {
			recs[i].src = srcTrash
		}
	}
	if err := checkOrder(recs); err != nil {
		return nil, err
	}
	c := &span{serverNow: serverTime(page.Header), total: page.Total}
	full := len(page.Items) >= P
	var firstSec, lastSec int64
	if len(recs) > 0 {
		firstSec, lastSec = recs[0].Sec, recs[len(recs)-1].Sec
	}

	if first {
		rd.offset = 0
		if len(recs) == 0 {
			// past the end: this segment is empty, and so is every later one
			rd.done = true
			rd.onBoundary(nil)
			c.done = true
			return c, nil
		}
		b := firstSec
		rd.onBoundary(&b)
		if rd.pos == nil || *rd.pos < b {
			rd.pos = intp(b)
		}
		// the objects of the first second may continue before the offset:
		// they belong to the previous segment
		keep := recs[:0]
		for _, r := range recs {
			if r.Sec > b {
				keep = append(keep, r)
			}
		}
		recs = keep
		if err := rd.resolveHi(ctx); err != nil {
			return nil, err
		}
	} else if rd.pos != nil {
		for i := range recs {
			if !recs[i].Modified.IsZero() && recs[i].Sec <= *rd.pos {
				return nil, errFilterIgnored
			}
		}
	}

	// limit: the last second this reader may settle now: its window's end,
	// and never a second that may still receive writes
	limit := c.serverNow.Unix() - rd.overlap - 1
	atPresent := true
	if rd.hi != nil && *rd.hi < limit {
		limit, atPresent = *rd.hi, false
	}

	c.recs = make([]record, 0, len(recs))
	tieRead := false
	switch {
	case !full || lastSec > limit:
		// The answer holds everything up to limit.
		for _, r := range recs {
			if r.Sec <= limit {
				c.recs = append(c.recs, r)
			} else if atPresent {
				c.held = append(c.held, r)
			}
		}
		rd.advance(limit)
		rd.done = true
		c.done, c.tail = true, atPresent
	case firstSec < lastSec:
		// Every second but the last is complete in this page.
		for _, r := range recs {
			if r.Sec < lastSec {
				c.recs = append(c.recs, r)
			}
		}
		rd.advance(lastSec - 1)
	default:
		// The page is one second.
		if rd.pos == nil || lastSec > *rd.pos {
			all, err := rd.readSecond(ctx, lastSec)
			if err != nil {
				return nil, err
			}
			c.recs, tieRead = all, true
			page.Release() // its records are read again by id
		}
		rd.advance(lastSec)
		if rd.hi != nil && *rd.pos >= *rd.hi {
			rd.done, c.done = true, true
		}
	}
	if !tieRead {
		claim(page, c.recs)
	}
	sortRecs(c.recs)
	c.pos = cloneInt(rd.pos)
	return c, nil
}

// advance moves pos forward to p (never back).
func (rd *reader) advance(p int64) {
	if rd.pos == nil || p > *rd.pos {
		rd.pos = intp(p)
	}
}

// resolveHi waits for the window's end when it comes from elsewhere.
func (rd *reader) resolveHi(ctx context.Context) error {
	if rd.hiFor == nil {
		return nil
	}
	hi, err := rd.hiFor(ctx)
	if err != nil {
		return err
	}
	rd.hi, rd.hiFor = hi, nil
	if rd.hi != nil && rd.pos != nil && *rd.pos >= *rd.hi {
		rd.done = true
	}
	return nil
}

// readSecond returns every object of the list modified in second s, in id
// order. Objects can leave the second while it is read (modified again:
// they move to the present, after every window) but never enter it, so
// each page is asked for at the offset of the previous page's last object,
// and the reader steps back when that object is no longer in place.
func (rd *reader) readSecond(ctx context.Context, s int64) ([]record, error) {
	pp := max(rd.f.perPage, 2)
	q := rd.res.query()
	q.Set("orderby", "id")
	q.Set("order", "asc")
	q.Set("dates_are_gmt", "true")
	if rd.trash {
		q.Set("status", "trash")
	}
	setWooTime(q, "modified_after", s-1)
	setWooTime(q, "modified_before", s+1)
	var out []record
	last := ""
	off, back := 0, 0
	for {
		if off > 0 {
			q.Set("offset", strconv.Itoa(off))
		} else {
			q.Del("offset")
		}
		page, seq, err := rd.f.list(ctx, rd.res, q, 1, pp)
		if err != nil {
			return nil, err
		}
		recs := rd.res.pageRecords(page, rd.f.log)
		for i := range recs {
			if !recs[i].Modified.IsZero() && recs[i].Sec != s {
				return nil, errFilterIgnored
			}
			recs[i].Sec, recs[i].seq = s, seq
			if rd.trash {
				recs[i].src = srcTrash
			}
		}
		if off > 0 && (len(recs) == 0 || cmpID(recs[0].ID, last) > 0) {
			back = max(pp-1, back*2)
			off = max(0, off-back)
			continue
		}
		back = 0
		n, items := len(out), len(page.Items)
		for _, r := range recs {
			if last == "" || cmpID(r.ID, last) > 0 {
				out = append(out, r)
				last = r.ID
			}
		}
		claim(page, out[n:]) // page must not be read after this
		if items < pp {
			return out, nil
		}
		off += items - 1
	}
}

// checkOrder reports a page that is not in modification order.
func checkOrder(recs []record) error {
	for i := 1; i < len(recs); i++ {
		if !recs[i].Modified.IsZero() && !recs[i-1].Modified.IsZero() && recs[i].Sec < recs[i-1].Sec {
			return fmt.Errorf("%w: page not in modification order", errFilterIgnored)
		}
	}
	return nil
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
