// Package oauth1 signs requests with one-legged OAuth 1.0a exactly the way
// WooCommerce verifies them (class-wc-rest-authentication.php):
//
//   - HMAC key: consumer_secret + "&" (no token, the secret is not encoded);
//   - signed parameters: the query string only (a JSON body is never signed),
//     as PHP parses it, minus oauth_signature, sorted by key with a byte-wise
//     comparison before encoding;
//   - every key and value RFC 3986 encoded (rawurlencode: "%20" for a space,
//     "~" left alone), each pair joined as key=value and that pair encoded
//     again, pairs joined with "%26";
//   - base string: METHOD & enc(base URL without query) & param string;
//   - signature: base64(HMAC-SHA256) by default, HMAC-SHA1 on request, sent
//     percent-encoded in the query string.
//
// Array parameters: PHP turns "status[]=a&status[]=b" into status[0], status[1]
// and WooCommerce signs those keys ("status%5B0%5D=a"), sorted under the bare
// key "status". A key repeated without brackets is collapsed by PHP to its
// last value, and so it is here: both the signed set and the query returned by
// AuthorizedQuery carry only that last value, so what is signed is what PHP
// sees. Prefer comma-separated lists where WooCommerce accepts them.
//
// The functions are pure: time and nonce come in through Params.
package oauth1

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Signature methods WooCommerce accepts.
const (
	HMACSHA256 = "HMAC-SHA256"
	HMACSHA1   = "HMAC-SHA1"
)

// Names of the OAuth parameters placed in the query string.
const (
	ParamConsumerKey     = "oauth_consumer_key"
	ParamNonce           = "oauth_nonce"
	ParamSignature       = "oauth_signature"
	ParamSignatureMethod = "oauth_signature_method"
	ParamTimestamp       = "oauth_timestamp"
)

// Params holds what a signature needs besides the request itself.
type Params struct {
	ConsumerKey     string
	ConsumerSecret  string
	SignatureMethod string // HMACSHA256 (default when empty) or HMACSHA1
	Timestamp       int64  // Unix seconds; WooCommerce allows ±15 minutes
	Nonce           string // single use per key within 15 minutes
}

// Encode is PHP's rawurlencode (RFC 3986): unreserved characters
// A-Z a-z 0-9 - . _ ~ stay as they are, every other byte becomes %XX
// (upper-case hex); a space is "%20", never "+".
func Encode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// Key returns the HMAC key WooCommerce uses: the consumer secret followed by
// "&" (one-legged OAuth has no token secret).
func Key(consumerSecret string) string {
	return consumerSecret + "&"
}

// phpParam is one top-level entry of PHP's $_GET: either a scalar or an
// (ordered) array of sub-keys.
type phpParam struct {
	key     string
	value   string
	subKeys []string
	subVals []string
	isArray bool
}

// phpParams reproduces how PHP parses the query into $_GET for the shapes a
// REST client sends: plain keys (last value wins), "k[]" (appended with
// indices 0, 1, ...) and "k[sub]" (named entries). Keys of url.Values are
// visited in sorted order, which only matters for the order of entries inside
// one array when "k[]" and "k[sub]" are mixed.
func phpParams(q url.Values) []*phpParam {
	byKey := map[string]*phpParam{}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals := q[k]
		if len(vals) == 0 {
			continue
		}
		base, sub, isArr := splitArrayKey(k)
		p := byKey[base]
		if p == nil || p.isArray != isArr {
			p = &phpParam{key: base, isArray: isArr}
			byKey[base] = p
		}
		if !isArr {
			p.value = vals[len(vals)-1]
			continue
		}
		for _, v := range vals {
			if sub == "" {
				p.subKeys = append(p.subKeys, strconv.Itoa(nextIndex(p.subKeys)))
			} else {
				if i := indexOf(p.subKeys, sub); i >= 0 {
					p.subVals[i] = v
					continue
				}
				p.subKeys = append(p.subKeys, sub)
			}
			p.subVals = append(p.subVals, v)
		}
	}
	out := make([]*phpParam, 0, len(byKey))
	for _, p := range byKey {
		out = append(out, p)
	}
	// PHP's uksort with strcmp: byte-wise comparison of the raw keys.
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func splitArrayKey(k string) (base, sub string, isArray bool) {
	i := strings.IndexByte(k, '[')
	if i <= 0 || !strings.HasSuffix(k, "]") {
		return k, "", false
	}
	return k[:i], k[i+1 : len(k)-1], true
}

func nextIndex(keys []string) int {
	n := 0
	for _, k := range keys {
		if i, err := strconv.Atoi(k); err == nil && i >= n {
			n = i + 1
		}
	}
	return n
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// ParamString returns the encoded parameter string of the base string (the
// part after the second "&"): pairs sorted by raw key, key and value RFC 3986
// encoded, "key=value" encoded again, joined with "%26". oauth_signature is
// never part of it.
func ParamString(query url.Values) string {
	var pairs []string
	for _, p := range phpParams(query) {
		if p.key == ParamSignature {
			continue
		}
		k := Encode(p.key)
		if !p.isArray {
			pairs = append(pairs, Encode(k+"="+Encode(p.value)))
			continue
		}
		for i, sk := range p.subKeys {
			// WooCommerce: key . '%5B' . subkey . '%5D' = value, then encoded.
			pairs = append(pairs, Encode(k+"%5B"+sk+"%5D="+Encode(p.subVals[i])))
		}
	}
	return strings.Join(pairs, "%26")
}

// BaseURL returns the URL part of the base string: scheme, host and path of u,
// without query or fragment. WooCommerce rebuilds it from the WordPress home
// URL, so u's scheme and host must be the store's home URL exactly.
func BaseURL(u *url.URL) string {
	v := url.URL{Scheme: strings.ToLower(u.Scheme), Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}

// BaseString returns METHOD&enc(baseURL)&paramString for the given request.
func BaseString(method, baseURL string, query url.Values) string {
	return strings.ToUpper(method) + "&" + Encode(baseURL) + "&" + ParamString(query)
}

// Signature returns base64(HMAC(key, baseString)) with the hash named by
// signatureMethod (HMAC-SHA256 when empty). key is usually Key(secret).
func Signature(signatureMethod, key, baseString string) (string, error) {
	var h func() hash.Hash
	switch signatureMethod {
	case "", HMACSHA256:
		h = sha256.New
	case HMACSHA1:
		h = sha1.New
	default:
		return "", fmt.Errorf("unsupported OAuth signature method %q (want %s or %s)", signatureMethod, HMACSHA256, HMACSHA1)
	}
	mac := hmac.New(h, []byte(key))
	mac.Write([]byte(baseString))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// AuthorizedQuery returns the query to send: the request's own parameters as
// PHP will see them, plus oauth_consumer_key, oauth_nonce,
// oauth_signature_method, oauth_timestamp and the percent-encoded
// oauth_signature. Any oauth_* parameter already in query is replaced.
// baseURL is the request URL without query (see BaseURL).
func AuthorizedQuery(method, baseURL string, query url.Values, p Params) (string, error) {
	if p.ConsumerKey == "" || p.ConsumerSecret == "" {
		return "", fmt.Errorf("oauth1: consumer key and secret are required")
	}
	if p.Nonce == "" {
		return "", fmt.Errorf("oauth1: a nonce is required")
	}
	sigMethod := p.SignatureMethod
	if sigMethod == "" {
		sigMethod = HMACSHA256
	}
	signed := url.Values{}
	for k, v := range query {
		if strings.HasPrefix(k, "oauth_") || len(v) == 0 {
			continue
		}
		if _, _, isArr := splitArrayKey(k); !isArr {
			v = v[len(v)-1:] // PHP keeps the last value of a repeated plain key
		}
		signed[k] = append([]string(nil), v...)
	}
	signed.Set(ParamConsumerKey, p.ConsumerKey)
	signed.Set(ParamNonce, p.Nonce)
	signed.Set(ParamSignatureMethod, sigMethod)
	signed.Set(ParamTimestamp, strconv.FormatInt(p.Timestamp, 10))

	sig, err := Signature(sigMethod, Key(p.ConsumerSecret), BaseString(method, baseURL, signed))
	if err != nil {
		return "", err
	}
	return encodeQuery(signed) + "&" + ParamSignature + "=" + Encode(sig), nil
}

// encodeQuery writes q sorted by key with RFC 3986 encoding, keeping the
// order of values within a key (PHP assigns array indices in that order).
func encodeQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(Encode(k))
			b.WriteByte('=')
			b.WriteString(Encode(v))
		}
	}
	return b.String()
}

// NewNonce returns a fresh random 32-character hexadecimal nonce.
func NewNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms (Go ≥ 1.24 panics
		// internally instead); keep the signature simple.
		panic(err)
	}
	return hex.EncodeToString(b[:])
}
