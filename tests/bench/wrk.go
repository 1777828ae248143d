package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// WrkOptions configure one wrk run (https://github.com/wg/wrk, when
// installed): the same request, connections and duration as our own load
// generator, as a second opinion from a C load generator.
type WrkOptions struct {
	Addr        string
	Request     []byte // a complete HTTP/1.1 request, as RunLoad sends it
	Concurrency int
	Duration    time.Duration
	CPUs        string // taskset CPU list for wrk, "" = unpinned
	WorkDir     string // where the Lua script is written
}

// WrkResult is what wrk reported.
type WrkResult struct {
	RPS      float64 `json:"rps"`
	Requests int64   `json:"requests"`
	Non2xx   int64   `json:"non_2xx"`
	Errors   string  `json:"socket_errors,omitempty"`
	// CPUMicrosPerRequest is the server's CPU time per request of this run
	// (set by the caller, which knows the server).
	CPUMicrosPerRequest float64 `json:"cpu_us_per_request,omitempty"`
}

// WrkPath is the wrk binary, "" when it is not installed.
func WrkPath() string {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return ""
	}
	return p
}

var (
	wrkRPS    = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkTotal  = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in`)
	wrkNon2xx = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+([0-9]+)`)
	wrkErrors = regexp.MustCompile(`(?m)^\s*Socket errors:.*$`)
)

// RunWrk runs wrk with one thread (the load generator's CPU) against
// o.Addr, sending o.Request on every request.
func RunWrk(ctx context.Context, o WrkOptions) (*WrkResult, error) {
	bin := WrkPath()
	if bin == "" {
		return nil, ErrNotAvailable
	}
	script, err := WrkScript(o.Request)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(o.WorkDir, "wrk-request.lua")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		return nil, err
	}
	args := []string{"-t1", fmt.Sprintf("-c%d", o.Concurrency), fmt.Sprintf("-d%ds", int(o.Duration.Seconds()+0.5)),
		"--timeout", "10s", "-s", path, "http://" + o.Addr}
	name := bin
	if o.CPUs != "" {
		if ts, err := exec.LookPath("taskset"); err == nil {
			args = append([]string{"-c", o.CPUs, bin}, args...)
			name = ts
		}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %w: %s", err, bytes.TrimSpace(out))
	}
	return ParseWrk(string(out))
}

// ParseWrk reads wrk's summary.
func ParseWrk(out string) (*WrkResult, error) {
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("wrk printed no Requests/sec: %q", out)
	}
	r := &WrkResult{}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkTotal.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkErrors.FindString(out); m != "" {
		r.Errors = strings.TrimSpace(m)
	}
	return r, nil
}

// WrkScript is the Lua script that makes wrk send req: its method, path,
// headers (but Host and Content-Length, which wrk sets) and exact body.
func WrkScript(req []byte) ([]byte, error) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(req)))
	if err != nil {
		return nil, fmt.Errorf("wrk script: %w", err)
	}
	body := new(bytes.Buffer)
	if _, err := body.ReadFrom(r.Body); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "wrk.method = %s\nwrk.path = %s\n", luaString(r.Method), luaString(r.URL.RequestURI()))
	for k, vs := range r.Header {
		if k == "Content-Length" || k == "Connection" {
			continue
		}
		fmt.Fprintf(&b, "wrk.headers[%s] = %s\n", luaString(k), luaString(strings.Join(vs, ", ")))
	}
	fmt.Fprintf(&b, "wrk.body = %s\n", luaString(body.String()))
	if r.Method == "" || r.URL == nil {
		return nil, errors.New("wrk script: incomplete request")
	}
	return b.Bytes(), nil
}

// luaString quotes s as a Lua string literal, byte for byte (decimal
// escapes for everything but printable ASCII).
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\%03d", c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
