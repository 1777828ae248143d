package wcpoll

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/datefmt"
)

// TestTopLevelFieldsMatchesGJSON checks the one-pass reader against gjson
// on captured lists and on awkward objects.
func TestTopLevelFieldsMatchesGJSON(t *testing.T) {
	keys := []string{"id", "date_modified_gmt", "date_created_gmt", "status"}
	var objs []string
	for _, name := range []string{"orders.list.http-oauth1.http", "products.list.http-oauth1.http", "customers.list.http-oauth1.http", "coupons.list.http-oauth1.http"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "tests", "fixtures", "woocommerce", "rest", name))
		require.NoError(t, err)
		s := strings.ReplaceAll(string(raw), "\r\n", "\n")
		body := s[strings.Index(s, "\n\n")+2:]
		require.True(t, gjson.Valid(body), name)
		n := 0
		gjson.Parse(body).ForEach(func(_, v gjson.Result) bool {
			objs = append(objs, v.Raw)
			n++
			return true
		})
		require.Positive(t, n, name)
	}
	objs = append(objs,
		`{}`, ` { } `,
		`{"a":{"id":1,"status":"x"},"b":["}",{"]":"\"{"}],"id":7,"status":"pro\"cessing","date_modified_gmt":"2026-01-02T03:04:05"}`,
		`{"id":"abc","id":"second","status":null,"date_created_gmt":false}`,
		`{"x":"a\\","id":12.5e3 , "status" : "trash" }`,
		`{"id":-3,"date_modified_gmt":"2026-01-02T03:04:05","date_created_gmt":"2026-01-01T00:00:00","status":"done","after":1}`,
	)
	for _, o := range objs {
		var got [4]gjson.Result
		require.True(t, topLevelFields([]byte(o), keys, &got), o)
		want := gjson.GetMany(o, keys...)
		for i := range keys {
			assert.Equal(t, scalar(want[i]), scalar(got[i]), "%s in %.120s", keys[i], o)
			assert.Equal(t, want[i].Type, got[i].Type, "%s in %.120s", keys[i], o)
		}
	}
	// Objects the fast path does not read fall back to gjson.
	for _, o := range []string{`[1]`, `{"i\u0064":1}`, `{"id":1`, `{"a":"unterminated}`, ``} {
		var got [4]gjson.Result
		assert.False(t, topLevelFields([]byte(o), keys, &got), o)
	}
	r := &resource{name: "orders", fields: keys, topLevel: true, parseDate: mustParser(t)}
	rec, err := r.parseRecord([]byte(`{"i\u0064":5,"status":"trash","date_modified_gmt":"2026-01-02T03:04:05"}`), 0)
	require.NoError(t, err)
	assert.Equal(t, "5", rec.Key.ID)
	assert.Equal(t, "trash", rec.Status)
	assert.Equal(t, int64(1767323045), rec.Key.Sec)
}

func TestPlainKey(t *testing.T) {
	for _, k := range []string{"id", "date_modified_gmt", "ID-2"} {
		assert.True(t, plainKey(k), k)
	}
	for _, k := range []string{"", "a.b", "data.id", "a*", "a|b", "#", "@this", `a\.b`} {
		assert.False(t, plainKey(k), k)
	}
}

func mustParser(t *testing.T) datefmt.Parser {
	p, _, err := datefmt.NewParser("")
	require.NoError(t, err)
	return p
}

func BenchmarkParseRecord(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "tests", "fixtures", "woocommerce", "rest", "orders.list.http-oauth1.http"))
	require.NoError(b, err)
	s := strings.ReplaceAll(string(raw), "\r\n", "\n")
	order := []byte(gjson.Get(s[strings.Index(s, "\n\n")+2:], "0").Raw)
	keys := []string{"id", "date_modified_gmt", "date_created_gmt", "status"}
	p, _, _ := datefmt.NewParser("")
	for _, fast := range []bool{true, false} {
		name := "gjson"
		if fast {
			name = "onepass"
		}
		b.Run(name, func(b *testing.B) {
			r := &resource{name: "orders", fields: keys, topLevel: fast, parseDate: p}
			b.SetBytes(int64(len(order)))
			b.ReportAllocs()
			for range b.N {
				if _, err := r.parseRecord(order, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
