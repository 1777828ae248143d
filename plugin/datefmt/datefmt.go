// Package datefmt translates the date formats of poller configurations
// (Java SimpleDateFormat patterns as Cloud Elements writes them, Go layouts,
// WooCommerce's own) into parsers that read dates as UTC.
package datefmt

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wooevents/wooevents/plugin/wcevent"
)

// JavaDateLayout translates a Java SimpleDateFormat / DateTimeFormatter
// pattern, as Cloud Elements' poller configurations carry them
// (`yyyy-MM-dd'T'HH:mm:ss`), into a Go time layout (`2006-01-02T15:04:05`).
//
// Quoted text ('T', 'Z') becomes a literal and ” a single quote. A lone
// quote at the very end is dropped: Cloud Elements publishes
// `yyyy-MM-dd'T'HH:mm:ss'` with that stray quote in its WooCommerce
// defaults. Letters without a Go equivalent (week numbers, day of year, era,
// ...) and literals that Go would read as layout elements are errors.
func JavaDateLayout(pattern string) (string, error) {
	if pattern == "" {
		return "", errors.New("empty date pattern")
	}
	var b strings.Builder
	rs := []rune(pattern)
	for i := 0; i < len(rs); {
		c := rs[i]
		switch {
		case c == '\'':
			if i+1 < len(rs) && rs[i+1] == '\'' {
				b.WriteByte('\'')
				i += 2
				continue
			}
			end := -1
			for j := i + 1; j < len(rs); j++ {
				if rs[j] == '\'' {
					if j+1 < len(rs) && rs[j+1] == '\'' {
						j++
						continue
					}
					end = j
					break
				}
			}
			if end < 0 {
				if i == len(rs)-1 {
					i++ // the stray trailing quote of Cloud Elements' defaults
					continue
				}
				return "", fmt.Errorf("date pattern %q: unterminated quote at position %d", pattern, i)
			}
			lit := strings.ReplaceAll(string(rs[i+1:end]), "''", "'")
			if err := checkLiteral(lit); err != nil {
				return "", fmt.Errorf("date pattern %q: %w", pattern, err)
			}
			b.WriteString(lit)
			i = end + 1
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			n := 1
			for i+n < len(rs) && rs[i+n] == c {
				n++
			}
			g, err := javaField(c, n)
			if err != nil {
				return "", fmt.Errorf("date pattern %q: %w", pattern, err)
			}
			b.WriteString(g)
			i += n
		default:
			if c >= '0' && c <= '9' {
				return "", fmt.Errorf("date pattern %q: digits must be quoted", pattern)
			}
			b.WriteRune(c)
			i++
		}
	}
	return b.String(), nil
}

// javaField maps one run of a pattern letter to Go.
func javaField(c rune, n int) (string, error) {
	switch c {
	case 'y', 'u':
		if n == 2 {
			return "06", nil
		}
		return "2006", nil
	case 'M', 'L':
		switch n {
		case 1:
			return "1", nil
		case 2:
			return "01", nil
		case 3:
			return "Jan", nil
		default:
			return "January", nil
		}
	case 'd':
		if n == 1 {
			return "2", nil
		}
		return "02", nil
	case 'H':
		return "15", nil
	case 'h':
		if n == 1 {
			return "3", nil
		}
		return "03", nil
	case 'm':
		if n == 1 {
			return "4", nil
		}
		return "04", nil
	case 's':
		if n == 1 {
			return "5", nil
		}
		return "05", nil
	case 'S':
		return strings.Repeat("0", n), nil
	case 'a':
		return "PM", nil
	case 'E':
		if n <= 3 {
			return "Mon", nil
		}
		return "Monday", nil
	case 'z':
		return "MST", nil
	case 'Z':
		if n >= 4 {
			return "Z07:00", nil
		}
		return "-0700", nil
	case 'X':
		switch n {
		case 1:
			return "Z07", nil
		case 2:
			return "Z0700", nil
		default:
			return "Z07:00", nil
		}
	case 'x':
		switch n {
		case 1:
			return "-07", nil
		case 2:
			return "-0700", nil
		default:
			return "-07:00", nil
		}
	}
	return "", fmt.Errorf("pattern letter %q has no Go equivalent", strings.Repeat(string(c), n))
}

// goLayoutWords are Go layout elements that must not appear in a quoted
// literal (Go would parse them as fields).
var goLayoutWords = []string{"Jan", "Mon", "MST", "PM", "pm", "Z07", "-07"}

func checkLiteral(lit string) error {
	for _, r := range lit {
		if r >= '0' && r <= '9' {
			return fmt.Errorf("quoted literal %q contains digits, which Go layouts read as fields", lit)
		}
	}
	for _, w := range goLayoutWords {
		if strings.Contains(lit, w) {
			return fmt.Errorf("quoted literal %q contains %q, which Go layouts read as a field", lit, w)
		}
	}
	return nil
}

// Parser parses a record's date field as UTC.
type Parser func(string) (time.Time, error)

// NewParser returns the parser for a date format: empty means
// WooCommerce's `_gmt` format (wcevent.ParseWooTime); a pattern containing
// `yyyy` or a quote is taken as Java and translated; anything else is a Go
// layout. Dates without a zone are read as UTC.
func NewParser(format string) (Parser, string, error) {
	if format == "" {
		return wcevent.ParseWooTime, wcevent.WooTimeLayout, nil
	}
	layout := format
	if strings.Contains(format, "yy") || strings.Contains(format, "'") {
		l, err := JavaDateLayout(format)
		if err != nil {
			return nil, "", err
		}
		layout = l
	}
	probe := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC).Format(layout)
	if _, err := time.ParseInLocation(layout, probe, time.UTC); err != nil {
		return nil, "", fmt.Errorf("date_format %q (Go layout %q) does not round-trip: %v", format, layout, err)
	}
	return func(s string) (time.Time, error) {
		if s == "" || s == "null" {
			return time.Time{}, wcevent.ErrNoTime
		}
		t, err := time.ParseInLocation(layout, s, time.UTC)
		if err != nil {
			return time.Time{}, fmt.Errorf("date %q does not match layout %q", s, layout)
		}
		return t.UTC(), nil
	}, layout, nil
}
