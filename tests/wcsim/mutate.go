package wcsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// event is one webhook hook firing: topic and the object it concerns.
type event struct {
	topic string
	kind  uint8
	id    int64
}

type ftype uint8

const (
	tString ftype = iota
	tInt
	tBool
	tObject
	tArray
	tDate     // date-time string or null
	tIntNull  // integer or null
	tNumStr   // decimal string (amounts)
	tDateOnly // Go API date_created*
)

type fieldSpec struct {
	name string
	typ  ftype
	enum []string
	// goOnly fields are accepted from the Go/sim API but ignored over REST.
	goOnly bool
}

var schemas = map[string][]fieldSpec{
	Orders: {
		{name: "parent_id", typ: tInt}, {name: "status", typ: tString, enum: resDefs[Orders].writeStatuses},
		{name: "currency", typ: tString}, {name: "customer_id", typ: tInt}, {name: "customer_note", typ: tString},
		{name: "billing", typ: tObject}, {name: "shipping", typ: tObject}, {name: "payment_method", typ: tString},
		{name: "payment_method_title", typ: tString}, {name: "transaction_id", typ: tString}, {name: "created_via", typ: tString},
		{name: "meta_data", typ: tArray}, {name: "line_items", typ: tArray}, {name: "shipping_lines", typ: tArray},
		{name: "fee_lines", typ: tArray}, {name: "coupon_lines", typ: tArray}, {name: "set_paid", typ: tBool},
		{name: "date_created", typ: tDateOnly, goOnly: true}, {name: "date_created_gmt", typ: tDateOnly, goOnly: true},
	},
	Products: {
		{name: "name", typ: tString}, {name: "slug", typ: tString}, {name: "date_created", typ: tDateOnly},
		{name: "date_created_gmt", typ: tDateOnly}, {name: "type", typ: tString, enum: []string{"simple", "grouped", "external", "variable"}},
		{name: "status", typ: tString, enum: resDefs[Products].writeStatuses}, {name: "featured", typ: tBool},
		{name: "catalog_visibility", typ: tString, enum: []string{"visible", "catalog", "search", "hidden"}},
		{name: "description", typ: tString}, {name: "short_description", typ: tString}, {name: "sku", typ: tString},
		{name: "regular_price", typ: tString}, {name: "sale_price", typ: tString}, {name: "virtual", typ: tBool},
		{name: "downloadable", typ: tBool}, {name: "external_url", typ: tString}, {name: "button_text", typ: tString},
		{name: "tax_status", typ: tString, enum: []string{"taxable", "shipping", "none"}}, {name: "tax_class", typ: tString},
		{name: "manage_stock", typ: tBool}, {name: "stock_quantity", typ: tIntNull},
		{name: "backorders", typ: tString, enum: []string{"no", "notify", "yes"}}, {name: "sold_individually", typ: tBool},
		{name: "weight", typ: tString}, {name: "dimensions", typ: tObject}, {name: "shipping_class", typ: tString},
		{name: "reviews_allowed", typ: tBool}, {name: "upsell_ids", typ: tArray}, {name: "cross_sell_ids", typ: tArray},
		{name: "parent_id", typ: tInt}, {name: "purchase_note", typ: tString}, {name: "categories", typ: tArray},
		{name: "tags", typ: tArray}, {name: "images", typ: tArray}, {name: "attributes", typ: tArray},
		{name: "default_attributes", typ: tArray}, {name: "menu_order", typ: tInt}, {name: "meta_data", typ: tArray},
		{name: "stock_status", typ: tString, enum: []string{"instock", "outofstock", "onbackorder"}},
		{name: "global_unique_id", typ: tString},
	},
	Coupons: {
		{name: "code", typ: tString}, {name: "amount", typ: tNumStr}, {name: "status", typ: tString, enum: resDefs[Coupons].writeStatuses},
		{name: "discount_type", typ: tString, enum: []string{"percent", "fixed_cart", "fixed_product"}},
		{name: "description", typ: tString}, {name: "date_expires", typ: tDate}, {name: "date_expires_gmt", typ: tDate},
		{name: "individual_use", typ: tBool}, {name: "product_ids", typ: tArray}, {name: "excluded_product_ids", typ: tArray},
		{name: "usage_limit", typ: tIntNull}, {name: "usage_limit_per_user", typ: tIntNull}, {name: "limit_usage_to_x_items", typ: tIntNull},
		{name: "free_shipping", typ: tBool}, {name: "product_categories", typ: tArray}, {name: "excluded_product_categories", typ: tArray},
		{name: "exclude_sale_items", typ: tBool}, {name: "minimum_amount", typ: tNumStr}, {name: "maximum_amount", typ: tNumStr},
		{name: "email_restrictions", typ: tArray}, {name: "meta_data", typ: tArray},
		{name: "date_created", typ: tDateOnly, goOnly: true}, {name: "date_created_gmt", typ: tDateOnly, goOnly: true},
	},
	Customers: {
		{name: "email", typ: tString}, {name: "first_name", typ: tString}, {name: "last_name", typ: tString},
		{name: "username", typ: tString}, {name: "password", typ: tString}, {name: "billing", typ: tObject},
		{name: "shipping", typ: tObject}, {name: "meta_data", typ: tArray},
		{name: "role", typ: tString, enum: userRoles, goOnly: true},
		{name: "date_created", typ: tDateOnly, goOnly: true}, {name: "date_created_gmt", typ: tDateOnly, goOnly: true},
	},
}

var (
	orderBillingKeys     = []string{"first_name", "last_name", "company", "address_1", "address_2", "city", "state", "postcode", "country", "email", "phone"}
	orderShippingKeys    = []string{"first_name", "last_name", "company", "address_1", "address_2", "city", "state", "postcode", "country", "phone"}
	customerBillingKeys  = []string{"first_name", "last_name", "company", "address_1", "address_2", "city", "postcode", "country", "state", "email", "phone"}
	customerShippingKeys = []string{"first_name", "last_name", "company", "address_1", "address_2", "city", "postcode", "country", "state", "phone"}
)

type fieldErr struct{ name, code, msg string }

func wpList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	case 2:
		return items[0] + " and " + items[1]
	}
	return strings.Join(items[:len(items)-1], ", ") + ", and " + items[len(items)-1]
}

var rfc3339ish = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}(:?\d{2})?)?$`)

// checkField validates one body value against its spec the way WordPress'
// rest_validate_value_from_schema would (subset).
func checkField(f fieldSpec, raw json.RawMessage) *fieldErr {
	raw = bytes.TrimSpace(raw)
	typeErr := func(t string) *fieldErr {
		return &fieldErr{f.name, "rest_invalid_type", fmt.Sprintf("%s is not of type %s.", f.name, t)}
	}
	isNull := string(raw) == "null"
	switch f.typ {
	case tString, tNumStr:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			if f.typ == tNumStr {
				var n json.Number
				if json.Unmarshal(raw, &n) == nil {
					return nil
				}
			}
			return typeErr("string")
		}
		if f.enum != nil {
			if _, ok := statusIndex(f.enum, s); !ok {
				return &fieldErr{f.name, "rest_not_in_enum", fmt.Sprintf("%s is not one of %s.", f.name, wpList(f.enum))}
			}
		}
	case tInt, tIntNull:
		if isNull && f.typ == tIntNull {
			return nil
		}
		if _, ok := rawInt(raw); !ok {
			if f.typ == tIntNull {
				return typeErr("integer,null")
			}
			return typeErr("integer")
		}
	case tBool:
		if _, ok := rawBool(raw); !ok {
			return typeErr("boolean")
		}
	case tObject:
		if len(raw) == 0 || (raw[0] != '{' && string(raw) != "[]") {
			return typeErr("object")
		}
	case tArray:
		if len(raw) == 0 || raw[0] != '[' {
			return typeErr("array")
		}
	case tDate, tDateOnly:
		if isNull && f.typ == tDate {
			return nil
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return typeErr("string")
		}
		if _, _, ok := parseWPDate(s); !ok {
			return &fieldErr{f.name, "rest_invalid_date", "Invalid date."}
		}
	}
	return nil
}

func rawInt(raw json.RawMessage) (int64, bool) {
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		if f, err := n.Float64(); err == nil && f == math.Trunc(f) {
			return int64(f), true
		}
		return 0, false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return i, true
		}
	}
	return 0, false
}

func rawBool(raw json.RawMessage) (bool, bool) {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch strings.ToLower(s) {
		case "true", "1":
			return true, true
		case "false", "0", "":
			return false, true
		}
		return false, false
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		switch n.String() {
		case "1":
			return true, true
		case "0":
			return false, true
		}
	}
	return false, false
}

func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// parseWPDate parses a REST date-time (rest_parse_date) and returns the wall
// clock it names as naive unix seconds, whether it carried an offset, and ok.
// With an offset, wall is the UTC instant.
func parseWPDate(s string) (wall int64, hasOffset bool, ok bool) {
	if !rfc3339ish.MatchString(s) {
		return 0, false, false
	}
	norm := strings.Replace(s[:10]+"T"+s[11:], "t", "T", 1)
	norm = strings.Replace(norm, "z", "Z", 1)
	layouts := []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999Z07"}
	for _, l := range layouts {
		if t, err := time.Parse(l, norm); err == nil {
			return t.Unix(), true, true
		}
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999", norm)
	if err != nil {
		return 0, false, false
	}
	return t.Unix(), false, true
}

func fmt2(f float64) string { return strconv.FormatFloat(math.Round(f*100)/100, 'f', 2, 64) }

func parseAmount(s string) float64 {
	f, _ := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f
}

func (s *Store) newMetaID() int64 { id := s.nextMeta; s.nextMeta++; return id }

// validate checks body fields; over REST unknown and go-only names are
// ignored, over the Go API unknown names are an error.
func validate(def *resDef, raw map[string]json.RawMessage, rest bool) *apiError {
	specs := schemas[def.name]
	var errs []fieldErr
	if !rest {
		var unknown []string
		for k := range raw {
			found := false
			for _, f := range specs {
				if f.name == k {
					found = true
					break
				}
			}
			if !found {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return &apiError{status: 400, code: "wcsim_unknown_field", message: fmt.Sprintf("unknown %s field(s): %s", def.singular, strings.Join(unknown, ", "))}
		}
	}
	for _, f := range specs {
		v, ok := raw[f.name]
		if !ok || (rest && f.goOnly) {
			continue
		}
		if e := checkField(f, v); e != nil {
			errs = append(errs, *e)
		}
	}
	if len(errs) > 0 {
		return invalidParams(errs)
	}
	return nil
}

func (s *Store) create(def *resDef, raw map[string]json.RawMessage, rest bool) (int64, []event, *apiError) {
	if aerr := validate(def, raw, rest); aerr != nil {
		return 0, nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowUnix()
	r := record{kind: def.kind, created: now, modified: now, ext: &recExt{}}
	switch def.kind {
	case kindCoupon:
		code := strings.TrimSpace(rawString(raw["code"]))
		if code == "" {
			return 0, nil, &apiError{status: 400, code: "woocommerce_rest_empty_coupon_code", message: "The coupon code cannot be empty."}
		}
		if _, dup := s.codes[strings.ToLower(code)]; dup {
			return 0, nil, &apiError{status: 400, code: "woocommerce_rest_coupon_code_already_exists", message: "The coupon code already exists"}
		}
		r.ext.amount = "0.00"
	case kindCustomer:
		email := strings.TrimSpace(rawString(raw["email"]))
		if _, ok := raw["email"]; !ok {
			return 0, nil, missingParams("email")
		}
		if !strings.Contains(email, "@") {
			return 0, nil, &apiError{status: 400, code: "registration-error-invalid-email", message: "Please provide a valid email address."}
		}
		if _, dup := s.emails[strings.ToLower(email)]; dup {
			return 0, nil, &apiError{status: 400, code: "registration-error-email-exists", message: `An account is already registered with your email address. <a href="#" class="showlogin">Please log in.</a>`}
		}
		if u := rawString(raw["username"]); u != "" {
			if _, dup := s.usernames[strings.ToLower(u)]; dup {
				return 0, nil, &apiError{status: 400, code: "registration-error-username-exists", message: "An account is already registered with that username. Please choose another."}
			}
		}
	case kindOrder:
		r.ext.orderKey = "wc_order_" + randAlnum(13)
		r.ext.ov = map[string][]byte{"created_via": appendStr(nil, "rest-api")}
	}
	id := s.allocID(def)
	r.id = id
	if aerr := s.apply(def, &r, raw, rest, now, true); aerr != nil {
		// Roll back the slot; the id stays consumed like an auto-increment.
		return 0, nil, aerr
	}
	*s.slot(def, id) = r
	rp := s.slot(def, id)
	s.colls[def.name].indexAdd(rp)
	s.registerKeys(def, rp)
	var evs []event
	switch def.kind {
	case kindOrder:
		evs = []event{{"order.created", def.kind, id}, {"order.updated", def.kind, id}}
	default:
		evs = []event{{def.singular + ".created", def.kind, id}}
	}
	return id, evs, nil
}

func (s *Store) registerKeys(def *resDef, r *record) {
	switch def.kind {
	case kindCoupon:
		s.codes[strings.ToLower(s.couponCode(r))] = r.id
	case kindCustomer:
		e := s.customerExt(r)
		s.emails[strings.ToLower(e.email)] = r.id
		s.usernames[strings.ToLower(e.username)] = r.id
	}
}

func (s *Store) unregisterKeys(def *resDef, r *record) {
	switch def.kind {
	case kindCoupon:
		delete(s.codes, strings.ToLower(s.couponCode(r)))
	case kindCustomer:
		e := s.customerExt(r)
		delete(s.emails, strings.ToLower(e.email))
		delete(s.usernames, strings.ToLower(e.username))
	}
}

// materialize gives a seeded record its own ext (copy of derived values).
func (s *Store) materialize(r *record) {
	if r.ext != nil {
		return
	}
	switch r.kind {
	case kindOrder:
		r.ext = seedOrderExt(r)
	case kindProduct:
		r.ext = seedProductExt(r)
	case kindCoupon:
		r.ext = seedCouponExt(r)
	case kindCustomer:
		r.ext = seedCustomerExt(r)
	}
}

func (s *Store) update(def *resDef, id int64, raw map[string]json.RawMessage, rest bool, now int64) ([]event, *apiError) {
	if aerr := validate(def, raw, rest); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now == 0 {
		now = s.nowUnix()
	}
	r := s.rec(def, id)
	if r == nil {
		return nil, notFound(def)
	}
	c := s.colls[def.name]
	c.indexDel(r)
	s.unregisterKeys(def, r)
	s.materialize(r)
	if def.kind == kindCoupon {
		if code, ok := raw["code"]; ok {
			cs := strings.ToLower(strings.TrimSpace(rawString(code)))
			if other, dup := s.codes[cs]; dup && other != id {
				s.registerKeys(def, r)
				c.indexAdd(r)
				return nil, &apiError{status: 400, code: "woocommerce_rest_coupon_code_already_exists", message: "The coupon code already exists"}
			}
		}
	}
	aerr := s.apply(def, r, raw, rest, now, false)
	if aerr == nil {
		r.modified = now
	}
	s.registerKeys(def, r)
	c.indexAdd(r)
	if aerr != nil {
		return nil, aerr
	}
	return []event{{def.singular + ".updated", def.kind, id}}, nil
}

// apply writes validated fields into r.
func (s *Store) apply(def *resDef, r *record, raw map[string]json.RawMessage, rest bool, now int64, creating bool) *apiError {
	e := r.ext
	setOV := func(name string, v []byte) {
		if e.ov == nil {
			e.ov = map[string][]byte{}
		}
		e.ov[name] = v
	}
	itemsChanged := false
	statusSet := false
	for _, f := range schemas[def.name] {
		v, ok := raw[f.name]
		if !ok || (rest && f.goOnly) {
			continue
		}
		switch f.name {
		case "status":
			if def.users {
				continue
			}
			st, _ := statusIndex(def.statuses, rawString(v))
			r.status = st
			statusSet = true
		case "role":
			st, _ := statusIndex(userRoles, rawString(v))
			r.status = st
		case "date_created", "date_created_gmt":
			wall, hasOff, _ := parseWPDate(rawString(v))
			if f.name == "date_created" && !hasOff {
				wall -= s.off
			}
			r.created = wall
			if creating {
				r.modified = now
			}
		case "customer_id":
			n, _ := rawInt(v)
			e.customerID = n
		case "billing", "shipping":
			keys := orderBillingKeys
			switch {
			case def.kind == kindOrder && f.name == "shipping":
				keys = orderShippingKeys
			case def.kind == kindCustomer && f.name == "billing":
				keys = customerBillingKeys
			case def.kind == kindCustomer:
				keys = customerShippingKeys
			}
			cur := map[string]string{}
			if old, ok := e.ov[f.name]; ok {
				_ = json.Unmarshal(old, &cur)
			}
			var in map[string]json.RawMessage
			_ = json.Unmarshal(v, &in)
			for k, x := range in {
				cur[k] = rawString(x)
			}
			b := []byte{'{'}
			for i, k := range keys {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendStr(b, k)
				b = append(b, ':')
				b = appendStr(b, cur[k])
			}
			setOV(f.name, append(b, '}'))
		case "meta_data":
			var in []map[string]json.RawMessage
			if err := json.Unmarshal(v, &in); err != nil {
				return invalidParams([]fieldErr{{"meta_data", "rest_invalid_type", "meta_data[0] is not of type object."}})
			}
			for _, m := range in {
				key := rawString(m["key"])
				val, err := phpJSON(m["value"])
				if err != nil {
					val = []byte(`""`)
				}
				found := false
				if idRaw, ok := m["id"]; ok {
					mid, _ := rawInt(idRaw)
					for i := range e.meta {
						if e.meta[i].id == mid {
							e.meta[i].key, e.meta[i].value, found = key, val, true
						}
					}
				}
				if !found {
					for i := range e.meta {
						if e.meta[i].key == key {
							e.meta[i].value, found = val, true
						}
					}
				}
				if !found && key != "" {
					e.meta = append(e.meta, metaEntry{id: s.newMetaID(), key: key, value: val})
				}
			}
		case "line_items":
			if aerr := s.applyLineItems(e, v); aerr != nil {
				return aerr
			}
			itemsChanged = true
		case "shipping_lines", "fee_lines":
			pv, err := phpJSON(v)
			if err != nil {
				return invalidParams([]fieldErr{{f.name, "rest_invalid_type", f.name + " is not of type array."}})
			}
			setOV(f.name, pv)
			var lines []map[string]json.RawMessage
			_ = json.Unmarshal(v, &lines)
			tot := 0.0
			for _, l := range lines {
				tot += parseAmount(rawString(l["total"]))
			}
			if f.name == "shipping_lines" {
				setOV("shipping_total", appendStr(nil, fmt2(tot)))
			}
			itemsChanged = true
		case "set_paid":
			if b, _ := rawBool(v); b {
				st, _ := statusIndex(def.statuses, "processing")
				r.status = st
				if e.datePaid == 0 {
					e.datePaid = now
				}
			}
		case "name":
			e.name = rawString(v)
			if creating && rawString(raw["slug"]) == "" {
				e.slug = sanitizeTitle(e.name)
			}
		case "slug":
			e.slug = sanitizeTitle(rawString(v))
		case "sku":
			e.sku = rawString(v)
		case "regular_price":
			e.regularPrice = rawString(v)
		case "sale_price":
			e.salePrice = rawString(v)
		case "code":
			e.code = strings.TrimSpace(rawString(v))
		case "amount":
			e.amount = fmt2(parseAmount(rawString(v)))
		case "minimum_amount", "maximum_amount":
			setOV(f.name, appendStr(nil, fmt2(parseAmount(rawString(v)))))
		case "email":
			e.email = strings.TrimSpace(rawString(v))
		case "first_name":
			e.first = rawString(v)
		case "last_name":
			e.last = rawString(v)
		case "username":
			if creating {
				e.username = rawString(v)
			}
		case "password":
			// never stored or shown
		case "date_expires", "date_expires_gmt":
			if string(bytes.TrimSpace(v)) == "null" {
				setOV("date_expires", []byte("null"))
				setOV("date_expires_gmt", []byte("null"))
				continue
			}
			wall, hasOff, _ := parseWPDate(rawString(v))
			if f.name == "date_expires" && !hasOff {
				wall -= s.off
			}
			setOV("date_expires", appendDate(nil, wall, s.off))
			setOV("date_expires_gmt", appendDate(nil, wall, 0))
		default:
			pv, err := phpJSON(v)
			if err != nil {
				return invalidParams([]fieldErr{{f.name, "rest_invalid_json", "Invalid JSON."}})
			}
			if f.typ == tInt {
				n, _ := rawInt(v)
				pv = strconv.AppendInt(nil, n, 10)
			}
			if f.typ == tBool {
				b, _ := rawBool(v)
				pv = strconv.AppendBool(nil, b)
			}
			setOV(f.name, pv)
		}
	}
	if creating {
		switch def.kind {
		case kindOrder:
			if !statusSet && r.status == 0 {
				r.status, _ = statusIndex(def.statuses, "pending")
			}
		case kindProduct:
			if e.slug == "" && e.name != "" {
				e.slug = sanitizeTitle(e.name)
			}
		case kindCustomer:
			if e.username == "" {
				base := e.email
				if i := strings.IndexByte(base, '@'); i > 0 {
					base = base[:i]
				}
				base = sanitizeUser(base)
				u := base
				for n := 1; ; n++ {
					if _, dup := s.usernames[strings.ToLower(u)]; !dup {
						break
					}
					u = fmt.Sprintf("%s%d", base, n)
				}
				e.username = u
			}
		}
	}
	if def.kind == kindOrder {
		if itemsChanged {
			tot := 0.0
			for _, it := range e.items {
				tot += it.total
			}
			tot += parseAmount(ovString(e.ov, "shipping_total"))
			var fees []map[string]json.RawMessage
			_ = json.Unmarshal(e.ov["fee_lines"], &fees)
			for _, l := range fees {
				tot += parseAmount(rawString(l["total"]))
			}
			setOV("total", appendStr(nil, fmt2(tot)))
		}
		st := def.statuses[r.status]
		if (st == "processing" || st == "completed") && e.datePaid == 0 {
			e.datePaid = now
		}
		if st == "completed" && e.dateCompleted == 0 {
			e.dateCompleted = now
		}
	}
	if statusSet && def.trashable && !creating {
		// Leaving the trash through a status update (no untrash): WordPress
		// restores the desired slug; the trash status/time meta stay.
		var keep []metaEntry
		for _, m := range e.meta {
			if m.key == "_wp_desired_post_slug" {
				var slug string
				_ = json.Unmarshal(m.value, &slug)
				e.slug = slug
				continue
			}
			keep = append(keep, m)
		}
		if def.statuses[r.status] != "trash" {
			e.meta = keep
		}
	}
	return nil
}

func ovString(ov map[string][]byte, k string) string {
	var s string
	_ = json.Unmarshal(ov[k], &s)
	return s
}

func (s *Store) applyLineItems(e *recExt, v json.RawMessage) *apiError {
	var in []map[string]json.RawMessage
	if err := json.Unmarshal(v, &in); err != nil {
		return invalidParams([]fieldErr{{"line_items", "rest_invalid_type", "line_items[0] is not of type object."}})
	}
	for _, m := range in {
		var it *lineItem
		if idRaw, ok := m["id"]; ok {
			iid, _ := rawInt(idRaw)
			for i := range e.items {
				if e.items[i].id == iid {
					it = &e.items[i]
				}
			}
		}
		if it == nil {
			e.items = append(e.items, lineItem{id: s.nextItem, qty: 1})
			s.nextItem++
			it = &e.items[len(e.items)-1]
		}
		if x, ok := m["product_id"]; ok {
			it.productID, _ = rawInt(x)
			if p := s.rec(resDefs[Products], it.productID); p != nil {
				pe := s.productExt(p)
				it.name, it.sku = pe.name, pe.sku
				it.price = parseAmount(productPrice(pe))
			} else {
				it.name = fmt.Sprintf("Product %d", it.productID)
			}
		}
		if x, ok := m["variation_id"]; ok {
			it.variationID, _ = rawInt(x)
		}
		if x, ok := m["name"]; ok {
			it.name = rawString(x)
		}
		if x, ok := m["sku"]; ok {
			it.sku = rawString(x)
		}
		if x, ok := m["quantity"]; ok {
			it.qty, _ = rawInt(x)
		}
		if x, ok := m["price"]; ok {
			it.price = parseAmount(rawString(x))
		}
		it.subtotal = it.price * float64(it.qty)
		it.total = it.subtotal
		if x, ok := m["subtotal"]; ok {
			it.subtotal = parseAmount(rawString(x))
		}
		if x, ok := m["total"]; ok {
			it.total = parseAmount(rawString(x))
			if it.qty > 0 {
				it.price = it.total / float64(it.qty)
			}
		}
	}
	kept := e.items[:0]
	for _, it := range e.items {
		if it.qty > 0 {
			kept = append(kept, it)
		}
	}
	e.items = kept
	return nil
}

var nonSlug = regexp.MustCompile(`[^a-z0-9_\-]+`)

func sanitizeTitle(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.ReplaceAll(s, " ", "-")
	s = nonSlug.ReplaceAllString(s, "")
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "-")
	}
	return strings.Trim(s, "-")
}

var nonUser = regexp.MustCompile(`[^a-z0-9 _.\-@]+`)

func sanitizeUser(s string) string {
	s = nonUser.ReplaceAllString(strings.ToLower(s), "")
	if s == "" {
		s = "customer"
	}
	return s
}

// trash moves a post-type object to the trash; it returns the object JSON as
// it was before trashing.
func (s *Store) trash(def *resDef, id int64) ([]byte, []event, *apiError) {
	if !def.trashable {
		return nil, nil, trashNotSupported(def)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec(def, id)
	if r == nil {
		return nil, nil, notFound(def)
	}
	trashSt, _ := statusIndex(def.statuses, "trash")
	if r.status == trashSt {
		return nil, nil, &apiError{status: 410, code: "woocommerce_rest_already_trashed", message: fmt.Sprintf("The %s has already been deleted.", def.postType)}
	}
	before := s.render(nil, def, r, nil)
	now := s.nowUnix()
	c := s.colls[def.name]
	c.indexDel(r)
	s.materialize(r)
	e := r.ext
	prev := def.statuses[r.status]
	if def.kind == kindOrder {
		prev = "wc-" + prev
	}
	e.prevStatus = r.status
	e.meta = append(e.meta,
		metaEntry{id: s.newMetaID(), key: "_wp_trash_meta_status", value: appendStr(nil, prev)},
		metaEntry{id: s.newMetaID(), key: "_wp_trash_meta_time", value: appendStr(nil, strconv.FormatInt(now, 10))})
	if def.kind != kindOrder {
		slug := e.slug
		if def.kind == kindCoupon {
			slug = strings.ToLower(e.code)
		}
		e.meta = append(e.meta, metaEntry{id: s.newMetaID(), key: "_wp_desired_post_slug", value: appendStr(nil, slug)})
		if def.kind == kindProduct {
			e.slug = slug + "__trashed"
		}
	}
	r.status = trashSt
	r.modified = now
	c.indexAdd(r)
	var evs []event
	if def.kind == kindOrder {
		evs = []event{{"order.deleted", kindOrder, id}}
	} else {
		// wp_trash_post is hooked by both product.deleted and coupon.deleted.
		evs = []event{{"product.deleted", def.kind, id}, {"coupon.deleted", def.kind, id}}
	}
	return before, evs, nil
}

func (s *Store) restore(def *resDef, id int64) ([]event, *apiError) {
	if !def.trashable {
		return nil, trashNotSupported(def)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec(def, id)
	if r == nil {
		return nil, notFound(def)
	}
	trashSt, _ := statusIndex(def.statuses, "trash")
	if r.status != trashSt {
		return nil, &apiError{status: 400, code: "wcsim_not_trashed", message: fmt.Sprintf("%s %d is not in the trash", def.singular, id)}
	}
	c := s.colls[def.name]
	c.indexDel(r)
	e := r.ext
	r.status = e.prevStatus
	var keep []metaEntry
	for _, m := range e.meta {
		switch m.key {
		case "_wp_trash_meta_status", "_wp_trash_meta_time":
		case "_wp_desired_post_slug":
			var slug string
			_ = json.Unmarshal(m.value, &slug)
			e.slug = slug
		default:
			keep = append(keep, m)
		}
	}
	e.meta = keep
	r.modified = s.nowUnix()
	c.indexAdd(r)
	if def.kind == kindOrder {
		return []event{{"order.restored", kindOrder, id}}, nil
	}
	return []event{{"product.restored", def.kind, id}, {"coupon.restored", def.kind, id}}, nil
}

func (s *Store) forceDelete(def *resDef, id int64) ([]byte, []event, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec(def, id)
	if r == nil {
		return nil, nil, notFound(def)
	}
	before := s.render(nil, def, r, nil)
	s.colls[def.name].indexDel(r)
	s.unregisterKeys(def, r)
	var evs []event
	if def.kind == kindCustomer && userRoles[r.status] == "customer" {
		evs = []event{{"customer.deleted", kindCustomer, id}}
	}
	*r = record{}
	return before, evs, nil
}

// SeedOptions shape Seed.
type SeedOptions struct {
	// Start is the creation/modification time of the first record; default
	// Now minus (n-1)*Step.
	Start time.Time
	// Step between consecutive records' timestamps; default 1s. Zero with
	// SameSecond puts every record in one second.
	Step       time.Duration
	SameSecond bool
	// Status for every record (default: a deterministic mix; customers: role).
	Status string
}

// Seed adds n records fast (no webhooks), one per second ending at Now.
func (s *Store) Seed(resource string, n int) (firstID, lastID int64) {
	f, l, err := s.SeedWith(resource, n, SeedOptions{})
	if err != nil {
		s.logf("wcsim: seed: %v", err)
	}
	return f, l
}

// SeedWith is Seed with explicit timestamps/status.
func (s *Store) SeedWith(resource string, n int, o SeedOptions) (firstID, lastID int64, err error) {
	def, err := lookupDef(resource)
	if err != nil {
		return 0, 0, err
	}
	if n <= 0 {
		return 0, 0, nil
	}
	step := int64(o.Step / time.Second)
	if o.Step == 0 && !o.SameSecond {
		step = 1
	}
	start := o.Start.Unix()
	if o.Start.IsZero() {
		start = s.nowUnix() - int64(n-1)*step
	}
	var fixed uint8
	hasFixed := o.Status != ""
	if hasFixed {
		var ok bool
		if fixed, ok = statusIndex(def.statuses, o.Status); !ok {
			return 0, 0, fmt.Errorf("wcsim: unknown %s status %q", def.singular, o.Status)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.colls[def.name]
	tab := &s.posts
	next := &s.nextPost
	if def.users {
		tab, next = &s.users, &s.nextUser
	}
	firstID = *next
	need := int(firstID) + n
	if cap(*tab) < need {
		nt := make([]record, len(*tab), need+need/8)
		copy(nt, *tab)
		*tab = nt
	}
	for len(*tab) < need {
		*tab = append(*tab, record{})
	}
	for i := 0; i < n; i++ {
		id := firstID + int64(i)
		ts := start + int64(i)*step
		st := fixed
		if !hasFixed {
			st = seedStatus(def, id)
		}
		r := &(*tab)[id]
		*r = record{id: id, created: ts, modified: ts, kind: def.kind, status: st}
		if def.kind == kindOrder {
			r.aux = s.nextItem
			s.nextItem++
		}
		c.indexAdd(r)
		switch def.kind {
		case kindCoupon:
			s.codes[strings.ToLower(seedCouponCode(id))] = id
		case kindCustomer:
			s.emails[seedEmail(id)] = id
			s.usernames[seedUsername(id)] = id
		}
	}
	*next = firstID + int64(n)
	return firstID, *next - 1, nil
}

func seedStatus(def *resDef, id int64) uint8 {
	var name string
	switch def.kind {
	case kindOrder:
		switch id % 10 {
		case 6, 7:
			name = "completed"
		case 8:
			name = "on-hold"
		case 9:
			name = "pending"
		default:
			name = "processing"
		}
	case kindCustomer:
		name = "customer"
	default:
		name = "publish"
	}
	st, _ := statusIndex(def.statuses, name)
	return st
}

func randAlnum(n int) string {
	const al = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var raw [64]byte
	rnd(raw[:n])
	b := make([]byte, n)
	for i := range b {
		b[i] = al[int(raw[i])%len(al)]
	}
	return string(b)
}
