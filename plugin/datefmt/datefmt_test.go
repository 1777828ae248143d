package datefmt

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

	p, _, err := NewParser("")
	require.NoError(t, err)
	got, err := p("2026-01-02T03:04:05")
	require.NoError(t, err)
	assert.Equal(t, want, got)

	p, layout, err := NewParser("yyyy-MM-dd'T'HH:mm:ss'")
	require.NoError(t, err)
	assert.Equal(t, "2006-01-02T15:04:05", layout)
	got, err = p("2026-01-02T03:04:05")
	require.NoError(t, err)
	assert.Equal(t, want, got)

	p, _, err = NewParser("2006-01-02 15:04:05Z07:00")
	require.NoError(t, err)
	got, err = p("2026-01-02 13:04:05+10:00")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	_, err = p("02/01/2026")
	assert.Error(t, err)

	_, _, err = NewParser("yyyy-ww")
	assert.Error(t, err)
}
