package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is the outcome of one check.
type Status string

// Check outcomes. A fail makes `wooevents doctor` exit non-zero.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one line of the report: what was checked, what was found and, for
// warn and fail, what to do.
type Check struct {
	Name   string `json:"check"`
	Status Status `json:"status"`
	Found  string `json:"found"`
	Fix    string `json:"fix,omitempty"`
}

// StoreReport holds the checks of one store.
type StoreReport struct {
	Store  string   `json:"store"`
	From   []string `json:"from,omitempty"` // where the config names it
	Checks []Check  `json:"checks"`
}

// Report is the result of a doctor run.
type Report struct {
	Stores []*StoreReport `json:"stores"`
	OK     int            `json:"ok"`
	Warn   int            `json:"warn"`
	Fail   int            `json:"fail"`
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return r.Fail > 0 }

func (r *Report) count() {
	r.OK, r.Warn, r.Fail = 0, 0, 0
	for _, s := range r.Stores {
		for _, c := range s.Checks {
			switch c.Status {
			case OK:
				r.OK++
			case Warn:
				r.Warn++
			case Fail:
				r.Fail++
			}
		}
	}
}

// add appends a check to the store's report.
func (s *StoreReport) add(name string, st Status, found, fix string) {
	s.Checks = append(s.Checks, Check{Name: name, Status: st, Found: found, Fix: fix})
}

func (s *StoreReport) ok(name, found string)        { s.add(name, OK, found, "") }
func (s *StoreReport) warn(name, found, fix string) { s.add(name, Warn, found, fix) }
func (s *StoreReport) fail(name, found, fix string) { s.add(name, Fail, found, fix) }
func (s *StoreReport) count(st Status) (n int) {
	for _, c := range s.Checks {
		if c.Status == st {
			n++
		}
	}
	return n
}

// Redactor replaces secrets by "[redacted]" in everything the report prints:
// a last line of defence behind the REST client's own redaction.
type Redactor struct{ secrets []string }

// Add registers secrets (empty and very short values are ignored: they
// would match ordinary text).
func (r *Redactor) Add(secrets ...string) {
	for _, s := range secrets {
		if len(s) >= 4 {
			r.secrets = append(r.secrets, s)
		}
	}
}

// Apply redacts s.
func (r *Redactor) Apply(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

func (r *Redactor) report(rep *Report) {
	for _, s := range rep.Stores {
		s.Store = r.Apply(s.Store)
		for i := range s.From {
			s.From[i] = r.Apply(s.From[i])
		}
		for i := range s.Checks {
			c := &s.Checks[i]
			c.Found, c.Fix, c.Name = r.Apply(c.Found), r.Apply(c.Fix), r.Apply(c.Name)
		}
	}
}

// WriteText prints the report: a header per store, then one line per check
// (status, name, what was found) with what to do on the next line for warn
// and fail, then the totals.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for i, s := range r.Stores {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "store %s\n", s.Store)
		for _, f := range s.From {
			fmt.Fprintf(&b, "  named by %s\n", f)
		}
		width := 0
		for _, c := range s.Checks {
			width = max(width, len(c.Name))
		}
		for _, c := range s.Checks {
			fmt.Fprintf(&b, "  %-4s  %-*s  %s\n", c.Status, width, c.Name, c.Found)
			if c.Fix != "" {
				fmt.Fprintf(&b, "  %-4s  %-*s  → %s\n", "", width, "", c.Fix)
			}
		}
	}
	fmt.Fprintf(&b, "\n%d ok, %d warn, %d fail\n", r.OK, r.Warn, r.Fail)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
