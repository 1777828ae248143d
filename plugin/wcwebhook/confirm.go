package wcwebhook

import (
	"context"
	"net/http"
	"net/url"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// Results of a delete check: the `result` label of
// woocommerce_webhook_delete_checks_total.
const (
	DeleteConfirmed = "confirmed" // the object is in the trash: emitted with its date_modified_gmt
	DeleteSpurious  = "spurious"  // 404: the twin WooCommerce fires for the other post type, dropped
	DeleteNotTrash  = "not_trash" // found but not trashed (restored since): emitted as received
	DeleteError     = "error"     // the check failed: emitted as received
)

// deleteConfirmer checks *.deleted deliveries of one store over REST.
type deleteConfirmer struct {
	client *wcclient.Client
	store  string // normalized store URL the credentials belong to
	// anyStore: the input has one store, so the credentials are its own
	// whatever URL the deliveries name (http vs https, www.).
	anyStore bool
	log      *service.Logger
	m        *metrics
}

// confirmedResources are the post-backed resources whose deletes WooCommerce
// fires for the wrong type. Customers have no trash and their delete hook is
// specific to the customer role.
var confirmedResources = map[string]bool{"order": true, "product": true, "coupon": true}

// applies reports whether ev is a delete this confirmer checks.
func (c *deleteConfirmer) applies(ev *wcevent.Event) bool {
	return ev.Action == wcevent.ActionDeleted && confirmedResources[ev.Resource] && (c.anyStore || ev.Store == c.store) && ev.ObjectID != ""
}

// trashedObject is what the check reads of the object.
type trashedObject struct {
	Status          string `json:"status"`
	DateModifiedGMT string `json:"date_modified_gmt"`
}

// check reports whether ev is to be emitted. A trashed object's
// date_modified_gmt becomes ev.Modified.
func (c *deleteConfirmer) check(ctx context.Context, ev *wcevent.Event) bool {
	route := "/wc/v3/" + wcevent.Plural(ev.Resource) + "/" + url.PathEscape(ev.ObjectID)
	var obj trashedObject
	_, err := c.client.Do(ctx, http.MethodGet, route, url.Values{"_fields": {"id,status,date_modified_gmt"}}, nil, &obj)
	switch {
	case err == nil && obj.Status == "trash":
		if t, perr := wcevent.ParseWooTime(obj.DateModifiedGMT); perr == nil {
			ev.Modified = t
		}
		c.m.deleteChecks.Incr(1, DeleteConfirmed)
		return true
	case err == nil:
		c.m.deleteChecks.Incr(1, DeleteNotTrash)
		c.log.Debugf("woocommerce_webhook: %s %s deleted but now has status %q; emitted as received", ev.Resource, ev.ObjectID, obj.Status)
		return true
	case wcclient.IsNotFound(err):
		c.m.deleteChecks.Incr(1, DeleteSpurious)
		c.m.rejections.Incr(1, ReasonSpuriousDelete)
		c.log.Debugf("woocommerce_webhook: %s.deleted for id %s dropped: no such %s (WooCommerce fires deletes for both products and coupons)", ev.Resource, ev.ObjectID, ev.Resource)
		return false
	default:
		c.m.deleteChecks.Incr(1, DeleteError)
		c.log.Warnf("woocommerce_webhook: could not confirm %s.deleted for id %s, emitting it as received: %v", ev.Resource, ev.ObjectID, err)
		return true
	}
}
