package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// SuiteOptions configure a full `make bench` run.
type SuiteOptions struct {
	Binary    string // wooevents binary
	SimBinary string // wcsim binary ("" skips the backfill)
	WorkDir   string
	// ServerCPUs / LoadgenCPUs describe the pinning (for the report; the
	// driver pins itself before calling RunSuite).
	ServerCPUs  string
	LoadgenCPUs string
	Rounds      int
	Duration    time.Duration
	Warmup      time.Duration
	Concurrency int
	// KafkaConcurrency is the number of connections of the webhook →
	// kafka_franz run (each delivery waits for its record's ack).
	KafkaConcurrency int
	Rate             float64
	// BackfillSizes are the order counts to backfill (100k and 1M).
	BackfillSizes []int
	// BackfillRounds is how many times the smaller sizes run (the largest
	// runs once).
	BackfillRounds int
	Only           map[string]bool // scenario names to run; empty = all
	// Quick skips the parts that wait for minutes (the serve bench's second
	// measurement after the instances polled again).
	Quick bool
	Log   func(format string, args ...any)
}

// Scenario names for SuiteOptions.Only.
const (
	ScenarioWebhook  = "webhook"
	ScenarioKafka    = "kafka"
	ScenarioBackfill = "backfill"
)

func (o SuiteOptions) runs(s string) bool { return len(o.Only) == 0 || o.Only[s] }

// RunSuite runs every scenario and returns the report. Scenarios whose
// component is missing from the binary are recorded in Report.Errors.
func RunSuite(ctx context.Context, o SuiteOptions) *Report {
	started := time.Now()
	pinning := "unpinned (fewer than 2 CPUs or pinning disabled)"
	if o.ServerCPUs != "" {
		pinning = fmt.Sprintf("taskset: load generator (and in-process kfake) on CPU %s, wooevents on CPU %s", o.LoadgenCPUs, o.ServerCPUs)
	}
	r := &Report{
		GeneratedAt:           started.UTC().Format(time.RFC3339),
		Machine:               DetectMachine(pinning),
		Targets:               Targets,
		Errors:                map[string]string{},
		ForgedSignatureStatus: map[string]int{},
	}
	r.Settings.Rounds = o.Rounds
	r.Settings.RunSeconds = o.Duration.Seconds()
	r.Settings.Concurrency = o.Concurrency
	r.Settings.FixedRateRPS = o.Rate
	r.Settings.Fixture = OrderUpdatedFixture
	r.Settings.Metrics = "json_api (same exporter for every server)"
	if c, err := LoadRepoCapture(OrderUpdatedFixture); err == nil {
		r.Settings.BodyBytes = len(c.Body)
	}
	r.Notes = append(r.Notes,
		"latency at the fixed rate is measured from each request's intended send time (no coordinated omission)",
		"the Bloblang baseline answers 200 to a forged signature: throw() only flags the message and the drop output acks it",
	)
	wo := WebhookOptions{Binary: o.Binary, WorkDir: o.WorkDir, ServerCPUs: o.ServerCPUs, LoadgenCPUs: o.LoadgenCPUs,
		Concurrency: o.Concurrency, Duration: o.Duration, Warmup: o.Warmup, Rate: o.Rate, Log: o.Log}

	if o.runs(ScenarioWebhook) {
		runWebhookRounds(ctx, o, wo, r)
	}
	if o.runs(ScenarioKafka) {
		runKafkaRounds(ctx, o, wo, r)
	}
	if o.runs(ScenarioBackfill) {
		runBackfill(ctx, o, r)
	}
	if o.runs(ScenarioPollParallel) || o.runs(ScenarioPollLatency) {
		runPollScenarios(ctx, o, r)
	}
	if o.runs(ScenarioInstances) {
		runInstances(ctx, o, r)
	}
	r.DurationS = time.Since(started).Seconds()
	return r
}

func logf(o SuiteOptions, format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

func runWebhookRounds(ctx context.Context, o SuiteOptions, wo WebhookOptions, r *Report) {
	kinds := []string{KindCeiling, KindBloblang}
	if BinaryHas(o.Binary, "inputs", "woocommerce_webhook") {
		kinds = append(kinds, KindWebhook, KindSpooled)
	} else {
		r.Errors[KindWebhook] = "woocommerce_webhook input: " + ErrNotAvailable.Error()
	}
	logf(o, "webhook ingest: %d rounds of %v (+%v warmup) saturation with %d connections, then %.0f req/s fixed rate",
		o.Rounds, o.Duration, o.Warmup, o.Concurrency, o.Rate)
	byKind := map[string][]*WebhookRun{}
	perRound := make([]map[string]*WebhookRun, o.Rounds)
	for round := range o.Rounds {
		perRound[round] = map[string]*WebhookRun{}
		// Rotate the order each round so no server always runs first.
		for i := range kinds {
			kind := kinds[(i+round)%len(kinds)]
			if _, failed := r.Errors[kind]; failed || ctx.Err() != nil {
				continue
			}
			run, err := BenchWebhookOnce(ctx, wo, kind, round)
			if err != nil {
				r.Errors[kind] = err.Error()
				logf(o, "  %s: %v", kind, err)
				continue
			}
			r.WebhookRuns = append(r.WebhookRuns, run)
			byKind[kind] = append(byKind[kind], run)
			perRound[round][kind] = run
			r.ForgedSignatureStatus[kind] = run.ForgedStatus
			runtime.GC()
		}
	}
	sat := func(kind string) *float64 {
		var xs []float64
		for _, run := range byKind[kind] {
			xs = append(xs, run.Saturation.RPS)
		}
		return Median(xs)
	}
	fixed := func(kind string, get func(*LoadResult) float64) *float64 {
		var xs []float64
		for _, run := range byKind[kind] {
			xs = append(xs, get(run.FixedRate))
		}
		return Median(xs)
	}
	p50 := func(l *LoadResult) float64 { return l.P50ms }
	p99 := func(l *LoadResult) float64 { return l.P99ms }
	ratio := func(num, den string) *float64 {
		var xs []float64
		for _, round := range perRound {
			if a, b := round[num], round[den]; a != nil && b != nil && b.Saturation.RPS > 0 {
				xs = append(xs, a.Saturation.RPS/b.Saturation.RPS)
			}
		}
		return Median(xs)
	}
	wrkSat := func(kind string) *float64 {
		var xs []float64
		for _, run := range byKind[kind] {
			if run.Wrk != nil {
				xs = append(xs, run.Wrk.RPS)
			}
		}
		return Median(xs)
	}
	wrkRatio := func(num, den string) *float64 {
		var xs []float64
		for _, round := range perRound {
			if a, b := round[num], round[den]; a != nil && b != nil && a.Wrk != nil && b.Wrk != nil && b.Wrk.RPS > 0 {
				xs = append(xs, a.Wrk.RPS/b.Wrk.RPS)
			}
		}
		return Median(xs)
	}
	satP99 := func(kind string) *float64 {
		var xs []float64
		for _, run := range byKind[kind] {
			xs = append(xs, run.Saturation.P99ms)
		}
		return Median(xs)
	}
	r.WebhookRPS, r.BaselineHTTPServerRPS, r.CeilingHTTPServerRPS, r.SpooledRPS = sat(KindWebhook), sat(KindBloblang), sat(KindCeiling), sat(KindSpooled)
	r.WebhookVsBaselineRatio = ratio(KindWebhook, KindBloblang)
	r.WebhookVsCeilingRatio = ratio(KindWebhook, KindCeiling)
	r.SpooledVsMemoryRatio = ratio(KindSpooled, KindWebhook)
	r.WrkWebhookRPS, r.WrkCeilingRPS, r.WrkBaselineRPS, r.WrkSpooledRPS = wrkSat(KindWebhook), wrkSat(KindCeiling), wrkSat(KindBloblang), wrkSat(KindSpooled)
	cpu := func(kind string) *float64 {
		var xs []float64
		for _, run := range byKind[kind] {
			if run.CPUMicrosPerRequest > 0 {
				xs = append(xs, run.CPUMicrosPerRequest)
			}
			if run.Wrk != nil && run.Wrk.CPUMicrosPerRequest > 0 {
				xs = append(xs, run.Wrk.CPUMicrosPerRequest)
			}
		}
		return Median(xs)
	}
	r.WebhookCPUMicrosPerRequest, r.CeilingCPUMicrosPerRequest = cpu(KindWebhook), cpu(KindCeiling)
	r.BaselineCPUMicrosPerRequest, r.SpooledCPUMicrosPerRequest = cpu(KindBloblang), cpu(KindSpooled)
	if w, c := r.WebhookCPUMicrosPerRequest, r.CeilingCPUMicrosPerRequest; w != nil && c != nil && *w > 0 {
		r.WebhookVsCeilingCPURatio = ptr(*c / *w)
	}
	r.WrkWebhookVsCeilingRatio = wrkRatio(KindWebhook, KindCeiling)
	r.WrkWebhookVsBaselineRatio = wrkRatio(KindWebhook, KindBloblang)
	r.WrkSpooledVsMemoryRatio = wrkRatio(KindSpooled, KindWebhook)
	r.WebhookP50MsAt2000, r.WebhookP99MsAt2000 = fixed(KindWebhook, p50), fixed(KindWebhook, p99)
	r.BaselineP50MsAt2000, r.BaselineP99MsAt2000 = fixed(KindBloblang, p50), fixed(KindBloblang, p99)
	r.CeilingP50MsAt2000, r.CeilingP99MsAt2000 = fixed(KindCeiling, p50), fixed(KindCeiling, p99)
	r.SpooledP50MsAt2000, r.SpooledP99MsAt2000 = fixed(KindSpooled, p50), fixed(KindSpooled, p99)
	r.WebhookP99MsSaturation, r.BaselineP99MsSaturation = satP99(KindWebhook), satP99(KindBloblang)
	var lags []float64
	for _, run := range r.WebhookRuns {
		lags = append(lags, run.FixedRate.SendLagP99ms)
	}
	r.LoadgenSendLagP99Ms = Median(lags)
}

func runKafkaRounds(ctx context.Context, o SuiteOptions, wo WebhookOptions, r *Report) {
	const name = "kafka"
	if !BinaryHas(o.Binary, "inputs", "woocommerce_webhook") || !BinaryHas(o.Binary, "outputs", "kafka_franz") {
		r.Errors[name] = "woocommerce_webhook input or kafka_franz output: " + ErrNotAvailable.Error()
		return
	}
	wo.Concurrency = o.KafkaConcurrency
	logf(o, "webhook → kafka_franz into in-process kfake: %d rounds of %v saturation with %d connections", o.Rounds, o.Duration, wo.Concurrency)
	var xs []float64
	for round := range o.Rounds {
		if ctx.Err() != nil {
			break
		}
		run, err := BenchKafkaOnce(ctx, wo, round)
		if run != nil {
			r.KafkaRuns = append(r.KafkaRuns, run)
		}
		if err != nil {
			r.Errors[name] = err.Error()
			logf(o, "  kafka: %v", err)
			return
		}
		xs = append(xs, run.RecordsPerS)
		runtime.GC()
	}
	r.KafkaRecordsPerS = Median(xs)
}
