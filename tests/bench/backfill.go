package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"
)

// BackfillRun is one poll backfill of N orders from the simulator.
type BackfillRun struct {
	Orders  int     `json:"orders"`
	Round   int     `json:"round"`
	Seconds float64 `json:"seconds"`
	// RecordsPerS is Orders divided by the time from starting wooevents to
	// its output having sent Orders records (startup included).
	RecordsPerS float64 `json:"records_per_s"`
	// Requests is the simulator's count of REST requests it served.
	Requests int64 `json:"requests"`
	// PeakRSSMB is VmHWM of the wooevents process when the backfill ended.
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// OutputSent is output_sent from benthos' metrics when it was stopped.
	OutputSent int64 `json:"output_sent"`
	// FirstRecordS is the time from starting wooevents to its first record.
	FirstRecordS float64 `json:"first_record_s"`
	// WooeventsCPUS and SimCPUS are the CPU seconds each process used
	// during the backfill (which of the two was the bottleneck).
	WooeventsCPUS float64 `json:"wooevents_cpu_s"`
	SimCPUS       float64 `json:"sim_cpu_s"`
}

// BackfillOptions configure the poll backfill benchmark.
type BackfillOptions struct {
	Binary     string
	SimBinary  string
	WorkDir    string
	ServerCPUs string // wooevents
	SimCPUs    string // the simulator
	PageSize   int
	Timeout    time.Duration
	Log        func(format string, args ...any)
}

// Sim is a running wcsim command.
type Sim struct {
	*Proc
	URL string
}

// StartSim runs the wcsim command seeded with n orders and waits until it
// serves.
func StartSim(o BackfillOptions, n int, dir string) (*Sim, error) {
	addr, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := StartProc(ProcOptions{Name: "wcsim", Path: o.SimBinary, CPUs: o.SimCPUs, LogDir: dir,
		Args: SimArgs(addr, n)})
	if err != nil {
		return nil, err
	}
	// Seeding a million orders takes a while before the port opens.
	if err := p.WaitTCP(addr, 3*time.Minute); err != nil {
		p.Kill()
		return nil, err
	}
	return &Sim{Proc: p, URL: "http://" + addr}, nil
}

// BenchBackfillOnce backfills n orders and measures it.
func BenchBackfillOnce(ctx context.Context, o BackfillOptions, n, round int) (*BackfillRun, error) {
	dir := filepath.Join(o.WorkDir, fmt.Sprintf("backfill-%d-%d", n, round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sim, err := StartSim(o, n, dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sim.Stop(10 * time.Second) }()
	client := &http.Client{Timeout: 5 * time.Second}
	before, err := SimRequests(ctx, client, sim.URL)
	if err != nil {
		return nil, sim.Failed(err)
	}
	simCPUBefore, err := sim.CPUSeconds()
	if err != nil {
		return nil, err
	}

	httpAddr, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := PollConfig(sim.URL, SimConsumerKey, SimConsumerSecret, httpAddr, filepath.Join(dir, "poll-state.db"), o.PageSize, 2)
	start := time.Now()
	p, err := StartWooevents(o.Binary, dir, "wooevents-poll", conf, o.ServerCPUs, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = p.Stop(20 * time.Second) }()

	run := &BackfillRun{Orders: n, Round: round}
	deadline := time.Now().Add(o.Timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.Done():
			return nil, p.Failed(fmt.Errorf("wooevents exited during the backfill"))
		case <-tick.C:
		}
		m, err := JSONMetrics(ctx, client, httpAddr)
		if err == nil {
			sent, _ := SumMetric(m, "output_sent")
			run.OutputSent = int64(sent)
			if run.OutputSent > 0 && run.FirstRecordS == 0 {
				run.FirstRecordS = time.Since(start).Seconds()
			}
			if run.OutputSent >= int64(n) {
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, p.Failed(fmt.Errorf("backfill of %d orders: only %d sent after %s", n, run.OutputSent, o.Timeout))
		}
	}
	elapsed := time.Since(start)
	run.PeakRSSMB, err = p.PeakRSSMB()
	if err != nil {
		return nil, err
	}
	run.WooeventsCPUS, _ = p.CPUSeconds()
	if simCPU, err := sim.CPUSeconds(); err == nil {
		run.SimCPUS = simCPU - simCPUBefore
	}
	_ = p.Stop(20 * time.Second)
	after, err := SimRequests(ctx, client, sim.URL)
	if err != nil {
		return nil, sim.Failed(err)
	}
	run.Requests = after - before
	run.Seconds = elapsed.Seconds()
	run.RecordsPerS = float64(n) / elapsed.Seconds()
	if o.Log != nil {
		o.Log("  backfill %8d orders round %d  %6.1fs (first record %.2fs)  %8.0f records/s  %6d requests  peak RSS %.1f MB  cpu: wooevents %.1fs, wcsim %.1fs",
			n, round, run.Seconds, run.FirstRecordS, run.RecordsPerS, run.Requests, run.PeakRSSMB, run.WooeventsCPUS, run.SimCPUS)
	}
	return run, nil
}

func runBackfill(ctx context.Context, o SuiteOptions, r *Report) {
	const name = "backfill"
	switch {
	case o.SimBinary == "":
		r.Errors[name] = "wcsim command not available"
		return
	case !BinaryHas(o.Binary, "inputs", "woocommerce_poll"):
		r.Errors[name] = "woocommerce_poll input: " + ErrNotAvailable.Error()
		return
	}
	simCPUs := o.LoadgenCPUs
	bo := BackfillOptions{Binary: o.Binary, SimBinary: o.SimBinary, WorkDir: o.WorkDir, ServerCPUs: o.ServerCPUs,
		SimCPUs: simCPUs, PageSize: 100, Timeout: 5 * time.Minute, Log: o.Log}
	sizes := slices.Clone(o.BackfillSizes)
	slices.Sort(sizes)
	r.Settings.BackfillSizes = sizes
	logf(o, "poll backfill from the wcsim command: %v orders, page size %d", sizes, bo.PageSize)
	results := map[int][]*BackfillRun{}
	for i, n := range sizes {
		rounds := o.BackfillRounds
		if i == len(sizes)-1 || rounds < 1 {
			rounds = 1
		}
		for round := range rounds {
			if ctx.Err() != nil {
				return
			}
			run, err := BenchBackfillOnce(ctx, bo, n, round)
			if err != nil {
				r.Errors[name+"_"+strconv.Itoa(n)] = err.Error()
				logf(o, "  backfill %d: %v", n, err)
				break
			}
			r.BackfillRuns = append(r.BackfillRuns, run)
			results[n] = append(results[n], run)
			runtime.GC()
		}
	}
	med := func(n int, get func(*BackfillRun) float64) *float64 {
		var xs []float64
		for _, run := range results[n] {
			xs = append(xs, get(run))
		}
		return Median(xs)
	}
	rps := func(b *BackfillRun) float64 { return b.RecordsPerS }
	reqs := func(b *BackfillRun) float64 { return float64(b.Requests) }
	rss := func(b *BackfillRun) float64 { return b.PeakRSSMB }
	small, large := sizes[0], sizes[len(sizes)-1]
	r.BackfillRecordsPerS100k, r.BackfillRequests100k, r.RSSMB100k = med(small, rps), med(small, reqs), med(small, rss)
	if len(sizes) > 1 {
		r.BackfillRecordsPerS1m, r.BackfillRequests1m, r.RSSMB1m = med(large, rps), med(large, reqs), med(large, rss)
		if r.RSSMB100k != nil && r.RSSMB1m != nil && *r.RSSMB100k > 0 {
			r.RSSRatio1m100k = ptr(*r.RSSMB1m / *r.RSSMB100k)
		}
	}
	if small != 100000 || large != 1000000 {
		r.Notes = append(r.Notes, fmt.Sprintf("backfill sizes were %d and %d orders (not 100k / 1M): the *_100k / *_1m keys hold those", small, large))
	}
}
