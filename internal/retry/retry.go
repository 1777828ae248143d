// Package retry is wooevents' one way to wait and retry: the jittered
// exponential backoff of a retried call, the capped growing wait of a
// reconnect loop, Retry-After parsing, a context-aware Sleep, and the
// redaction of secrets from the URLs and errors those retries log.
//
// Redaction lives here because every retry names the URL it failed on: a
// retry message built from RedactURL or RedactError is safe to log.
//
// The backoff itself is github.com/cenkalti/backoff/v4; this package only
// fixes wooevents' shape of it (factor 2, ±50 % jitter, no overflow).
package retry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// MaxRetryAfter caps a Retry-After value: a server asking for more than a day
// is read as asking for a day. Callers with a smaller budget compare the
// parsed value against their own bound (and usually fail at once).
const MaxRetryAfter = 24 * time.Hour

// Exponential returns the backoff of a retried call: waits start at initial
// and double up to maxWait, each drawn between 0.5× and 1.5× the step. It
// never returns backoff.Stop on its own (MaxElapsedTime is 0): the caller
// bounds the retries by its own time budget or attempt count, or sets
// MaxElapsedTime on the result. maxWait below initial is raised to initial.
func Exponential(initial, maxWait time.Duration) *backoff.ExponentialBackOff {
	return doubling(initial, maxWait, 0.5)
}

// doubling is a backoff from initial doubling up to max (raised to initial
// when below) with the given jitter, that never stops on its own.
func doubling(initial, maxWait time.Duration, jitter float64) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMaxInterval(max(maxWait, initial)),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(jitter),
		backoff.WithMaxElapsedTime(0),
	)
	b.Reset()
	return b
}

// Growing is the wait of a reconnect loop: Initial for the first failure,
// doubled for each further one, capped at Max, without jitter and without
// overflow however many failures there are. Reset it after a success. The
// zero value is not usable: build it with NewGrowing. Not safe for
// concurrent use.
type Growing struct {
	b *backoff.ExponentialBackOff
}

// NewGrowing returns a Growing from initial up to maxWait (5 s to 5 min is
// the usual shape for a store or broker that refuses us).
func NewGrowing(initial, maxWait time.Duration) *Growing {
	if initial <= 0 {
		initial = time.Millisecond
	}
	return &Growing{b: doubling(initial, maxWait, 0)}
}

// Next returns the wait after one more failure.
func (g *Growing) Next() time.Duration { return g.b.NextBackOff() }

// Reset starts again from the initial wait.
func (g *Growing) Reset() { g.b.Reset() }

// ParseRetryAfter reads a Retry-After header value: delay seconds or an HTTP
// date (relative to now). It returns 0 when the value is empty, unreadable,
// negative or in the past, and at most MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d <= 0 {
			return 0
		}
		return min(d, MaxRetryAfter)
	}
	return 0
}

// Sleep waits for d or until ctx is done, whichever comes first, and returns
// ctx.Err() in the latter case. d <= 0 returns at once (ctx.Err() when ctx is
// already done).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
