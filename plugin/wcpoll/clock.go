package wcpoll

import (
	"sync"
	"time"
)

// clock is the poller's time source: the real clock in production, a
// manual one in tests (tied to the simulator's clock, with timers that fire
// when the test advances it).
type clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// manualClock reads the time from now and fires timers only in Fire.
type manualClock struct {
	now    func() time.Time
	mu     sync.Mutex
	timers []manualTimer
}

type manualTimer struct {
	at time.Time
	ch chan time.Time
}

func (c *manualClock) Now() time.Time { return c.now() }

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	at := c.now().Add(d)
	if d <= 0 {
		ch <- at
		return ch
	}
	c.mu.Lock()
	c.timers = append(c.timers, manualTimer{at: at, ch: ch})
	c.mu.Unlock()
	return ch
}

// Fire delivers every timer that is due at the current time and reports
// how many fired.
func (c *manualClock) Fire() int {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(now) {
			t.ch <- now
			n++
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
	return n
}
