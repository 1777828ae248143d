package wcsim

import (
	"crypto/tls"
	"net/http/httptest"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// backfillPage serves one backfill page through the handler (no network),
// the way the poll input asks for it.
func backfillPage(tb testing.TB, s *Store, after string, page int) (*httptest.ResponseRecorder, time.Duration) {
	req := httptest.NewRequest("GET", "/wp-json/wc/v3/orders?per_page=100&orderby=modified&order=asc&dates_are_gmt=true&modified_after="+after+"&page="+strconv.Itoa(page), nil)
	req.TLS = &tls.ConnectionState{}
	req.SetBasicAuth(DefaultConsumerKey, DefaultConsumerSecret)
	rec := httptest.NewRecorder()
	start := time.Now()
	s.Handler().ServeHTTP(rec, req)
	return rec, time.Since(start)
}

func seedBig(tb testing.TB, n int) (*Store, time.Time, time.Duration) {
	s := New(Options{TLS: true, HomeURL: "https://127.0.0.1:8443", Latency: NoLatency})
	end := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s.SetNow(end)
	start := time.Now()
	_, _, err := s.SeedWith(Orders, n, SeedOptions{Start: end.Add(-time.Duration(n) * time.Second / 4), Step: 0, SameSecond: false})
	require.NoError(tb, err)
	return s, end, time.Since(start)
}

// The benchmarks backfill 100k-1M orders in pages of 100; each page must be
// answered in well under 2 ms. 100k here keeps the test quick.
func TestBackfillPageLatency100k(t *testing.T) {
	s, _, seedTime := seedBig(t, 100_000)
	t.Logf("seeded 100k orders in %s", seedTime)
	assert.Less(t, seedTime, raceSlowdown*5*time.Second)
	var lat []time.Duration
	after := "2000-01-01T00:00:00"
	seen := 0
	for page := 1; page <= 1000; page += 37 {
		rec, d := backfillPage(t, s, after, page)
		require.Equal(t, 200, rec.Code, rec.Body.String())
		require.Equal(t, []string{"100000"}, rec.Header()["X-WP-Total"], "exact header spelling") //nolint:staticcheck // WordPress' spelling, not Go's canonical form
		seen++
		lat = append(lat, d)
	}
	// walk by watermark too: modified_after the last item's date
	rec, _ := backfillPage(t, s, after, 1)
	ids := idsOf(t, rec.Body.Bytes())
	require.Len(t, ids, 100)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	med := lat[len(lat)/2]
	t.Logf("%d pages, median %s, max %s", seen, med, lat[len(lat)-1])
	assert.Less(t, med, raceSlowdown*2*time.Millisecond)
}

func benchBackfill(b *testing.B, n int) {
	s, _, seedTime := seedBig(b, n)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.Logf("seeded %d orders in %s, heap %d MB", n, seedTime, ms.HeapAlloc>>20)
	b.ResetTimer()
	pages := n / 100
	for i := 0; i < b.N; i++ {
		rec, _ := backfillPage(b, s, "2000-01-01T00:00:00", 1+i%pages)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

func BenchmarkBackfillPage100k(b *testing.B) { benchBackfill(b, 100_000) }
func BenchmarkBackfillPage1M(b *testing.B)   { benchBackfill(b, 1_000_000) }
