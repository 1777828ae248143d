package wcpoll

import (
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// IdleNotifier is told when a woocommerce_poll input has nothing to do
// until its next poll: every resource has finished a poll without error
// and without a held-back second to fetch again early, and every event the
// input emitted is acknowledged. A program that runs many pipelines in one
// process (`wooevents serve`) can then stop the pipeline (its checkpoint is
// exact and Close stores it) and build it again for the next poll, so an
// idle instance costs no goroutines and no heap between polls.
type IdleNotifier interface {
	// Idle is called when the input becomes idle and again after each poll
	// that ends with the input idle, with the earliest time a resource
	// polls again. It must not block: it is
	// called from the input's reading goroutine or an acknowledgement.
	Idle(next time.Time)
}

// idleNotifierKey is the resources key of the host's IdleNotifier.
type idleNotifierKey struct{}

// SetIdleNotifier makes the woocommerce_poll inputs of the stream whose
// resources res are tell n when they are idle. Call it before the stream
// runs: the input looks for it when it is built.
func SetIdleNotifier(res *service.Resources, n IdleNotifier) {
	res.SetGeneric(idleNotifierKey{}, n)
}

func idleNotifierOf(res *service.Resources) IdleNotifier {
	if res == nil {
		return nil
	}
	v, ok := res.GetGeneric(idleNotifierKey{})
	if !ok {
		return nil
	}
	n, _ := v.(IdleNotifier)
	return n
}

// idleWatch decides when the input is idle (see IdleNotifier). Nil when
// nobody listens.
type idleWatch struct {
	n        IdleNotifier
	total    int        // resources
	inFlight func() int // events emitted and not yet acknowledged
	now      func() time.Time

	mu       sync.Mutex
	next     map[string]time.Time // resources whose last poll ended idle → their next poll
	notified bool                 // told since the last sign of work
}

func newIdleWatch(n IdleNotifier, total int, inFlight func() int, now func() time.Time) *idleWatch {
	if n == nil {
		return nil
	}
	return &idleWatch{n: n, total: total, inFlight: inFlight, now: now, next: map[string]time.Time{}}
}

// busy records that a resource has work under way: a poll starting (the
// producer says so), handing on records or state, failing, or a recheck
// due before the interval (the reading goroutine says so).
func (w *idleWatch) busy(res string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	delete(w.next, res)
	w.notified = false
	w.mu.Unlock()
}

// ended records that a resource's poll ended with nothing to do before
// next, then checks.
func (w *idleWatch) ended(res string, next time.Time) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.next[res] = next
	w.notified = false // a new poll ended: tell again (with its next poll)
	w.mu.Unlock()
	w.check()
}

// check tells the notifier when every resource is idle and nothing is in
// flight, once until a poll ends again or work shows.
func (w *idleWatch) check() {
	if w == nil {
		return
	}
	w.mu.Lock()
	if w.notified || len(w.next) < w.total || w.inFlight() > 0 {
		w.mu.Unlock()
		return
	}
	var first time.Time
	for _, t := range w.next {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	if !first.After(w.now()) {
		// A poll is due: its producer is starting it (the end of the
		// previous one was read after the producer moved on).
		w.mu.Unlock()
		return
	}
	w.notified = true
	w.mu.Unlock()
	w.n.Idle(first)
}
