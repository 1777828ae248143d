// Package soak holds reliability tests against the real wooevents binary:
// a callback endpoint that goes down and comes back, bad webhook input and
// slow clients. By default each test runs a short variant (well under 30 s)
// so `go test ./...` covers them; the long variants run with
//
//	go test -count=1 -timeout 30m ./tests/soak -args -soak
//
// or WOOEVENTS_SOAK=1. The binary comes from testproc.Binary (WOOEVENTS_BIN
// or a build of ./cmd/wooevents).
package soak

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/wooevents/wooevents/tests/bench"
	"github.com/wooevents/wooevents/tests/testproc"
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
	return testproc.MainWithBinary(m, &binary)
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
