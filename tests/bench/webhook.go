package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Server kinds the webhook benchmark compares.
const (
	KindWebhook  = "woocommerce_webhook"         // ours, ack: delivered
	KindSpooled  = "woocommerce_webhook_spooled" // ours, ack: spooled
	KindBloblang = "http_server_bloblang"        // stock http_server + Bloblang HMAC check and normalization
	KindCeiling  = "http_server_no_processing"   // stock http_server, nothing else
)

// WebhookOptions configure the webhook ingest benchmark.
type WebhookOptions struct {
	Binary      string
	WorkDir     string
	ServerCPUs  string // taskset CPU list for the server, "" = unpinned
	Concurrency int
	Duration    time.Duration
	Warmup      time.Duration
	Rate        float64 // fixed offered rate for the latency run
	// LoadgenCPUs pins wrk (when installed) like the load generator.
	LoadgenCPUs string
	Log         func(format string, args ...any)
}

// WebhookRun is one server measured once: saturation and fixed rate.
type WebhookRun struct {
	Kind       string      `json:"kind"`
	Round      int         `json:"round"`
	Saturation *LoadResult `json:"saturation"`
	FixedRate  *LoadResult `json:"fixed_rate"`
	// ForgedStatus is the status the server answered to a delivery signed
	// with the wrong secret.
	ForgedStatus int `json:"forged_signature_status"`
	// Wrk is the saturation measured by wrk with the same request and
	// connections (nil when wrk is not installed).
	Wrk *WrkResult `json:"wrk,omitempty"`
	// CPUMicrosPerRequest is the server's user+system CPU time per answered
	// request over the saturation run (and the wrk run, when there is one):
	// unlike req/s it hardly moves when other processes share the server's
	// CPU, so it compares CPU-bound servers on a busy machine.
	CPUMicrosPerRequest float64 `json:"cpu_us_per_request"`
	// PeakRSSMB is VmHWM of the server after the run.
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

// webhookServer starts one server kind and returns it with its listen
// address.
func webhookServer(o WebhookOptions, kind string, round int) (*Proc, string, error) {
	addr, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	httpAddr, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(o.WorkDir, fmt.Sprintf("%s-%d", kind, round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	var conf string
	switch kind {
	case KindWebhook:
		conf = WebhookConfig(addr, httpAddr, FixtureSecret, "delivered", "")
	case KindSpooled:
		conf = WebhookConfig(addr, httpAddr, FixtureSecret, "spooled", filepath.Join(dir, "spool"))
	case KindBloblang:
		conf = BloblangBaselineConfig(addr, httpAddr)
	case KindCeiling:
		conf = CeilingConfig(addr, httpAddr)
	default:
		return nil, "", fmt.Errorf("unknown server kind %q", kind)
	}
	p, err := StartWooevents(o.Binary, dir, kind, conf, o.ServerCPUs, []string{"WC_WEBHOOK_SECRET=" + FixtureSecret})
	if err != nil {
		return nil, "", err
	}
	if err := p.WaitTCP(addr, 20*time.Second); err != nil {
		p.Kill()
		return nil, "", err
	}
	return p, addr, nil
}

// StartWooevents writes conf to dir/config.yaml and runs `wooevents -c` on it.
func StartWooevents(binary, dir, name, conf, cpus string, env []string) (*Proc, error) {
	confPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return StartProc(ProcOptions{Name: name, Path: binary, Args: []string{"-c", confPath}, Env: env, CPUs: cpus, LogDir: dir})
}

// SendOne sends a single raw request on a fresh connection and returns the
// status code.
func SendOne(addr string, req []byte) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	status, _, err := readResponse(bufio.NewReader(c))
	return status, err
}

// BenchWebhookOnce measures one server kind: a correctly signed delivery
// must get 200, a forged one is answered (status recorded), then warmup,
// saturation and the fixed-rate latency run.
func BenchWebhookOnce(ctx context.Context, o WebhookOptions, kind string, round int) (*WebhookRun, error) {
	capture, err := LoadRepoCapture(OrderUpdatedFixture)
	if err != nil {
		return nil, err
	}
	p, addr, err := webhookServer(o, kind, round)
	if err != nil {
		return nil, err
	}
	defer func() { _ = p.Stop(20 * time.Second) }()

	good := capture.Request(DeliveryOptions{Path: WebhookPath, Host: addr, Secret: FixtureSecret})
	forged := capture.Request(DeliveryOptions{Path: WebhookPath, Host: addr, Secret: "forged-" + FixtureSecret})

	run := &WebhookRun{Kind: kind, Round: round}
	status, err := SendOne(addr, good)
	if err != nil {
		return nil, p.Failed(fmt.Errorf("%s: first delivery: %w", kind, err))
	}
	if status != 200 {
		return nil, p.Failed(fmt.Errorf("%s: a correctly signed delivery got HTTP %d, want 200", kind, status))
	}
	if run.ForgedStatus, err = SendOne(addr, forged); err != nil {
		return nil, p.Failed(fmt.Errorf("%s: forged delivery: %w", kind, err))
	}

	load := LoadOptions{Addr: addr, Requests: [][]byte{good}, Concurrency: o.Concurrency}
	if o.Warmup > 0 {
		load.Duration = o.Warmup
		if _, err := RunLoad(ctx, load); err != nil {
			return nil, p.Failed(err)
		}
	}
	load.Duration = o.Duration
	cpu0, cpuErr := p.CPUSeconds()
	if run.Saturation, err = RunLoad(ctx, load); err != nil {
		return nil, p.Failed(err)
	}
	cpu1, cpuErr1 := p.CPUSeconds()
	served := run.Saturation.Completed
	load.Rate = o.Rate
	if run.FixedRate, err = RunLoad(ctx, load); err != nil {
		return nil, p.Failed(err)
	}
	cpu2, _ := p.CPUSeconds()
	if WrkPath() != "" {
		run.Wrk, err = RunWrk(ctx, WrkOptions{Addr: addr, Request: good, Concurrency: o.Concurrency, Duration: o.Duration,
			CPUs: o.LoadgenCPUs, WorkDir: filepath.Join(o.WorkDir, fmt.Sprintf("%s-%d", kind, round))})
		if err != nil {
			return nil, p.Failed(err)
		}
		if run.Wrk.Non2xx > 0 || run.Wrk.Requests == 0 {
			return run, p.Failed(fmt.Errorf("%s: unhealthy wrk run: %+v", kind, run.Wrk))
		}
		wrk1, err := p.CPUSeconds()
		if cpuErr1 == nil && err == nil {
			run.Wrk.CPUMicrosPerRequest = (wrk1 - cpu2) * 1e6 / float64(run.Wrk.Requests)
		}
	}
	if cpuErr == nil && cpuErr1 == nil && served > 0 {
		run.CPUMicrosPerRequest = (cpu1 - cpu0) * 1e6 / float64(served)
	}
	run.PeakRSSMB, _ = p.PeakRSSMB()
	if p.Exited() {
		return nil, p.Failed(fmt.Errorf("%s exited during the run", kind))
	}
	for _, r := range []*LoadResult{run.Saturation, run.FixedRate} {
		if r.OK == 0 || r.Errors > r.OK/100 || r.Non2xx > 0 {
			return run, p.Failed(fmt.Errorf("%s: unhealthy run: %s (first error: %s)", kind, r, r.FirstError))
		}
	}
	if o.Log != nil {
		wrk := "wrk n/a"
		if run.Wrk != nil {
			wrk = fmt.Sprintf("wrk %8.0f req/s", run.Wrk.RPS)
		}
		o.Log("  %-30s round %d  sat %8.0f req/s p99 %6.2fms cpu %5.1fµs/req | %s | @%.0f/s p50 %5.2fms p99 %6.2fms | forged→%d | rss %.0f MB",
			kind, round, run.Saturation.RPS, run.Saturation.P99ms, run.CPUMicrosPerRequest, wrk, o.Rate, run.FixedRate.P50ms, run.FixedRate.P99ms,
			run.ForgedStatus, run.PeakRSSMB)
	}
	return run, nil
}

// BinaryHas reports whether the binary lists the named component.
func BinaryHas(binary, kind, name string) bool {
	out, err := execOutput(binary, "list", kind)
	return err == nil && containsLine(out, name)
}

func containsLine(out, name string) bool {
	for l := range strings.Lines(out) {
		if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- ")) == name {
			return true
		}
	}
	return false
}
