// Package soak holds reliability tests against the real wooevents binary:
// a callback endpoint that goes down and comes back, bad webhook input and
// slow clients. By default each test runs a short variant (well under 30 s)
// so `go test ./...` covers them; the long variants run with
//
//	go test -count=1 -timeout 30m ./tests/soak -args -soak
//
// or WOOEVENTS_SOAK=1. WOOEVENTS_BIN selects a prebuilt binary (a relative
// path is taken from the module root); otherwise TestMain builds
// ./cmd/wooevents into a temporary directory.
package soak

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/wooevents/wooevents/tests/bench"
)

var soakFlag = flag.Bool("soak", false, "run the long soak variants")

// binary is the wooevents binary under test.
var binary string

func long() bool { return *soakFlag || os.Getenv("WOOEVENTS_SOAK") != "" }

// pick returns the short or the long value.
func pick[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	binary = os.Getenv("WOOEVENTS_BIN")
	if binary != "" && !filepath.IsAbs(binary) {
		// Relative to the module root, like the Makefile's bin/wooevents.
		root, err := bench.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binary = filepath.Join(root, binary)
	}
	if binary == "" {
		dir, err := os.MkdirTemp("", "wooevents-soak-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		root, err := bench.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binary = filepath.Join(dir, "wooevents")
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/wooevents")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building wooevents: %v\n%s", err, out)
			return 1
		}
		fmt.Fprintf(os.Stderr, "soak: built wooevents in %s\n", time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

// startWooevents runs the binary on conf and waits for addr to listen.
func startWooevents(t *testing.T, name, conf, addr string, env ...string) *bench.Proc {
	t.Helper()
	dir := t.TempDir()
	p, err := bench.StartWooevents(binary, dir, name, conf, "", env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(20 * time.Second); err != nil {
			t.Errorf("stopping wooevents: %v", err)
		}
		if t.Failed() {
			t.Logf("wooevents log tail:\n%s", p.LogTail(4000))
		}
	})
	if err := p.WaitTCP(addr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort(t *testing.T) string {
	t.Helper()
	addr, err := bench.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func orderCapture(t *testing.T) *bench.Capture {
	t.Helper()
	c, err := bench.LoadRepoCapture(bench.OrderUpdatedFixture)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
