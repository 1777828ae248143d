package wcpoll

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/datefmt"
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

func resourceFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringField(fieldResName).
			Description("Key of the resource: used as the `woocommerce_resource_key` metadata, in metric labels and in the checkpoint. `orders`, `products`, `customers`, `coupons` or any other WooCommerce list route name.").
			Example("orders"),
		service.NewStringField(fieldResPath).
			Description("List route, `/wp-json/...` or relative to `/wp-json`. Default `/wp-json/wc/v3/<name>`.").
			Default("").
			Example("/wp-json/wc/v3/orders"),
		service.NewStringField(fieldResResource).
			Description("Event `resource` name. Default: the singular of the path's last segment (`orders` → `order`; unknown names pass through).").
			Default(""),
		service.NewStringField(fieldResIDField).
			Description("JSON path (gjson syntax) of the object id.").
			Default("id"),
		service.NewStringField(fieldResUpdatedField).
			Description("JSON path of the modification date, read as UTC. It orders the walk and becomes the event's `occurred_at`. Use a `_gmt` field: the plain WooCommerce dates are site-local.").
			Default("date_modified_gmt"),
		service.NewStringField(fieldResCreatedField).
			Description("JSON path of the creation date, read as UTC; decides `created` versus `updated`.").
			Default("date_created_gmt"),
		service.NewStringField(fieldResDateFormat).
			Description("Format of the date fields: empty for WooCommerce's `2006-01-02T15:04:05` (a fraction or zone is accepted too), a Go layout, or a Java pattern such as Cloud Elements' `yyyy-MM-dd'T'HH:mm:ss` (their published stray trailing quote is tolerated). Dates without a zone are read as UTC.").
			Default("").
			Example("yyyy-MM-dd'T'HH:mm:ss").
			Example("2006-01-02 15:04:05"),
		service.NewStringMapField(fieldResParams).
			Description("Extra query parameters sent with every list request of this resource (for example `role: all` for customers, or `type: simple` for products). The poller's own parameters (`orderby`, `order`, `modified_after`, `dates_are_gmt`, `offset`, `page`, `per_page`, `include`) take precedence; `status` is replaced by `trash` on the trash walk.").
			Default(map[string]any{}),
		service.NewStringAnnotatedEnumField(fieldResStrategy, map[string]string{
			StrategyAuto:          "`scan` for customers, `modified_after` for everything else.",
			StrategyModifiedAfter: "Server-side `modified_after` filter in UTC (`dates_are_gmt=true`), `orderby=modified&order=asc`, with a (modified second, id) position. For orders, products, coupons and any route built on WooCommerce's CRUD controller.",
			StrategyScan:          "For routes without date filters (customers): every poll looks for ids above the highest known one (`orderby=id&order=desc`); every `scan_interval` a full scan compares each object's modification date with the state kept in `state_path` and finds changed, new and deleted objects.",
		}).
			Description("How changes are found.").
			Default(StrategyAuto),
		service.NewDurationField(fieldResCreatedTolerance).
			Description("Also classify as `created` an object whose modification date is within this duration of its creation date (Cloud Elements' `createdCheckTolerance`). `0s` classifies by the position alone: `created` when the object was created after the previous poll's position.").
			Default("0s").
			Advanced(),
		service.NewBoolField(fieldResTrash).
			Description("Whether the route has a trash (`status=trash` lists trashed objects). Default: true for orders, products and coupons.").
			Optional().
			Advanced(),
	}
}

// defaultResources are used when `resources` is not set.
var defaultResources = []any{
	map[string]any{fieldResName: "orders"},
	map[string]any{fieldResName: "products"},
	map[string]any{fieldResName: "customers"},
	map[string]any{fieldResName: "coupons"},
}

// resource is one configured resource.
type resource struct {
	name, path, resource string
	fields               []string // gjson paths: id, updated, created, status
	topLevel             bool     // every field is a plain top-level key: one-pass scan
	parseDate            datefmt.Parser
	params               url.Values
	strategy             string
	createdTolerance     time.Duration
	trash                bool
}

func resourceFromParsed(conf *service.ParsedConfig) (*resource, error) {
	r := &resource{}
	var err error
	if r.name, err = conf.FieldString(fieldResName); err != nil {
		return nil, err
	}
	r.name = strings.TrimSpace(r.name)
	if r.name == "" {
		return nil, errors.New("resources: name must not be empty")
	}
	if r.path, err = optString(conf, fieldResPath, ""); err != nil {
		return nil, err
	}
	if r.path == "" {
		r.path = "/wp-json/wc/v3/" + r.name
	}
	if !strings.HasPrefix(r.path, "/") || strings.ContainsAny(r.path, "?#") {
		return nil, fmt.Errorf("resource %s: path %q must start with / and carry no query (use params)", r.name, r.path)
	}
	last := path.Base(strings.TrimRight(r.path, "/"))
	if r.resource, err = optString(conf, fieldResResource, ""); err != nil {
		return nil, err
	}
	if r.resource == "" {
		r.resource = wcevent.Singular(last)
	}
	var idf, upd, crt, fmtStr string
	if idf, err = optString(conf, fieldResIDField, "id"); err != nil {
		return nil, err
	}
	if upd, err = optString(conf, fieldResUpdatedField, "date_modified_gmt"); err != nil {
		return nil, err
	}
	if crt, err = optString(conf, fieldResCreatedField, "date_created_gmt"); err != nil {
		return nil, err
	}
	if idf == "" || upd == "" {
		return nil, fmt.Errorf("resource %s: id_field and updated_field must not be empty", r.name)
	}
	r.fields = []string{idf, upd, crt, "status"}
	r.topLevel = plainKey(idf) && plainKey(upd) && (crt == "" || plainKey(crt))
	if fmtStr, err = optString(conf, fieldResDateFormat, ""); err != nil {
		return nil, err
	}
	if r.parseDate, _, err = datefmt.NewParser(fmtStr); err != nil {
		return nil, fmt.Errorf("resource %s: %w", r.name, err)
	}
	params := map[string]string{}
	if conf.Contains(fieldResParams) {
		if params, err = conf.FieldStringMap(fieldResParams); err != nil {
			return nil, err
		}
	}
	r.params = url.Values{}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "orderby", "order", "modified_after", "modified_before", "dates_are_gmt", "offset", "page", "per_page", "include":
			return nil, fmt.Errorf("resource %s: params must not set %q: the poller sets it", r.name, k)
		}
		r.params.Set(k, params[k])
	}
	if r.strategy, err = optString(conf, fieldResStrategy, StrategyAuto); err != nil {
		return nil, err
	}
	if r.strategy == StrategyAuto {
		r.strategy = StrategyModifiedAfter
		if last == "customers" || r.name == "customers" {
			r.strategy = StrategyScan
		}
	}
	if conf.Contains(fieldResCreatedTolerance) {
		if r.createdTolerance, err = conf.FieldDuration(fieldResCreatedTolerance); err != nil {
			return nil, err
		}
	}
	r.trash = resourcesWithTrash[last]
	if conf.Contains(fieldResTrash) {
		if r.trash, err = conf.FieldBool(fieldResTrash); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// optString reads a field of a resources entry, or def when it is absent
// (entries of the default list carry only a name).
func optString(conf *service.ParsedConfig, name, def string) (string, error) {
	if !conf.Contains(name) {
		return def, nil
	}
	return conf.FieldString(name)
}

// record is the part of a listed object the poller reads; Raw is the object
// as the store sent it.
type record struct {
	Key        recKey
	Modified   time.Time // zero when the field is missing or unparseable
	Created    int64
	HasCreated bool
	Status     string
	Raw        json.RawMessage
	idx        int // index within its page
}

// parseRecord reads id, dates and status without decoding the object: in
// one pass over its top-level keys when the fields are plain keys, else
// with gjson paths. prevSec stands in for a missing modification date so
// the record keeps its place in the walk.
func (r *resource) parseRecord(raw json.RawMessage, prevSec int64) (record, error) {
	return r.parseRecordFields(raw, nil, prevSec)
}

// parseRecordFields is parseRecord with the raw values of r.fields already
// picked from raw (by wcclient.Client.ListPageFields; nil values for absent
// keys); vals nil reads them from raw.
func (r *resource) parseRecordFields(raw json.RawMessage, vals []json.RawMessage, prevSec int64) (record, error) {
	rec := record{Raw: raw}
	var id, mod, crt, status gjson.Result
	ok := false
	if len(vals) == len(r.fields) {
		var res [4]gjson.Result
		for n, v := range vals {
			if len(v) > 0 {
				res[n] = gjson.ParseBytes(v)
			}
		}
		id, mod, crt, status = res[0], res[1], res[2], res[3]
		ok = true
	} else if r.topLevel {
		var vals [4]gjson.Result
		ok = topLevelFields(raw, r.fields, &vals)
		id, mod, crt, status = vals[0], vals[1], vals[2], vals[3]
	}
	if !ok {
		vals := gjson.GetManyBytes(raw, r.fields...)
		id, mod, crt, status = vals[0], vals[1], vals[2], vals[3]
	}
	rec.Key.ID = scalar(id)
	if rec.Key.ID == "" {
		return rec, fmt.Errorf("%s object without %s", r.name, r.fields[0])
	}
	if t, err := r.parseDate(scalar(mod)); err == nil {
		rec.Modified = t
		rec.Key.Sec = t.Unix()
	} else {
		rec.Key.Sec = prevSec
	}
	if r.fields[2] != "" {
		if t, err := r.parseDate(scalar(crt)); err == nil {
			rec.Created, rec.HasCreated = t.Unix(), true
		}
	}
	rec.Status = scalar(status)
	return rec, nil
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

// topLevelFields reads the top-level keys named in keys from a JSON object
// in one pass, stopping once all are found, into out (same order; absent
// keys stay zero). Only the found values are parsed. It reports false when
// obj is not an object it can read this way (malformed, or keys with
// escapes): the caller then uses gjson. When a key repeats, the first
// wins, as with gjson.
func topLevelFields(obj []byte, keys []string, out *[4]gjson.Result) bool {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	want := 0
	for _, k := range keys {
		if k != "" {
			want++
		}
	}
	var found [4]bool
	i = skipWS(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return true
	}
	for i < len(obj) {
		if obj[i] != '"' {
			return false
		}
		end := skipString(obj, i)
		if end < 0 {
			return false
		}
		key := obj[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		i = skipWS(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return false
		}
		i = skipWS(obj, i+1)
		vend := skipValue(obj, i)
		if vend < 0 {
			return false
		}
		for n, k := range keys {
			if !found[n] && k != "" && string(key) == k {
				found[n] = true
				want--
				out[n] = gjson.ParseBytes(obj[i:vend])
			}
		}
		if want == 0 {
			return true
		}
		i = skipWS(obj, vend)
		if i >= len(obj) {
			return false
		}
		switch obj[i] {
		case ',':
			i = skipWS(obj, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index after the string whose opening quote is at
// i, or -1. (A byte loop: most strings in WooCommerce objects are short.)
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at i, or -1.
// It checks structure (brackets, strings), not every token: the page was
// validated when it was read.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				for i++; i < len(b) && b[i] != '"'; i++ {
					if b[i] == '\\' {
						i++
					}
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\n', '\r', '\t':
			return i
		}
		i++
	}
	return i
}

func scalar(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return v.Str
	case gjson.Number:
		return v.Raw
	}
	return ""
}

// createdByTolerance applies created_tolerance.
func (r *resource) createdByTolerance(rec *record) bool {
	return r.createdTolerance > 0 && rec.HasCreated && !rec.Modified.IsZero() &&
		rec.Modified.Unix()-rec.Created <= int64(r.createdTolerance/time.Second)
}
