package wcpoll

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/datefmt"
	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// Strategies of a resource.
const (
	StrategyAuto          = "auto"
	StrategyModifiedAfter = "modified_after"
	StrategyScan          = "scan"
)

// Fields of one `resources` entry.
const (
	fieldResName             = "name"
	fieldResPath             = "path"
	fieldResResource         = "resource"
	fieldResIDField          = "id_field"
	fieldResUpdatedField     = "updated_field"
	fieldResCreatedField     = "created_field"
	fieldResDateFormat       = "date_format"
	fieldResParams           = "params"
	fieldResStrategy         = "strategy"
	fieldResCreatedTolerance = "created_tolerance"
	fieldResTrash            = "trash"
)

// resourcesWithTrash are the WooCommerce routes whose DELETE moves to trash.
var resourcesWithTrash = map[string]bool{"orders": true, "products": true, "coupons": true}

// reservedParams are the query parameters the poller sets itself.
var reservedParams = []string{"orderby", "order", "modified_after", "modified_before", "dates_are_gmt", "offset", "page", "per_page", "include", "_fields"}

func resourceFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringField(fieldResName).
			Description("Key of the resource: used as the `woocommerce_resource_key` metadata, in metric labels and in the checkpoint. `orders`, `products`, `customers`, `coupons` or any other WooCommerce list route name.").
			Example("orders"),
		service.NewStringField(fieldResPath).
			Description("List route, `/wp-json/...` or relative to `/wp-json`. Empty: `/wp-json/wc/v3/<name>`.").
			Default("").
			Example("/wp-json/wc/v3/orders"),
		service.NewStringField(fieldResResource).
			Description("Event `resource` name. Empty: the singular of the path's last segment (`orders` → `order`; unknown names pass through).").
			Default(""),
		service.NewStringField(fieldResIDField).
			Description("JSON path (gjson syntax) of the object id.").
			Default("id"),
		service.NewStringField(fieldResUpdatedField).
			Description("JSON path of the modification date, read as UTC. It orders the walk and becomes the event's `occurred_at`. Use a `_gmt` field: the plain WooCommerce dates are site-local.").
			Default("date_modified_gmt"),
		service.NewStringField(fieldResCreatedField).
			Description("JSON path of the creation date, read as UTC; decides `created` versus `updated`. Empty: classify by the poll position alone.").
			Default("date_created_gmt"),
		service.NewStringField(fieldResDateFormat).
			Description("Format of the date fields: empty for WooCommerce's `2006-01-02T15:04:05` (a fraction or zone is accepted too), a Go layout, or a Java pattern such as Cloud Elements' `yyyy-MM-dd'T'HH:mm:ss` (their published stray trailing quote is tolerated). Dates without a zone are read as UTC.").
			Default("").
			Example("yyyy-MM-dd'T'HH:mm:ss").
			Example("2006-01-02 15:04:05"),
		service.NewStringMapField(fieldResParams).
			Description("Extra query parameters sent with every list request of this resource (for example `role: all` for customers, or `type: simple` for products). The poller's own parameters (`" + strings.Join(reservedParams, "`, `") + "`) may not be set here; `status` is replaced by `trash` on the trash walk.").
			Default(map[string]any{}),
		service.NewStringAnnotatedEnumField(fieldResStrategy, map[string]string{
			StrategyAuto:          "`scan` for customers, `modified_after` for everything else.",
			StrategyModifiedAfter: "Server-side `modified_after` filter in UTC (`dates_are_gmt=true`), `orderby=modified&order=asc`, a watermark of whole seconds. For orders, products, coupons and any route built on WooCommerce's CRUD controller. A store found ignoring the filter on the route is scanned instead.",
			StrategyScan:          "For routes without date filters (customers): every poll looks for ids above the highest known one (`orderby=id&order=desc`) and continues a pass over the whole list in id order asking only for the id and dates (`_fields`), comparing them with the state kept in `state_path`; changed objects are then fetched with `include=`, missing ones confirmed deleted.",
		}).
			Description("How changes are found.").
			Default(StrategyAuto),
		service.NewDurationField(fieldResCreatedTolerance).
			Description("Also classify as `created` an object whose modification date is within this duration of its creation date (Cloud Elements' `createdCheckTolerance`). `0s` classifies by the poll position alone.").
			Default("0s").
			Advanced(),
		service.NewBoolField(fieldResTrash).
			Description("Whether the route has a trash (`status=trash` lists trashed objects). Default: true for orders, products and coupons.").
			Optional().
			Advanced(),
	}
}

// defaultResourceNames are polled when `resources` is not set.
var defaultResourceNames = []string{"orders", "products", "customers", "coupons"}

func defaultResources() []any {
	out := make([]any, len(defaultResourceNames))
	for i, n := range defaultResourceNames {
		out[i] = map[string]any{fieldResName: n}
	}
	return out
}

// resourceEntrySpec parses one `resources` entry on its own: the entries of
// the field's default list carry only a name, and benthos does not apply the
// sub-field defaults to a default value, so they are parsed again through
// this spec (the defaults stay in one place: resourceFields).
func resourceEntrySpec() *service.ConfigSpec {
	return service.NewConfigSpec().Fields(resourceFields()...)
}

// resource is one configured resource.
type resource struct {
	name, path, resource string
	fields               []string // gjson paths: id, updated, created, status
	topLevel             bool     // every field is a plain top-level key
	parseDate            datefmt.Parser
	params               url.Values
	strategy             string
	createdTolerance     time.Duration
	trash                bool
}

func resourceFromParsed(conf *service.ParsedConfig) (*resource, error) {
	if !conf.Contains(fieldResIDField) {
		// an entry of the default list: apply the sub-field defaults
		name, err := conf.FieldString(fieldResName)
		if err != nil {
			return nil, err
		}
		if conf, err = resourceEntrySpec().ParseYAML(fieldResName+": "+name, nil); err != nil {
			return nil, err
		}
	}
	r := &resource{}
	var err error
	if r.name, err = conf.FieldString(fieldResName); err != nil {
		return nil, err
	}
	r.name = strings.TrimSpace(r.name)
	if r.name == "" {
		return nil, errors.New("resources: name must not be empty")
	}
	if r.path, err = conf.FieldString(fieldResPath); err != nil {
		return nil, err
	}
	if r.path == "" {
		r.path = "/wp-json/wc/v3/" + r.name
	}
	if !strings.HasPrefix(r.path, "/") || strings.ContainsAny(r.path, "?#") {
		return nil, fmt.Errorf("resource %s: path %q must start with / and carry no query (use params)", r.name, r.path)
	}
	last := path.Base(strings.TrimRight(r.path, "/"))
	if r.resource, err = conf.FieldString(fieldResResource); err != nil {
		return nil, err
	}
	if r.resource == "" {
		r.resource = wcevent.Singular(last)
	}
	var idf, upd, crt, fmtStr string
	if idf, err = conf.FieldString(fieldResIDField); err != nil {
		return nil, err
	}
	if upd, err = conf.FieldString(fieldResUpdatedField); err != nil {
		return nil, err
	}
	if crt, err = conf.FieldString(fieldResCreatedField); err != nil {
		return nil, err
	}
	if idf == "" || upd == "" {
		return nil, fmt.Errorf("resource %s: id_field and updated_field must not be empty", r.name)
	}
	r.fields = []string{idf, upd, crt, "status"}
	r.topLevel = plainKey(idf) && plainKey(upd) && (crt == "" || plainKey(crt))
	if fmtStr, err = conf.FieldString(fieldResDateFormat); err != nil {
		return nil, err
	}
	if r.parseDate, _, err = datefmt.NewParser(fmtStr); err != nil {
		return nil, fmt.Errorf("resource %s: %w", r.name, err)
	}
	params, err := conf.FieldStringMap(fieldResParams)
	if err != nil {
		return nil, err
	}
	r.params = url.Values{}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, reserved := range reservedParams {
			if k == reserved {
				return nil, fmt.Errorf("resource %s: params must not set %q: the poller sets it", r.name, k)
			}
		}
		r.params.Set(k, params[k])
	}
	if r.strategy, err = conf.FieldString(fieldResStrategy); err != nil {
		return nil, err
	}
	if r.strategy == StrategyAuto {
		r.strategy = StrategyModifiedAfter
		if last == "customers" || r.name == "customers" {
			r.strategy = StrategyScan
		}
	}
	if r.createdTolerance, err = conf.FieldDuration(fieldResCreatedTolerance); err != nil {
		return nil, err
	}
	r.trash = resourcesWithTrash[last]
	if conf.Contains(fieldResTrash) {
		if r.trash, err = conf.FieldBool(fieldResTrash); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// query returns a copy of the resource's own parameters.
func (r *resource) query() url.Values {
	q := make(url.Values, len(r.params)+8)
	for k, v := range r.params {
		q[k] = v
	}
	return q
}

// lightFields is the `_fields` value that asks only for what the scan
// compares ("" when a field is not a top-level key: then the whole object).
func (r *resource) lightFields() string {
	if !r.topLevel {
		return ""
	}
	f := []string{r.fields[0], r.fields[1]}
	if r.fields[2] != "" {
		f = append(f, r.fields[2])
	}
	return strings.Join(f, ",")
}

// Sources of a record.
const (
	srcList  uint8 = iota // the list (any status but trash)
	srcTrash              // the trash list
)

// record is the part of a listed object the poller reads; Raw is the object
// as the store sent it. Raw aliases the page it came from: pg, when set, hands
// the page back to the client's buffer pool once every record handed on
// from it has been classified (see pageRef).
type record struct {
	ID         string
	Sec        int64     // modification second
	Modified   time.Time // zero when the field is missing or unparseable
	Created    int64
	HasCreated bool
	Status     string
	Raw        json.RawMessage
	src        uint8
	seq        uint64 // fetch order: of two answers about one object, the later one wins
	pg         *pageRef
}

// pageRef counts the records handed on from one page; the last one
// classified releases the page's buffer to the client's pool. A record
// that is dropped on the way (a poll that fails) never counts down: its
// page is then simply garbage collected, never released early.
type pageRef struct {
	p *wcclient.Page
	n atomic.Int32
}

// claim makes recs (all read from p) hold the page, or releases it at once
// when none is handed on.
func claim(p *wcclient.Page, recs []record) {
	if len(recs) == 0 {
		p.Release()
		return
	}
	ref := &pageRef{p: p}
	ref.n.Store(int32(len(recs)))
	for i := range recs {
		recs[i].pg = ref
	}
}

// done is called once per record after it was classified.
func (r *pageRef) done() {
	if r != nil && r.n.Add(-1) == 0 {
		r.p.Release()
	}
}

// cmpRec orders records as they are emitted: modification second, id, then
// the later answer last.
func cmpRec(a, b *record) int {
	switch {
	case a.Sec < b.Sec:
		return -1
	case a.Sec > b.Sec:
		return 1
	}
	if c := cmpID(a.ID, b.ID); c != 0 {
		return c
	}
	switch {
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

// parseRecord reads id, dates and status: from vals (the raw values of
// r.fields picked by wcclient in the pass that validated the page) when
// given, else with gjson. prevSec stands in for a missing modification date
// so the record keeps its place.
func (r *resource) parseRecord(raw json.RawMessage, vals []json.RawMessage, prevSec int64) (record, error) {
	rec := record{Raw: raw}
	var res [4]gjson.Result
	if len(vals) == len(r.fields) {
		for n, v := range vals {
			if len(v) > 0 {
				res[n] = gjson.ParseBytes(v)
			}
		}
	} else {
		copy(res[:], gjson.GetManyBytes(raw, r.fields...))
	}
	rec.ID = wcevent.Scalar(res[0])
	if rec.ID == "" {
		return rec, fmt.Errorf("%s object without %s", r.name, r.fields[0])
	}
	if t, err := r.parseDate(wcevent.Scalar(res[1])); err == nil {
		rec.Modified = t
		rec.Sec = t.Unix()
	} else {
		rec.Sec = prevSec
	}
	if r.fields[2] != "" {
		if t, err := r.parseDate(wcevent.Scalar(res[2])); err == nil {
			rec.Created, rec.HasCreated = t.Unix(), true
		}
	}
	rec.Status = wcevent.Scalar(res[3])
	return rec, nil
}

// pageRecords parses the objects of a page; objects it cannot read are
// logged and left out.
func (r *resource) pageRecords(p *wcclient.Page, log logger) []record {
	out := make([]record, 0, len(p.Items))
	prev := int64(0)
	for i, raw := range p.Items {
		var vals []json.RawMessage
		if p.Fields != nil {
			vals = p.Fields[i]
		}
		rec, err := r.parseRecord(raw, vals, prev)
		if err != nil {
			log.Warnf("woocommerce_poll %s: skipping an object the poller cannot read: %v", r.name, err)
			continue
		}
		if rec.Modified.IsZero() {
			log.Warnf("woocommerce_poll %s %s: %s missing or unreadable; kept in place", r.name, rec.ID, r.fields[1])
		}
		prev = rec.Sec
		out = append(out, rec)
	}
	return out
}

// plainKey reports whether a gjson path is just one object key (no
// separators, wildcards, queries, modifiers or escapes).
func plainKey(p string) bool {
	if p == "" {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// createdByTolerance applies created_tolerance.
func (r *resource) createdByTolerance(rec *record) bool {
	return r.createdTolerance > 0 && rec.HasCreated && !rec.Modified.IsZero() &&
		rec.Modified.Unix()-rec.Created <= int64(r.createdTolerance/time.Second)
}

// logger is the part of *service.Logger the poller's parts use.
type logger interface {
	Errorf(format string, args ...any)
	Warnf(format string, args ...any)
	Infof(format string, args ...any)
	Debugf(format string, args ...any)
}

// cmpID orders object ids: numerically when both are decimal (WooCommerce
// ids are), byte-wise otherwise; decimal ids sort before other strings.
func cmpID(a, b string) int {
	da, db := isDecimal(a), isDecimal(b)
	switch {
	case da && db:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	case da:
		return -1
	case db:
		return 1
	}
	return strings.Compare(a, b)
}

func isDecimal(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// idKey is the state-store key of an id: zero-padded decimal ids sort in
// numeric order; other ids are kept as they are (after the decimal ones).
func idKey(id string) string {
	if isDecimal(id) {
		t := strings.TrimLeft(id, "0")
		return strings.Repeat("0", 20-len(t)) + t
	}
	return "~" + id
}

// keyID is the inverse of idKey.
func keyID(k string) string {
	if strings.HasPrefix(k, "~") {
		return k[1:]
	}
	t := strings.TrimLeft(k, "0")
	if t == "" {
		return "0"
	}
	return t
}
