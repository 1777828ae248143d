package wcwebhook

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/wcevent"
)

// sink is where verified deliveries go: one implementation per ack mode.
// The handler calls accept from its request goroutines; the input's
// ReadBatch calls read.
type sink interface {
	// accept takes one verified delivery (d.Body is only valid during the
	// call) and says what to answer WooCommerce.
	accept(ctx context.Context, d *delivery, f wcevent.ObjectFields) outcome
	// read hands the pipeline its next message and the ack function that
	// settles it.
	read(ctx context.Context) (service.MessageBatch, service.AckFunc, error)
	// stop is called first when the input closes: accepts that wait on the
	// pipeline answer 503, read ends with service.ErrEndOfInput.
	stop()
	// close releases the sink's resources once the server has stopped.
	close() error
}

// outcome is what a sink answers for one accepted delivery.
type outcome struct {
	status     int
	reason     string // "" when accepted
	retryAfter int    // seconds, 0 for none
}

var ok200 = outcome{status: http.StatusOK}

// deliveredSink (ack: delivered) hands each delivery to ReadBatch and
// answers once the pipeline acked it, or 503 on nack or after timeout.
type deliveredSink struct {
	timeout  time.Duration
	checks   *deleteChecks
	pending  chan *pending
	closing  chan struct{}
	stopOnce sync.Once
}

// pending is a delivery waiting for its pipeline ack.
type pending struct {
	msg  *service.Message
	done chan error
}

func newDeliveredSink(timeout time.Duration, checks *deleteChecks) *deliveredSink {
	return &deliveredSink{timeout: timeout, checks: checks, pending: make(chan *pending), closing: make(chan struct{})}
}

func (s *deliveredSink) accept(ctx context.Context, d *delivery, f wcevent.ObjectFields) outcome {
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	ev := d.event(f)
	// Keep at least half of the budget for the pipeline.
	check, emit := s.checks.check(ctx, d.StoreName, &ev, min(s.checks.budget, s.timeout/2))
	if !emit {
		return ok200
	}
	if ctx.Err() != nil {
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonClientGone, retryAfter: 5}
	}
	p := &pending{msg: d.message(&ev, check), done: make(chan error, 1)}
	select {
	case s.pending <- p:
	case <-timer.C:
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonTimeout, retryAfter: 5}
	case <-s.closing:
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonShuttingDown, retryAfter: 5}
	case <-ctx.Done():
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonClientGone, retryAfter: 5}
	}
	select {
	case err := <-p.done:
		if err != nil {
			return outcome{status: http.StatusServiceUnavailable, reason: ReasonNacked, retryAfter: 5}
		}
		return ok200
	case <-timer.C:
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonTimeout, retryAfter: 5}
	case <-ctx.Done():
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonClientGone, retryAfter: 5}
	}
}

func (s *deliveredSink) read(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	select {
	case p := <-s.pending:
		return service.MessageBatch{p.msg}, func(_ context.Context, err error) error {
			p.done <- err
			return nil
		}, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-s.closing:
		return nil, nil, service.ErrEndOfInput
	}
}

func (s *deliveredSink) stop() { s.stopOnce.Do(func() { close(s.closing) }) }

func (s *deliveredSink) close() error { return nil }
