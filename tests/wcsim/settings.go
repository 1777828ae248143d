package wcsim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Latency is the delay added to every REST request, drawn uniformly from
// [Min, Max] (Max <= Min means a fixed Min). The zero Latency is
// DefaultLatency; NoLatency (Off) turns the delay off.
type Latency struct {
	Min, Max time.Duration
	Off      bool
}

var (
	// DefaultLatency is a small jitter, so that concurrent clients do not
	// see answers in lock-step. It applies when Options.Latency is zero.
	DefaultLatency = Latency{Min: 0, Max: 2 * time.Millisecond}
	// NoLatency answers REST requests without any added delay.
	NoLatency = Latency{Off: true}
)

func (l Latency) effective() Latency {
	if l == (Latency{}) {
		return DefaultLatency
	}
	return l
}

// draw returns one request's delay.
func (l Latency) draw() time.Duration {
	l = l.effective()
	if l.Off {
		return 0
	}
	if l.Max <= l.Min {
		return l.Min
	}
	return l.Min + time.Duration(rand.Int64N(int64(l.Max-l.Min)+1))
}

// String is the form ParseLatency reads: "off", "5ms" or "1ms-3ms".
func (l Latency) String() string {
	l = l.effective()
	switch {
	case l.Off:
		return "off"
	case l.Max <= l.Min:
		return l.Min.String()
	default:
		return l.Min.String() + "-" + l.Max.String()
	}
}

// ParseLatency reads "off" (or "0", "none"), a fixed duration ("5ms"), a
// range ("0-2ms", "1ms-3ms": a bare number takes the unit of the other end)
// or "default".
func ParseLatency(s string) (Latency, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "off", "none", "0", "0s":
		return NoLatency, nil
	case "", "default":
		return DefaultLatency, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return Latency{}, fmt.Errorf("latency %q: want off, a duration such as 5ms or a range such as 1ms-3ms", s)
		}
		if d == 0 {
			return NoLatency, nil
		}
		return Latency{Min: d, Max: d}, nil
	}
	unit := strings.TrimLeft(hi, "0123456789.")
	if strings.TrimLeft(lo, "0123456789.") == "" {
		lo += unit
	}
	dlo, err1 := time.ParseDuration(lo)
	dhi, err2 := time.ParseDuration(hi)
	if err1 != nil || err2 != nil || dlo < 0 || dhi < dlo {
		return Latency{}, fmt.Errorf("latency range %q: want MIN-MAX such as 0-2ms or 1ms-3ms", s)
	}
	if dhi == 0 {
		return NoLatency, nil
	}
	return Latency{Min: dlo, Max: dhi}, nil
}

// RandomFaults answers a fraction Rate (0..1) of REST requests with a fault
// drawn from realisticFaults. The draws are deterministic given Seed (in the
// order requests arrive).
type RandomFaults struct {
	Rate float64 `json:"rate"`
	Seed int64   `json:"seed"`
}

// realisticFaults are what a real store and its hosting answer now and then.
var realisticFaults = []Fault{
	{Kind: FaultJSON, Status: 429, RetryAfter: "1"},
	{Kind: FaultJSON, Status: 500},
	{Kind: FaultHTML, Status: 502},
	{Kind: FaultJSON, Status: 503},
	{Kind: FaultHTML, Status: 500, Body: wpCriticalErrorPage},
	{Kind: FaultTruncated},
	{Kind: FaultDrop},
}

// wpCriticalErrorPage is what WordPress answers when PHP dies (fatal error
// handler, wp_die with the default HTML handler).
const wpCriticalErrorPage = "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n\t<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\" />\n" +
	"\t<meta name=\"viewport\" content=\"width=device-width\">\n\t<meta name='robots' content='max-image-preview:large, noindex, follow' />\n" +
	"\t<title>WordPress &rsaquo; Error</title>\n</head>\n<body id=\"error-page\">\n" +
	"\t<div class=\"wp-die-message\"><p>There has been a critical error on this website.</p><p><a href=\"https://wordpress.org/documentation/article/faq-troubleshooting/\">Learn more about troubleshooting WordPress.</a></p></div></body>\n</html>\n"

// runtimeCfg is the part of Options that can change while the store serves
// (setters and POST /__sim/options). It is replaced, never modified.
type runtimeCfg struct {
	tieSeed             int64
	latency             Latency
	pageDelay           time.Duration
	randomFaults        RandomFaults
	clockSkew           time.Duration
	ignoreModifiedAfter bool
	behindProxy         bool
	stripAuthorization  bool
	noPrettyPermalinks  bool
}

func cfgFromOptions(o Options) *runtimeCfg {
	seed := o.TieSeed
	if seed == 0 {
		seed = defaultTieSeed
	}
	return &runtimeCfg{
		tieSeed: seed, latency: o.Latency, pageDelay: o.PageDelay, randomFaults: o.RandomFaults,
		clockSkew: o.ClockSkew, ignoreModifiedAfter: o.IgnoreModifiedAfter, behindProxy: o.BehindProxy,
		stripAuthorization: o.StripAuthorization, noPrettyPermalinks: o.NoPrettyPermalinks,
	}
}

func (s *Store) cfg() *runtimeCfg { return s.rcfg.Load() }

func (s *Store) setCfg(f func(c *runtimeCfg)) {
	s.rcfgMu.Lock()
	defer s.rcfgMu.Unlock()
	c := *s.rcfg.Load()
	f(&c)
	s.rcfg.Store(&c)
}

// SetTieSeed changes the seed of the tie order (0 = the fixed default).
func (s *Store) SetTieSeed(seed int64) {
	if seed == 0 {
		seed = defaultTieSeed
	}
	s.setCfg(func(c *runtimeCfg) { c.tieSeed = seed })
}

// SetLatency changes the per-request latency (Latency{} = DefaultLatency,
// NoLatency = none).
func (s *Store) SetLatency(l Latency) { s.setCfg(func(c *runtimeCfg) { c.latency = l }) }

// SetPageDelay changes the delay added to every list request.
func (s *Store) SetPageDelay(d time.Duration) { s.setCfg(func(c *runtimeCfg) { c.pageDelay = d }) }

// SetRandomFaults changes the random fault rate and restarts the draws from
// the seed.
func (s *Store) SetRandomFaults(rf RandomFaults) {
	s.faultMu.Lock()
	s.faultRNG = newFaultRNG(rf.Seed)
	s.faultMu.Unlock()
	s.setCfg(func(c *runtimeCfg) { c.randomFaults = rf })
}

// SetClockSkew changes how far the store's real-time clock is ahead of this
// machine's (negative: behind). It does not move a clock frozen by
// SetNow/Advance.
func (s *Store) SetClockSkew(d time.Duration) { s.setCfg(func(c *runtimeCfg) { c.clockSkew = d }) }

// SetIgnoreModifiedAfter switches the quirk of Options.IgnoreModifiedAfter.
func (s *Store) SetIgnoreModifiedAfter(on bool) {
	s.setCfg(func(c *runtimeCfg) { c.ignoreModifiedAfter = on })
}

// SetBehindProxy switches the quirk of Options.BehindProxy.
func (s *Store) SetBehindProxy(on bool) { s.setCfg(func(c *runtimeCfg) { c.behindProxy = on }) }

// SetStripAuthorization switches the quirk of Options.StripAuthorization.
func (s *Store) SetStripAuthorization(on bool) {
	s.setCfg(func(c *runtimeCfg) { c.stripAuthorization = on })
}

// SetNoPrettyPermalinks switches the quirk of Options.NoPrettyPermalinks.
func (s *Store) SetNoPrettyPermalinks(on bool) {
	s.setCfg(func(c *runtimeCfg) { c.noPrettyPermalinks = on })
}

func newFaultRNG(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x7fa1_75ee_d0c0_ffee))
}

// randomFault draws whether this request fails and how (nil: serve it).
func (s *Store) randomFault() *Fault {
	rf := s.cfg().randomFaults
	if rf.Rate <= 0 {
		return nil
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if s.faultRNG == nil {
		s.faultRNG = newFaultRNG(rf.Seed)
	}
	if s.faultRNG.Float64() >= rf.Rate {
		return nil
	}
	f := realisticFaults[s.faultRNG.IntN(len(realisticFaults))]
	return &f
}

// simOptions is the JSON of GET/POST /__sim/options; POST changes only the
// fields it names.
type simOptions struct {
	Latency             *string       `json:"latency,omitempty"`
	PageDelay           *string       `json:"page_delay,omitempty"`
	RandomFaults        *RandomFaults `json:"random_faults,omitempty"`
	TieSeed             *int64        `json:"tie_seed,omitempty"`
	ClockSkew           *string       `json:"clock_skew,omitempty"`
	IgnoreModifiedAfter *bool         `json:"ignore_modified_after,omitempty"`
	BehindProxy         *bool         `json:"behind_proxy,omitempty"`
	StripAuthorization  *bool         `json:"strip_authorization,omitempty"`
	NoPrettyPermalinks  *bool         `json:"no_pretty_permalinks,omitempty"`
}

func (s *Store) currentOptions() simOptions {
	c := s.cfg()
	lat, pd, skew := c.latency.String(), c.pageDelay.String(), c.clockSkew.String()
	rf, seed := c.randomFaults, c.tieSeed
	ima, bp, sa, npp := c.ignoreModifiedAfter, c.behindProxy, c.stripAuthorization, c.noPrettyPermalinks
	return simOptions{Latency: &lat, PageDelay: &pd, RandomFaults: &rf, TieSeed: &seed, ClockSkew: &skew,
		IgnoreModifiedAfter: &ima, BehindProxy: &bp, StripAuthorization: &sa, NoPrettyPermalinks: &npp}
}

// applyOptions validates every field first, then applies them.
func (s *Store) applyOptions(body []byte) error {
	var in simOptions
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("bad options JSON: %w", err)
	}
	dur := func(name string, p *string) (time.Duration, error) {
		d, err := time.ParseDuration(*p)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return d, nil
	}
	var (
		lat       Latency
		pd, skew  time.Duration
		err       error
		setLat    = in.Latency != nil
		setPD     = in.PageDelay != nil
		setSkew   = in.ClockSkew != nil
		setFaults = in.RandomFaults != nil
	)
	if setLat {
		if lat, err = ParseLatency(*in.Latency); err != nil {
			return err
		}
	}
	if setPD {
		if pd, err = dur("page_delay", in.PageDelay); err != nil {
			return err
		}
		if pd < 0 {
			return fmt.Errorf("page_delay: must not be negative")
		}
	}
	if setSkew {
		if skew, err = dur("clock_skew", in.ClockSkew); err != nil {
			return err
		}
	}
	if setFaults && (in.RandomFaults.Rate < 0 || in.RandomFaults.Rate > 1) {
		return fmt.Errorf("random_faults.rate: want 0..1, got %v", in.RandomFaults.Rate)
	}
	if setFaults {
		s.SetRandomFaults(*in.RandomFaults)
	}
	if in.TieSeed != nil {
		s.SetTieSeed(*in.TieSeed)
	}
	s.setCfg(func(c *runtimeCfg) {
		if setLat {
			c.latency = lat
		}
		if setPD {
			c.pageDelay = pd
		}
		if setSkew {
			c.clockSkew = skew
		}
		if in.IgnoreModifiedAfter != nil {
			c.ignoreModifiedAfter = *in.IgnoreModifiedAfter
		}
		if in.BehindProxy != nil {
			c.behindProxy = *in.BehindProxy
		}
		if in.StripAuthorization != nil {
			c.stripAuthorization = *in.StripAuthorization
		}
		if in.NoPrettyPermalinks != nil {
			c.noPrettyPermalinks = *in.NoPrettyPermalinks
		}
	})
	return nil
}
