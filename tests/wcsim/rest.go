package wcsim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

const (
	allowCollection = "GET, POST"
	allowItem       = "GET, POST, PUT, PATCH, DELETE"
	maxBody         = 16 << 20
)

// request is one REST call after routing and parameter parsing.
type request struct {
	r       *http.Request
	method  string
	route   string
	get     *phpArr
	post    *phpArr
	jsonObj map[string]json.RawMessage
	key     *Key
	restQS  bool // ?rest_route= style
}

func (s *Store) commonHeaders(h http.Header) {
	h.Set("Date", s.Now().UTC().Format(http.TimeFormat))
	h.Set("Server", serverSoftware)
	h.Set("X-Powered-By", "PHP/"+phpVersion)
	h.Set("X-Robots-Tag", "noindex")
	h.Set("Link", "<"+s.restURL("/")+">; rel=\"https://api.w.org/\"")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Access-Control-Expose-Headers", "X-WP-Total, X-WP-TotalPages, Link")
	h.Set("Access-Control-Allow-Headers", "Authorization, X-WP-Nonce, Content-Disposition, Content-MD5, Content-Type")
}

func noCache(h http.Header) {
	h.Set("Expires", "Wed, 11 Jan 1984 05:00:00 GMT")
	h.Set("Cache-Control", "no-cache, must-revalidate, max-age=0, no-store, private")
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Store) writeErr(w http.ResponseWriter, e *apiError, allow string) {
	h := w.Header()
	switch e.class {
	case ecAuth:
		h.Set("Vary", "Origin")
	case ecKeyPerm, ecNoRoute:
		noCache(h)
	default:
		if allow != "" {
			h.Set("Allow", allow)
		}
		noCache(h)
	}
	writeBody(w, e.status, e.body())
}

func (s *Store) writeOK(w http.ResponseWriter, status int, body []byte, allow string) {
	h := w.Header()
	h.Set("Allow", allow)
	noCache(h)
	writeBody(w, status, body)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

var itemRoute = regexp.MustCompile(`^/wc/v3/([a-z_]+)(?:/(\d+))?/?$`)

func (s *Store) serveREST(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg()
	route := ""
	restQS := false
	switch {
	case r.URL.Path == "/wp-json" || strings.HasPrefix(r.URL.Path, "/wp-json/"):
		if cfg.noPrettyPermalinks {
			s.serveWP404(w)
			return
		}
		route = strings.TrimPrefix(r.URL.Path, "/wp-json")
		if route == "" {
			route = "/"
		}
	case (r.URL.Path == "/" || r.URL.Path == "/index.php") && r.URL.Query().Get("rest_route") != "":
		route = r.URL.Query().Get("rest_route")
		restQS = true
	default:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><head><title>Page not found</title></head><body><h1>Not Found</h1></body></html>\n")
		return
	}
	s.commonHeaders(w.Header())
	method := r.Method
	if method == http.MethodPost {
		if o := r.Header.Get("X-HTTP-Method-Override"); o != "" {
			method = strings.ToUpper(o)
		} else if o := r.URL.Query().Get("_method"); o != "" {
			method = strings.ToUpper(o)
		}
	}
	req := &request{r: r, method: method, route: route, get: parsePHPQuery(r.URL.RawQuery), restQS: restQS}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		s.writeErr(w, &apiError{status: 400, code: "wcsim_body_read", message: "Could not read the request body."}, "")
		return
	}
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	switch {
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		req.post = parsePHPQuery(string(body))
	case strings.HasPrefix(ct, "application/json") && len(bytes.TrimSpace(body)) > 0:
		var obj map[string]json.RawMessage
		if json.Unmarshal(body, &obj) != nil {
			var any json.RawMessage
			if json.Unmarshal(body, &any) != nil {
				s.writeErr(w, &apiError{status: 400, code: "rest_invalid_json", message: "Invalid JSON body passed.",
					data: []byte(`{"status":400,"json_error_code":4,"json_error_message":"Syntax error"}`)}, "")
				return
			}
		}
		req.jsonObj = obj
	}
	if req.post == nil {
		req.post = newPHPArr()
	}
	// is_ssl(): TLS reached WordPress (not when a proxy ended it).
	isSSL := r.TLS != nil && !cfg.behindProxy
	if route == "/" {
		s.serveIndex(w, isSSL)
		return
	}
	if !strings.HasPrefix(route, "/wc/") && !strings.HasPrefix(route, "/wc-") {
		s.writeErr(w, errNoRoute, "")
		return
	}
	if cfg.stripAuthorization { // CGI/FastCGI hosts never pass the header to PHP
		r.Header.Del("Authorization")
	}
	st := s.authenticate(r, req.get, req.post, isSSL)
	if st.err != nil {
		s.writeErr(w, st.err, "")
		return
	}
	req.key = st.key
	if req.key != nil {
		if e := checkKeyPermission(req.key, method); e != nil {
			s.writeErr(w, e, "")
			return
		}
	}
	if route == "/wc/v3" || route == "/wc/v3/" {
		s.serveNamespace(w)
		return
	}
	m := itemRoute.FindStringSubmatch(route)
	if m == nil {
		s.writeErr(w, errNoRoute, "")
		return
	}
	res := m[1]
	var id int64
	hasID := m[2] != ""
	if hasID {
		id, _ = strconv.ParseInt(m[2], 10, 64)
	}
	if res == "webhooks" {
		s.serveWebhooks(w, req, hasID, id)
		return
	}
	if res == "system_status" && !hasID && (method == http.MethodGet || method == http.MethodHead) {
		s.serveSystemStatus(w, req)
		return
	}
	def, ok := resDefs[res]
	if !ok {
		s.writeErr(w, errNoRoute, "")
		return
	}
	if !hasID {
		switch method {
		case http.MethodGet, http.MethodHead:
			s.serveList(w, req, def)
		case http.MethodPost:
			s.serveCreate(w, req, def)
		default:
			s.writeErr(w, errNoRoute, "")
		}
		return
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		s.serveGet(w, req, def, id)
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		s.serveUpdate(w, req, def, id)
	case http.MethodDelete:
		s.serveDelete(w, req, def, id)
	default:
		s.writeErr(w, errNoRoute, "")
	}
}

func (s *Store) serveNamespace(w http.ResponseWriter) {
	b := []byte(`{"namespace":"wc\/v3","routes":{`)
	for i, r := range []string{"orders", "products", "coupons", "customers", "webhooks"} {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `"\/wc\/v3\/`+r+`":{"namespace":"wc\/v3","methods":["GET","POST"]}`...)
	}
	b = append(b, "}}"...)
	w.Header().Set("Allow", "GET")
	writeBody(w, 200, b)
}

// bodyParams merges JSON body, form body and query string (WordPress'
// parameter order: JSON wins over POST, POST over GET).
func (req *request) bodyParams() map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, src := range []*phpArr{req.get, req.post} {
		for _, k := range src.keys {
			out[k] = phpToJSON(src.vals[k])
		}
	}
	for k, v := range req.jsonObj {
		out[k] = v
	}
	return out
}

func phpToJSON(v *phpVal) json.RawMessage {
	if v.arr == nil {
		return appendStr(nil, v.s)
	}
	seq := true
	for i, k := range v.arr.keys {
		if k != strconv.Itoa(i) {
			seq = false
			break
		}
	}
	var b []byte
	if seq {
		b = append(b, '[')
	} else {
		b = append(b, '{')
	}
	for i, k := range v.arr.keys {
		if i > 0 {
			b = append(b, ',')
		}
		if !seq {
			b = appendStr(b, k)
			b = append(b, ':')
		}
		b = append(b, phpToJSON(v.arr.vals[k])...)
	}
	if seq {
		return append(b, ']')
	}
	return append(b, '}')
}

func (req *request) param(name string) (json.RawMessage, bool) {
	if v, ok := req.jsonObj[name]; ok {
		return v, true
	}
	if v, ok := req.post.get(name); ok {
		return phpToJSON(v), true
	}
	if v, ok := req.get.get(name); ok {
		return phpToJSON(v), true
	}
	return nil, false
}

func permErr(code, msg string) *apiError {
	return &apiError{status: 401, code: code, message: msg, class: ecAuth}
}

func (s *Store) itemLocation(res string, id int64) string {
	return fmt.Sprintf("%s/wp-json/wc/v3/%s/%d", s.home, res, id)
}

func (s *Store) serveCreate(w http.ResponseWriter, req *request, def *resDef) {
	params := req.bodyParams()
	if def.users {
		if _, ok := params["email"]; !ok {
			s.writeErr(w, missingParams("email"), allowCollection)
			return
		}
	}
	if e := validate(def, params, true); e != nil {
		s.writeErr(w, e, allowCollection)
		return
	}
	if req.key == nil {
		s.writeErr(w, permErr("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."), "")
		return
	}
	id, evs, aerr := s.create(def, params, true)
	if aerr != nil {
		s.writeErr(w, aerr, allowCollection)
		return
	}
	s.mu.RLock()
	body := s.render(nil, def, s.rec(def, id), fieldsOf(req))
	s.mu.RUnlock()
	s.dispatch(evs)
	w.Header().Set("Location", s.itemLocation(def.name, id))
	s.writeOK(w, http.StatusCreated, body, allowCollection)
}

func fieldsOf(req *request) fieldMask {
	v, ok := req.get.get("_fields")
	if !ok {
		return nil
	}
	var list []string
	for _, x := range v.list() {
		list = append(list, strings.Split(x, ",")...)
	}
	m := parseFields(list)
	if len(m) == 0 {
		return nil
	}
	return m
}

// exists reports whether an object of def with id exists (any status).
func (s *Store) exists(def *resDef, id int64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rec(def, id) != nil
}

// itemPermission mirrors the CRUD controllers: for post types the check only
// fails when the object exists; customers always need a user.
func (s *Store) itemPermission(req *request, def *resDef, id int64, code, msg string) *apiError {
	if req.key != nil {
		return nil
	}
	if def.users || s.exists(def, id) {
		return permErr(code, msg)
	}
	return nil
}

func (s *Store) serveGet(w http.ResponseWriter, req *request, def *resDef, id int64) {
	if e := s.itemPermission(req, def, id, "woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."); e != nil {
		s.writeErr(w, e, "")
		return
	}
	s.mu.RLock()
	r := s.rec(def, id)
	var body []byte
	if r != nil {
		body = s.render(nil, def, r, fieldsOf(req))
	}
	s.mu.RUnlock()
	if r == nil {
		s.writeErr(w, notFound(def), allowItem)
		return
	}
	s.writeOK(w, 200, body, allowItem)
}

func (s *Store) serveUpdate(w http.ResponseWriter, req *request, def *resDef, id int64) {
	params := req.bodyParams()
	if e := validate(def, params, true); e != nil {
		s.writeErr(w, e, allowItem)
		return
	}
	if e := s.itemPermission(req, def, id, "woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."); e != nil {
		s.writeErr(w, e, "")
		return
	}
	evs, aerr := s.update(def, id, params, true, 0)
	if aerr != nil {
		s.writeErr(w, aerr, allowItem)
		return
	}
	s.mu.RLock()
	body := s.render(nil, def, s.rec(def, id), fieldsOf(req))
	s.mu.RUnlock()
	s.dispatch(evs)
	s.writeOK(w, 200, body, allowItem)
}

func (s *Store) serveDelete(w http.ResponseWriter, req *request, def *resDef, id int64) {
	force := false
	if v, ok := req.param("force"); ok {
		b, valid := rawBool(v)
		if !valid {
			s.writeErr(w, invalidParams([]fieldErr{{"force", "rest_invalid_type", "force is not of type boolean."}}), allowItem)
			return
		}
		force = b
	}
	if e := s.itemPermission(req, def, id, "woocommerce_rest_cannot_delete", "Sorry, you are not allowed to delete this resource."); e != nil {
		s.writeErr(w, e, "")
		return
	}
	var (
		body []byte
		evs  []event
		aerr *apiError
	)
	switch {
	case def.users && !force:
		if !s.exists(def, id) {
			aerr = notFound(def)
		} else {
			aerr = trashNotSupported(def)
		}
	case force:
		body, evs, aerr = s.forceDelete(def, id)
	default:
		body, evs, aerr = s.trash(def, id)
	}
	if aerr != nil {
		s.writeErr(w, aerr, allowItem)
		return
	}
	if m := fieldsOf(req); m != nil {
		body = filterObject(body, m)
	}
	s.dispatch(evs)
	s.writeOK(w, 200, body, allowItem)
}

// ---- listing ----

type listQ struct {
	page, perPage, skip int
	desc                bool
	orderby             string
	include, exclude    []int64
	hasInclude          bool
	mask                uint16
	cLo, cHi, mLo, mHi  int64 // inclusive bounds on the _gmt columns
	search              string
	email               string
	fields              fieldMask
	statuses            []string
}

var splitList = regexp.MustCompile(`[\s,]+`)

func paramList(v *phpVal) []string {
	var out []string
	for _, x := range v.list() {
		for _, p := range splitList.Split(x, -1) {
			if p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func isIntString(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && !math.IsInf(f, 0) {
		return int64(f), true
	}
	return 0, false
}

func orderbyEnum(def *resDef) []string {
	switch def.kind {
	case kindCustomer:
		return []string{"id", "include", "name", "registered_date"}
	case kindProduct:
		return []string{"date", "modified", "id", "include", "title", "slug", "price", "popularity", "rating", "menu_order"}
	default:
		return []string{"date", "id", "include", "title", "slug", "modified"}
	}
}

func (s *Store) parseList(def *resDef, get *phpArr) (*listQ, *apiError) {
	q := &listQ{page: 1, perPage: 10, desc: true, orderby: "date",
		cLo: math.MinInt64, cHi: math.MaxInt64, mLo: math.MinInt64, mHi: math.MaxInt64}
	if def.users {
		q.desc, q.orderby = false, "name"
	}
	var errs []fieldErr
	intParam := func(name string, min, max int64, dst *int) {
		v, ok := get.get(name)
		if !ok {
			return
		}
		n, valid := isIntString(v.s)
		if v.arr != nil || !valid {
			errs = append(errs, fieldErr{name, "rest_invalid_type", name + " is not of type integer."})
			return
		}
		if max > 0 && (n < min || n > max) {
			errs = append(errs, fieldErr{name, "rest_out_of_bounds", fmt.Sprintf("%s must be between %d (inclusive) and %d (inclusive)", name, min, max)})
			return
		}
		if n < min {
			errs = append(errs, fieldErr{name, "rest_out_of_bounds", fmt.Sprintf("%s must be greater than or equal to %d", name, min)})
			return
		}
		*dst = int(n)
	}
	intParam("page", 1, 0, &q.page)
	intParam("per_page", 1, 100, &q.perPage)
	if v, ok := get.get("search"); ok {
		q.search = strings.ToLower(v.s)
	}
	gmt := false
	if v, ok := get.get("dates_are_gmt"); ok && v.arr == nil {
		gmt, _ = rawBool(appendStr(nil, v.s))
	}
	type bound struct {
		name  string
		after bool
		dst   *int64
	}
	ignoreModified := s.cfg().ignoreModifiedAfter
	for _, bd := range []bound{{"after", true, &q.cLo}, {"before", false, &q.cHi}, {"modified_after", true, &q.mLo}, {"modified_before", false, &q.mHi}} {
		v, ok := get.get(bd.name)
		if !ok {
			continue
		}
		wall, hasOff, valid := parseWPDate(v.s)
		if v.arr != nil || !valid {
			errs = append(errs, fieldErr{bd.name, "rest_invalid_date", "Invalid date."})
			continue
		}
		if def.users {
			continue // customers have no date filters
		}
		if ignoreModified && strings.HasPrefix(bd.name, "modified_") {
			continue // accepted and validated, not applied (caching plugins, old versions)
		}
		if hasOff {
			wall += s.off // WP_Date_Query converts to the site's wall clock
		}
		col := wall // bound on the _gmt column
		if !gmt {
			col = wall - s.off // local column = gmt + off
		}
		if bd.after {
			*bd.dst = col + 1
		} else {
			*bd.dst = col - 1
		}
	}
	if v, ok := get.get("dates_are_gmt"); ok {
		if _, valid := rawBool(appendStr(nil, v.s)); v.arr != nil || !valid {
			errs = append(errs, fieldErr{"dates_are_gmt", "rest_invalid_type", "dates_are_gmt is not of type boolean."})
		}
	}
	idList := func(name string) ([]int64, bool) {
		v, ok := get.get(name)
		if !ok {
			return nil, false
		}
		var out []int64
		for i, p := range paramList(v) {
			n, valid := isIntString(p)
			if !valid {
				errs = append(errs, fieldErr{name, "rest_invalid_type", fmt.Sprintf("%s[%d] is not of type integer.", name, i)})
				return nil, true
			}
			out = append(out, n)
		}
		return out, true
	}
	q.exclude, _ = idList("exclude")
	q.include, q.hasInclude = idList("include")
	if v, ok := get.get("offset"); ok {
		n, valid := isIntString(v.s)
		if v.arr != nil || !valid {
			errs = append(errs, fieldErr{"offset", "rest_invalid_type", "offset is not of type integer."})
		} else {
			q.skip = int(n)
			if q.skip < 0 {
				q.skip = 0
			}
		}
	}
	if v, ok := get.get("order"); ok {
		switch v.s {
		case "asc":
			q.desc = false
		case "desc":
			q.desc = true
		default:
			errs = append(errs, fieldErr{"order", "rest_not_in_enum", "order is not one of asc and desc."})
		}
	}
	if v, ok := get.get("orderby"); ok {
		enum := orderbyEnum(def)
		if _, found := statusIndex(enum, v.s); !found || v.arr != nil {
			errs = append(errs, fieldErr{"orderby", "rest_not_in_enum", fmt.Sprintf("orderby is not one of %s.", wpList(enum))})
		} else {
			q.orderby = v.s
		}
	}
	switch def.kind {
	case kindCustomer:
		q.mask = 1 << 0 // customer
		enum := []string{"all", "administrator", "editor", "author", "contributor", "subscriber", "customer", "shop_manager"}
		if v, ok := get.get("role"); ok {
			if _, found := statusIndex(enum, v.s); !found || v.arr != nil {
				errs = append(errs, fieldErr{"role", "rest_not_in_enum", fmt.Sprintf("role is not one of %s.", wpList(enum))})
			} else if v.s == "all" {
				q.mask = def.anyMask
			} else {
				st, _ := statusIndex(userRoles, v.s)
				q.mask = 1 << st
			}
		}
		if v, ok := get.get("email"); ok {
			q.email = strings.ToLower(v.s)
		}
	case kindOrder:
		q.statuses = []string{"any"}
		if v, ok := get.get("status"); ok {
			q.statuses = paramList(v)
			for i, st := range q.statuses {
				if _, found := statusIndex(def.listStatuses, st); !found {
					errs = append(errs, fieldErr{"status", "rest_not_in_enum", fmt.Sprintf("status[%d] is not one of %s.", i, wpList(def.listStatuses))})
					break
				}
			}
		}
		q.mask = statusMask(def, q.statuses)
	default:
		q.statuses = []string{"any"}
		if v, ok := get.get("status"); ok {
			if _, found := statusIndex(def.listStatuses, v.s); !found || v.arr != nil {
				errs = append(errs, fieldErr{"status", "rest_not_in_enum", fmt.Sprintf("status is not one of %s.", wpList(def.listStatuses))})
			} else {
				q.statuses = []string{v.s}
			}
		}
		q.mask = statusMask(def, q.statuses)
	}
	if len(errs) > 0 {
		return nil, invalidParams(errs)
	}
	if _, ok := get.get("offset"); !ok {
		q.skip = (q.page - 1) * q.perPage
	}
	q.fields = fieldsOf(&request{get: get})
	return q, nil
}

func statusMask(def *resDef, list []string) uint16 {
	var m uint16
	for _, st := range list {
		if st == "any" {
			m |= def.anyMask
			continue
		}
		if i, ok := statusIndex(def.statuses, st); ok {
			m |= 1 << i
		}
	}
	return m
}

// runQuery returns the total number of matches and the ids of one page.
func (s *Store) runQuery(def *resDef, q *listQ) (int, []int64) {
	c := s.colls[def.name]
	inRange := func(r *record) bool {
		return r.created >= q.cLo && r.created <= q.cHi && r.modified >= q.mLo && r.modified <= q.mHi
	}
	var excl map[int64]bool
	if len(q.exclude) > 0 {
		excl = map[int64]bool{}
		for _, id := range q.exclude {
			excl[id] = true
		}
	}
	extra := q.search != "" || q.email != "" || excl != nil
	match := func(r *record) bool {
		if !inRange(r) || excl[r.id] {
			return false
		}
		if q.search != "" || q.email != "" {
			e := extOf(r)
			if q.email != "" && strings.ToLower(e.email) != q.email {
				return false
			}
			if q.search != "" {
				hay := strings.ToLower(e.name + " " + e.sku + " " + e.code + " " + e.email + " " + e.first + " " + e.last + " " + e.username + " " + strconv.FormatInt(r.id, 10))
				if !strings.Contains(hay, q.search) {
					return false
				}
			}
		}
		return true
	}
	// Fast path: an indexed order with at most the matching column's range.
	var idx *oindex
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	otherRange := false
	switch {
	case q.hasInclude || extra:
	case q.orderby == "date" || (def.users && q.orderby == "registered_date"):
		idx, lo, hi = &c.byCreated, q.cLo, q.cHi
		otherRange = q.mLo != math.MinInt64 || q.mHi != math.MaxInt64
	case q.orderby == "modified":
		idx, lo, hi = &c.byModified, q.mLo, q.mHi
		otherRange = q.cLo != math.MinInt64 || q.cHi != math.MaxInt64
	case q.orderby == "id" || (!def.users && q.orderby != "title" && q.orderby != "slug" && q.orderby != "price"):
		idx = &c.byID
		otherRange = q.cLo != math.MinInt64 || q.cHi != math.MaxInt64 || q.mLo != math.MinInt64 || q.mHi != math.MaxInt64
	}
	if idx != nil {
		var from, to ipos
		if idx == &c.byID {
			from, to = ipos{}, idx.end()
		} else {
			from = idx.lowerBound(ikey{k: lo, vs: math.MinInt64})
			if hi == math.MaxInt64 {
				to = idx.end()
			} else {
				to = idx.lowerBound(ikey{k: hi + 1, vs: math.MinInt64})
			}
		}
		var pred func(ikey) bool
		if otherRange {
			pred = func(e ikey) bool { return inRange(s.rec(def, e.id())) }
		}
		var total int
		if pred == nil {
			total = idx.countRange(from, to, q.mask)
		} else {
			total = len(idx.collect(from, to, q.mask, false, 0, math.MaxInt, pred, nil))
		}
		var page []ikey
		if idx == &c.byID {
			page = idx.collect(from, to, q.mask, q.desc, q.skip, q.perPage, pred, make([]ikey, 0, q.perPage))
		} else { // a date column: ties in no fixed order, as MySQL returns them
			page = idx.collectTies(from, to, q.mask, q.desc, q.skip, q.perPage, total, pred, tieSeed(s.cfg().tieSeed, q.desc))
		}
		ids := make([]int64, len(page))
		for i, e := range page {
			ids[i] = e.id()
		}
		return total, ids
	}
	// Slow path: gather matches and sort.
	var cand []*record
	if q.hasInclude {
		seen := map[int64]bool{}
		for _, id := range q.include {
			if seen[id] {
				continue
			}
			seen[id] = true
			if r := s.rec(def, id); r != nil && q.mask&(1<<r.status) != 0 && match(r) {
				cand = append(cand, r)
			}
		}
	} else {
		for _, e := range c.byID.collect(ipos{}, c.byID.end(), q.mask, false, 0, math.MaxInt, nil, nil) {
			if r := s.rec(def, e.id()); r != nil && match(r) {
				cand = append(cand, r)
			}
		}
	}
	if q.orderby != "include" {
		keyStr := func(r *record) string {
			e := extOf(r)
			switch {
			case def.users:
				return strings.ToLower(e.username)
			case q.orderby == "title" && def.kind == kindProduct:
				return strings.ToLower(e.name)
			case q.orderby == "slug" && def.kind == kindProduct:
				return e.slug
			case def.kind == kindCoupon:
				return strings.ToLower(e.code)
			}
			return ""
		}
		// keyCmp compares the sort key alone (-1, 0, 1).
		keyCmp := func(a, b *record) int {
			switch q.orderby {
			case "date", "registered_date":
				return cmp.Compare(a.created, b.created)
			case "modified":
				return cmp.Compare(a.modified, b.modified)
			case "price":
				return cmp.Compare(parseAmount(productPrice(extOf(a))), parseAmount(productPrice(extOf(b))))
			case "title", "slug", "name":
				return strings.Compare(keyStr(a), keyStr(b))
			}
			return 0
		}
		less := func(a, b *record) bool {
			if c := keyCmp(a, b); c != 0 {
				return c < 0
			}
			return a.id < b.id
		}
		sort.SliceStable(cand, func(i, j int) bool {
			if q.desc {
				return less(cand[j], cand[i])
			}
			return less(cand[i], cand[j])
		})
		if tiesUnordered(def, q.orderby) {
			total := len(cand)
			page := tieWindow(cand, q.skip, q.perPage, tieBound(q.skip, q.perPage, total), tieSeed(s.cfg().tieSeed, q.desc),
				func(a, b *record) bool { return keyCmp(a, b) == 0 }, func(r *record) int64 { return r.id })
			ids := make([]int64, len(page))
			for i, r := range page {
				ids[i] = r.id
			}
			return total, ids
		}
	}
	total := len(cand)
	var ids []int64
	for i := q.skip; i < total && len(ids) < q.perPage; i++ {
		ids = append(ids, cand[i].id)
	}
	return total, ids
}

// tiesUnordered reports whether orderby is a non-unique order whose ties the
// store returns in no fixed order. orderby=id and include are exact, price
// has WooCommerce's product_id tie-breaker, and customers' name (the
// username here) and coupons' title/slug (the code) are unique.
func tiesUnordered(def *resDef, orderby string) bool {
	switch orderby {
	case "date", "registered_date", "modified":
		return true
	case "title", "slug":
		return def.kind == kindProduct
	}
	return false
}

func (s *Store) serveList(w http.ResponseWriter, req *request, def *resDef) {
	q, aerr := s.parseList(def, req.get)
	if aerr != nil {
		s.writeErr(w, aerr, allowCollection)
		return
	}
	if req.key == nil {
		s.writeErr(w, permErr("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."), "")
		return
	}
	if !sleepCtx(req.r.Context(), s.cfg().pageDelay) { // the store's query time, outside any lock
		return
	}
	s.mu.RLock()
	total, ids := s.runQuery(def, q)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:0]
	buf = append(buf, '[')
	for i, id := range ids {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = s.render(buf, def, s.rec(def, id), q.fields)
	}
	buf = append(buf, ']')
	s.mu.RUnlock()
	*bp = buf
	s.paginationHeaders(w.Header(), req, def.name, q, total)
	s.writeOK(w, 200, buf, allowCollection)
}

func (s *Store) paginationHeaders(h http.Header, req *request, res string, q *listQ, total int) {
	maxPages := 0
	if q.perPage > 0 {
		maxPages = (total + q.perPage - 1) / q.perPage
	}
	// Spelled as WordPress sends them (Set would canonicalize to X-Wp-Total).
	h["X-WP-Total"] = []string{strconv.Itoa(total)}
	h["X-WP-TotalPages"] = []string{strconv.Itoa(maxPages)}
	params := req.get.clone()
	if res == Orders {
		arr := newPHPArr()
		for i, st := range q.statuses {
			arr.set(strconv.Itoa(i), &phpVal{s: st})
		}
		params.set("status", &phpVal{arr: arr})
		if !params.has("dp") {
			params.set("dp", &phpVal{s: "2"})
		}
		if !params.has("context") {
			params.set("context", &phpVal{s: "view"})
		}
	}
	base := s.home + "/wp-json/wc/v3/" + res
	if req.restQS {
		base = s.home + "/"
		if s.cfg().noPrettyPermalinks {
			base = s.home + "/index.php" // rest_url() with plain permalinks
		}
	}
	link := func(page int) string {
		p := params.clone()
		p.set("page", &phpVal{s: strconv.Itoa(page)})
		return base + "?" + buildQuery(p, "")
	}
	var links []string
	if q.page > 1 {
		prev := q.page - 1
		if prev > maxPages {
			prev = maxPages
		}
		links = append(links, "<"+link(prev)+">; rel=\"prev\"")
	}
	if maxPages > q.page {
		links = append(links, "<"+link(q.page+1)+">; rel=\"next\"")
	}
	if len(links) > 0 {
		h.Set("Link", strings.Join(links, ", "))
	}
}

// buildQuery is WordPress' build_query over urlencode_deep'ed values.
func buildQuery(a *phpArr, prefix string) string {
	var parts []string
	for _, k := range a.keys {
		v := a.vals[k]
		key := k
		if prefix != "" {
			key = prefix + "%5B" + k + "%5D"
		}
		if v.arr != nil {
			if sub := buildQuery(v.arr, key); sub != "" {
				parts = append(parts, sub)
			}
			continue
		}
		parts = append(parts, key+"="+phpURLEncode(v.s))
	}
	return strings.Join(parts, "&")
}
