package bench

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func postRequest(host, path, body string) []byte {
	return []byte("POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

func TestSaturationCountsEveryAnswer(t *testing.T) {
	var got atomic.Int64
	var conns sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		conns.Store(r.RemoteAddr, true)
		got.Add(1)
		if string(b) == "bad" {
			http.Error(w, "nope", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	res, err := RunLoad(context.Background(), LoadOptions{
		Addr: host, Concurrency: 4, Duration: 300 * time.Millisecond,
		Requests: [][]byte{postRequest(host, "/", "good"), postRequest(host, "/", "bad")},
	})
	require.NoError(t, err)
	assert.Equal(t, "saturation", res.Mode)
	assert.Zero(t, res.Errors, res.FirstError)
	assert.Equal(t, got.Load(), res.Completed)
	assert.Greater(t, res.OK, int64(10))
	assert.InDelta(t, res.OK, res.Non2xx, 4, "requests alternate good and bad per connection")
	assert.Equal(t, res.Non2xx, res.Statuses[http.StatusUnauthorized])
	n := 0
	conns.Range(func(any, any) bool { n++; return true })
	assert.Equal(t, 4, n, "keep-alive: one TCP connection per worker")
	assert.Greater(t, res.RPS, 0.0)
	assert.LessOrEqual(t, res.P50, res.P99)
}

func TestFixedRateSendsTheSchedule(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	start := time.Now()
	res, err := RunLoad(context.Background(), LoadOptions{
		Addr: host, Concurrency: 4, Duration: time.Second, Rate: 400,
		Requests: [][]byte{postRequest(host, "/", "x")},
	})
	require.NoError(t, err)
	assert.Equal(t, "fixed_rate", res.Mode)
	assert.Equal(t, int64(400), got.Load())
	assert.Equal(t, int64(400), res.OK)
	assert.InDelta(t, 400, res.RPS, 1)
	assert.GreaterOrEqual(t, time.Since(start), 990*time.Millisecond, "the schedule spreads over the duration")
	// Scheduling noise is reported, and bounded by the run on any machine.
	assert.Less(t, res.SendLagP99ms, 1000.0)
}

// A server that stalls must show up in the latencies of every request that
// was due during the stall, not just the few that were in flight.
func TestFixedRateAvoidsCoordinatedOmission(t *testing.T) {
	var n atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if n.Add(1) == 50 {
			time.AfterFunc(300*time.Millisecond, func() { close(release) })
		}
		if n.Load() >= 50 {
			<-release
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	res, err := RunLoad(context.Background(), LoadOptions{
		Addr: host, Concurrency: 2, Duration: time.Second, Rate: 200,
		Requests: [][]byte{postRequest(host, "/", "x")},
	})
	require.NoError(t, err)
	assert.Equal(t, int64(200), res.OK)
	// ~60 requests were due during the 300ms stall: >25% of the run waited.
	assert.Greater(t, res.P90, 50*time.Millisecond, res.String())
	assert.Greater(t, res.Max, 250*time.Millisecond, res.String())
}

func TestReadResponseFramings(t *testing.T) {
	for name, tc := range map[string]struct {
		raw    string
		status int
		keep   bool
	}{
		"length":  {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokNEXT", 200, true},
		"chunked": {"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\nNEXT", 401, true},
		"close":   {"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\nNEXT", 503, false},
		"nobody":  {"HTTP/1.1 204 No Content\r\n\r\nNEXT", 204, true},
		"http10":  {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\nNEXT", 200, false},
	} {
		t.Run(name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tc.raw))
			status, keep, err := readResponse(br)
			require.NoError(t, err)
			assert.Equal(t, tc.status, status)
			assert.Equal(t, tc.keep, keep)
			rest, _ := io.ReadAll(br)
			assert.Equal(t, "NEXT", string(rest), "exactly one response consumed")
		})
	}
	_, _, err := readResponse(bufio.NewReader(strings.NewReader("garbage\r\n\r\n")))
	assert.ErrorIs(t, err, errMalformed)
}

func TestPercentile(t *testing.T) {
	xs := make([]time.Duration, 100)
	for i := range xs {
		xs[i] = time.Duration(i + 1)
	}
	assert.Equal(t, time.Duration(50), Percentile(xs, 0.5))
	assert.Equal(t, time.Duration(99), Percentile(xs, 0.99))
	assert.Equal(t, time.Duration(1), Percentile(xs[:1], 0.99))
	assert.Zero(t, Percentile(nil, 0.5))
}
