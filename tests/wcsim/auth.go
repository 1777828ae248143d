package wcsim

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// phpArr is an ordered PHP array as parse_str builds it from a query string.
// A value is either a string (arr == nil) or a nested array.
type phpArr struct {
	keys []string
	vals map[string]*phpVal
	next int
}

type phpVal struct {
	s   string
	arr *phpArr
}

func newPHPArr() *phpArr { return &phpArr{vals: map[string]*phpVal{}} }

func (a *phpArr) get(k string) (*phpVal, bool) {
	if a == nil {
		return nil, false
	}
	v, ok := a.vals[k]
	return v, ok
}

// str returns the scalar value of key k ("" for arrays or absent keys).
func (a *phpArr) str(k string) string {
	if v, ok := a.get(k); ok && v.arr == nil {
		return v.s
	}
	return ""
}

func (a *phpArr) has(k string) bool { _, ok := a.get(k); return ok }

func (a *phpArr) set(k string, v *phpVal) {
	if _, ok := a.vals[k]; !ok {
		a.keys = append(a.keys, k)
	}
	a.vals[k] = v
	if n, err := strconv.Atoi(k); err == nil && n >= a.next {
		a.next = n + 1
	}
}

func (a *phpArr) del(k string) {
	if _, ok := a.vals[k]; !ok {
		return
	}
	delete(a.vals, k)
	for i, x := range a.keys {
		if x == k {
			a.keys = append(a.keys[:i:i], a.keys[i+1:]...)
			break
		}
	}
}

func (a *phpArr) clone() *phpArr {
	if a == nil {
		return newPHPArr()
	}
	c := newPHPArr()
	c.next = a.next
	for _, k := range a.keys {
		v := a.vals[k]
		nv := &phpVal{s: v.s}
		if v.arr != nil {
			nv.arr = v.arr.clone()
		}
		c.keys = append(c.keys, k)
		c.vals[k] = nv
	}
	return c
}

// list returns a scalar or array value as a list of strings.
func (v *phpVal) list() []string {
	if v.arr == nil {
		return []string{v.s}
	}
	var out []string
	for _, k := range v.arr.keys {
		if x := v.arr.vals[k]; x.arr == nil {
			out = append(out, x.s)
		}
	}
	return out
}

// parsePHPQuery mimics PHP's parse_str (as used for $_GET / $_POST).
func parsePHPQuery(raw string) *phpArr {
	root := newPHPArr()
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			key = k
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			val = v
		}
		key = strings.TrimLeft(key, " ")
		if key == "" {
			continue
		}
		base := key
		var subs []string
		if i := strings.IndexByte(key, '['); i > 0 {
			rest := key[i:]
			ok := true
			var parsed []string
			for len(rest) > 0 && rest[0] == '[' {
				j := strings.IndexByte(rest, ']')
				if j < 0 {
					ok = false
					break
				}
				parsed = append(parsed, rest[1:j])
				rest = rest[j+1:]
			}
			if ok && len(parsed) > 0 {
				base, subs = key[:i], parsed
			}
		}
		base = strings.Map(func(r rune) rune {
			if r == ' ' || r == '.' || r == '[' {
				return '_'
			}
			return r
		}, base)
		if base == "" {
			continue
		}
		cur := root
		path := append([]string{base}, subs...)
		for i, p := range path {
			if p == "" && i > 0 {
				p = strconv.Itoa(cur.next)
			}
			if i == len(path)-1 {
				cur.set(p, &phpVal{s: val})
				break
			}
			ex, ok := cur.vals[p]
			if !ok || ex.arr == nil {
				ex = &phpVal{arr: newPHPArr()}
				cur.set(p, ex)
			}
			cur = ex.arr
		}
	}
	return root
}

// merge is array_merge for string keys: b's keys override a's in place.
func phpMerge(a, b *phpArr) *phpArr {
	out := a.clone()
	if b == nil {
		return out
	}
	for _, k := range b.keys {
		v := b.vals[k]
		if _, err := strconv.Atoi(k); err == nil {
			out.set(strconv.Itoa(out.next), v)
			continue
		}
		out.set(k, v)
	}
	return out
}

// phpEmpty is PHP's empty() for a request parameter.
func phpEmpty(a *phpArr, k string) bool {
	v, ok := a.get(k)
	if !ok {
		return true
	}
	if v.arr != nil {
		return len(v.arr.keys) == 0
	}
	return v.s == "" || v.s == "0"
}

// rawurlencode is PHP's rawurlencode (RFC 3986: unreserved kept, %XX upper).
func rawurlencode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// phpURLEncode is PHP's urlencode (space as +, ~ encoded).
func phpURLEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '-' || c == '_' || c == '.':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// rawurldecode is PHP's rawurldecode (+ stays +; bad escapes kept).
func rawurldecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

var oauthHeaderParam = regexp.MustCompile(`(oauth_[a-z_-]*)=(:?"([^"]*)"|([^,]*))`)

func parseOAuthHeader(h string) *phpArr {
	out := newPHPArr()
	if !strings.HasPrefix(h, "OAuth ") {
		return out
	}
	for _, m := range oauthHeaderParam.FindAllStringSubmatch(h, -1) {
		v := m[3]
		if v == "" {
			v = m[4]
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			dv = v
		}
		out.set(m[1], &phpVal{s: dv})
	}
	return out
}

// authState is what WooCommerce's authenticator concluded for one request.
type authState struct {
	key *Key
	err *apiError // set_error(): returned as 401 before dispatch
}

func authError(msg string) *apiError {
	return &apiError{status: 401, code: "woocommerce_rest_authentication_error", message: msg, class: ecAuth}
}

// authenticate reproduces WC_REST_Authentication::authenticate for a wc/
// route: Basic/query keys only when is_ssl(), then one-legged OAuth 1.0a.
func (s *Store) authenticate(r *http.Request, get, post *phpArr, isSSL bool) authState {
	var st authState
	if isSSL {
		var ck, cs string
		if !phpEmpty(get, "consumer_key") && !phpEmpty(get, "consumer_secret") {
			ck, cs = get.str("consumer_key"), get.str("consumer_secret")
		} else if u, p, ok := r.BasicAuth(); ok && u != "" && p != "" && u != "0" && p != "0" {
			ck, cs = u, p
		}
		if ck != "" && cs != "" {
			if k, ok := s.keys[ck]; ok {
				if subtle.ConstantTimeCompare([]byte(k.ConsumerSecret), []byte(cs)) == 1 {
					kk := k
					st.key = &kk
					return st
				}
				st.err = authError("Consumer secret is invalid.")
			}
		}
	}
	// OAuth 1.0a
	params := phpMerge(get, post)
	if h := r.Header.Get("Authorization"); h != "" {
		h = strings.TrimSpace(h)
		if strings.HasPrefix(strings.ToLower(h), "oauth ") {
			params = phpMerge(params, parseOAuthHeader("OAuth "+strings.TrimSpace(h[6:])))
		}
	}
	names := []string{"oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method"}
	var missing []string
	haveOne := false
	for _, n := range names {
		if phpEmpty(params, n) {
			missing = append(missing, n)
		} else {
			haveOne = true
		}
	}
	if !haveOne {
		return st
	}
	if len(missing) > 0 {
		word := "parameter"
		if len(missing) > 1 {
			word = "parameters"
		}
		st.err = &apiError{status: 401, code: "woocommerce_rest_authentication_missing_parameter",
			message: fmt.Sprintf("Missing OAuth %s %s", word, strings.Join(missing, ", ")), class: ecAuth}
		return st
	}
	k, ok := s.keys[params.str("oauth_consumer_key")]
	if !ok {
		st.err = authError("Consumer key is invalid.")
		return st
	}
	if e := s.checkOAuthSignature(r, k, params, isSSL); e != nil {
		st.err = e
		return st
	}
	if e := s.checkTimestampNonce(k, params.str("oauth_timestamp"), params.str("oauth_nonce")); e != nil {
		st.err = e
		return st
	}
	st.key = &k
	return st
}

// oauthBaseString builds the string WooCommerce signs.
func oauthBaseString(method, baseURL string, params *phpArr) string {
	p := params.clone()
	p.del("oauth_signature")
	keys := append([]string(nil), p.keys...)
	sort.Strings(keys) // strcmp order (byte-wise)
	var pairs []string
	var join func(prefix string, v *phpVal)
	join = func(k string, v *phpVal) {
		if v.arr == nil {
			pairs = append(pairs, rawurlencode(k+"="+rawurlencode(v.s)))
			return
		}
		for _, sk := range v.arr.keys {
			join(k+"%5B"+sk+"%5D", v.arr.vals[sk])
		}
	}
	for _, k := range keys {
		join(rawurlencode(k), p.vals[k])
	}
	return strings.ToUpper(method) + "&" + rawurlencode(baseURL) + "&" + strings.Join(pairs, "%26")
}

func (s *Store) oauthBaseURL(r *http.Request, isSSL bool) string {
	path := r.RequestURI
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		if u, err := url.Parse(path); err == nil {
			path = u.EscapedPath()
		}
	}
	home, _ := url.Parse(s.home)
	scheme := "http"
	if isSSL {
		scheme = "https"
	}
	homePath := strings.TrimRight(home.Path, "/")
	rel := strings.TrimPrefix(path, homePath+"/")
	return scheme + "://" + home.Host + homePath + "/" + strings.TrimLeft(rel, "/")
}

func (s *Store) checkOAuthSignature(r *http.Request, k Key, params *phpArr, isSSL bool) *apiError {
	consumerSig := rawurldecode(strings.ReplaceAll(params.str("oauth_signature"), " ", "+"))
	base := oauthBaseString(r.Method, s.oauthBaseURL(r, isSSL), params)
	var h func() hash.Hash
	switch params.str("oauth_signature_method") {
	case "HMAC-SHA1":
		h = sha1.New
	case "HMAC-SHA256":
		h = sha256.New
	default:
		return authError("Invalid signature - signature method is invalid.")
	}
	mac := hmac.New(h, []byte(k.ConsumerSecret+"&"))
	mac.Write([]byte(base))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(sig), []byte(consumerSig)) != 1 {
		return authError("Invalid signature - provided signature does not match.")
	}
	return nil
}

// phpInt is PHP's (int) cast of a string: leading integer digits or 0.
func phpInt(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.ParseInt(s[:end], 10, 64)
	return n
}

const oauthWindow = 15 * 60

func (s *Store) checkTimestampNonce(k Key, ts, nonce string) *apiError {
	t := phpInt(ts)
	now := s.nowUnix()
	if t < now-oauthWindow || t > now+oauthWindow {
		return authError("Invalid timestamp.")
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	used := s.nonces[k.ConsumerKey]
	if used == nil {
		used = map[string]int64{}
		s.nonces[k.ConsumerKey] = used
	}
	for n, at := range used {
		if at < now-oauthWindow {
			delete(used, n)
		}
	}
	if _, dup := used[nonce]; dup {
		return authError("Invalid nonce - nonce has already been used.")
	}
	used[nonce] = t
	return nil
}

// checkKeyPermission is WC_REST_Authentication::check_permissions.
func checkKeyPermission(k *Key, method string) *apiError {
	switch method {
	case http.MethodGet, http.MethodHead:
		if k.Permissions != PermRead && k.Permissions != PermReadWrite {
			return &apiError{status: 401, code: "woocommerce_rest_authentication_error", message: "The API key provided does not have read permissions.", class: ecKeyPerm}
		}
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if k.Permissions != PermWrite && k.Permissions != PermReadWrite {
			return &apiError{status: 401, code: "woocommerce_rest_authentication_error", message: "The API key provided does not have write permissions.", class: ecKeyPerm}
		}
	case http.MethodOptions:
	default:
		return &apiError{status: 401, code: "woocommerce_rest_authentication_error", message: "Unknown request method.", class: ecKeyPerm}
	}
	return nil
}
