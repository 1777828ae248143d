package main

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

func TestParseOffset(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"+02:00": 2 * time.Hour, "-07:00": -7 * time.Hour, "+05:30": 5*time.Hour + 30*time.Minute, "0": 0, "": 0, "+10": 10 * time.Hour,
	} {
		got, err := parseOffset(in)
		if err != nil || got != want {
			t.Errorf("parseOffset(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "+99:00", "+01:75"} {
		if _, err := parseOffset(bad); err == nil {
			t.Errorf("parseOffset(%q) accepted", bad)
		}
	}
}

func TestParseFlagsOptionsAndQuirks(t *testing.T) {
	cfg, err := parseFlags([]string{"-addr", "127.0.0.1:0", "-tls", "-latency", "1ms-3ms", "-page-delay", "300ms",
		"-random-faults", "0.05", "-random-faults-seed", "9", "-tie-seed", "7", "-clock-skew", "-20m",
		"-ignore-modified-after", "-behind-proxy", "-strip-authorization", "-no-pretty-permalinks", "-seed-orders", "3", "-quiet"}, io.Discard)
	require.NoError(t, err)
	o := cfg.opts
	assert.Equal(t, wcsim.Latency{Min: time.Millisecond, Max: 3 * time.Millisecond}, o.Latency)
	assert.Equal(t, 300*time.Millisecond, o.PageDelay)
	assert.Equal(t, wcsim.RandomFaults{Rate: 0.05, Seed: 9}, o.RandomFaults)
	assert.Equal(t, int64(7), o.TieSeed)
	assert.Equal(t, -20*time.Minute, o.ClockSkew)
	assert.True(t, o.TLS && o.IgnoreModifiedAfter && o.BehindProxy && o.StripAuthorization && o.NoPrettyPermalinks)
	assert.Equal(t, 3, cfg.seeds[wcsim.Orders])
	assert.True(t, cfg.quiet)

	// The defaults: jitter on, no page delay, no faults, no quirks.
	cfg, err = parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, wcsim.DefaultLatency, cfg.opts.Latency)
	assert.Zero(t, cfg.opts.PageDelay)
	assert.Zero(t, cfg.opts.RandomFaults.Rate)
	assert.False(t, cfg.opts.BehindProxy || cfg.opts.StripAuthorization || cfg.opts.NoPrettyPermalinks || cfg.opts.IgnoreModifiedAfter)
	cfg, err = parseFlags([]string{"-latency", "off"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, wcsim.NoLatency, cfg.opts.Latency)

	for _, bad := range [][]string{{"-latency", "fast"}, {"-random-faults", "1.5"}, {"-page-delay", "-1s"}, {"-utc-offset", "x"}, {"-nope"}} {
		_, err := parseFlags(bad, io.Discard)
		assert.Error(t, err, "%v", bad)
	}

	// The options reach a running store: /__sim/options reports them.
	cfg, err = parseFlags([]string{"-addr", "127.0.0.1:0", "-latency", "off", "-page-delay", "5ms", "-behind-proxy", "-clock-skew", "90s"}, io.Discard)
	require.NoError(t, err)
	s := wcsim.New(cfg.opts)
	require.NoError(t, s.Start())
	defer s.Close()
	resp, err := http.Get(s.URL() + "/__sim/options")
	require.NoError(t, err)
	defer resp.Body.Close()
	var got map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	assert.Equal(t, "off", got["latency"])
	assert.Equal(t, "5ms", got["page_delay"])
	assert.Equal(t, true, got["behind_proxy"])
	assert.Equal(t, "1m30s", got["clock_skew"])
	assert.Equal(t, false, got["strip_authorization"])
}

// -seed-age puts the newest seeded record that long before the store's now,
// one per second before it; without it the newest is now.
func TestSeedAge(t *testing.T) {
	for _, age := range []time.Duration{0, 10 * time.Second} {
		args := []string{"-addr", "127.0.0.1:0", "-seed-orders", "5", "-quiet"}
		if age > 0 {
			args = append(args, "-seed-age", age.String())
		}
		cfg, err := parseFlags(args, io.Discard)
		require.NoError(t, err)
		assert.Equal(t, age, cfg.seedAge)
		s := wcsim.New(cfg.opts)
		s.SetNow(time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC))
		ids, err := seed(s, cfg)
		require.NoError(t, err)
		require.Equal(t, int64(4), ids[wcsim.Orders][1]-ids[wcsim.Orders][0])
		var mods []string
		for id := ids[wcsim.Orders][0]; id <= ids[wcsim.Orders][1]; id++ {
			raw, ok := s.Get(wcsim.Orders, id)
			require.True(t, ok, "order %d", id)
			var o struct {
				Modified string `json:"date_modified_gmt"`
			}
			require.NoError(t, json.Unmarshal(raw, &o))
			mods = append(mods, o.Modified)
		}
		newest := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC).Add(-age)
		oldest := newest.Add(-4 * time.Second)
		assert.Equal(t, oldest.Format("2006-01-02T15:04:05"), mods[0], "age %v", age)
		assert.Equal(t, newest.Format("2006-01-02T15:04:05"), mods[4], "age %v", age)
	}
	_, err := parseFlags([]string{"-seed-age", "-1s"}, io.Discard)
	assert.Error(t, err)
}
