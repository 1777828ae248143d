package wcevent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// referenceFields is the straightforward extraction ExtractFields must agree
// with: gjson's validation, then one gjson.Get per field.
func referenceFields(body []byte) (ObjectFields, error) {
	if !gjson.ValidBytes(body) {
		return ObjectFields{}, ErrNotJSON
	}
	if !isObject(body) {
		return ObjectFields{}, ErrNotObject
	}
	r := gjson.GetManyBytes(body, "id", "date_modified_gmt", "date_created_gmt", "status")
	return ObjectFields{ID: Scalar(r[0]), DateModifiedGMT: Scalar(r[1]), DateCreatedGMT: Scalar(r[2]), Status: Scalar(r[3])}, nil
}

// isObject reports whether valid JSON is an object: its first byte that is
// not white space is '{'.
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

var fieldsCases = []string{
	`{"id":20,"status":"processing","date_created_gmt":"2026-11-27T23:48:19","date_modified_gmt":"2026-11-27T23:48:20"}`,
	`{"id":1,"id":2,"status":"a","status":"b"}`,
	`{"\u0069d":7,"st\u0061tus":"esc\"aped"}`,
	`{"meta":{"id":99,"status":"nested"},"list":[{"id":3}],"id":"abc","date_modified_gmt":null}`,
	` { "id" : true , "status" : false , "date_created_gmt" : 1.5e3 } `,
	`{"id":{"x":1},"status":["y"],"date_modified_gmt":"","date_created_gmt":null}`,
	`{}`,
	`{"other":1}`,
	`[{"id":1}]`,
	`{"id":1`,
	`"id"`,
	``,
	`{"id":-0.5e-3,"status":"\u00e9t\u00e9"}`,
	`{"a":[[[[{"b":[1,2,{"c":"d"}]}]]]],"id":01}`,
	`{"a":[1,],"id":1}`,
	`{"a":{"b":1,},"id":1}`,
	`{"a":[1 2],"id":1}`,
	`{"id":1}x`,
	`{"id":"tab	in string"}`,
	`{"id":"\x"}`,
	`{"id":1.}`,
	`{"id":-}`,
	`{"id":1e}`,
	`{"id":nul}`,
	`{"id":tru,"x":1}`,
	`{"id":"\ud83d\ude00","status":"\/"}`,
}

func TestExtractFieldsMatchesGetMany(t *testing.T) {
	bodies := append([]string{}, fieldsCases...)
	dir := filepath.Join("..", "..", "tests", "fixtures", "woocommerce", "webhooks")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".http") {
			bodies = append(bodies, string(capturedBody(t, e.Name())))
		}
	}
	require.Greater(t, len(bodies), len(fieldsCases)+5, "the captured deliveries are part of the cases")
	deep := strings.Repeat(`{"a":[`, 2000) + "1" + strings.Repeat("]}", 2000) // within encoding/json's depth limit
	bodies = append(bodies, `{"x":`+deep+`,"id":5}`, `{"x":`+deep[:len(deep)-1]+`,"id":5}`)
	for _, b := range bodies {
		want, wantErr := referenceFields([]byte(b))
		got, err := ExtractFields([]byte(b))
		assert.Equal(t, !json.Valid([]byte(b)), err == ErrNotJSON, "%.80s", b)
		assert.Equal(t, wantErr, err, "%.80s", b)
		assert.Equal(t, want, got, "%.80s", b)
	}
	f, err := ExtractFields([]byte(fieldsCases[1]))
	require.NoError(t, err)
	assert.Equal(t, ObjectFields{ID: "1", Status: "a"}, f, "the first of a repeated key counts")
	f, err = ExtractFields([]byte(fieldsCases[2]))
	require.NoError(t, err)
	assert.Equal(t, ObjectFields{ID: "7", Status: `esc"aped`}, f, "escaped keys and values are decoded")
}

// The fields are copies: the handler reuses its body buffer for the next
// request.
func TestExtractFieldsCopiesValues(t *testing.T) {
	body := []byte(`{"id":"abc","status":"processing","date_created_gmt":"2026-11-27T23:48:19","date_modified_gmt":"2026-11-27T23:48:20"}`)
	f, err := ExtractFields(body)
	require.NoError(t, err)
	for i := range body {
		body[i] = 'x'
	}
	assert.Equal(t, ObjectFields{ID: "abc", Status: "processing", DateCreatedGMT: "2026-11-27T23:48:19", DateModifiedGMT: "2026-11-27T23:48:20"}, f)
}

func FuzzExtractFields(f *testing.F) {
	for _, c := range fieldsCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := ExtractFields(body)
		if valid := json.Valid(body); (err == ErrNotJSON) == valid {
			t.Fatalf("%q: encoding/json.Valid says %v, ExtractFields %v", body, valid, err)
		}
		want, wantErr := referenceFields(body)
		if err != wantErr || got != want {
			t.Fatalf("%q: got %+v, %v; gjson.Get per field gives %+v, %v", body, got, err, want, wantErr)
		}
	})
}

// BenchmarkExtractFields compares the one pass with one gjson.Get per
// field on the captured 2.5 KB order.updated delivery (its date fields are
// near the end, as in every WooCommerce order).
func BenchmarkExtractFields(b *testing.B) {
	body := capturedBody(b, "0016-order.updated-order-updated.http")
	for name, fn := range map[string]func([]byte) (ObjectFields, error){"one_pass": ExtractFields, "get_per_field": referenceFields} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fn(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
