package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wooevents/wooevents/tests/wcsim"
)

// Simulator credentials (the wcsim read_write fixture key).
const (
	SimConsumerKey    = wcsim.DefaultConsumerKey
	SimConsumerSecret = wcsim.DefaultConsumerSecret
)

// SimArgs are the wcsim command's arguments to listen on addr with n orders,
// without the simulator's default per-request jitter (a benchmark measures
// wooevents; the slow-store scenario sets its own page delay). The newest
// order is SeedAge old: a backfill reads history. Orders seeded up to "now"
// would end the walk on seconds still within `overlap`, which the poller
// holds back and fetches again once settled: a fixed wait of up to two
// seconds at the live edge (the latency scenario measures that edge), which
// landed in some 100k rounds and not others.
func SimArgs(addr string, n int) []string {
	return []string{"-addr", addr, "-seed-orders", fmt.Sprint(n), "-seed-age", SeedAge.String(), "-quiet", "-latency", "off"}
}

// SeedAge is the age of the newest seeded order in the backfill scenarios.
const SeedAge = 10 * time.Second

// SimRequests reads the simulator's REST request counter
// (GET /__sim/requests → {"count":N}).
func SimRequests(ctx context.Context, client *http.Client, baseURL string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/__sim/requests", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("simulator request counter: HTTP %d: %s", resp.StatusCode, body)
	}
	var out struct {
		Count *int64 `json:"count"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Count == nil {
		return 0, fmt.Errorf("simulator request counter: unexpected answer %q (%v)", body, err)
	}
	return *out.Count, nil
}
