package wcevent

import (
	"errors"

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

var topLevelFields = []string{"id", "date_modified_gmt", "date_created_gmt", "status"}

// ExtractFields validates body as JSON and reads id, date_modified_gmt,
// date_created_gmt and status from its top level without building the document.
func ExtractFields(body []byte) (ObjectFields, error) {
	var f ObjectFields
	if !gjson.ValidBytes(body) {
		return f, ErrNotJSON
	}
	if !isObject(body) {
		return f, ErrNotObject
	}
	r := gjson.GetManyBytes(body, topLevelFields...)
	f.ID = Scalar(r[0])
	f.DateModifiedGMT = Scalar(r[1])
	f.DateCreatedGMT = Scalar(r[2])
	f.Status = Scalar(r[3])
	return f, nil
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
