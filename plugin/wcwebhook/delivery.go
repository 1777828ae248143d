package wcwebhook

import (
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/wcevent"
)

// Metadata keys the webhook input adds to the shared wcevent ones.
const (
	MetaTopic      = "woocommerce_topic"
	MetaWebhookID  = "woocommerce_webhook_id"
	MetaDeliveryID = "woocommerce_delivery_id"
	// MetaStoreName is the name of the store (an entry of `stores`) the
	// delivery came from; absent for the single-store shortcut.
	MetaStoreName = "woocommerce_store_name"
	// MetaDeleteConfirmed is "true" when a delete was found in the trash
	// over REST, "false" when it was emitted as received after a check that
	// did not confirm it; absent when no check applied.
	MetaDeleteConfirmed = "woocommerce_delete_confirmed"
	// MetaDeleteCheck is the check's result: confirmed, not_trash, timeout,
	// error or skipped (see the Delete* constants).
	MetaDeleteCheck = "woocommerce_delete_check"
)

// ResourceAction is the resource of `action.<hook>` topics.
const ResourceAction = "action"

// delivery is one verified, accepted webhook request: everything needed to
// build the event, and what the spool stores.
type delivery struct {
	StoreName  string // the store's name in `stores`; "" for the single store
	Store      string // normalized store URL ("" when neither configured nor sent)
	Topic      string
	Resource   string // singular
	Action     string
	WebhookID  string
	DeliveryID string
	ReceivedAt time.Time
	Body       []byte // the raw JSON body, exactly as signed
}

// splitTopic derives resource and action from the X-WC-Webhook-Resource and
// -Event headers, falling back to the topic ("order.updated",
// "action.woocommerce_x"). ok is false when neither yields both parts.
func splitTopic(topic, resource, event string) (res, act string, ok bool) {
	if resource == "" || event == "" {
		r, e, found := strings.Cut(topic, ".")
		if !found {
			return "", "", false
		}
		if resource == "" {
			resource = r
		}
		if event == "" {
			event = e
		}
	}
	if resource == "" || event == "" {
		return "", "", false
	}
	return wcevent.Singular(resource), event, true
}

// event builds the normalized event from the delivery and the fields read
// from its body.
func (d *delivery) event(f wcevent.ObjectFields) wcevent.Event {
	ev := wcevent.Event{
		Store:      d.Store,
		Resource:   d.Resource,
		Action:     d.Action,
		ObjectID:   f.ID,
		Source:     wcevent.SourceWebhook,
		ReceivedAt: d.ReceivedAt,
		Data:       d.Body,
	}
	if d.Resource == ResourceAction {
		ev.ObjectID = actionObjectID(d.Body)
	}
	if t, err := wcevent.ParseWooTime(f.DateModifiedGMT); err == nil {
		ev.Modified = t
	}
	return ev
}

// actionObjectID is the object an `action.*` payload ({"action":..,"arg":..})
// is about: arg when it is a scalar, else arg.id.
func actionObjectID(body []byte) string {
	arg := gjson.GetBytes(body, "arg")
	switch arg.Type {
	case gjson.String:
		return arg.Str
	case gjson.Number:
		return arg.Raw
	case gjson.JSON:
		id := arg.Get("id")
		if id.Type == gjson.String {
			return id.Str
		}
		if id.Type == gjson.Number {
			return id.Raw
		}
	}
	return ""
}

// message builds the benthos message for ev with the webhook metadata;
// check is the delete check's result ("" when none applied).
func (d *delivery) message(ev *wcevent.Event, check string) *service.Message {
	msg := ev.NewMessage()
	msg.MetaSetMut(MetaTopic, d.Topic)
	msg.MetaSetMut(MetaWebhookID, d.WebhookID)
	msg.MetaSetMut(MetaDeliveryID, d.DeliveryID)
	if d.StoreName != "" {
		msg.MetaSetMut(MetaStoreName, d.StoreName)
	}
	if check != "" {
		if check == DeleteConfirmed {
			msg.MetaSetMut(MetaDeleteConfirmed, "true")
		} else {
			msg.MetaSetMut(MetaDeleteConfirmed, "false")
		}
		msg.MetaSetMut(MetaDeleteCheck, check)
	}
	return msg
}

// Spool record versions (the first byte). Version 1 (before stores had
// names in records) is still read.
const (
	recordV1      = 1
	recordVersion = 2
)

var errBadRecord = errors.New("malformed spool record")

// appendRecord appends the spool encoding of d to dst: a version byte, the
// string fields length-prefixed, the receive time, then the body.
func (d *delivery) appendRecord(dst []byte) []byte {
	dst = append(dst, recordVersion)
	for _, s := range [...]string{d.StoreName, d.Store, d.Topic, d.Resource, d.Action, d.WebhookID, d.DeliveryID} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.AppendVarint(dst, d.ReceivedAt.UnixNano())
	return append(dst, d.Body...)
}

// recordSize is the length of d's spool encoding.
func recordSize(d *delivery) int {
	n := 1 + 2*binary.MaxVarintLen64 + len(d.Body)
	for _, s := range [...]string{d.StoreName, d.Store, d.Topic, d.Resource, d.Action, d.WebhookID, d.DeliveryID} {
		n += binary.MaxVarintLen64 + len(s)
	}
	return n
}

// decodeRecord parses a spool record. The delivery's Body aliases rec.
func decodeRecord(rec []byte) (delivery, error) {
	var d delivery
	if len(rec) == 0 || (rec[0] != recordVersion && rec[0] != recordV1) {
		return d, errBadRecord
	}
	fields := []*string{&d.StoreName, &d.Store, &d.Topic, &d.Resource, &d.Action, &d.WebhookID, &d.DeliveryID}
	if rec[0] == recordV1 {
		fields = fields[1:]
	}
	rec = rec[1:]
	for _, f := range fields {
		n, w := binary.Uvarint(rec)
		if w <= 0 || n > uint64(len(rec)-w) {
			return d, errBadRecord
		}
		*f = string(rec[w : w+int(n)])
		rec = rec[w+int(n):]
	}
	ns, w := binary.Varint(rec)
	if w <= 0 {
		return d, errBadRecord
	}
	d.ReceivedAt = time.Unix(0, ns).UTC()
	d.Body = rec[w:]
	return d, nil
}
