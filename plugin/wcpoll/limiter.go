package wcpoll

import (
	"context"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// limiter bounds the requests the input has in flight against one store,
// across all resources, and adapts the bound: it halves on 429, 5xx and
// transport errors, steps down by one when list pages answer more than
// slowFactor times slower than the fastest recent ones, and climbs back by
// one after a run of healthy answers, never above max_concurrency. Waiters
// are served first come, first served, so one resource's backfill cannot
// starve the others.
type limiter struct {
	mu       sync.Mutex
	max      int
	limit    int
	inflight int
	waiters  []chan struct{}

	okRun    int       // healthy answers since the last change
	lastCut  time.Time // the limit was lowered (cuts within cutCooldown are one cut)
	ewma     float64   // recent page latency (seconds)
	baseline float64   // fastest recent page latency (seconds), drifting up slowly
	now      func() time.Time

	gauge *service.MetricGauge
}

const (
	slowFactor  = 3.0
	cutCooldown = 2 * time.Second
)

func newLimiter(maxConcurrency int, gauge *service.MetricGauge) *limiter {
	l := &limiter{max: maxConcurrency, limit: maxConcurrency, now: time.Now, gauge: gauge}
	l.publish()
	return l
}

func (l *limiter) publish() {
	if l.gauge != nil {
		l.gauge.Set(int64(l.limit))
	}
}

// current returns the bound in force.
func (l *limiter) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// acquire waits for a slot.
func (l *limiter) acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.inflight < l.limit && len(l.waiters) == 0 {
		l.inflight++
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, w := range l.waiters {
			if w == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				return ctx.Err()
			}
		}
		// granted while we gave up: pass it on
		l.inflight--
		l.wakeLocked()
		return ctx.Err()
	}
}

// release frees a slot.
func (l *limiter) release() {
	l.mu.Lock()
	l.inflight--
	l.wakeLocked()
	l.mu.Unlock()
}

func (l *limiter) wakeLocked() {
	for l.inflight < l.limit && len(l.waiters) > 0 {
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		l.inflight++
		close(ch)
	}
}

// failure records an answer that says the store is overloaded (429, 5xx)
// or a transport error.
func (l *limiter) failure() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.okRun = 0
	now := l.now()
	if now.Sub(l.lastCut) < cutCooldown {
		return
	}
	if l.limit > 1 {
		l.limit = max(1, l.limit/2)
		l.lastCut = now
		l.publish()
	}
}

// success records a healthy list page and its latency.
func (l *limiter) success(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := d.Seconds()
	if l.ewma == 0 {
		l.ewma, l.baseline = s, s
	} else {
		l.ewma = 0.8*l.ewma + 0.2*s
		l.baseline = min(l.baseline*1.01, l.ewma) // the low envelope, drifting up: a store that is slower for good is the new normal
	}
	now := l.now()
	if l.ewma > slowFactor*l.baseline && l.limit > 1 && now.Sub(l.lastCut) >= cutCooldown {
		l.limit--
		l.lastCut, l.okRun = now, 0
		l.publish()
		return
	}
	l.okRun++
	if l.limit < l.max && l.okRun >= 4*l.limit && now.Sub(l.lastCut) >= cutCooldown {
		l.limit++
		l.okRun = 0
		l.publish()
		l.wakeLocked()
	}
}
