package wcsim

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// FaultKind selects what an injected fault does.
type FaultKind string

const (
	// FaultJSON answers Status with a WordPress-style JSON error body.
	FaultJSON FaultKind = "json"
	// FaultHTML answers Status with an HTML error page (proxy/WAF style).
	FaultHTML FaultKind = "html"
	// FaultTruncated serves the real response with its body cut in half
	// (Content-Length matches the cut body, so clients see bad JSON).
	FaultTruncated FaultKind = "truncated"
	// FaultDrop closes the connection without any response.
	FaultDrop FaultKind = "drop"
	// FaultDelay only waits Delay, then serves normally.
	FaultDelay FaultKind = "delay"
)

// Fault makes the next Count requests matching Method and PathPrefix
// misbehave. Delay applies to every kind (waits before answering).
type Fault struct {
	PathPrefix string        `json:"path_prefix"` // e.g. /wp-json/wc/v3/orders; "" = any
	Method     string        `json:"method"`      // "" = any
	Count      int           `json:"count"`       // 0 = until ClearFaults
	Kind       FaultKind     `json:"kind"`        // default json when Status set, else delay
	Status     int           `json:"status"`      // 429, 500, 503...
	RetryAfter string        `json:"retry_after"` // Retry-After header value
	Delay      time.Duration `json:"-"`
	Body       string        `json:"body"` // optional body override
}

type faultState struct {
	f    Fault
	left int // remaining; -1 = unlimited
}

// Request is one logged REST request.
type Request struct {
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query"`
	Status int       `json:"status"`
	At     time.Time `json:"at"`
}

// InjectFault adds a fault; faults apply in the order they were added.
func (s *Store) InjectFault(f Fault) {
	if f.Kind == "" {
		if f.Status != 0 {
			f.Kind = FaultJSON
		} else {
			f.Kind = FaultDelay
		}
	}
	left := f.Count
	if left <= 0 {
		left = -1
	}
	s.faultMu.Lock()
	s.faults = append(s.faults, &faultState{f: f, left: left})
	s.faultMu.Unlock()
}

// ClearFaults removes every fault.
func (s *Store) ClearFaults() {
	s.faultMu.Lock()
	s.faults = nil
	s.faultMu.Unlock()
}

func (s *Store) takeFault(r *http.Request) *Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	path := r.URL.Path
	if rr := r.URL.Query().Get("rest_route"); rr != "" {
		path = "/wp-json" + rr
	}
	for i, fs := range s.faults {
		if fs.f.Method != "" && !strings.EqualFold(fs.f.Method, r.Method) {
			continue
		}
		if !strings.HasPrefix(path, fs.f.PathPrefix) {
			continue
		}
		f := fs.f
		if fs.left > 0 {
			fs.left--
			if fs.left == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
		}
		return &f
	}
	return nil
}

// Requests counts logged requests with method ("" = any) whose path starts
// with pathPrefix.
func (s *Store) Requests(method, pathPrefix string) int {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	n := 0
	for _, r := range s.reqLog {
		if (method == "" || strings.EqualFold(method, r.Method)) && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// RequestLog returns a copy of the request log (Status is 0 while a request
// is still being served or when its connection was dropped).
func (s *Store) RequestLog() []Request {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	out := make([]Request, len(s.reqLog))
	for i, r := range s.reqLog {
		out[i] = *r
	}
	return out
}

// ResetRequests clears the request log.
func (s *Store) ResetRequests() {
	s.faultMu.Lock()
	s.reqLog = nil
	s.faultMu.Unlock()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

// sleepCtx waits d, or less when ctx ends first (then it returns false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Store) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/__sim/") || r.URL.Path == "/__sim" {
		s.serveSim(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	path := r.URL.Path
	if rr := r.URL.Query().Get("rest_route"); rr != "" {
		path = "/wp-json" + rr
	}
	// Logged on arrival so counts are settled before the client sees any
	// answer; the status is filled in when the handler returns.
	entry := &Request{Method: r.Method, Path: path, Query: r.URL.RawQuery, At: s.Now()}
	s.faultMu.Lock()
	s.reqLog = append(s.reqLog, entry)
	s.faultMu.Unlock()
	defer func() {
		s.faultMu.Lock()
		entry.Status = sw.status
		s.faultMu.Unlock()
	}()
	// Delays sleep without holding any lock: concurrent requests wait
	// concurrently.
	if !sleepCtx(r.Context(), s.cfg().latency.draw()) {
		return
	}
	f := s.takeFault(r)
	if f == nil {
		f = s.randomFault()
	}
	if f == nil {
		s.serveREST(sw, r)
		return
	}
	if !sleepCtx(r.Context(), f.Delay) {
		return
	}
	status := f.Status
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	h := sw.Header()
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	switch f.Kind {
	case FaultDelay:
		s.serveREST(sw, r)
	case FaultDrop:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case FaultTruncated:
		rec := httptest.NewRecorder()
		s.serveREST(rec, r)
		body := rec.Body.Bytes()
		body = body[:len(body)/2]
		for k, v := range rec.Header() {
			h[k] = v
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		sw.WriteHeader(rec.Code)
		_, _ = sw.Write(body)
	case FaultHTML:
		body := f.Body
		if body == "" {
			text := http.StatusText(status)
			body = "<!DOCTYPE html>\n<html><head><title>" + strconv.Itoa(status) + " " + text + "</title></head><body><h1>" + text +
				"</h1><p>The server is temporarily unable to service your request.</p><hr><address>Apache/2.4.71 (Debian)</address></body></html>\n"
		}
		h.Set("Content-Type", "text/html; charset=iso-8859-1")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		sw.WriteHeader(status)
		_, _ = sw.Write([]byte(body))
	default:
		body := []byte(f.Body)
		if len(body) == 0 {
			e := &apiError{status: status, code: "wcsim_injected_fault", message: http.StatusText(status)}
			body = e.body()
		}
		s.commonHeaders(h)
		writeBody(sw, status, body)
	}
}
