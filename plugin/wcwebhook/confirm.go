package wcwebhook

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/internal/retry"
	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// Results of a delete check: the `result` label of
// woocommerce_webhook_delete_checks_total and the value of the
// woocommerce_delete_check metadata.
const (
	DeleteConfirmed = "confirmed" // the object is in the trash: emitted with its date_modified_gmt
	DeleteSpurious  = "spurious"  // 404: the twin WooCommerce fires for the other post type, dropped
	DeleteNotTrash  = "not_trash" // found but not trashed (restored since): emitted as received
	DeleteTimeout   = "timeout"   // no answer within delete_check_timeout: emitted as received
	DeleteError     = "error"     // the check failed otherwise: emitted as received
	DeleteSkipped   = "skipped"   // a recent check of the store failed: not checked, emitted as received
)

// Skipping checks after a failure: 5s, doubling while checks keep failing,
// up to 5m.
const (
	checkPauseMin = 5 * time.Second
	checkPauseMax = 5 * time.Minute
)

// deleteChecks selects the delete checker of a delivery's store.
type deleteChecks struct {
	byStore map[string]*deleteChecker // by store name ("" for the single store)
	budget  time.Duration             // delete_check_timeout
}

// check runs the check of ev's store when one applies, within budget, and
// reports the result ("" when no check applies) and whether ev is to be
// emitted. A confirmed delete's modification time is set on ev.
func (c *deleteChecks) check(ctx context.Context, store string, ev *wcevent.Event, budget time.Duration) (string, bool) {
	if ev.Action != wcevent.ActionDeleted || len(c.byStore) == 0 {
		return "", true
	}
	dc := c.byStore[store]
	if dc == nil || !dc.applies(ev) {
		return "", true
	}
	res := dc.check(ctx, ev, budget)
	return res, res != DeleteSpurious
}

// deleteChecker checks one store's *.deleted deliveries over REST.
type deleteChecker struct {
	client *wcclient.Client
	store  string // label for logs
	log    *service.Logger
	m      *metrics
	now    func() time.Time

	mu        sync.Mutex
	pause     *retry.Growing
	skipUntil time.Time
}

func newDeleteChecker(client *wcclient.Client, store string, log *service.Logger, m *metrics) *deleteChecker {
	return &deleteChecker{client: client, store: store, log: log, m: m, now: time.Now,
		pause: retry.NewGrowing(checkPauseMin, checkPauseMax)}
}

// confirmedResources are the post-backed resources whose deletes WooCommerce
// fires for the wrong type. Customers have no trash and their delete hook is
// specific to the customer role.
var confirmedResources = map[string]bool{"order": true, "product": true, "coupon": true}

// applies reports whether ev is a delete this checker checks.
func (c *deleteChecker) applies(ev *wcevent.Event) bool {
	return ev.Action == wcevent.ActionDeleted && confirmedResources[ev.Resource] && ev.ObjectID != ""
}

// trashedObject is what the check reads of the object.
type trashedObject struct {
	Status          string `json:"status"`
	DateModifiedGMT string `json:"date_modified_gmt"`
}

// check looks ev's object up within budget and returns the result. A
// trashed object's date_modified_gmt becomes ev.Modified.
func (c *deleteChecker) check(ctx context.Context, ev *wcevent.Event, budget time.Duration) string {
	c.mu.Lock()
	skipping := c.now().Before(c.skipUntil)
	c.mu.Unlock()
	if skipping {
		c.m.deleteChecks.Incr(1, DeleteSkipped)
		c.log.Debugf("woocommerce_webhook: %s.deleted for id %s emitted unchecked: the last check of store %s failed", ev.Resource, ev.ObjectID, c.store)
		return DeleteSkipped
	}
	route := "/wc/v3/" + wcevent.Plural(ev.Resource) + "/" + url.PathEscape(ev.ObjectID)
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var obj trashedObject
	_, err := c.client.Do(cctx, http.MethodGet, route, url.Values{"_fields": {"id,status,date_modified_gmt"}}, nil, &obj)
	res := DeleteError
	switch {
	case err == nil && obj.Status == "trash":
		res = DeleteConfirmed
		if t, perr := wcevent.ParseWooTime(obj.DateModifiedGMT); perr == nil {
			ev.Modified = t
		}
	case err == nil:
		res = DeleteNotTrash
		c.log.Debugf("woocommerce_webhook: %s %s deleted but now has status %q; emitted as received", ev.Resource, ev.ObjectID, obj.Status)
	case wcclient.IsNotFound(err):
		res = DeleteSpurious
		c.m.rejections.Incr(1, ReasonSpuriousDelete)
		c.log.Debugf("woocommerce_webhook: %s.deleted for id %s dropped: no such %s (WooCommerce fires deletes for both products and coupons)", ev.Resource, ev.ObjectID, ev.Resource)
	case ctx.Err() != nil:
		// The caller gave up (shutdown, client gone): not the store's fault.
		return DeleteError
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(cctx.Err(), context.DeadlineExceeded):
		res = DeleteTimeout
	}
	c.m.deleteChecks.Incr(1, res)
	c.mu.Lock()
	defer c.mu.Unlock()
	if res == DeleteTimeout || res == DeleteError {
		pause := c.pause.Next()
		c.skipUntil = c.now().Add(pause)
		c.log.Warnf("woocommerce_webhook: could not confirm %s.deleted for id %s of store %s (%s), emitting it as received; the store's delete checks pause for %s: %v",
			ev.Resource, ev.ObjectID, c.store, res, pause, err)
	} else {
		c.pause.Reset()
	}
	return res
}
