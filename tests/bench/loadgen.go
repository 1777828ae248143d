// Package bench holds the wooevents benchmark harness: an HTTP/1.1 load
// generator, helpers to run the wooevents binary as a subprocess, the
// benchmark configurations and the scenarios `make bench` runs.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LoadOptions configures one load generator run.
type LoadOptions struct {
	// Addr is the host:port to connect to.
	Addr string
	// Requests are complete, pre-built HTTP/1.1 requests (request line,
	// headers, blank line, body). Connections cycle through them.
	Requests [][]byte
	// Concurrency is the number of keep-alive connections, each driven by
	// one worker.
	Concurrency int
	// Duration of the measured run.
	Duration time.Duration
	// Rate is the offered rate in requests per second. Zero means a
	// closed loop: every worker sends its next request as soon as the
	// previous answer has been read (saturation).
	Rate float64
	// DrainTimeout bounds how long a fixed-rate run keeps sending requests
	// that were scheduled before Duration elapsed but not yet sent because
	// every connection was busy. Default 5s.
	DrainTimeout time.Duration
}

// LoadResult is what one run measured. Latencies of a fixed-rate run are
// measured from the intended send time (the schedule), not the moment a
// connection became free, so queueing caused by a slow server counts
// (no coordinated omission).
type LoadResult struct {
	Mode        string        `json:"mode"`
	Concurrency int           `json:"concurrency"`
	OfferedRate float64       `json:"offered_rps,omitempty"`
	Elapsed     time.Duration `json:"-"`
	ElapsedS    float64       `json:"elapsed_s"`
	Completed   int64         `json:"completed"`
	OK          int64         `json:"ok_2xx"`
	Non2xx      int64         `json:"non_2xx"`
	Errors      int64         `json:"errors"`
	Unsent      int64         `json:"unsent"`
	RPS         float64       `json:"rps"`
	P50         time.Duration `json:"-"`
	P90         time.Duration `json:"-"`
	P99         time.Duration `json:"-"`
	Max         time.Duration `json:"-"`
	P50ms       float64       `json:"p50_ms"`
	P90ms       float64       `json:"p90_ms"`
	P99ms       float64       `json:"p99_ms"`
	MaxMs       float64       `json:"max_ms"`
	// SendLagP99ms is the 99th percentile of (actual send − intended send)
	// in a fixed-rate run: the generator's own scheduling noise, included
	// in the latencies above.
	SendLagP99ms float64 `json:"send_lag_p99_ms,omitempty"`
	// Statuses counts answers per HTTP status code.
	Statuses map[int]int64 `json:"statuses"`
	// FirstError is the first transport error seen, if any.
	FirstError string `json:"first_error,omitempty"`
}

func (r *LoadResult) String() string {
	return fmt.Sprintf("%s c=%d: %.0f req/s, p50 %.2fms p99 %.2fms max %.2fms, ok %d non2xx %d errors %d unsent %d",
		r.Mode, r.Concurrency, r.RPS, r.P50ms, r.P99ms, r.MaxMs, r.OK, r.Non2xx, r.Errors, r.Unsent)
}

type worker struct {
	addr     string
	reqs     [][]byte
	next     int
	conn     net.Conn
	br       *bufio.Reader
	lat      []time.Duration
	lag      []time.Duration
	statuses map[int]int64
	ok       int64
	non2xx   int64
	errs     int64
	firstErr error
}

func newWorker(addr string, reqs [][]byte, offset int) *worker {
	return &worker{addr: addr, reqs: reqs, next: offset % len(reqs), statuses: map[int]int64{}}
}

func (w *worker) dial() error {
	c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	w.conn = c
	if w.br == nil {
		w.br = bufio.NewReaderSize(c, 16<<10)
	} else {
		w.br.Reset(c)
	}
	return nil
}

func (w *worker) close() {
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

// do sends one request and reads the whole answer; it reconnects when the
// connection is gone. It returns false on a transport error.
func (w *worker) do(deadline time.Time) bool {
	req := w.reqs[w.next]
	w.next = (w.next + 1) % len(w.reqs)
	status, keep, err := w.roundTrip(req, deadline)
	if err != nil {
		w.errs++
		if w.firstErr == nil {
			w.firstErr = err
		}
		w.close()
		return false
	}
	w.statuses[status]++
	if status >= 200 && status < 300 {
		w.ok++
	} else {
		w.non2xx++
	}
	if !keep {
		w.close()
	}
	return true
}

func (w *worker) roundTrip(req []byte, deadline time.Time) (status int, keep bool, err error) {
	if w.conn == nil {
		if err = w.dial(); err != nil {
			return 0, false, err
		}
	}
	_ = w.conn.SetDeadline(deadline)
	if _, err = w.conn.Write(req); err != nil {
		return 0, false, err
	}
	return readResponse(w.br)
}

var errMalformed = errors.New("malformed HTTP response")

// readResponse reads one HTTP/1.1 response and discards its body. It
// returns the status code and whether the connection may be reused.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keep = line[7] == '1'
	contentLength := int64(-1)
	chunked := false
	for {
		if line, err = br.ReadSlice('\n'); err != nil {
			return 0, false, err
		}
		if len(line) <= 2 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		name := line[:colon]
		value := bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if contentLength, err = strconv.ParseInt(string(value), 10, 64); err != nil {
				return 0, false, fmt.Errorf("%w: content-length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case status < 200 || status == 204 || status == 304:
	case chunked:
		err = discardChunked(br)
	case contentLength >= 0:
		_, err = br.Discard(int(contentLength))
	default:
		_, err = io.Copy(io.Discard, br)
		keep = false
	}
	return status, keep, err
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		sizeText := bytes.TrimSpace(line)
		if i := bytes.IndexByte(sizeText, ';'); i >= 0 {
			sizeText = sizeText[:i]
		}
		size, err := strconv.ParseInt(string(sizeText), 16, 64)
		if err != nil {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if size == 0 {
			for { // trailers
				if line, err = br.ReadSlice('\n'); err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if _, err = br.Discard(int(size) + 2); err != nil {
			return err
		}
	}
}

// RunLoad runs the load generator once.
func RunLoad(ctx context.Context, o LoadOptions) (*LoadResult, error) {
	if len(o.Requests) == 0 {
		return nil, errors.New("no requests to send")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Second
	}
	workers := make([]*worker, o.Concurrency)
	for i := range workers {
		workers[i] = newWorker(o.Addr, o.Requests, i)
		if err := workers[i].dial(); err != nil {
			for _, w := range workers[:i] {
				w.close()
			}
			return nil, fmt.Errorf("connecting to %s: %w", o.Addr, err)
		}
	}
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()

	res := &LoadResult{Concurrency: o.Concurrency, OfferedRate: o.Rate, Statuses: map[int]int64{}}
	var unsent atomic.Int64
	start := time.Now()
	if o.Rate <= 0 {
		res.Mode = "saturation"
		runClosedLoop(ctx, workers, start.Add(o.Duration))
	} else {
		res.Mode = "fixed_rate"
		unsent.Store(runFixedRate(ctx, workers, o, start))
	}
	res.Elapsed = time.Since(start)
	if res.Mode == "fixed_rate" && res.Elapsed < o.Duration {
		res.Elapsed = o.Duration
	}

	var lat, lag []time.Duration
	for _, w := range workers {
		lat = append(lat, w.lat...)
		lag = append(lag, w.lag...)
		res.OK += w.ok
		res.Non2xx += w.non2xx
		res.Errors += w.errs
		for s, n := range w.statuses {
			res.Statuses[s] += n
		}
		if res.FirstError == "" && w.firstErr != nil {
			res.FirstError = w.firstErr.Error()
		}
	}
	res.Unsent = unsent.Load()
	res.Completed = res.OK + res.Non2xx
	measured := o.Duration
	if res.Mode == "saturation" {
		measured = res.Elapsed
	}
	res.RPS = float64(res.OK) / measured.Seconds()
	res.ElapsedS = res.Elapsed.Seconds()
	slices.Sort(lat)
	res.P50, res.P90, res.P99 = Percentile(lat, 0.50), Percentile(lat, 0.90), Percentile(lat, 0.99)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	res.P50ms, res.P90ms, res.P99ms, res.MaxMs = ms(res.P50), ms(res.P90), ms(res.P99), ms(res.Max)
	if len(lag) > 0 {
		slices.Sort(lag)
		res.SendLagP99ms = ms(Percentile(lag, 0.99))
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Percentile returns the nearest-rank percentile q (0..1) of sorted values.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func runClosedLoop(ctx context.Context, workers []*worker, end time.Time) {
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.lat = make([]time.Duration, 0, 1<<16)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if w.do(t0.Add(10 * time.Second)) {
					w.lat = append(w.lat, time.Since(t0))
				} else {
					// A refused connection would otherwise spin.
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
}

// runFixedRate offers o.Rate requests per second for o.Duration. A pacer on
// a locked OS thread sleeps with nanosleep (Go timers have ~1ms resolution)
// and hands each intended send time to whichever worker is free. It returns
// how many scheduled requests were never sent within the drain timeout.
func runFixedRate(ctx context.Context, workers []*worker, o LoadOptions, start time.Time) int64 {
	interval := time.Duration(float64(time.Second) / o.Rate)
	total := int(o.Duration / interval)
	tokens := make(chan time.Time, total+1)
	drainEnd := start.Add(o.Duration + o.DrainTimeout)

	var unsent atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.lat = make([]time.Duration, 0, total/len(workers)+16)
			w.lag = make([]time.Duration, 0, total/len(workers)+16)
			for intended := range tokens {
				now := time.Now()
				if now.After(drainEnd) || ctx.Err() != nil {
					unsent.Add(1)
					continue
				}
				w.lag = append(w.lag, now.Sub(intended))
				if w.do(now.Add(10 * time.Second)) {
					w.lat = append(w.lat, time.Since(intended))
				}
			}
		}()
	}

	runtime.LockOSThread()
	for i := range total {
		if ctx.Err() != nil {
			break
		}
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			ts := syscall.NsecToTimespec(int64(d))
			_ = syscall.Nanosleep(&ts, nil)
		}
		tokens <- intended
	}
	runtime.UnlockOSThread()
	close(tokens)
	wg.Wait()
	return unsent.Load()
}
