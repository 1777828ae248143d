package wcevent

import (
	"errors"
	"strings"

	"github.com/tidwall/gjson"
)

// ObjectFields are the fields of a WooCommerce object the normalizer needs.
type ObjectFields struct {
	ID              string // decimal id, or the string id as sent
	DateModifiedGMT string // raw value, "" when absent or null
	DateCreatedGMT  string
	Status          string
}

// Errors returned by ExtractFields.
var (
	ErrNotJSON   = errors.New("body is not valid JSON")
	ErrNotObject = errors.New("body is not a JSON object")
)

// ExtractFields validates body as JSON and reads id, date_modified_gmt,
// date_created_gmt and status from its top level without building the
// document, in one pass over body (scanObject): validation and extraction
// together, which is most of what a webhook delivery costs beyond HTTP. As
// with gjson.Get, the first member of a repeated key counts. The strings
// returned are copies (body may be a reused buffer).
func ExtractFields(body []byte) (ObjectFields, error) {
	var f ObjectFields
	var vals [4]span
	switch scanObject(body, &vals) {
	case scanNotObject:
		if gjson.ValidBytes(body) {
			return f, ErrNotObject
		}
		return f, ErrNotJSON
	case scanInvalid:
		return f, ErrNotJSON
	case scanEscapedKey:
		// A top-level key written with escapes (never seen from
		// WooCommerce): let gjson decode the keys.
		r := gjson.GetManyBytes(body, "id", "date_modified_gmt", "date_created_gmt", "status")
		f.ID, f.DateModifiedGMT, f.DateCreatedGMT, f.Status = Scalar(r[0]), Scalar(r[1]), Scalar(r[2]), Scalar(r[3])
		return f, nil
	}
	var strs [4][]byte
	n := 0
	for i, v := range vals {
		strs[i] = v.scalar(body)
		n += len(strs[i])
	}
	if n == 0 {
		return f, nil
	}
	// One allocation for the four values.
	var b strings.Builder
	b.Grow(n)
	for _, v := range strs {
		b.Write(v)
	}
	all := b.String()
	for i, dst := range [...]*string{&f.ID, &f.DateModifiedGMT, &f.DateCreatedGMT, &f.Status} {
		*dst, all = all[:len(strs[i])], all[len(strs[i]):]
	}
	return f, nil
}

// fieldIndex is the index in ObjectFields order of a top-level key the
// normalizer reads, -1 for any other key.
func fieldIndex(key []byte) int {
	switch string(key) { // no allocation: compared in place
	case "id":
		return 0
	case "date_modified_gmt":
		return 1
	case "date_created_gmt":
		return 2
	case "status":
		return 3
	}
	return -1
}

// isObject reports whether valid JSON is an object: its first byte that is
// not white space is '{' (without copying the body, as gjson.ParseBytes
// would).
func isObject(body []byte) bool {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

// Scalar is the string form of a string, number or boolean; "" for null, absent,
// objects and arrays.
func Scalar(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		return r.Raw
	case gjson.True, gjson.False:
		return r.Raw
	default:
		return ""
	}
}
