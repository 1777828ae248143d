package wcpoll

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/wooevents/wooevents/plugin/boltcache"
	"github.com/wooevents/wooevents/plugin/wcclient"
)

// scanInfo is what the reading goroutine needs to classify scan records.
type scanInfo struct {
	// firstPass: the first complete pass is still running (start_from
	// decides what it emits).
	firstPass bool
	// trash: the resource has a trash that is scanned too (the known and
	// trashed buckets are both used).
	trash bool
}

// pollScan polls a resource that has no date filter (customers, and routes
// whose store ignores modified_after): it asks for objects above the
// highest known id, then continues a pass over the whole list in id order,
// at most scan_max_pages pages per poll, comparing each object's
// modification second with the state file. A pass asks only for the id
// and dates (`_fields`) once the state holds the baseline, and fetches
// the objects that changed with `include=`; stored ids a page should have
// held but did not are looked up with `include=`: found ones are compared,
// missing ones are deleted.
func (p *producer) pollScan(ctx context.Context) error {
	sc := &p.st.Scan
	now := p.d.clock.Now().Unix()
	silent := !sc.Baseline && p.d.startFrom == StartNow
	if sc.Baseline && sc.MaxID != "" {
		if err := p.scanNew(ctx); err != nil {
			return err
		}
	}
	if sc.Page == 0 && (!sc.Baseline || now-sc.LastPass >= int64(p.d.scanEvery/time.Second)) {
		sc.Page, sc.PrevLast, sc.List, sc.PassStart = 1, "", 0, now
	}
	first := !sc.Baseline
	var prog *progress
	changes := 0
	for pages := 0; sc.Page > 0 && pages < p.d.scanPages; pages++ {
		n, total, err := p.scanPage(ctx, silent)
		if err != nil {
			return err
		}
		if prog == nil {
			prog = p.newProgress(nil)
			prog.scan = true
			prog.begin(total, first)
		}
		changes += n
		prog.add(n, time.Time{}, nil)
	}
	if prog != nil && (first || changes > 0) {
		prog.working = true
		prog.end(time.Time{}, nil)
	}
	age := now - sc.LastPass
	if sc.LastPass == 0 {
		age = now - sc.PassStart
	}
	p.d.mScanAge.SetFloat64(float64(max(age, 0)), p.res.name)
	return nil
}

func (p *producer) bucketOf(trash bool) string {
	if trash {
		return bucketTrashed + p.res.name
	}
	return bucketKnown + p.res.name
}

// scanTrash reports whether the scan covers a trash too.
func (p *producer) scanTrash() bool {
	return p.st.Scanning && p.res.trash && p.d.detectDel
}

// scanNew hands on the objects with ids above the highest known one.
func (p *producer) scanNew(ctx context.Context) error {
	sc := &p.st.Scan
	q := p.res.query()
	q.Set("orderby", "id")
	q.Set("order", "desc")
	maxID := sc.MaxID
	var recs []record
	for page := 1; ; page++ {
		pg, seq, err := p.d.fetch.list(ctx, p.res, q, page, p.d.fetch.perPage)
		if err != nil {
			return err
		}
		stop := len(pg.Items) < p.d.fetch.perPage
		for _, r := range p.res.pageRecords(pg, p.d.log) {
			if cmpID(r.ID, sc.MaxID) <= 0 {
				stop = true
				break
			}
			if cmpID(r.ID, maxID) > 0 {
				maxID = r.ID
			}
			r.seq = seq
			recs = append(recs, r)
		}
		if stop {
			break
		}
	}
	if len(recs) == 0 {
		return nil
	}
	sortRecs(recs)
	sc.MaxID = maxID
	if !p.send(ctx, &chunk{kind: kindScan, recs: recs, state: p.st.clone(), scan: p.scanInfo()}) {
		return ctx.Err()
	}
	return nil
}

func (p *producer) scanInfo() *scanInfo {
	return &scanInfo{firstPass: !p.st.Scan.Baseline, trash: p.scanTrash()}
}

// scanPage reads the next page of the pass and hands on what changed: it
// returns how many objects it found changed and the list's X-WP-Total.
func (p *producer) scanPage(ctx context.Context, silent bool) (int, int, error) {
	sc := &p.st.Scan
	trashList := sc.List == 1
	bucket := p.bucketOf(trashList)
	light := sc.Baseline || silent
	P := p.d.fetch.perPage
	q := p.listQuery(trashList, light)
	q.Set("orderby", "id")
	q.Set("order", "asc")
	pg, seq, err := p.d.fetch.list(ctx, p.res, q, sc.Page, P)
	if err != nil {
		return 0, 0, err
	}
	last := len(pg.Items) < P
	recs := p.res.pageRecords(pg, p.d.log)
	inPage := make(map[string]bool, len(recs))
	pageLast := sc.PrevLast
	maxSeen := sc.MaxID
	c := &chunk{kind: kindScan, scan: p.scanInfo()}
	var changed []record
	for _, r := range recs {
		r.seq = seq
		if trashList {
			r.src = srcTrash
		}
		inPage[r.ID] = true
		if pageLast == "" || cmpID(r.ID, pageLast) > 0 {
			pageLast = r.ID
		}
		if !trashList && (maxSeen == "" || cmpID(r.ID, maxSeen) > 0) {
			maxSeen = r.ID
		}
		if silent {
			c.quiet = append(c.quiet, quietEntry{bucket: bucket, id: r.ID, sec: r.Sec})
			continue
		}
		stored, ok, err := p.d.state.get(bucket, r.ID)
		if err != nil {
			return 0, 0, err
		}
		if !ok || r.Sec > stored {
			changed = append(changed, r)
		}
	}

	// Stored ids of this page's range that it did not hold: the list
	// shifted under the walk, or they are gone.
	var missing []string
	err = p.d.state.rangeIDs(bucket, sc.PrevLast, func(id string, _ int64) error {
		if sc.PrevLast != "" && cmpID(id, sc.PrevLast) <= 0 {
			return nil
		}
		if !last && cmpID(id, pageLast) > 0 {
			return boltcache.ErrStop
		}
		if !inPage[id] {
			missing = append(missing, id)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	for len(missing) > 0 {
		n := min(len(missing), 100)
		ids := missing[:n]
		missing = missing[n:]
		found, err := p.include(ctx, ids, trashList, light)
		if err != nil {
			return 0, 0, err
		}
		var absent []string
		for _, id := range ids {
			r, ok := found[id]
			if !ok {
				absent = append(absent, id)
				continue
			}
			if silent {
				continue
			}
			stored, have, err := p.d.state.get(bucket, id)
			if err != nil {
				return 0, 0, err
			}
			if !have || r.Sec > stored {
				changed = append(changed, r)
			}
		}
		// Absent from this list: moved to the other list, or deleted.
		if len(absent) > 0 && p.scanTrash() {
			other, err := p.include(ctx, absent, !trashList, true)
			if err != nil {
				return 0, 0, err
			}
			kept := absent[:0]
			for _, id := range absent {
				if _, ok := other[id]; !ok {
					kept = append(kept, id)
				}
			}
			absent = kept
		}
		for _, id := range absent {
			switch {
			case silent || trashList:
				// nothing to report: a baseline, or gone from the trash
				// (its delete was reported when it was trashed)
				c.quiet = append(c.quiet, quietEntry{bucket: bucket, id: id, del: true})
			default:
				c.gone = append(c.gone, id)
			}
		}
	}
	if light && len(changed) > 0 {
		if changed, err = p.fetchFull(ctx, changed, trashList); err != nil {
			return 0, 0, err
		}
	}
	sortRecs(changed)
	c.recs = changed

	// the page is done: move on (an error above reads it again)
	if !trashList {
		sc.MaxID = maxSeen
	}
	if last {
		if !trashList && p.scanTrash() {
			sc.List, sc.Page, sc.PrevLast = 1, 1, ""
		} else {
			sc.Page, sc.PrevLast, sc.List = 0, "", 0
			sc.Baseline, sc.LastPass = true, sc.PassStart
		}
	} else {
		sc.Page++
		sc.PrevLast = pageLast
	}
	c.state = p.st.clone()
	if !p.send(ctx, c) {
		return 0, 0, ctx.Err()
	}
	return len(c.recs) + len(c.gone), pg.Total, nil
}

// listQuery is the resource's query for the list or the trash, asking
// only for the compared fields when light.
func (p *producer) listQuery(trash, light bool) url.Values {
	q := p.res.query()
	if trash {
		q.Set("status", "trash")
	}
	if light {
		if lf := p.res.lightFields(); lf != "" {
			q.Set("_fields", lf)
		}
	}
	return q
}

// include looks ids up (at most 100) in the list or the trash.
func (p *producer) include(ctx context.Context, ids []string, trash, light bool) (map[string]record, error) {
	q := p.listQuery(trash, light)
	q.Set("include", joinIDs(ids))
	pg, seq, err := p.d.fetch.list(ctx, p.res, q, 1, min(100, max(len(ids), 1)))
	if err != nil {
		return nil, err
	}
	found := make(map[string]record, len(pg.Items))
	for _, r := range p.res.pageRecords(pg, p.d.log) {
		r.seq = seq
		if trash {
			r.src = srcTrash
		}
		found[r.ID] = r
	}
	return found, nil
}

// fetchFull replaces light records by the whole objects; objects that are
// gone meanwhile are left out (a later pass finds them missing).
func (p *producer) fetchFull(ctx context.Context, light []record, trash bool) ([]record, error) {
	out := make([]record, 0, len(light))
	for i := 0; i < len(light); i += 100 {
		part := light[i:min(i+100, len(light))]
		ids := make([]string, len(part))
		for j, r := range part {
			ids[j] = r.ID
		}
		found, err := p.include(ctx, ids, trash, false)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if r, ok := found[id]; ok {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// reconcileDeletes finds permanently deleted objects of a modified_after
// resource: the ids the poller has emitted are looked up with include= in
// the list and the trash, page_size at a time; each id found in neither is
// confirmed with a GET of the object (404: gone) before it is reported.
func (p *producer) reconcileDeletes(ctx context.Context) error {
	bucket := bucketKnown + p.res.name
	from := ""
	for {
		var ids []string
		next := ""
		err := p.d.state.rangeIDs(bucket, from, func(id string, _ int64) error {
			if len(ids) == p.d.fetch.perPage {
				next = id
				return boltcache.ErrStop
			}
			if _, ok, err := p.d.state.get(bucket, id); err != nil {
				return err
			} else if ok {
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		missing, err := p.missing(ctx, ids)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			if !p.send(ctx, &chunk{kind: kindScan, gone: missing, scan: &scanInfo{trash: p.res.trash}}) {
				return ctx.Err()
			}
		}
		if next == "" {
			break
		}
		from = next
	}
	p.st.LastReconcile = p.d.clock.Now().Unix()
	if !p.send(ctx, &chunk{kind: kindStateOnly, state: p.st.clone()}) {
		return ctx.Err()
	}
	return nil
}

// missing returns the ids that are permanently deleted.
func (p *producer) missing(ctx context.Context, ids []string) ([]string, error) {
	found, err := p.include(ctx, ids, false, true)
	if err != nil {
		return nil, err
	}
	var absent []string
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			absent = append(absent, id)
		}
	}
	if len(absent) > 0 && p.res.trash {
		inTrash, err := p.include(ctx, absent, true, true)
		if err != nil {
			return nil, err
		}
		kept := absent[:0]
		for _, id := range absent {
			if _, ok := inTrash[id]; !ok {
				kept = append(kept, id)
			}
		}
		absent = kept
	}
	var gone []string
	for _, id := range absent {
		ok, err := p.goneForGood(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			gone = append(gone, id)
		}
	}
	return gone, nil
}

// goneForGood confirms a delete with a GET of the object: a 404 that is not
// "no such route" means it is gone; an answer means it moved between the
// list and the trash while it was looked up.
func (p *producer) goneForGood(ctx context.Context, id string) (bool, error) {
	if err := p.d.fetch.lim.acquire(ctx); err != nil {
		return false, err
	}
	defer p.d.fetch.lim.release()
	q := p.res.query()
	q.Set("_fields", p.res.fields[0])
	_, err := p.d.fetch.client.Do(ctx, http.MethodGet, p.res.path+"/"+url.PathEscape(id), q, nil, nil)
	if err == nil {
		return false, nil
	}
	var we *wcclient.Error
	if errors.As(err, &we) && we.Status == http.StatusNotFound && we.Code != "rest_no_route" {
		return true, nil
	}
	if we != nil && we.Code == "rest_no_route" {
		return true, nil // no single-object route: trust the two include lookups
	}
	return false, err
}
