package metrics

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/testproc"
	"github.com/wooevents/wooevents/tests/wcsim"
)

// The poller's own series.
const (
	mRemaining = "woocommerce_backfill_remaining"
	mLastPoll  = "woocommerce_last_poll_timestamp_seconds"
	mScanAge   = "woocommerce_scan_age_seconds"
)

const pollerConfig = `
http:
  address: %[1]s
logger:
  level: DEBUG
  format: logfmt
metrics:
  prometheus: {}
input:
  label: poll
  woocommerce_poll:
    store_url: %[2]s
    consumer_key: %[3]s
    consumer_secret: %[4]s
    resources:
      - name: orders
      - name: customers
    start_from: beginning
    interval: 1h
    max_concurrency: 1
    state_path: %[5]s
output:
  drop: {}
`

// TestPollerProgress runs a backfill slow enough to last more than 10
// seconds in the real binary and asserts what an operator sees: the start
// of the backfill with X-WP-Total, progress every ~10 s, "caught up", a
// debug line per request with its URL (secrets redacted), and the backfill,
// last-poll, lag and scan-age series.
func TestPollerProgress(t *testing.T) {
	sim := wcsim.New(wcsim.Options{PageDelay: 550 * time.Millisecond})
	require.NoError(t, sim.Start())
	t.Cleanup(sim.Close)
	_, _, err := sim.SeedWith(wcsim.Orders, 2000, wcsim.SeedOptions{Start: time.Now().Add(-3 * time.Hour), Status: "processing"})
	require.NoError(t, err)
	sim.Seed(wcsim.Customers, 120)

	dir := t.TempDir()
	httpAddr := testproc.FreeAddr(t)
	conf := fmt.Sprintf(pollerConfig, httpAddr, sim.URL(), wcsim.DefaultConsumerKey, wcsim.DefaultConsumerSecret, filepath.Join(dir, "state.db"))
	confPath := filepath.Join(dir, "poll.yaml")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))
	started := time.Now()
	p := testproc.Start(t, binPath, dir, nil, "-c", confPath)
	p.WaitReady(t, httpAddr)

	var remaining float64
	p.Eventually(t, func() bool {
		f, err := scrapeMetrics(httpAddr)
		if err != nil {
			return false
		}
		remaining = f.sum(mRemaining, lbl{"resource": "orders"})
		return remaining > 0 && remaining < 2000
	}, func() string { return "woocommerce_backfill_remaining never showed the backfill under way" })

	var f families
	p.Eventually(t, func() bool {
		var err error
		f, err = scrapeMetrics(httpAddr)
		return err == nil && f.sum(mEvents, lbl{"resource": "orders", "action": "created"}) == 2000 &&
			f.sum(mEvents, lbl{"resource": "customers", "action": "created"}) == 120 &&
			f.count(mLastPoll, lbl{"resource": "orders"}) == 1
	}, func() string { return "the backfill did not finish: " + strings.Join(f.series(mEvents), ", ") })
	took := time.Since(started)
	require.Greater(t, took, 10*time.Second, "the backfill must outlast one progress period")

	assert.Zero(t, f.sum(mRemaining, lbl{"resource": "orders"}), "caught up")
	last := f.sum(mLastPoll, lbl{"resource": "orders"})
	assert.InDelta(t, float64(time.Now().Unix()), last, 30, "the last successful poll, as Unix time")
	assert.Equal(t, 1, f.count(mLag, lbl{"resource": "orders"}), "%v", f.series(mLag))
	assert.Zero(t, f.count(mLag, lbl{"resource": "customers"}), "watermark lag is for modified_after resources only: %v", f.series(mLag))
	assert.Equal(t, 1, f.count(mScanAge, lbl{"resource": "customers"}), "%v", f.series(mScanAge))
	assert.Zero(t, f.count(mScanAge, lbl{"resource": "orders"}))

	out := p.Out.String()
	assert.Regexp(t, `woocommerce_poll orders: backfill of 2000 objects modified since the beginning \(X-WP-Total\)`, out)
	progress := regexp.MustCompile(`woocommerce_poll orders: (\d+)/2000 \((\d+)%\), \d+/s, ETA `).FindAllStringSubmatch(out, -1)
	require.NotEmpty(t, progress, "a progress line every ~10 s")
	assert.LessOrEqual(t, len(progress), int(took/(10*time.Second))+1, "progress is logged every ~10 s, not per page")
	assert.Contains(t, out, "woocommerce_poll orders: caught up: 2000 changes in ")
	assert.Contains(t, out, "woocommerce_poll customers: caught up")
	assert.Equal(t, 1, strings.Count(out, "woocommerce_poll orders: backfill of"), "logged once")
	assert.Regexp(t, `woocommerce_poll orders: GET http://127\.0\.0\.1:\d+/wp-json/wc/v3/orders\?\S*oauth_signature=REDACTED\S*: 200, 100 objects \(X-WP-Total \d+\) in \d+`, out, "a debug line per request")
	assert.NotContains(t, out, wcsim.DefaultConsumerSecret)
	assert.NotContains(t, out, wcsim.DefaultConsumerKey)
}

// TestPollerFailures: a misspelled resource and a store that is down are
// each logged once per attempt, with a backoff of 5 s before the next, no
// doubled message and no benthos "Failed to connect"/"Failed to read"
// lines; the other resource keeps polling.
func TestPollerFailures(t *testing.T) {
	sim := wcsim.New(wcsim.Options{})
	require.NoError(t, sim.Start())
	t.Cleanup(sim.Close)
	_, err := sim.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)

	dir := t.TempDir()
	httpAddr := testproc.FreeAddr(t)
	conf := fmt.Sprintf(`
http:
  address: %[1]s
logger:
  level: INFO
  format: logfmt
metrics:
  prometheus: {}
input:
  broker:
    inputs:
      - woocommerce_poll:
          store_url: %[2]s
          consumer_key: %[3]s
          consumer_secret: %[4]s
          resources: [{name: orders}, {name: ordres}]
          start_from: beginning
          interval: 1h
          state_path: %[5]s
      - woocommerce_poll:
          store_url: http://%[6]s
          consumer_key: ck_down
          consumer_secret: cs_down_secret
          resources: [{name: orders}]
          max_retry_elapsed: 1s
          state_path: %[7]s
output:
  drop: {}
`, httpAddr, sim.URL(), wcsim.DefaultConsumerKey, wcsim.DefaultConsumerSecret, filepath.Join(dir, "a.db"), testproc.FreeAddr(t), filepath.Join(dir, "b.db"))
	confPath := filepath.Join(dir, "poll.yaml")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))
	p := testproc.Start(t, binPath, dir, nil, "-c", confPath)

	misspelled := regexp.MustCompile(`time="([^"]+)" level=error msg="woocommerce_poll ordres: poll failed[^"]*rest_no_route[^"]*the store has no route /wp-json/wc/v3/ordres: check this resource's name and path; retrying in \d+s`)
	down := regexp.MustCompile(`time="([^"]+)" level=error msg="woocommerce_poll orders: poll failed[^"]*connection refused`)
	p.Eventually(t, func() bool {
		out := p.Out.String()
		return len(misspelled.FindAllString(out, -1)) >= 2 && len(down.FindAllString(out, -1)) >= 2
	}, func() string { return "two attempts of each failure were not logged" })
	out := p.Out.String()
	for _, re := range []*regexp.Regexp{misspelled, down} {
		m := re.FindAllStringSubmatch(out, -1)
		t1, err := time.Parse(time.RFC3339, m[0][1])
		require.NoError(t, err)
		t2, err := time.Parse(time.RFC3339, m[1][1])
		require.NoError(t, err)
		assert.GreaterOrEqual(t, t2.Sub(t1), 4*time.Second, "the second attempt waits for the backoff: %s", re)
	}
	f, err := scrapeMetrics(httpAddr)
	require.NoError(t, err)
	assert.Equal(t, 1.0, f.sum(mEvents, lbl{"resource": "orders", "action": "created"}), "the other resource kept polling")
	assert.NotContains(t, out, "Failed to connect")
	assert.NotContains(t, out, "Failed to read")
	assert.NotContains(t, out, "cs_down_secret")
	for _, line := range strings.Split(out, "\n") {
		assert.LessOrEqual(t, strings.Count(line, "woocommerce GET"), 1, "a doubled message: %s", line)
	}
}
