package main

import (
	"testing"
	"time"
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
