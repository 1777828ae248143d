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

func TestPlainKey(t *testing.T) {
	for _, k := range []string{"id", "date_modified_gmt", "ID-2"} {
		assert.True(t, plainKey(k), k)
	}
	for _, k := range []string{"", "a.b", "data.id", "a*", "a|b", "#", "@this", `a\.b`} {
		assert.False(t, plainKey(k), k)
	}
}

func BenchmarkParseRecord(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "tests", "fixtures", "woocommerce", "rest", "orders.list.http-oauth1.http"))
	require.NoError(b, err)
	s := strings.ReplaceAll(string(raw), "\r\n", "\n")
	order := []byte(gjson.Get(s[strings.Index(s, "\n\n")+2:], "0").Raw)
	keys := []string{"id", "date_modified_gmt", "date_created_gmt", "status"}
	p, _, _ := datefmt.NewParser("")
	r := &resource{name: "orders", fields: keys, topLevel: true, parseDate: p}
	b.SetBytes(int64(len(order)))
	b.ReportAllocs()
	for range b.N {
		if _, err := r.parseRecord(order, nil, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCmpIDAndKeys(t *testing.T) {
	assert.Equal(t, -1, cmpID("9", "10"))
	assert.Equal(t, 1, cmpID("100", "99"))
	assert.Equal(t, 0, cmpID("007", "7"))
	assert.Equal(t, -1, cmpID("5", "abc"))
	assert.Equal(t, 1, cmpID("b", "a"))
	assert.Less(t, idKey("9"), idKey("10"))
	assert.Equal(t, "10", keyID(idKey("10")))
	assert.Equal(t, "sku-1", keyID(idKey("sku-1")))
}
