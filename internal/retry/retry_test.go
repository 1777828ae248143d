package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExponential(t *testing.T) {
	b := Exponential(100*time.Millisecond, time.Second)
	steps := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, step := range steps {
		step *= time.Millisecond
		got := b.NextBackOff()
		assert.GreaterOrEqual(t, got, step/2, "wait %d", i)
		assert.LessOrEqual(t, got, step*3/2, "wait %d", i)
	}
	// It never stops on its own, however long it runs.
	for range 1000 {
		require.Positive(t, b.NextBackOff())
	}
	b.Reset()
	assert.LessOrEqual(t, b.NextBackOff(), 150*time.Millisecond)
	// max below initial is raised.
	assert.Equal(t, 2*time.Second, Exponential(2*time.Second, time.Second).MaxInterval)
}

func TestGrowing(t *testing.T) {
	g := NewGrowing(5*time.Second, 5*time.Minute)
	want := []time.Duration{5, 10, 20, 40, 80, 160, 300, 300}
	for i, w := range want {
		assert.Equal(t, w*time.Second, g.Next(), "failure %d", i+1)
	}
	g.Reset()
	assert.Equal(t, 5*time.Second, g.Next())
}

// TestGrowingNeverOverflows is the property behind the registration loop's
// bug: however many failures in a row, the wait stays within
// [initial, max] and never decreases.
func TestGrowingNeverOverflows(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	for range 50 {
		initial := time.Millisecond + time.Duration(rng.Int64N(int64(time.Minute)))
		maxWait := initial * time.Duration(1+rng.Int64N(1<<16))
		g := NewGrowing(initial, maxWait)
		prev := time.Duration(0)
		for i := range 200 {
			w := g.Next()
			require.GreaterOrEqual(t, w, initial, "failure %d (initial %s, max %s)", i+1, initial, maxWait)
			require.LessOrEqual(t, w, maxWait, "failure %d", i+1)
			require.GreaterOrEqual(t, w, prev, "failure %d", i+1)
			prev = w
		}
		require.Equal(t, maxWait, prev)
	}
	// The extreme: a cap near the largest duration.
	g := NewGrowing(time.Second, time.Duration(1<<62))
	for range 100 {
		require.Positive(t, g.Next())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                    0,
		"5":                   5 * time.Second,
		" 7 ":                 7 * time.Second,
		"0":                   0,
		"-3":                  0,
		"soon":                0,
		"1.5":                 0,
		"86400":               24 * time.Hour,
		"86401":               MaxRetryAfter,
		"9223372036854775807": MaxRetryAfter,
		now.Add(time.Minute).Format(http.TimeFormat):          time.Minute,
		now.Add(-time.Minute).Format(http.TimeFormat):         0,
		now.Add(400 * 24 * time.Hour).Format(http.TimeFormat): MaxRetryAfter,
	} {
		assert.Equal(t, want, ParseRetryAfter(v, now), "Retry-After %q", v)
	}
}

func TestSleep(t *testing.T) {
	require.NoError(t, Sleep(context.Background(), time.Millisecond))
	require.NoError(t, Sleep(context.Background(), 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
	require.ErrorIs(t, Sleep(ctx, 0), context.Canceled)

	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Sleep(ctx, time.Hour) }()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Sleep did not return after cancel")
	}
}

func TestRedactURL(t *testing.T) {
	got := RedactURL("https://u:p@shop.test/wp-json/wc/v3/orders?consumer_key=ck_1&consumer_secret=cs_2&oauth_signature=abc%2B&oauth_nonce=n1&oauth_consumer_key=ck_3&oauth_token=tk&page=2&status=trash#frag")
	assert.Equal(t, "https://shop.test/wp-json/wc/v3/orders?consumer_key=REDACTED&consumer_secret=REDACTED&oauth_consumer_key=REDACTED&oauth_nonce=REDACTED&oauth_signature=REDACTED&oauth_token=REDACTED&page=2&status=trash", got)
	for _, secret := range []string{"ck_1", "cs_2", "abc", "n1", "ck_3", "tk", "u:p", "frag"} {
		assert.NotContains(t, got, secret)
	}
	// Callback URLs: a token under any name is hidden, names are kept.
	assert.Equal(t, "https://cb.example/hook?X-Token=REDACTED&sig=REDACTED", RedactURL("https://cb.example/hook?sig=s3cr3t&X-Token=abc"))
	// Names are matched without case.
	assert.Equal(t, "https://s/?Consumer_Key=REDACTED&PAGE=3", RedactURL("https://s/?Consumer_Key=ck&PAGE=3"))
	assert.Equal(t, "https://s/p", RedactURL("https://s/p"))
	assert.Equal(t, "[unparseable URL]", RedactURL("http://[::1%zz/"))
	assert.Equal(t, "https://s/?[unparseable query]", RedactURL("https://s/?a=%zz&consumer_secret=cs"))
}

func TestRedactError(t *testing.T) {
	assert.NoError(t, RedactError(nil))
	plain := errors.New("plain")
	assert.Same(t, plain, RedactError(plain))

	cause := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	ue := &url.Error{Op: "Get", URL: "https://shop.test/x?consumer_secret=cs_9&page=1", Err: cause}
	got := RedactError(ue)
	assert.NotContains(t, got.Error(), "cs_9")
	assert.Contains(t, got.Error(), "consumer_secret=REDACTED&page=1")
	var gotUE *url.Error
	require.ErrorAs(t, got, &gotUE, "a bare *url.Error stays one")
	var op *net.OpError
	require.ErrorAs(t, got, &op, "the cause is still reachable")

	wrapped := fmt.Errorf("listing: %w", ue)
	got = RedactError(wrapped)
	assert.NotContains(t, got.Error(), "cs_9")
	assert.True(t, strings.HasPrefix(got.Error(), "listing: Get \"https://shop.test/x?consumer_secret=REDACTED"), got.Error())
	require.ErrorAs(t, got, &op)
	assert.False(t, errors.As(got, &gotUE), "the unredacted *url.Error is not reachable")
}
