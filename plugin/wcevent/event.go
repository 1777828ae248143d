// Package wcevent holds the normalized WooCommerce change event that both the
// woocommerce_poll and woocommerce_webhook inputs emit: its JSON shape, its
// deterministic id, its version key and the woocommerce_* metadata.
package wcevent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Actions an event can carry.
const (
	ActionCreated  = "created"
	ActionUpdated  = "updated"
	ActionDeleted  = "deleted"
	ActionRestored = "restored"
)

// Sources of an event.
const (
	SourceWebhook = "webhook"
	SourcePoll    = "poll"
)

// Metadata keys set on every message.
const (
	MetaEventID     = "woocommerce_event_id"
	MetaType        = "woocommerce_type"
	MetaResource    = "woocommerce_resource"
	MetaAction      = "woocommerce_action"
	MetaObjectID    = "woocommerce_object_id"
	MetaStore       = "woocommerce_store"
	MetaSource      = "woocommerce_source"
	MetaVersionKey  = "woocommerce_version_key"
	MetaOccurredAt  = "woocommerce_occurred_at"
	MetaResourceKey = "woocommerce_resource_key"
)

// WooTimeLayout is the layout WooCommerce uses for every date field: no zone,
// no fraction. `_gmt` fields are UTC, the plain ones are site-local.
const WooTimeLayout = "2006-01-02T15:04:05"

// Event is one normalized change of one WooCommerce object.
type Event struct {
	Store       string // NormalizeStore'd URL of the store
	Resource    string // singular: order, product, customer, coupon, or a passed-through name
	ResourceKey string // the configured resource key (orders, contacts, ...); defaults to Plural(Resource)
	Action      string // created, updated, deleted, restored (or an action hook name)
	ObjectID    string
	Source      string    // webhook or poll
	Modified    time.Time // date_modified_gmt; zero when the source did not carry it
	ReceivedAt  time.Time
	Data        []byte // the WooCommerce object, raw JSON, never re-encoded
}

// Type is "<resource>.<action>".
func (e *Event) Type() string { return e.Resource + "." + e.Action }

// Version is the modification time as used in the id and the version key:
// RFC 3339 UTC at second precision, or "" when unknown.
func (e *Event) Version() string {
	if e.Modified.IsZero() {
		return ""
	}
	var buf [32]byte
	return string(e.appendVersion(buf[:0]))
}

func (e *Event) appendVersion(dst []byte) []byte {
	if e.Modified.IsZero() {
		return dst
	}
	return e.Modified.UTC().AppendFormat(dst, time.RFC3339)
}

// OccurredAt is the modification time, or the receive time when the source did
// not carry one.
func (e *Event) OccurredAt() time.Time {
	if e.Modified.IsZero() {
		return e.ReceivedAt.UTC()
	}
	return e.Modified.UTC()
}

// ID is the deterministic event id: the first 32 hex characters of SHA-256 over
// store, resource, object id, action and version separated by 0x1f. The same
// change seen twice (webhook and poll, duplicate delivery, replay) gets the same id.
func (e *Event) ID() string {
	var id [32]byte
	e.appendID(id[:0])
	return string(id[:])
}

// appendID appends the 32 hex characters of the id to dst.
func (e *Event) appendID(dst []byte) []byte {
	var vbuf [32]byte
	return e.appendIDVersion(dst, e.appendVersion(vbuf[:0]))
}

// appendIDVersion is appendID with the version already formatted.
func (e *Event) appendIDVersion(dst, version []byte) []byte {
	var stack [256]byte
	in := append(stack[:0], e.Store...)
	in = append(in, 0x1f)
	in = append(in, e.Resource...)
	in = append(in, 0x1f)
	in = append(in, e.ObjectID...)
	in = append(in, 0x1f)
	in = append(in, e.Action...)
	in = append(in, 0x1f)
	in = append(in, version...)
	sum := sha256.Sum256(in)
	return hex.AppendEncode(dst, sum[:16])
}

// VersionKey is store|resource|object_id|version: the key that collapses a
// created+updated pair (or a webhook and a poll) carrying the same state.
func (e *Event) VersionKey() string {
	return e.Store + "|" + e.Resource + "|" + e.ObjectID + "|" + e.Version()
}

// AppendJSON appends the event's JSON encoding to dst. Data is embedded as is
// (it must be valid JSON; nil is written as null).
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":"`...)
	dst = e.appendID(dst)
	return e.appendRest(dst)
}

// appendRest appends everything after the id.
func (e *Event) appendRest(dst []byte) []byte {
	var vbuf [32]byte
	return e.appendRestVersion(dst, e.appendVersion(vbuf[:0]))
}

// appendRestVersion is appendRest with the version already formatted.
func (e *Event) appendRestVersion(dst, version []byte) []byte {
	dst = append(dst, `","type":`...)
	if plain(e.Resource) && plain(e.Action) {
		dst = append(dst, '"')
		dst = append(dst, e.Resource...)
		dst = append(dst, '.')
		dst = append(dst, e.Action...)
		dst = append(dst, '"')
	} else {
		dst = appendJSONString(dst, e.Type())
	}
	dst = append(dst, `,"resource":`...)
	dst = appendQuoted(dst, e.Resource)
	dst = append(dst, `,"action":`...)
	dst = appendQuoted(dst, e.Action)
	dst = append(dst, `,"object_id":`...)
	dst = appendQuoted(dst, e.ObjectID)
	dst = append(dst, `,"store":`...)
	dst = appendQuoted(dst, e.Store)
	dst = append(dst, `,"source":`...)
	dst = appendQuoted(dst, e.Source)
	dst = append(dst, `,"occurred_at":"`...)
	if len(version) > 0 {
		dst = append(dst, version...) // the modification time
	} else {
		dst = e.OccurredAt().AppendFormat(dst, time.RFC3339)
	}
	dst = append(dst, `","received_at":"`...)
	dst = e.ReceivedAt.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","data":`...)
	if len(e.Data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, e.Data...)
	}
	return append(dst, '}')
}

// plain reports whether s is printable ASCII needing no escape: JSON
// encoding only wraps it in quotes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendQuoted is appendJSONString with a fast path for plain ASCII.
func appendQuoted(dst []byte, s string) []byte {
	if !plain(s) {
		return appendJSONString(dst, s)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD (strconv.Quote's \x and
// \U escapes are not JSON).
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// MarshalJSON implements json.Marshaler.
func (e *Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, len(e.Data)+400)), nil
}

// NewMessage builds the benthos message for the event: the JSON body and every
// woocommerce_* metadata key.
func (e *Event) NewMessage() *service.Message {
	var vbuf [32]byte
	version := e.appendVersion(vbuf[:0]) // formatted once for id, body and metadata
	body := make([]byte, 0, len(e.Data)+len(e.Store)+len(e.ObjectID)+2*len(e.Resource)+2*len(e.Action)+len(e.Source)+320)
	body = append(body, `{"id":"`...)
	body = e.appendIDVersion(body, version)
	id := body[len(body)-32:]
	body = e.appendRestVersion(body, version)
	msg := metaTemplate(e).Copy() // shares the constant keys until written
	msg.SetBytes(body)
	e.setVariableMetaVersion(msg, id, version)
	return msg
}

// SetMeta sets the woocommerce_* metadata keys on msg.
func (e *Event) SetMeta(msg *service.Message) {
	e.setConstantMeta(msg)
	var vbuf, idbuf [32]byte
	version := e.appendVersion(vbuf[:0])
	e.setVariableMetaVersion(msg, e.appendIDVersion(idbuf[:0], version), version)
}

// setConstantMeta sets the keys that are the same for every event of one
// store, resource, action and source.
func (e *Event) setConstantMeta(msg *service.Message) {
	key := e.ResourceKey
	if key == "" {
		key = Plural(e.Resource)
	}
	msg.MetaSetMut(MetaType, e.Type())
	msg.MetaSetMut(MetaResource, e.Resource)
	msg.MetaSetMut(MetaAction, e.Action)
	msg.MetaSetMut(MetaStore, e.Store)
	msg.MetaSetMut(MetaSource, e.Source)
	msg.MetaSetMut(MetaResourceKey, key)
}

// setVariableMetaVersion sets the keys that differ between events from the
// id and the formatted version: their values are cut from one string (one
// allocation instead of one per key).
func (e *Event) setVariableMetaVersion(msg *service.Message, id, version []byte) {
	var stack [256]byte
	buf := append(stack[:0], id...)
	buf = append(buf, e.Store...)
	buf = append(buf, '|')
	buf = append(buf, e.Resource...)
	buf = append(buf, '|')
	buf = append(buf, e.ObjectID...)
	buf = append(buf, '|')
	buf = append(buf, version...)
	vkEnd := len(buf)
	if len(version) == 0 {
		buf = e.OccurredAt().AppendFormat(buf, time.RFC3339)
	}
	all := string(buf)
	occurred := all[vkEnd-len(version):]
	if len(version) == 0 {
		occurred = all[vkEnd:]
	}
	msg.MetaSetMut(MetaEventID, all[:len(id)])
	msg.MetaSetMut(MetaObjectID, e.ObjectID)
	msg.MetaSetMut(MetaVersionKey, all[len(id):vkEnd])
	msg.MetaSetMut(MetaOccurredAt, occurred)
}

// templateKey names the constant metadata of a kind of event.
type templateKey struct {
	store, resource, resourceKey, action, source string
}

// templates caches one message per templateKey holding the constant
// metadata keys (placeholders for the others, so that a copy's map is
// allocated at its final size). Copies share the template's map until they
// write to it, which NewMessage does at once: the template is never
// changed. Bounded: past maxTemplates kinds new ones are not cached.
var (
	templatesMu sync.RWMutex
	templates   = map[templateKey]*service.Message{}
)

const maxTemplates = 256

func metaTemplate(e *Event) *service.Message {
	k := templateKey{e.Store, e.Resource, e.ResourceKey, e.Action, e.Source}
	templatesMu.RLock()
	t := templates[k]
	templatesMu.RUnlock()
	if t != nil {
		return t
	}
	t = service.NewMessage(nil)
	e.setConstantMeta(t)
	for _, key := range [...]string{MetaEventID, MetaObjectID, MetaVersionKey, MetaOccurredAt} {
		t.MetaSetMut(key, "")
	}
	templatesMu.Lock()
	if len(templates) < maxTemplates {
		templates[k] = t
	}
	templatesMu.Unlock()
	return t
}

// NormalizeStore canonicalises a store URL: lower-case scheme and host, no
// trailing slash, no query or fragment, path kept (sub-directory installs).
// X-WC-Webhook-Source ("http://shop/") and a configured store_url
// ("http://shop") normalise to the same string.
func NormalizeStore(raw string) string {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return strings.TrimRight(raw, "/")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.User = nil
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String()
}

var singulars = map[string]string{
	"orders":     "order",
	"products":   "product",
	"customers":  "customer",
	"coupons":    "coupon",
	"refunds":    "refund",
	"variations": "variation",
	"webhooks":   "webhook",
}

// Singular maps WooCommerce's plural route names to the singular resource names
// its webhook topics use; other names pass through unchanged.
func Singular(name string) string {
	if s, ok := singulars[name]; ok {
		return s
	}
	return name
}

// Plural is the inverse of Singular for the known resources; other names pass
// through unchanged.
func Plural(resource string) string {
	for p, s := range singulars {
		if s == resource {
			return p
		}
	}
	return resource
}

// ErrNoTime is returned by ParseWooTime for an empty or null date.
var ErrNoTime = errors.New("no date")

// ParseWooTime parses a WooCommerce `_gmt` date ("2006-01-02T15:04:05") as UTC.
// It also accepts a fractional second and an explicit zone (Z or ±hh:mm), which
// other routes and plugins emit, converting them to UTC.
func ParseWooTime(s string) (time.Time, error) {
	if s == "" || s == "null" {
		return time.Time{}, ErrNoTime
	}
	if len(s) == len(WooTimeLayout) {
		t, err := time.ParseInLocation(WooTimeLayout, s, time.UTC)
		if err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q is not a WooCommerce date (want %s, UTC)", s, WooTimeLayout)
	}
	return t, nil
}

// FormatWooTime formats t as a naive UTC WooCommerce date, the form
// `modified_after` needs with `dates_are_gmt=true`.
func FormatWooTime(t time.Time) string {
	return t.UTC().Format(WooTimeLayout)
}
