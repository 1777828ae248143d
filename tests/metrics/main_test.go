// Package metrics runs the real wooevents binary with the `prometheus`
// metrics exporter against the store simulator (tests/wcsim, in this
// process), drives polls, webhook deliveries, rejections and a webhook
// re-enable, and asserts the series scraped from /metrics over HTTP, parsed
// with the Prometheus text parser.
package metrics

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// binPath is the wooevents binary: $WOOEVENTS_BIN, or built by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if env := os.Getenv("WOOEVENTS_BIN"); env != "" {
		binPath = env
		return m.Run()
	}
	_, file, _, _ := runtime.Caller(0)
	repoRoot := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	dir, err := os.MkdirTemp("", "wooevents-metrics-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "wooevents")
	cmd := exec.Command("go", "build", "-o", binPath, "./cmd/wooevents")
	cmd.Dir = repoRoot
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building wooevents:", err)
		return 1
	}
	return m.Run()
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// syncBuffer collects the process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running wooevents.
type proc struct {
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
	waitErr error
}

// startWooevents runs the binary with args in dir, stops it with SIGTERM at
// the end of the test and logs its output when the test failed.
func startWooevents(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	p := &proc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("wooevents output:\n%s", p.out.String())
		}
	})
	return p
}

// eventually waits, with short ticks, until cond holds, and fails the test
// with what() when it does not within waitFor, or at once when the process
// has ended. cond runs on another goroutine: it must not call t.FailNow
// (require.*).
func (p *proc) eventually(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	var exited atomic.Bool
	ok := assert.Eventually(t, func() bool {
		select {
		case <-p.done:
			exited.Store(true)
			return true
		default:
		}
		return cond()
	}, waitFor, tick)
	switch {
	case exited.Load():
		t.Fatalf("wooevents exited early: %v", p.waitErr)
	case !ok:
		t.Fatal(what())
	}
}

func (p *proc) waitReady(t *testing.T, httpAddr string) {
	t.Helper()
	p.eventually(t, func() bool {
		res, err := http.Get("http://" + httpAddr + "/ready")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, func() string { return "wooevents not ready" })
}

func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(25 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("wooevents did not stop on SIGTERM")
	}
}
