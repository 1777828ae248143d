// Package testproc runs the real wooevents binary in tests: it finds or
// builds the binary once per test package and starts, waits for and stops
// processes, logging their output when a test fails.
package testproc

import (
	"bytes"
	"context"
	"errors"
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

// Wait bounds and polling tick of Eventually and WaitReady.
const (
	WaitFor = 30 * time.Second
	Tick    = 50 * time.Millisecond
)

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary returns the wooevents binary for a test package: $WOOEVENTS_BIN
// (absolute, or relative to the repository root, as `make test` passes it),
// or one built into a temporary directory. Call it from TestMain and run the
// returned cleanup after m.Run.
func Binary() (path string, cleanup func(), err error) {
	if env := os.Getenv("WOOEVENTS_BIN"); env != "" {
		if !filepath.IsAbs(env) {
			env = filepath.Join(RepoRoot(), env)
		}
		if _, err := os.Stat(env); err != nil {
			return "", nil, fmt.Errorf("WOOEVENTS_BIN: %w", err)
		}
		return env, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "wooevents-bin-")
	if err != nil {
		return "", nil, err
	}
	path = filepath.Join(dir, "wooevents")
	cmd := exec.Command("go", "build", "-o", path, "./cmd/wooevents")
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building wooevents: %w\n%s", err, out)
	}
	return path, func() { _ = os.RemoveAll(dir) }, nil
}

// MainWithBinary is a TestMain body: it sets *bin to Binary() and runs m.
func MainWithBinary(m *testing.M, bin *string) int {
	path, cleanup, err := Binary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	*bin = path
	return m.Run()
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// Buffer collects a process's output; safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is a running wooevents process.
type Proc struct {
	Cmd     *exec.Cmd
	Out     *Buffer
	done    chan struct{}
	waitErr error
}

// Start runs bin with args in dir (its working directory) with env added to
// this process's environment. The process is stopped with SIGTERM when the
// test ends, and its output is logged if the test failed.
func Start(t *testing.T, bin, dir string, env map[string]string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Out: &Buffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Dir = dir
	p.Cmd.Env = os.Environ()
	for k, v := range env {
		p.Cmd.Env = append(p.Cmd.Env, k+"="+v)
	}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	require.NoError(t, p.Cmd.Start())
	go func() {
		p.waitErr = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("wooevents %v output:\n%s", args, p.Out.String())
		}
	})
	return p
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, once Done is closed.
func (p *Proc) Err() error { return p.waitErr }

// Eventually waits with short ticks until cond holds and fails the test with
// what() when it does not within WaitFor, or at once when the process ends.
// cond runs on another goroutine: it must not call t.FailNow (require.*).
func (p *Proc) Eventually(t *testing.T, cond func() bool, what func() string) {
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
	}, WaitFor, Tick)
	switch {
	case exited.Load():
		t.Fatalf("wooevents exited early: %v", p.waitErr)
	case !ok:
		t.Fatal(what())
	}
}

// WaitReady waits until the benthos HTTP server at httpAddr answers /ready
// with 200 (every input and output connected).
func (p *Proc) WaitReady(t *testing.T, httpAddr string) {
	t.Helper()
	p.Eventually(t, func() bool {
		res, err := http.Get("http://" + httpAddr + "/ready")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, func() string { return "wooevents not ready" })
}

// Stop sends SIGTERM and waits for the exit (SIGKILL after 25 s, which fails
// the test: a pipeline must shut down cleanly).
func (p *Proc) Stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(25 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
		t.Errorf("wooevents did not stop on SIGTERM")
	}
}

// Kill ends the process with SIGKILL (a crash) and waits for it.
func (p *Proc) Kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
}

// WaitExit waits for a process that ends by itself and requires a clean exit.
func (p *Proc) WaitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
		require.NoError(t, p.waitErr, p.Out.String())
	case <-time.After(timeout):
		t.Fatalf("wooevents did not exit:\n%s", p.Out.String())
	}
}

// Run runs bin to completion (at most a minute) and returns stdout, stderr
// and the exit error.
func Run(t *testing.T, bin, dir string, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("wooevents %v did not finish within a minute: %w", args, err)
	}
	return o.String(), e.String(), err
}
