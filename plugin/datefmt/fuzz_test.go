package datefmt

import (
	"strings"
	"testing"
	"time"
)

// FuzzJavaDateLayout: any pattern either fails with an error or yields a Go
// layout under which a formatted time parses back to the same formatted text.
func FuzzJavaDateLayout(f *testing.F) {
	for _, p := range []string{
		"yyyy-MM-dd'T'HH:mm:ss'", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss'Z'", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
		"dd/MM/yyyy HH:mm", "EEE, dd MMM yyyy HH:mm:ss Z", "''yyyy''", "'unterminated", "yyyyy-ww-DDD", "",
	} {
		f.Add(p)
	}
	ref := time.Date(2026, 11, 27, 23, 48, 19, 123000000, time.UTC)
	f.Fuzz(func(t *testing.T, pattern string) {
		layout, err := JavaDateLayout(pattern)
		if err != nil {
			return
		}
		text := ref.Format(layout)
		parsed, err := time.Parse(layout, text)
		if err != nil {
			// Layouts without enough fields to parse (e.g. only literals with
			// numbers Go reads as elements) must have been rejected.
			t.Fatalf("pattern %q → layout %q: %q does not parse back: %v", pattern, layout, text, err)
		}
		// Go derives the weekday from the date rather than parsing it, so a
		// layout with a weekday but no full date cannot round-trip.
		hasDate := strings.Contains(layout, "2006") && strings.Contains(layout, "02") &&
			(strings.Contains(layout, "01") || strings.Contains(layout, "Jan"))
		if strings.Contains(layout, "Mon") && !hasDate {
			return
		}
		if again := parsed.Format(layout); again != text {
			t.Fatalf("pattern %q → layout %q: %q re-formats as %q", pattern, layout, text, again)
		}
	})
}
