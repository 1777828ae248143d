package wcpoll

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/wooevents/wooevents/plugin/boltcache"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// modRunner polls a resource with strategy modified_after: the list and
// (with detect_deletes) the trash, merged in (modified, id) order, then a
// reconciliation for permanent deletes when one is due.
type modRunner struct {
	in    *pollInput
	res   *resource
	st    *resourceState
	main  *walk
	trash *walk // nil without detect_deletes or trash

	started    bool
	walking    bool
	hasTrashed bool // the trashed-ids bucket may hold entries

	reconciling bool
	reconFrom   string // next id to reconcile from ("" = start)
	reconDone   bool
}

func newModRunner(in *pollInput, r *resource, st *resourceState) (*modRunner, error) {
	m := &modRunner{in: in, res: r, st: st}
	m.main = newWalk(in.bg, r, in.client, false, &st.Main, in.pageSize, in.overlap, in.log)
	if in.detectDeletes && r.trash {
		m.trash = newWalk(in.bg, r, in.client, true, &st.Trash, in.pageSize, in.overlap, in.log)
		empty, err := in.state.empty(bucketTrashed + r.name)
		if err != nil {
			return nil, err
		}
		m.hasTrashed = !empty
	}
	return m, nil
}

func (m *modRunner) resourceOf() *resource { return m.res }

func (m *modRunner) begin() {
	m.walking = true
	m.main.reset()
	if m.trash != nil {
		m.trash.reset()
	}
	m.reconciling, m.reconDone = false, false
}

func (m *modRunner) reconcileEnabled() bool { return m.in.reconcileInterval > 0 }

func (m *modRunner) next(ctx context.Context) (*batch, error) {
	if !m.st.Started {
		now, err := m.in.probeNow(ctx, m.res)
		if err != nil {
			return nil, err
		}
		m.in.startPosition(&m.st.Main, now)
		m.in.startPosition(&m.st.Trash, now)
		m.st.Started = true
	}
	if m.walking {
		b, err := m.walkBatch(ctx)
		if err != nil || b != nil {
			if b != nil && m.st.Main.Has && !m.main.serverNow.IsZero() {
				// Behind: every change up to the position is emitted, the
				// ones after it are still to be read.
				m.in.mLag.SetFloat64(max(m.main.serverNow.Sub(time.Unix(m.st.Main.Sec, 0)).Seconds(), 0), m.res.name)
			}
			return b, err
		}
		m.walking = false
		m.main.finish()
		if m.trash != nil {
			m.trash.finish()
		}
		// Caught up: every change older than the hold-back is emitted, even
		// when the newest object was modified long ago (an idle store).
		m.in.mLag.SetFloat64(float64(m.main.overlap), m.res.name)
		if m.reconcileEnabled() && m.in.now().Unix()-m.st.LastReconcile >= int64(m.in.reconcileInterval/time.Second) {
			m.reconciling, m.reconFrom = true, ""
		}
	}
	if m.reconciling {
		b, err := m.reconcileBatch(ctx)
		if err != nil || b != nil {
			return b, err
		}
		m.reconciling = false
		m.st.LastReconcile = m.in.now().Unix()
	}
	return nil, nil
}

// walkBatch merges list and trash into one batch of up to page_size events;
// it ends the batch where a walk would have to fetch, so each request's
// page is emitted before the walk reads the next one (back-pressure: only
// one page per walk is requested ahead, see walk.startPrefetch). nil: done.
func (m *modRunner) walkBatch(ctx context.Context) (*batch, error) {
	b := &batch{}
	walks := []*walk{m.main}
	if m.trash != nil {
		walks = append(walks, m.trash)
	}
	moved := false
	for len(b.msgs) < m.in.pageSize {
		var best *walk
		var bestRec *record
		for _, w := range walks {
			if w.needsFetch() && (len(b.msgs) > 0 || moved) {
				return b, nil
			}
			rec, _, err := w.peek(ctx, true)
			if err != nil {
				return nil, err
			}
			if rec != nil && (bestRec == nil || cmpKey(rec.Key, bestRec.Key) < 0) {
				best, bestRec = w, rec
			}
		}
		if best == nil {
			if len(b.msgs) > 0 || moved {
				return b, nil
			}
			return nil, nil
		}
		rec := best.take()
		moved = true
		m.classify(b, best == m.trash, best.pos, &rec)
	}
	return b, nil
}

// classify appends the record's event. It cannot fail: the record has left
// the walk, so it must be emitted.
func (m *modRunner) classify(b *batch, fromTrash bool, pos *streamPos, rec *record) {
	var action string
	switch {
	case fromTrash:
		action = wcevent.ActionDeleted
		b.ops = append(b.ops, m.in.state.stage(bucketTrashed+m.res.name, rec.Key.ID, rec.Key.Sec, false))
		m.hasTrashed = true
	case strings.EqualFold(rec.Status, "trash"):
		if m.trash != nil {
			return // the trash walk reports it
		}
		action = wcevent.ActionDeleted
	default:
		if m.hasTrashed {
			_, trashed, err := m.in.state.get(bucketTrashed+m.res.name, rec.Key.ID)
			if err != nil {
				m.in.log.Errorf("woocommerce_poll %s: reading the trashed-ids state for %s (reported as updated): %v", m.res.name, rec.Key.ID, err)
			}
			if trashed {
				action = wcevent.ActionRestored
				b.ops = append(b.ops, m.in.state.stage(bucketTrashed+m.res.name, rec.Key.ID, rec.Key.Sec, true))
			}
		}
		if action == "" {
			action = wcevent.ActionUpdated
			if (rec.HasCreated && pos.createdAfterFloor(rec.Created, rec.Key.ID)) || !pos.FloorHas || m.res.createdByTolerance(rec) {
				action = wcevent.ActionCreated
			}
		}
	}
	if m.reconcileEnabled() {
		b.ops = append(b.ops, m.in.state.stage(bucketKnown+m.res.name, rec.Key.ID, rec.Key.Sec, false))
	}
	m.in.addEvent(b, m.res, action, rec.Key.ID, rec.Modified, rec.Raw)
}

// reconcileBatch checks the next page_size known ids with include= and
// emits deleted for those in neither the list nor the trash.
func (m *modRunner) reconcileBatch(ctx context.Context) (*batch, error) {
	for !m.reconDone {
		ids, next, err := knownChunk(m.in.state, bucketKnown+m.res.name, m.reconFrom, m.in.pageSize)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			m.reconDone = true
			break
		}
		missing, err := m.in.missingIDs(ctx, m.res, ids, m.trash != nil || m.res.trash)
		if err != nil {
			return nil, err
		}
		m.reconFrom = next
		if next == "" {
			m.reconDone = true
		}
		if len(missing) == 0 {
			continue
		}
		b := &batch{}
		for _, id := range missing {
			m.in.addEvent(b, m.res, wcevent.ActionDeleted, id, time.Time{}, deletedData(id))
			b.ops = append(b.ops,
				m.in.state.stage(bucketKnown+m.res.name, id, 0, true),
				m.in.state.stage(bucketTrashed+m.res.name, id, 0, true))
		}
		return b, nil
	}
	return nil, nil
}

// knownChunk reads up to n ids from a bucket starting at from; next is the
// id to continue from ("" at the end). Ids with a pending delete are left out.
func knownChunk(st *stateStore, bucket, from string, n int) (ids []string, next string, err error) {
	err = st.rangeIDs(bucket, from, func(id string, _ int64) error {
		if len(ids) == n {
			next = id
			return boltcache.ErrStop
		}
		if _, ok, err := st.get(bucket, id); err != nil {
			return err
		} else if ok {
			ids = append(ids, id)
		}
		return nil
	})
	return ids, next, err
}

// missingIDs returns the ids that neither the list nor (withTrash) the
// trash returns: permanently deleted objects.
func (in *pollInput) missingIDs(ctx context.Context, r *resource, ids []string, withTrash bool) ([]string, error) {
	found, err := in.includeIDs(ctx, r, ids, "")
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 || !withTrash {
		return missing, nil
	}
	trashed, err := in.includeIDs(ctx, r, missing, "trash")
	if err != nil {
		return nil, err
	}
	out := missing[:0]
	for _, id := range missing {
		if !trashed[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// includeIDs lists ids with include= and returns the set found.
func (in *pollInput) includeIDs(ctx context.Context, r *resource, ids []string, status string) (map[string]bool, error) {
	q := url.Values{}
	for k, v := range r.params {
		q[k] = v
	}
	q.Set("include", strings.Join(ids, ","))
	if status != "" {
		q.Set("status", status)
	}
	p, err := in.client.ListPage(ctx, r.path, q, 1, min(100, max(len(ids), 1)))
	if err != nil {
		return nil, err
	}
	found := make(map[string]bool, len(p.Items))
	for _, raw := range p.Items {
		rec, err := r.parseRecord(raw, 0)
		if err == nil {
			found[rec.Key.ID] = true
		}
	}
	return found, nil
}
