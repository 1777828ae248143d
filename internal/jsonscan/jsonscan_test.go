package jsonscan

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

// checkSplit compares SplitArray with gjson (validity, elements).
func checkSplit(t testing.TB, raw []byte) {
	items, isArr, valid := SplitArray(raw, nil)
	want := gjson.ValidBytes(raw)
	if want != json.Valid(raw) {
		return // the reference validators disagree: no expectation
	}
	require.Equal(t, want, valid, "valid(%q)", raw)
	if !valid {
		return
	}
	doc := gjson.ParseBytes(raw)
	require.Equal(t, doc.IsArray(), isArr, "%q", raw)
	if !isArr {
		return
	}
	var elems []string
	doc.ForEach(func(_, v gjson.Result) bool { elems = append(elems, v.Raw); return true })
	require.Len(t, items, len(elems), "%q", raw)
	for i := range elems {
		require.Equal(t, elems[i], string(items[i]), "%q", raw)
	}
	checkFields(t, raw, elems)
}

// fieldKeys are the keys checkFields picks ("" matches nothing).
var fieldKeys = []string{"id", "a", "", "date_modified_gmt", "status"}

// checkFields compares the fields SplitArrayFields picks from a valid
// array with gjson: the first top-level occurrence of each key, nil for an
// element that is not an object or has a key with an escape.
func checkFields(t testing.TB, raw []byte, elems []string) {
	items, fields, isArr, valid := SplitArrayFields(raw, nil, fieldKeys)
	require.True(t, valid && isArr, "%q", raw)
	require.Len(t, items, len(elems), "%q", raw)
	require.Len(t, fields, len(elems), "%q", raw)
	for i, el := range elems {
		v := gjson.Parse(el)
		escaped := false
		want := make([]json.RawMessage, len(fieldKeys))
		v.ForEach(func(k, val gjson.Result) bool {
			if strings.Contains(k.Raw, `\`) {
				escaped = true
			}
			for n, fk := range fieldKeys {
				if fk != "" && k.Str == fk && want[n] == nil {
					want[n] = json.RawMessage(val.Raw)
				}
			}
			return true
		})
		if !v.IsObject() || escaped {
			assert.Nil(t, fields[i], "element %d of %q", i, raw)
			continue
		}
		require.Len(t, fields[i], len(fieldKeys), "element %d of %q", i, raw)
		for n := range fieldKeys {
			assert.Equal(t, string(want[n]), string(fields[i][n]), "element %d key %q of %q", i, fieldKeys[n], raw)
		}
	}
}

func fixtureBody(t testing.TB, name string) []byte {
	raw, err := os.ReadFile(filepath.Join("..", "..", "tests", "fixtures", "woocommerce", "rest", name))
	require.NoError(t, err)
	s := strings.ReplaceAll(string(raw), "\r\n", "\n")
	return []byte(s[strings.Index(s, "\n\n")+2:])
}

var splitSeeds = []string{
	`[]`, ` [ ] `, `[1]`, `[1,2]`, `[{"a":[1,{"b":"c"}]},"x\"y",null,true,false,-0.5e+3,0,{}]`,
	`{}`, `{"a":1}`, `"s"`, `12`, `null`, `[1,]`, `[,1]`, `[1 2]`, `{"a"}`, `{"a":}`, `{1:2}`, `[01]`, `[1.]`,
	`[.5]`, `[1e]`, `[-]`, `[tru]`, `[nul]`, `["\u12"]`, `["\u12g4"]`, `["\x"]`, "[\"a\tb\"]", "[\"\x01\"]",
	`["\\"]`, `["\\\""]`, `["ünïcödé ✓"]`, `[1]x`, `[1]]`, `[[[[[]]]]]`, `[[[[[]]]]`, `{"a":{"b":{}}}`,
	`[{"a":1,"a":2}]`, "[\n{\"id\" : 1 }\r\n,\t{\"id\":2}\n]\n", `["0123456789abcdef0123456789abcdef"]`,
	`["0123456789abcde\"f0123456789abcdef"]`, `[{"id":1,"a":[{"id":2}],"a":3,"":4,"status":"x"},{"b":{"id":5}},[{"id":6}],7,{},{"i\u0064":8,"id":9},{"id" : "q" , "date_modified_gmt":null}]`, `[` + strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000) + `]`, ``, ` `,
}

func TestSplitValidArrayMatchesGJSON(t *testing.T) {
	for _, s := range splitSeeds {
		checkSplit(t, []byte(s))
	}
	for _, name := range []string{"orders.list.http-oauth1.http", "products.list.http-oauth1.http", "customers.list.http-oauth1.http", "webhooks.list.http-oauth1.http"} {
		body := fixtureBody(t, name)
		items, isArr, valid := SplitArray(body, nil)
		require.True(t, valid && isArr, name)
		require.NotEmpty(t, items, name)
		checkSplit(t, body)
		// every truncation (a proxy cutting the answer) is invalid, as gjson says
		for n := range len(body) {
			checkSplit(t, body[:n])
		}
	}
	// deep nesting does not recurse
	deep := []byte(strings.Repeat("[", 1<<20) + strings.Repeat("]", 1<<20))
	_, isArr, valid := SplitArray(deep, nil)
	assert.True(t, valid && isArr)
}

func FuzzSplitValidArray(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkSplit(t, raw) })
}

func BenchmarkSplitValidArray(b *testing.B) {
	body := fixtureBody(b, "orders.list.http-oauth1.http")
	page := []byte("[" + strings.Repeat(strings.Trim(string(body), "[]\n")+",", 50))
	page[len(page)-1] = ']'
	b.Run("onepass", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		items := make([]json.RawMessage, 0, 100)
		for range b.N {
			if _, _, ok := SplitArray(page, items[:0]); !ok {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("onepass_fields", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		items := make([]json.RawMessage, 0, 100)
		keys := []string{"id", "date_modified_gmt", "date_created_gmt", "status"}
		for range b.N {
			if _, fields, _, ok := SplitArrayFields(page, items[:0], keys); !ok || fields[0][0] == nil {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("gjson", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		for range b.N {
			if !gjson.ValidBytes(page) {
				b.Fatal("invalid")
			}
			items := make([]json.RawMessage, 0, 100)
			gjson.ParseBytes(page).ForEach(func(_, v gjson.Result) bool {
				items = append(items, json.RawMessage(page[v.Index:v.Index+len(v.Raw)]))
				return true
			})
		}
	})
}

// checkObject compares ObjectFields with encoding/json.Valid and gjson: the
// result class, and the first top-level occurrence of each key.
func checkObject(t testing.TB, raw []byte) {
	vals := make([]json.RawMessage, len(fieldKeys))
	got := ObjectFields(raw, fieldKeys, vals)
	valid := json.Valid(raw)
	if gjson.ValidBytes(raw) != valid {
		return // the reference validators disagree: no expectation
	}
	switch {
	case !valid:
		require.Equal(t, Invalid, got, "%q", raw)
		return
	case !gjson.ParseBytes(raw).IsObject():
		require.Equal(t, NotObject, got, "%q", raw)
		return
	}
	want := make([]json.RawMessage, len(fieldKeys))
	escaped := false
	gjson.ParseBytes(raw).ForEach(func(k, v gjson.Result) bool {
		escaped = escaped || strings.Contains(k.Raw, `\`)
		for n, fk := range fieldKeys {
			if fk != "" && k.Str == fk && want[n] == nil {
				want[n] = json.RawMessage(v.Raw)
			}
		}
		return true
	})
	if escaped {
		require.Equal(t, EscapedKey, got, "%q", raw)
		for n := range vals {
			require.Nil(t, vals[n], "%q", raw)
		}
		return
	}
	require.Equal(t, Object, got, "%q", raw)
	for n := range fieldKeys {
		require.Equal(t, string(want[n]), string(vals[n]), "key %q of %q", fieldKeys[n], raw)
	}
}

var objectSeeds = []string{
	`{}`, ` { } `, `{"id":1}`, `{"id":1,"id":2,"status":"a","status":"b"}`, `{"i\u0064":7,"status":"x"}`,
	`{"meta":{"id":99,"status":"nested"},"list":[{"id":3}],"id":"abc","date_modified_gmt":null}`,
	` { "id" : true , "status" : false , "a" : 1.5e3 } `, `{"id":{"x":1},"status":["y"],"a":""}`,
	`{"a":[[[[{"b":[1,2,{"c":"d"}]}]]]],"id":01}`, `{"a":[1,],"id":1}`, `{"a":{"b":1,},"id":1}`, `{"a":[1 2],"id":1}`,
	`{"id":1}x`, "{\"id\":\"tab\tin string\"}", `{"id":"\x"}`, `{"id":1.}`, `{"id":-}`, `{"id":1e}`, `{"id":nul}`,
	`{"id":tru,"x":1}`, `{"id":"\ud83d\ude00","status":"\/"}`, `{"id":1`, `{"id"}`, `{"id":}`, `{1:2}`, `{"id":1,}`,
	`[{"id":1}]`, `"id"`, `12`, `null`, ``, ` `, `{"":1,"id":2}`, `{"id":[]}`, `{"id":{}}`,
	`{"x":` + strings.Repeat(`{"a":[`, 2000) + "1" + strings.Repeat("]}", 2000) + `,"id":5}`,
	`{"x":` + strings.Repeat(`{"a":[`, 2000) + "1" + strings.Repeat("]}", 1999) + `],"id":5}`,
}

func TestObjectFieldsMatchesGJSON(t *testing.T) {
	for _, s := range objectSeeds {
		checkObject(t, []byte(s))
	}
	body := fixtureBody(t, "orders.list.http-oauth1.http")
	items, _, _ := SplitArray(body, nil)
	require.NotEmpty(t, items)
	order := items[0]
	vals := make([]json.RawMessage, len(fieldKeys))
	require.Equal(t, Object, ObjectFields(order, fieldKeys, vals))
	assert.NotEmpty(t, vals[0], "a captured order has an id")
	assert.NotEmpty(t, vals[3], "and a date_modified_gmt")
	// every truncation (a proxy cutting the delivery) is invalid
	for n := range len(order) {
		checkObject(t, order[:n])
	}
	// deep nesting does not recurse
	deep := []byte(`{"a":` + strings.Repeat("[", 1<<20) + strings.Repeat("]", 1<<20) + `,"id":3}`)
	require.Equal(t, Object, ObjectFields(deep, fieldKeys, vals))
	assert.Equal(t, "3", string(vals[0]))
}

func FuzzObjectFields(f *testing.F) {
	for _, s := range objectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkObject(t, raw) })
}
