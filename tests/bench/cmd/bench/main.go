// Command bench is the `make bench` driver: it builds (or takes) the
// wooevents and wcsim binaries, runs every benchmark scenario, prints a
// table and writes tests/bench/results/latest.json.
//
//	go run ./tests/bench/cmd/bench [-bin bin/wooevents] [-quick] [-only webhook,kafka,backfill,poll_parallel,poll_latency,instances]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/wooevents/wooevents/tests/bench"
)

const pinnedEnv = "WOOEVENTS_BENCH_PINNED"

func main() {
	var (
		binary      = flag.String("bin", "", "wooevents binary (default: build ./cmd/wooevents into a temp dir)")
		simBinary   = flag.String("wcsim", "", "wcsim binary (default: build ./tests/wcsim/cmd/wcsim into a temp dir)")
		out         = flag.String("out", "tests/bench/results/latest.json", "where to write the JSON results")
		rounds      = flag.Int("rounds", 3, "alternating rounds per scenario (medians are reported)")
		duration    = flag.Duration("duration", 5*time.Second, "length of each measured run")
		warmup      = flag.Duration("warmup", time.Second, "closed-loop warmup before each measured run")
		concurrency = flag.Int("c", 32, "keep-alive connections")
		kafkaC      = flag.Int("kafka-c", 64, "keep-alive connections of the webhook → kafka_franz run")
		rate        = flag.Float64("rate", 2000, "offered rate of the fixed-rate latency run (req/s)")
		sizes       = flag.String("backfill", "100000,1000000", "order counts to backfill (comma separated)")
		bfRounds    = flag.Int("backfill-rounds", 3, "rounds for every backfill size but the largest (which runs once)")
		only        = flag.String("only", "", "comma-separated scenarios to run: webhook,kafka,backfill,poll_parallel,poll_latency,instances (default all)")
		pin         = flag.Bool("pin", true, "pin the load generator to CPU 0 and wooevents to CPU 1 with taskset (needs >= 2 CPUs)")
		quick       = flag.Bool("quick", false, "a seconds-long smoke run: 1 round, 1s runs, 10k/20k backfill")
		keep        = flag.Bool("keep", false, "keep the work directory (configs, logs)")
	)
	flag.StringVar(binary, "wooevents", "", "alias of -bin")
	flag.Parse()
	if *quick {
		*rounds, *duration, *warmup, *sizes, *bfRounds = 1, time.Second, 300*time.Millisecond, "10000,20000", 1
	}

	serverCPUs, loadgenCPUs := "", ""
	if *pin && max(runtime.NumCPU(), bench.OnlineCPUs()) >= 2 {
		if _, err := exec.LookPath("taskset"); err == nil {
			serverCPUs, loadgenCPUs = "1", "0"
			if os.Getenv(pinnedEnv) == "" {
				// Re-exec under taskset so every thread of the driver (load
				// generator, kfake) is on CPU 0.
				self, err := os.Executable()
				if err == nil {
					ts, _ := exec.LookPath("taskset")
					args := append([]string{ts, "-c", loadgenCPUs, self}, os.Args[1:]...)
					env := append(os.Environ(), pinnedEnv+"=1")
					err = syscall.Exec(ts, args, env)
				}
				fmt.Fprintf(os.Stderr, "bench: could not pin myself (%v); running unpinned\n", err)
				serverCPUs, loadgenCPUs = "", ""
			}
		}
	}

	root, err := bench.RepoRoot()
	if err != nil {
		fatal(err)
	}
	work, err := os.MkdirTemp("", "wooevents-bench-")
	if err != nil {
		fatal(err)
	}
	if *keep {
		fmt.Fprintf(os.Stderr, "bench: work directory %s kept\n", work)
	} else {
		defer os.RemoveAll(work)
	}

	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	if *binary == "" {
		*binary = filepath.Join(work, "wooevents")
		logf("building ./cmd/wooevents")
		if err := goBuild(root, *binary, "./cmd/wooevents"); err != nil {
			fatal(err)
		}
	}
	if *simBinary == "" {
		*simBinary = filepath.Join(work, "wcsim")
		logf("building ./tests/wcsim/cmd/wcsim")
		if err := goBuild(root, *simBinary, "./tests/wcsim/cmd/wcsim"); err != nil {
			logf("wcsim not built, backfill skipped: %v", err)
			*simBinary = ""
		}
	}

	var backfill []int
	for s := range strings.SplitSeq(*sizes, ",") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(s), "%d", &n); err != nil || n <= 0 {
			fatal(fmt.Errorf("bad -backfill size %q", s))
		}
		backfill = append(backfill, n)
	}
	onlySet := map[string]bool{}
	for s := range strings.SplitSeq(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			onlySet[s] = true
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report := bench.RunSuite(ctx, bench.SuiteOptions{
		Binary: *binary, SimBinary: *simBinary, WorkDir: work,
		ServerCPUs: serverCPUs, LoadgenCPUs: loadgenCPUs,
		Rounds: *rounds, Duration: *duration, Warmup: *warmup, Concurrency: *concurrency, KafkaConcurrency: *kafkaC, Rate: *rate,
		BackfillSizes: backfill, BackfillRounds: *bfRounds, Only: onlySet, Quick: *quick, Log: logf,
	})
	report.PrintTable(os.Stdout)
	outPath := *out
	if !filepath.IsAbs(outPath) {
		outPath = filepath.Join(root, outPath)
	}
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		fatal(err)
	}
	if err := report.WriteJSON(outPath); err != nil {
		fatal(err)
	}
	logf("results written to %s (%.0fs)", outPath, report.DurationS)
	if ctx.Err() != nil {
		os.Exit(130)
	}
}

// goBuild builds pkg; when the driver is pinned the compiler still gets
// every online CPU.
func goBuild(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if ts, err := exec.LookPath("taskset"); err == nil && os.Getenv(pinnedEnv) != "" {
		if online, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
			cmd = exec.Command(ts, "-c", strings.TrimSpace(string(online)), "go", "build", "-o", out, pkg)
		}
	}
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
