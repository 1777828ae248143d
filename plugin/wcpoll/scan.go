package wcpoll

import (
	"context"
	"net/url"
	"time"

	"github.com/wooevents/wooevents/plugin/boltcache"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// scanRunner polls a resource without date filters (customers). Each poll
// looks for ids above the highest known one; every scan_interval a full
// scan in id order compares each object's modification second with the
// state in the bbolt file, merge-joining the two id-ordered sequences so
// memory stays flat: state ids missing from a page are confirmed with
// include= (an object may have been skipped by the page walk shifting) and
// emit deleted when the store no longer has them.
type scanRunner struct {
	in  *pollInput
	res *resource
	st  *resourceState

	full     bool
	silent   bool // baseline of start_from now: record, emit nothing
	page     int
	prevLast string // last id of the previous page ("" before the first)
	done     bool
	maxSeen  string
	scanFrom int64
}

func newScanRunner(in *pollInput, r *resource, st *resourceState) *scanRunner {
	return &scanRunner{in: in, res: r, st: st}
}

func (s *scanRunner) resourceOf() *resource { return s.res }

func (s *scanRunner) bucket() string { return bucketKnown + s.res.name }

func (s *scanRunner) begin() {
	now := s.in.now()
	s.full = !s.st.Baseline || now.Unix()-s.st.LastScan >= int64(s.in.scanInterval/time.Second)
	s.silent = !s.st.Baseline && s.in.startFrom == StartNow
	s.page, s.prevLast, s.done, s.maxSeen = 1, "", false, s.st.MaxID
	s.scanFrom = now.Unix()
}

func (s *scanRunner) next(ctx context.Context) (*batch, error) {
	for !s.done {
		var b *batch
		var err error
		if s.full {
			b, err = s.fullPage(ctx)
		} else {
			b, err = s.newPage(ctx)
		}
		if err != nil {
			return nil, err
		}
		if s.done {
			s.st.MaxID = s.maxSeen
			if s.full {
				s.st.Baseline, s.st.LastScan = true, s.scanFrom
			}
			s.in.mLag.SetFloat64(max(float64(s.in.now().Unix()-s.st.LastScan), 0), s.res.name)
		}
		if b != nil && (len(b.msgs) > 0 || len(b.ops) > 0) {
			return b, nil
		}
	}
	return nil, nil
}

func (s *scanRunner) query() url.Values {
	q := url.Values{}
	for k, v := range s.res.params {
		q[k] = v
	}
	return q
}

// newPage reads one page of ids in descending order and emits created for
// ids above the highest known one that the state does not hold.
func (s *scanRunner) newPage(ctx context.Context) (*batch, error) {
	q := s.query()
	q.Set("orderby", "id")
	q.Set("order", "desc")
	p, err := s.in.client.ListPage(ctx, s.res.path, q, s.page, s.in.pageSize)
	if err != nil {
		return nil, err
	}
	b := &batch{}
	done := len(p.Items) < s.in.pageSize
	for _, raw := range p.Items {
		rec, err := s.res.parseRecord(raw, 0)
		if err != nil {
			s.in.log.Warnf("%s: skipping an object the poller cannot read: %v", s.res.name, err)
			continue
		}
		if s.st.MaxID != "" && cmpID(rec.Key.ID, s.st.MaxID) <= 0 {
			done = true
			break
		}
		if s.maxSeen == "" || cmpID(rec.Key.ID, s.maxSeen) > 0 {
			s.maxSeen = rec.Key.ID
		}
		if err := s.compare(b, &rec); err != nil {
			return nil, err
		}
	}
	s.page++
	s.done = done
	return b, nil
}

// fullPage reads one page of the full scan (ascending ids) and joins it
// with the stored ids of the same range.
func (s *scanRunner) fullPage(ctx context.Context) (*batch, error) {
	q := s.query()
	q.Set("orderby", "id")
	q.Set("order", "asc")
	p, err := s.in.client.ListPage(ctx, s.res.path, q, s.page, s.in.pageSize)
	if err != nil {
		return nil, err
	}
	last := len(p.Items) < s.in.pageSize
	b := &batch{}
	inPage := make(map[string]bool, len(p.Items))
	var silentIDs []string
	var silentSecs []int64
	pageLast := s.prevLast
	for _, raw := range p.Items {
		rec, err := s.res.parseRecord(raw, 0)
		if err != nil {
			s.in.log.Warnf("%s: skipping an object the poller cannot read: %v", s.res.name, err)
			continue
		}
		inPage[rec.Key.ID] = true
		if pageLast == "" || cmpID(rec.Key.ID, pageLast) > 0 {
			pageLast = rec.Key.ID
		}
		if s.maxSeen == "" || cmpID(rec.Key.ID, s.maxSeen) > 0 {
			s.maxSeen = rec.Key.ID
		}
		if s.silent {
			silentIDs, silentSecs = append(silentIDs, rec.Key.ID), append(silentSecs, rec.Key.Sec)
			continue
		}
		if err := s.compare(b, &rec); err != nil {
			return nil, err
		}
	}
	if s.silent {
		if err := s.in.state.putNow(s.bucket(), silentIDs, silentSecs); err != nil {
			return nil, err
		}
	}

	// Stored ids in (prevLast, pageLast] (to the end on the last page)
	// that the page did not return.
	var candidates []string
	from := s.prevLast
	err = s.in.state.rangeIDs(s.bucket(), from, func(id string, _ int64) error {
		if from != "" && cmpID(id, from) <= 0 {
			return nil
		}
		if !last && cmpID(id, pageLast) > 0 {
			return boltcache.ErrStop
		}
		if !inPage[id] {
			candidates = append(candidates, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for len(candidates) > 0 {
		n := min(len(candidates), s.in.pageSize)
		chunk := candidates[:n]
		candidates = candidates[n:]
		if err := s.confirm(ctx, b, chunk); err != nil {
			return nil, err
		}
	}
	// the page is done: move on (an error above re-reads it)
	s.page++
	s.prevLast = pageLast
	s.done = last
	return b, nil
}

// confirm looks up ids the walk did not see: present ones are compared as
// usual, absent ones are deleted.
func (s *scanRunner) confirm(ctx context.Context, b *batch, ids []string) error {
	var live []string
	for _, id := range ids {
		if _, ok, err := s.in.state.get(s.bucket(), id); err != nil {
			return err
		} else if ok {
			live = append(live, id)
		}
	}
	if len(live) == 0 {
		return nil
	}
	q := s.query()
	q.Set("include", joinIDs(live))
	p, err := s.in.client.ListPage(ctx, s.res.path, q, 1, min(100, len(live)))
	if err != nil {
		return err
	}
	found := map[string]bool{}
	for _, raw := range p.Items {
		rec, err := s.res.parseRecord(raw, 0)
		if err != nil {
			continue
		}
		found[rec.Key.ID] = true
		if s.silent {
			continue
		}
		if err := s.compare(b, &rec); err != nil {
			return err
		}
	}
	for _, id := range live {
		if found[id] {
			continue
		}
		if s.silent {
			if err := s.in.state.apply([]stateOp{{bucket: s.bucket(), id: id, del: true}}); err != nil {
				return err
			}
			continue
		}
		s.in.addEvent(b, s.res, wcevent.ActionDeleted, id, time.Time{}, deletedData(id))
		b.ops = append(b.ops, s.in.state.stage(s.bucket(), id, 0, true))
	}
	return nil
}

// compare emits created or updated for an object whose state differs.
func (s *scanRunner) compare(b *batch, rec *record) error {
	stored, ok, err := s.in.state.get(s.bucket(), rec.Key.ID)
	if err != nil {
		return err
	}
	var action string
	switch {
	case !ok:
		action = wcevent.ActionCreated
		if !s.st.Baseline && s.in.startFrom != StartBeginning && s.in.startFrom != StartNow {
			// first scan from a start time: older objects are recorded quietly
			start := s.in.startTime.Unix()
			switch {
			case rec.Key.Sec < start:
				action = ""
			case rec.HasCreated && rec.Created < start:
				action = wcevent.ActionUpdated
			}
		}
	case rec.Key.Sec > stored:
		action = wcevent.ActionUpdated
	case rec.Key.Sec == stored:
		return nil
	default:
		action = "" // the store's date went backwards: record it quietly
	}
	b.ops = append(b.ops, s.in.state.stage(s.bucket(), rec.Key.ID, rec.Key.Sec, false))
	if action != "" {
		s.in.addEvent(b, s.res, action, rec.Key.ID, rec.Modified, rec.Raw)
	}
	return nil
}

func joinIDs(ids []string) string {
	n := 0
	for _, id := range ids {
		n += len(id) + 1
	}
	out := make([]byte, 0, n)
	for i, id := range ids {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, id...)
	}
	return string(out)
}
