package wcwebhook

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/internal/retry"
	"github.com/wooevents/wooevents/plugin/wcevent"
	"github.com/wooevents/wooevents/plugin/wcwebhook/spool"
)

// spooledSink (ack: spooled) answers 200 once a delivery is durably in the
// spool, and feeds the pipeline from the spool: records in order, nacked
// ones again after a backoff. A record leaves the spool only on its ack.
type spooledSink struct {
	sp     *spool.Spool
	log    *service.Logger
	m      *metrics
	checks *deleteChecks

	// Only read (ReadBatch) touches last and buf.
	last uint64         // highest sequence read from disk
	buf  []spool.Record // read ahead, not yet emitted

	mu        sync.Mutex
	retry     []retryItem
	retryKick chan struct{}
}

// openSpooledSink opens (or creates) the spool in dir.
func openSpooledSink(dir string, maxBytes int64, checks *deleteChecks, log *service.Logger, m *metrics) (*spooledSink, error) {
	sp, err := spool.Open(dir, spool.Options{
		MaxBytes: maxBytes,
		OnCommit: func(depth int64) { m.spoolDepth.Set(depth) },
		OnRemoveError: func(n int, err error) {
			log.Errorf("woocommerce_webhook: removing %d acked spool records: %v (they will be emitted again after a restart)", n, err)
		},
	})
	if err != nil {
		return nil, err
	}
	m.spoolDepth.Set(sp.Depth())
	if d := sp.Depth(); d > 0 {
		log.Infof("woocommerce_webhook: %d spooled deliveries from a previous run will be emitted", d)
	}
	return &spooledSink{sp: sp, log: log, m: m, checks: checks, retryKick: make(chan struct{}, 1)}, nil
}

func (f *spooledSink) stop() {}

func (f *spooledSink) close() error { return f.sp.Close() }

// spooledNote stands for a just spooled delivery in the spool's memory, so
// that the feeder need not decode the record or parse the body again: the
// message built at accept time, or, for a delete that may need a check over
// REST, the delivery and its fields (the message depends on the check).
type spooledNote struct {
	msg *service.Message // pristine: every emission gets a copy
	d   delivery         // Body is the note's own copy
	f   wcevent.ObjectFields
}

// recordPool recycles record buffers: given a note, the spool keeps no
// reference to a record once Append returns.
var recordPool = sync.Pool{New: func() any { return new([]byte) }}

func (s *spooledSink) accept(_ context.Context, d *delivery, f wcevent.ObjectFields) outcome {
	buf := recordPool.Get().(*[]byte)
	if n := recordSize(d); cap(*buf) < n {
		*buf = make([]byte, 0, n)
	}
	rec := d.appendRecord((*buf)[:0])
	dd := *d
	dd.ReceivedAt = time.Unix(0, d.ReceivedAt.UnixNano()).UTC() // as decodeRecord has it
	note := &spooledNote{}
	if ev := dd.event(f); ev.Action == wcevent.ActionDeleted && len(s.checks.byStore) > 0 {
		note.d, note.f = dd, f
		note.d.Body = bytes.Clone(d.Body)
	} else {
		note.msg = dd.message(&ev, "")
	}
	_, err := s.sp.Append(rec, note)
	*buf = rec[:0]
	recordPool.Put(buf)
	switch {
	case err == nil:
		return ok200
	case errors.Is(err, spool.ErrFull):
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonSpoolFull, retryAfter: 30}
	case errors.Is(err, spool.ErrClosed):
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonShuttingDown, retryAfter: 5}
	default:
		s.log.Errorf("woocommerce_webhook: spool write failed: %v", err)
		return outcome{status: http.StatusServiceUnavailable, reason: ReasonSpoolError, retryAfter: 5}
	}
}

// Redelivery backoff of nacked spooled deliveries: 100ms doubling to 30s.
const (
	retryMinBackoff = 100 * time.Millisecond
	retryMaxBackoff = 30 * time.Second
	readAhead       = 64
)

// retryItem is a nacked spool record waiting to be emitted again.
type retryItem struct {
	rec  spool.Record
	wait *retry.Growing // the record's redelivery backoff
	at   time.Time
}

func (f *spooledSink) read(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	for {
		if it, wait := f.popRetry(time.Now()); it != nil {
			if msg := f.prepare(ctx, it.rec); msg != nil {
				return service.MessageBatch{msg}, f.ackFunc(it.rec, it.wait), nil
			}
			if ctx.Err() != nil {
				f.pushRetry(retryItem{rec: it.rec, wait: it.wait, at: time.Now()})
				return nil, nil, ctx.Err()
			}
			continue
		} else if len(f.buf) == 0 {
			recs, err := f.sp.ReadAfter(f.last, readAhead)
			if err != nil {
				if errors.Is(err, spool.ErrClosed) {
					return nil, nil, service.ErrEndOfInput
				}
				return nil, nil, err
			}
			if len(recs) > 0 {
				f.buf = recs
				f.last = recs[len(recs)-1].Seq
			} else if err := f.wait(ctx, wait); err != nil {
				return nil, nil, err
			} else {
				continue
			}
		}
		for len(f.buf) > 0 {
			rec := f.buf[0]
			f.buf = f.buf[1:]
			if msg := f.prepare(ctx, rec); msg != nil {
				return service.MessageBatch{msg}, f.ackFunc(rec, nil), nil
			}
			if ctx.Err() != nil {
				f.buf = append([]spool.Record{rec}, f.buf...)
				return nil, nil, ctx.Err()
			}
		}
	}
}

// wait blocks until an append, a due retry (after wait when > 0) or ctx.
func (f *spooledSink) wait(ctx context.Context, wait time.Duration) error {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-f.sp.Notify():
	case <-f.retryKick:
	case <-timer:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// prepare turns a record into a message; nil when it is not to be emitted
// (malformed: removed; spurious delete: removed; ctx cancelled during the
// delete check: kept).
func (f *spooledSink) prepare(ctx context.Context, rec spool.Record) *service.Message {
	var (
		d      delivery
		fields wcevent.ObjectFields
		err    error
	)
	if n, ok := rec.Note.(*spooledNote); ok && n.msg != nil {
		return n.msg.Copy() // no check applies: only deletes are checked
	} else if ok {
		d, fields = n.d, n.f
	} else if d, err = decodeRecord(rec.Value); err == nil {
		fields, err = wcevent.ExtractFields(d.Body)
	}
	if err != nil {
		f.log.Errorf("woocommerce_webhook: spool record %d is unreadable (%v), removing it", rec.Seq, err)
		f.remove(rec.Seq)
		return nil
	}
	ev := d.event(fields)
	check, emit := f.checks.check(ctx, d.StoreName, &ev, f.checks.budget)
	if ctx.Err() != nil {
		return nil
	}
	if !emit {
		f.remove(rec.Seq)
		return nil
	}
	return d.message(&ev, check)
}

func (f *spooledSink) remove(seq uint64) {
	if err := f.sp.Remove(seq); err != nil && !errors.Is(err, spool.ErrClosed) {
		f.log.Errorf("woocommerce_webhook: removing spool record %d: %v (it will be emitted again after a restart)", seq, err)
	}
}

func (f *spooledSink) ackFunc(rec spool.Record, wait *retry.Growing) service.AckFunc {
	return func(_ context.Context, err error) error {
		if err == nil {
			f.remove(rec.Seq)
			return nil
		}
		if wait == nil {
			wait = retry.NewGrowing(retryMinBackoff, retryMaxBackoff)
		}
		backoff := wait.Next()
		f.log.Warnf("woocommerce_webhook: spooled delivery %d nacked (%v), emitting it again in %s", rec.Seq, err, backoff)
		f.pushRetry(retryItem{rec: rec, wait: wait, at: time.Now().Add(backoff)})
		return nil
	}
}

func (f *spooledSink) pushRetry(it retryItem) {
	f.mu.Lock()
	f.retry = append(f.retry, it)
	f.mu.Unlock()
	select {
	case f.retryKick <- struct{}{}:
	default:
	}
}

// popRetry returns a due retry, or nil and how long until the next one is
// due (0 when none waits).
func (f *spooledSink) popRetry(now time.Time) (*retryItem, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var next time.Duration
	for i, it := range f.retry {
		if !it.at.After(now) {
			f.retry = append(f.retry[:i], f.retry[i+1:]...)
			return &it, 0
		}
		if d := it.at.Sub(now); next == 0 || d < next {
			next = d
		}
	}
	return nil, next
}
