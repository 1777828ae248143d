package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
)

// Machine describes where the benchmark ran.
type Machine struct {
	Cores     int    `json:"cores"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	// Pinning says which CPUs the load generator and the servers ran on.
	Pinning string `json:"pinning"`
	// LoadAvg is /proc/loadavg at the start (the machine is shared).
	LoadAvg string `json:"loadavg_at_start"`
}

// Targets are the goals the figures are compared with (printed, not asserted).
var Targets = map[string]string{
	"webhook_vs_baseline_ratio": ">= 2.5",
	"webhook_vs_ceiling_ratio":  ">= 1.0",
	"webhook_p99_ms_at_2000rps": "< 2",
	"spooled_vs_memory_ratio":   ">= 0.7",
	"backfill_records_per_s":    ">= 50000",
	"rss_ratio_1m_100k":         "<= 1.2",
	"instances_rss_mb_per_100":  "< 30",
	"backfill_parallel_speedup": ">= 3",
	"poll_latency_p99_s":        "<= 12",
}

// Report is tests/bench/results/latest.json. Figures are medians over the
// rounds; ratios are medians of the per-round ratios (each round runs the
// compared servers back to back). A null figure means the scenario could not
// run; Errors says why.
type Report struct {
	GeneratedAt string  `json:"generated_at"`
	DurationS   float64 `json:"bench_duration_s"`
	Machine     Machine `json:"machine"`
	Settings    struct {
		Rounds       int     `json:"rounds"`
		RunSeconds   float64 `json:"run_seconds"`
		Concurrency  int     `json:"concurrency"`
		FixedRateRPS float64 `json:"fixed_rate_rps"`
		BodyBytes    int     `json:"body_bytes"`
		Fixture      string  `json:"fixture"`
		Metrics      string  `json:"metrics"`
		// BackfillSizes are the order counts of the two backfills (the
		// _100k and _1m figures).
		BackfillSizes []int `json:"backfill_sizes"`
	} `json:"settings"`

	WebhookRPS              *float64       `json:"webhook_rps"`
	BaselineHTTPServerRPS   *float64       `json:"baseline_http_server_rps"`
	WebhookVsBaselineRatio  *float64       `json:"webhook_vs_baseline_ratio"`
	CeilingHTTPServerRPS    *float64       `json:"ceiling_http_server_rps"`
	WebhookVsCeilingRatio   *float64       `json:"webhook_vs_ceiling_ratio"`
	WebhookP50MsAt2000      *float64       `json:"webhook_p50_ms_at_2000rps"`
	WebhookP99MsAt2000      *float64       `json:"webhook_p99_ms_at_2000rps"`
	WebhookP99MsSaturation  *float64       `json:"webhook_p99_ms_saturation"`
	BaselineP50MsAt2000     *float64       `json:"baseline_p50_ms_at_2000rps"`
	BaselineP99MsAt2000     *float64       `json:"baseline_p99_ms_at_2000rps"`
	BaselineP99MsSaturation *float64       `json:"baseline_p99_ms_saturation"`
	CeilingP50MsAt2000      *float64       `json:"ceiling_p50_ms_at_2000rps"`
	CeilingP99MsAt2000      *float64       `json:"ceiling_p99_ms_at_2000rps"`
	SpooledRPS              *float64       `json:"spooled_rps"`
	SpooledVsMemoryRatio    *float64       `json:"spooled_vs_memory_ratio"`
	SpooledP50MsAt2000      *float64       `json:"spooled_p50_ms_at_2000rps"`
	SpooledP99MsAt2000      *float64       `json:"spooled_p99_ms_at_2000rps"`
	ForgedSignatureStatus   map[string]int `json:"forged_signature_status"`
	LoadgenSendLagP99Ms     *float64       `json:"loadgen_send_lag_p99_ms"`
	BackfillRecordsPerS100k *float64       `json:"backfill_records_per_s_100k"`
	BackfillRequests100k    *float64       `json:"backfill_requests_100k"`
	BackfillRecordsPerS1m   *float64       `json:"backfill_records_per_s_1m"`
	BackfillRequests1m      *float64       `json:"backfill_requests_1m"`
	RSSMB100k               *float64       `json:"rss_mb_100k"`
	RSSMB1m                 *float64       `json:"rss_mb_1m"`
	RSSRatio1m100k          *float64       `json:"rss_ratio_1m_100k"`
	KafkaRecordsPerS        *float64       `json:"kafka_records_per_s"`
	// wooevents serve: RSS of 100 idle polling instances minus RSS with
	// none, and the p99 of their create latency.
	InstancesRSSMBPer100 *float64 `json:"instances_rss_mb_per_100"`
	// The same once every instance has polled again (its pipeline built
	// again for that poll), and with every pipeline kept running
	// (--idle-stop 0): the baseline of the same run.
	InstancesRSSMBPer100AfterWake     *float64 `json:"instances_rss_mb_per_100_after_wake"`
	InstancesRSSMBPer100AlwaysRunning *float64 `json:"instances_rss_mb_per_100_always_running"`
	// woocommerce_poll against a slow store (300 ms per page, 20,000
	// orders): backfill time at max_concurrency 1 over the time at 4; and
	// change-to-event latency with interval 10s.
	BackfillParallelSpeedup *float64 `json:"backfill_parallel_speedup"`
	PollLatencyP50S         *float64 `json:"poll_latency_p50_s"`
	PollLatencyP99S         *float64 `json:"poll_latency_p99_s"`
	InstancesCreateP99Ms    *float64 `json:"instances_create_p99_ms"`

	// The same saturation runs measured by wrk (null when wrk is not
	// installed): the second load generator of issue 11.
	WrkWebhookRPS             *float64 `json:"wrk_webhook_rps"`
	WrkCeilingRPS             *float64 `json:"wrk_ceiling_http_server_rps"`
	WrkBaselineRPS            *float64 `json:"wrk_baseline_http_server_rps"`
	WrkSpooledRPS             *float64 `json:"wrk_spooled_rps"`
	WrkWebhookVsCeilingRatio  *float64 `json:"wrk_webhook_vs_ceiling_ratio"`
	WrkWebhookVsBaselineRatio *float64 `json:"wrk_webhook_vs_baseline_ratio"`
	WrkSpooledVsMemoryRatio   *float64 `json:"wrk_spooled_vs_memory_ratio"`

	// Server CPU time per request (median over the loadgen and wrk
	// saturation runs): stable on a shared machine. The ratio is the
	// ceiling's CPU per request over ours: >= 1 means the webhook input
	// needs no more CPU per verified delivery than a bare http_server per
	// unverified request, i.e. its capacity on a CPU is at least as high.
	WebhookCPUMicrosPerRequest  *float64 `json:"webhook_cpu_us_per_request"`
	CeilingCPUMicrosPerRequest  *float64 `json:"ceiling_cpu_us_per_request"`
	BaselineCPUMicrosPerRequest *float64 `json:"baseline_cpu_us_per_request"`
	SpooledCPUMicrosPerRequest  *float64 `json:"spooled_cpu_us_per_request"`
	WebhookVsCeilingCPURatio    *float64 `json:"webhook_vs_ceiling_cpu_ratio"`

	Targets map[string]string `json:"targets"`
	Notes   []string          `json:"notes"`
	Errors  map[string]string `json:"errors,omitempty"`

	WebhookRuns        []*WebhookRun  `json:"webhook_runs"`
	KafkaRuns          []*KafkaRun    `json:"kafka_runs"`
	BackfillRuns       []*BackfillRun `json:"backfill_runs"`
	InstancesRun       *InstancesRun  `json:"instances_run,omitempty"`
	InstancesAlwaysRun *InstancesRun  `json:"instances_always_running_run,omitempty"`

	PollParallelRuns []*PollParallelRun `json:"poll_parallel_runs,omitempty"`
	PollLatencyRun   *PollLatencyRun    `json:"poll_latency_run,omitempty"`
}

// DetectMachine fills the machine description.
func DetectMachine(pinning string) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, Pinning: pinning}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	if cores := OnlineCPUs(); cores > 0 {
		m.Cores = cores
	}
	return m
}

// OnlineCPUs counts the machine's online CPUs (not the process's affinity
// mask, which runtime.NumCPU reports); 0 when unknown.
func OnlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 0
	}
	n := 0
	for part := range strings.SplitSeq(strings.TrimSpace(string(b)), ",") {
		var lo, hi int
		if c, _ := fmt.Sscanf(part, "%d-%d", &lo, &hi); c == 2 {
			n += hi - lo + 1
		} else if c, _ := fmt.Sscanf(part, "%d", &lo); c == 1 {
			n++
		}
	}
	return n
}

// Median of xs (nil when empty).
func Median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	var m float64
	if len(s)%2 == 1 {
		m = s[len(s)/2]
	} else {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &m
}

func ptr(f float64) *float64 { return &f }

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func f(v *float64, format string) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v)
}

// PrintTable prints the summary table.
func (r *Report) PrintTable(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\nwooevents bench — %s, %d cores (%s), %s; %s\n", m.CPUModel, m.Cores, m.OS, m.GoVersion, m.Pinning)
	fmt.Fprintf(w, "medians of %d alternating rounds, %.0fs runs, %d keep-alive connections, %d-byte captured order.updated body; load at start: %s\n\n",
		r.Settings.Rounds, r.Settings.RunSeconds, r.Settings.Concurrency, r.Settings.BodyBytes, m.LoadAvg)
	small, large := "100k", "1M"
	if bs := r.Settings.BackfillSizes; len(bs) > 0 {
		small, large = count(bs[0]), count(bs[len(bs)-1])
	}
	rows := [][3]string{
		{"webhook (woocommerce_webhook, ack delivered) saturation", f(r.WebhookRPS, "%.0f req/s"), ""},
		{"baseline: http_server + Bloblang HMAC/normalize", f(r.BaselineHTTPServerRPS, "%.0f req/s"), ""},
		{"ceiling: http_server, no processing", f(r.CeilingHTTPServerRPS, "%.0f req/s"), ""},
		{"webhook / Bloblang baseline", f(r.WebhookVsBaselineRatio, "%.2fx"), "target " + Targets["webhook_vs_baseline_ratio"]},
		{"webhook / ceiling", f(r.WebhookVsCeilingRatio, "%.2fx"), "target " + Targets["webhook_vs_ceiling_ratio"]},
		{fmt.Sprintf("webhook p50 / p99 at %.0f req/s", r.Settings.FixedRateRPS), f(r.WebhookP50MsAt2000, "%.2f") + " / " + f(r.WebhookP99MsAt2000, "%.2f ms"), "p99 target " + Targets["webhook_p99_ms_at_2000rps"] + " ms"},
		{fmt.Sprintf("baseline p50 / p99 at %.0f req/s", r.Settings.FixedRateRPS), f(r.BaselineP50MsAt2000, "%.2f") + " / " + f(r.BaselineP99MsAt2000, "%.2f ms"), ""},
		{fmt.Sprintf("ceiling p50 / p99 at %.0f req/s", r.Settings.FixedRateRPS), f(r.CeilingP50MsAt2000, "%.2f") + " / " + f(r.CeilingP99MsAt2000, "%.2f ms"), ""},
		{"load generator send lag p99 (included above)", f(r.LoadgenSendLagP99Ms, "%.2f ms"), ""},
		{"webhook ack: spooled saturation", f(r.SpooledRPS, "%.0f req/s"), ""},
		{"spooled / in-memory", f(r.SpooledVsMemoryRatio, "%.2fx"), "target " + Targets["spooled_vs_memory_ratio"]},
		{fmt.Sprintf("spooled p50 / p99 at %.0f req/s", r.Settings.FixedRateRPS), f(r.SpooledP50MsAt2000, "%.2f") + " / " + f(r.SpooledP99MsAt2000, "%.2f ms"), ""},
		{"wrk: webhook / ceiling / Bloblang / spooled", f(r.WrkWebhookRPS, "%.0f") + " / " + f(r.WrkCeilingRPS, "%.0f") + " / " + f(r.WrkBaselineRPS, "%.0f") + " / " + f(r.WrkSpooledRPS, "%.0f req/s"), ""},
		{"wrk: webhook / ceiling", f(r.WrkWebhookVsCeilingRatio, "%.2fx"), "target " + Targets["webhook_vs_ceiling_ratio"]},
		{"wrk: webhook / Bloblang baseline", f(r.WrkWebhookVsBaselineRatio, "%.2fx"), "target " + Targets["webhook_vs_baseline_ratio"]},
		{"wrk: spooled / in-memory", f(r.WrkSpooledVsMemoryRatio, "%.2fx"), "target " + Targets["spooled_vs_memory_ratio"]},
		{"server CPU per request: webhook / ceiling / Bloblang / spooled", f(r.WebhookCPUMicrosPerRequest, "%.1f") + " / " + f(r.CeilingCPUMicrosPerRequest, "%.1f") + " / " + f(r.BaselineCPUMicrosPerRequest, "%.1f") + " / " + f(r.SpooledCPUMicrosPerRequest, "%.1f µs"), ""},
		{"ceiling CPU / webhook CPU per request", f(r.WebhookVsCeilingCPURatio, "%.2fx"), "target " + Targets["webhook_vs_ceiling_ratio"]},
		{"poll backfill " + small + " orders", f(r.BackfillRecordsPerS100k, "%.0f records/s"), "target " + Targets["backfill_records_per_s"]},
		{"poll backfill " + large + " orders", f(r.BackfillRecordsPerS1m, "%.0f records/s"), ""},
		{"backfill requests " + small + " / " + large, f(r.BackfillRequests100k, "%.0f") + " / " + f(r.BackfillRequests1m, "%.0f"), ""},
		{"wooevents peak RSS " + small + " / " + large, f(r.RSSMB100k, "%.1f") + " / " + f(r.RSSMB1m, "%.1f MB"), ""},
		{"RSS(" + large + ") / RSS(" + small + ")", f(r.RSSRatio1m100k, "%.2f"), "target " + Targets["rss_ratio_1m_100k"]},
		{"poll backfill, slow store: max_concurrency 1 time / 4 time", f(r.BackfillParallelSpeedup, "%.2fx"), "target " + Targets["backfill_parallel_speedup"]},
		{"poll change-to-event latency p50 / p99 (interval 10s)", f(r.PollLatencyP50S, "%.2f") + " / " + f(r.PollLatencyP99S, "%.2f s"), "p99 target " + Targets["poll_latency_p99_s"] + " s"},
		{"webhook → kafka_franz (kfake)", f(r.KafkaRecordsPerS, "%.0f records/s"), ""},
		{"serve: RSS per 100 idle polling instances", f(r.InstancesRSSMBPer100, "%.1f MB"), "target " + Targets["instances_rss_mb_per_100"] + " MB"},
		{"serve: the same after every instance polled again", f(r.InstancesRSSMBPer100AfterWake, "%.1f MB"), ""},
		{"serve: the same with every pipeline running (--idle-stop 0)", f(r.InstancesRSSMBPer100AlwaysRunning, "%.1f MB"), ""},
		{"serve: create p99 (POST /instances)", f(r.InstancesCreateP99Ms, "%.1f ms"), ""},
	}
	width := 0
	for _, row := range rows {
		width = max(width, len(row[0]))
	}
	for _, row := range rows {
		fmt.Fprintf(w, "  %-*s  %-22s %s\n", width, row[0], row[1], row[2])
	}
	if len(r.ForgedSignatureStatus) > 0 {
		kinds := make([]string, 0, len(r.ForgedSignatureStatus))
		for k := range r.ForgedSignatureStatus {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		fmt.Fprintf(w, "\n  forged signature answered with:")
		for _, k := range kinds {
			fmt.Fprintf(w, " %s=%d", k, r.ForgedSignatureStatus[k])
		}
		fmt.Fprintln(w)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(w)
		for k, v := range r.Errors {
			fmt.Fprintf(w, "  NOT RUN %s: %s\n", k, firstLine(v))
		}
	}
	fmt.Fprintln(w)
}

func count(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
