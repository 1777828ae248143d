package wcevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/internal/jsonscan"
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

// fieldKeys are the top-level keys ExtractFields reads, in ObjectFields order.
var fieldKeys = []string{"id", "date_modified_gmt", "date_created_gmt", "status"}

// ExtractFields validates body as JSON and reads id, date_modified_gmt,
// date_created_gmt and status from its top level without building the
// document, in one pass over body (jsonscan.ObjectFields): validation and
// extraction together, which is most of what a webhook delivery costs
// beyond HTTP and the HMAC. As with gjson.Get, the first member of a
// repeated key counts. The strings returned are copies (body may be a
// reused buffer).
func ExtractFields(body []byte) (ObjectFields, error) {
	var f ObjectFields
	var vals [4]json.RawMessage
	switch jsonscan.ObjectFields(body, fieldKeys, vals[:]) {
	case jsonscan.NotObject:
		return f, ErrNotObject
	case jsonscan.Invalid:
		return f, ErrNotJSON
	case jsonscan.EscapedKey:
		// A top-level key written with escapes (never seen from
		// WooCommerce): let gjson decode the keys.
		r := gjson.GetManyBytes(body, fieldKeys...)
		f.ID, f.DateModifiedGMT, f.DateCreatedGMT, f.Status = Scalar(r[0]), Scalar(r[1]), Scalar(r[2]), Scalar(r[3])
		return f, nil
	}
	var strs [4][]byte
	n := 0
	for i, v := range vals {
		strs[i] = rawScalar(v)
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

// rawScalar is what Scalar gives for the valid JSON value raw: a string's
// content (decoded when it has escapes), a number's or boolean's text, nil
// for null, objects, arrays and an absent value.
func rawScalar(raw []byte) []byte {
	if len(raw) == 0 {
		return nil
	}
	switch raw[0] {
	case '"':
		if bytes.IndexByte(raw, '\\') >= 0 {
			return []byte(gjson.ParseBytes(raw).Str)
		}
		return raw[1 : len(raw)-1]
	case 'n', '{', '[':
		return nil
	}
	return raw
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
