package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// ScenarioInstances is `wooevents serve` with many idle polling instances.
const ScenarioInstances = "instances"

// Credentials of the serve benchmark's API.
const (
	benchUserSecret = "bench-user-secret"
	benchOrgSecret  = "bench-organization-secret"
)

// InstancesRun is one `wooevents serve` run: N polling instances created
// through the API against the wcsim command, then left idle.
type InstancesRun struct {
	Instances int `json:"instances"`
	// BaselineRSSMB is the server's VmRSS with no instance, RSSMB with the
	// N idle instances (both the median of a few samples once settled).
	BaselineRSSMB float64 `json:"baseline_rss_mb"`
	RSSMB         float64 `json:"rss_mb"`
	// RSSMBPer100 is (RSSMB - BaselineRSSMB) scaled to 100 instances.
	RSSMBPer100 float64 `json:"rss_mb_per_100"`
	// FileRSSMBPer100 is the part of RSSMBPer100 that is file-backed
	// (RssFile): mostly the instances' bbolt poll state files, which bbolt
	// reads through mmap. The rest is the Go heap, stacks and runtime.
	FileRSSMBPer100 float64 `json:"file_rss_mb_per_100"`
	// Create latencies of POST /elements/api-v2/instances (each includes
	// the store check against the simulator).
	CreateP50Ms float64 `json:"create_p50_ms"`
	CreateP99Ms float64 `json:"create_p99_ms"`
	CreateMaxMs float64 `json:"create_max_ms"`
	// SettleS is how long the instances took to all poll once.
	SettleS float64 `json:"settle_s"`
	// IdleStop is the server's --idle-stop ("0": every pipeline runs).
	IdleStop string `json:"idle_stop"`
	// RSSMBPer100AfterWake is RSSMBPer100 measured again 5 s after every
	// instance has polled a second time (with --idle-stop, its pipeline
	// was built again for that poll); 0 when not measured.
	RSSMBPer100AfterWake float64 `json:"rss_mb_per_100_after_wake,omitempty"`
}

// InstancesOptions configure the serve benchmark.
type InstancesOptions struct {
	Binary     string
	SimBinary  string
	WorkDir    string
	ServerCPUs string
	SimCPUs    string
	N          int
	// IdleStop is passed as --idle-stop (empty: the server's default).
	IdleStop string
	// AfterWake also measures the RSS after every instance polled again.
	AfterWake bool
	Log       func(format string, args ...any)
}

// pollingBody is the polling seed body of tests/fixtures/cloud-elements
// pointed at the simulator and the callback, polling every minute.
func pollingBody(storeURL, callbackURL string) ([]byte, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, "tests", "fixtures", "cloud-elements", "polling-instance.json"))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	c := m["configuration"].(map[string]any)
	c["store.url"] = storeURL
	c["oauth.api.key"] = SimConsumerKey
	c["oauth.api.secret"] = SimConsumerSecret
	c["event.notification.callback.url"] = callbackURL
	c["event.poller.refresh_interval"] = "1"
	return json.Marshal(m)
}

// rssSample is the median VmRSS (MiB) of five samples 200 ms apart.
func rssSample(p *Proc) (float64, error) {
	var xs []float64
	for range 5 {
		kb, err := ProcStatus(p.Pid(), "VmRSS")
		if err != nil {
			return 0, err
		}
		xs = append(xs, float64(kb)/1024)
		time.Sleep(200 * time.Millisecond)
	}
	return *Median(xs), nil
}

type instanceAnswer struct {
	ID     int64 `json:"id"`
	Status struct {
		LastPoll *time.Time `json:"lastPoll"`
	} `json:"status"`
}

// BenchInstancesOnce starts `wooevents serve`, measures its RSS, creates N
// polling instances one after the other (timing each create), waits until
// every instance has polled, lets it settle and measures the RSS again.
func BenchInstancesOnce(ctx context.Context, o InstancesOptions) (*InstancesRun, error) {
	dir := filepath.Join(o.WorkDir, "instances-idle-stop-"+orDefault(o.IdleStop))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sim, err := StartSim(BackfillOptions{SimBinary: o.SimBinary, SimCPUs: o.SimCPUs}, 10, dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sim.Stop(10 * time.Second) }()
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer cb.Close()

	addr, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := StartProc(ProcOptions{Name: "wooevents-serve", Path: o.Binary, CPUs: o.ServerCPUs, LogDir: dir,
		Args: serveArgs(addr, filepath.Join(dir, "data"), o.IdleStop),
		Env:  []string{"WOOEVENTS_USER_SECRET=" + benchUserSecret, "WOOEVENTS_ORGANIZATION_SECRET=" + benchOrgSecret}})
	if err != nil {
		return nil, err
	}
	defer func() { _ = p.Stop(30 * time.Second) }()
	if err := p.WaitTCP(addr, 30*time.Second); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	run := &InstancesRun{Instances: o.N}
	if run.BaselineRSSMB, err = rssSample(p); err != nil {
		return nil, err
	}
	fileKB0, err := ProcStatus(p.Pid(), "RssFile")
	if err != nil {
		return nil, err
	}

	body, err := pollingBody(sim.URL, cb.URL+"/callback")
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: time.Minute}
	auth := "User " + benchUserSecret + ", Organization " + benchOrgSecret
	api := "http://" + addr + "/elements/api-v2/instances"
	var lat []float64
	for i := range o.N {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api, bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return nil, p.Failed(fmt.Errorf("create %d: %w", i, err))
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		if res.StatusCode != http.StatusOK {
			return nil, p.Failed(fmt.Errorf("create %d: HTTP %d: %s", i, res.StatusCode, b))
		}
	}
	slices.Sort(lat)
	pct := func(q float64) float64 { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	run.CreateP50Ms, run.CreateP99Ms, run.CreateMaxMs = pct(0.5), pct(0.99), lat[len(lat)-1]

	// Every instance polls once at start; wait for all of them.
	settleStart := time.Now()
	if err := waitPolled(ctx, client, api, auth, o.N, time.Time{}); err != nil {
		return nil, p.Failed(err)
	}
	run.SettleS = time.Since(settleStart).Seconds()
	time.Sleep(5 * time.Second)
	if run.RSSMB, err = rssSample(p); err != nil {
		return nil, err
	}
	fileKB1, err := ProcStatus(p.Pid(), "RssFile")
	if err != nil {
		return nil, err
	}
	run.RSSMBPer100 = (run.RSSMB - run.BaselineRSSMB) * 100 / float64(o.N)
	run.FileRSSMBPer100 = float64(fileKB1-fileKB0) / 1024 * 100 / float64(o.N)
	run.IdleStop = o.IdleStop
	if o.Log != nil {
		o.Log("  serve (--idle-stop %s): %d polling instances  RSS %.1f → %.1f MB (%.1f MB per 100, %.1f of it file-backed)  create p50 %.1f ms, p99 %.1f ms, max %.1f ms  all polled after %.1fs",
			orDefault(o.IdleStop), o.N, run.BaselineRSSMB, run.RSSMB, run.RSSMBPer100, run.FileRSSMBPer100, run.CreateP50Ms, run.CreateP99Ms, run.CreateMaxMs, run.SettleS)
	}
	if !o.AfterWake {
		return run, nil
	}
	// The instances poll every minute: wait until each has polled again.
	if err := waitPolled(ctx, client, api, auth, o.N, settleStart.Add(time.Duration(run.SettleS*float64(time.Second)))); err != nil {
		return nil, p.Failed(err)
	}
	time.Sleep(5 * time.Second)
	rss, err := rssSample(p)
	if err != nil {
		return nil, err
	}
	run.RSSMBPer100AfterWake = (rss - run.BaselineRSSMB) * 100 / float64(o.N)
	if o.Log != nil {
		o.Log("  serve (--idle-stop %s): after every instance polled again  RSS %.1f MB (%.1f MB per 100)", orDefault(o.IdleStop), rss, run.RSSMBPer100AfterWake)
	}
	return run, nil
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

func serveArgs(addr, dataDir, idleStop string) []string {
	args := []string{"serve", "--address", addr, "--data-dir", dataDir, "--metrics-address", "", "--log-level", "warn"}
	if idleStop != "" {
		args = append(args, "--idle-stop", idleStop)
	}
	return args
}

// waitPolled waits until every one of n instances reports a last poll
// after since (any last poll when since is zero).
func waitPolled(ctx context.Context, client *http.Client, api, auth string, n int, since time.Time) error {
	start := time.Now()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api, nil)
		req.Header.Set("Authorization", auth)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		var all []instanceAnswer
		err = json.NewDecoder(res.Body).Decode(&all)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("listing instances: %w", err)
		}
		polled := 0
		for _, a := range all {
			if a.Status.LastPoll != nil && a.Status.LastPoll.After(since) {
				polled++
			}
		}
		if polled == n {
			return nil
		}
		if time.Since(start) > 3*time.Minute {
			return fmt.Errorf("only %d of %d instances polled (after %s) within 3 minutes", polled, n, since.Format(time.RFC3339))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// runInstances runs the serve scenario once with 100 instances.
func runInstances(ctx context.Context, o SuiteOptions, r *Report) {
	if o.SimBinary == "" {
		r.Errors[ScenarioInstances] = "wcsim command not available"
		return
	}
	logf(o, "wooevents serve: 100 idle polling instances against the wcsim command, pipelines kept running (--idle-stop 0), then stopped while idle (the default)")
	base := InstancesOptions{Binary: o.Binary, SimBinary: o.SimBinary, WorkDir: o.WorkDir,
		ServerCPUs: o.ServerCPUs, SimCPUs: o.LoadgenCPUs, N: 100, Log: o.Log}
	always := base
	always.IdleStop = "0"
	arun, err := BenchInstancesOnce(ctx, always)
	if err != nil {
		r.Errors[ScenarioInstances] = err.Error()
		logf(o, "  serve: %v", err)
		return
	}
	r.InstancesAlwaysRun = arun
	r.InstancesRSSMBPer100AlwaysRunning = ptr(arun.RSSMBPer100)
	idle := base
	idle.AfterWake = !o.Quick
	run, err := BenchInstancesOnce(ctx, idle)
	if err != nil {
		r.Errors[ScenarioInstances] = err.Error()
		logf(o, "  serve: %v", err)
		return
	}
	r.InstancesRun = run
	r.InstancesRSSMBPer100 = ptr(run.RSSMBPer100)
	if run.RSSMBPer100AfterWake != 0 {
		r.InstancesRSSMBPer100AfterWake = ptr(run.RSSMBPer100AfterWake)
	}
	r.InstancesCreateP99Ms = ptr(run.CreateP99Ms)
}
