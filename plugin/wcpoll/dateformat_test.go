package wcpoll

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJavaDateLayout(t *testing.T) {
	cases := map[string]string{
		"yyyy-MM-dd'T'HH:mm:ss":         "2006-01-02T15:04:05",
		"yyyy-MM-dd'T'HH:mm:ss'":        "2006-01-02T15:04:05", // Cloud Elements' stray trailing quote
		"yyyy-MM-dd'T'HH:mm:ss'Z'":      "2006-01-02T15:04:05Z",
		"yyyy-MM-dd'T'HH:mm:ss.SSSXXX":  "2006-01-02T15:04:05.000Z07:00",
		"yyyy-MM-dd HH:mm:ssZ":          "2006-01-02 15:04:05-0700",
		"dd/MM/yy h:mm a":               "02/01/06 3:04 PM",
		"EEE, dd MMM yyyy HH:mm:ss zzz": "Mon, 02 Jan 2006 15:04:05 MST",
		"yyyy-MM-dd'T'HH:mm:ss''":       "2006-01-02T15:04:05'",
	}
	for in, want := range cases {
		got, err := JavaDateLayout(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "yyyy-ww", "yyyy-MM-dd'T", "'2006'yyyy", "yyyy 12", "GGG yyyy"} {
		_, err := JavaDateLayout(bad)
		assert.Error(t, err, bad)
	}
}

func TestDateParserFormats(t *testing.T) {
	want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	p, _, err := newDateParser("")
	require.NoError(t, err)
	got, err := p("2026-01-02T03:04:05")
	require.NoError(t, err)
	assert.Equal(t, want, got)

	p, layout, err := newDateParser("yyyy-MM-dd'T'HH:mm:ss'")
	require.NoError(t, err)
	assert.Equal(t, "2006-01-02T15:04:05", layout)
	got, err = p("2026-01-02T03:04:05")
	require.NoError(t, err)
	assert.Equal(t, want, got)

	p, _, err = newDateParser("2006-01-02 15:04:05Z07:00")
	require.NoError(t, err)
	got, err = p("2026-01-02 13:04:05+10:00")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	_, err = p("02/01/2026")
	assert.Error(t, err)

	_, _, err = newDateParser("yyyy-ww")
	assert.Error(t, err)
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
	assert.Equal(t, -1, cmpKey(recKey{10, "900"}, recKey{11, "1"}))
	assert.Equal(t, -1, cmpKey(recKey{10, "9"}, recKey{10, "10"}))
}
