package wcpoll

import (
	"context"
	"slices"
	"sync"
)

// item is what a feed sends: a span, or the error that ended the feed.
type item struct {
	c   *span
	err error
}

// feedEnv is what a feed needs.
type feedEnv struct {
	f        *fetcher
	res      *resource
	overlap  int64 // seconds
	segPages int   // pages per backfill segment
	maxConc  int
}

// segmentSize is the number of objects one backfill segment covers.
func (e *feedEnv) segmentSize() int { return e.segPages * e.f.perPage }

// runFeed reads a list (or its trash) from pos to the store's present and
// sends its chunks in order, the last one with done set; it closes out when
// it returns. A main list that is far behind (its first answer is full and
// more than two segments of objects follow it) is read from there as
// consecutive segments fetched concurrently (see runSegments).
func runFeed(ctx context.Context, env *feedEnv, trash bool, pos *int64, segmented bool, out chan<- item) {
	defer close(out)
	rd := &reader{f: env.f, res: env.res, trash: trash, overlap: env.overlap, pos: cloneInt(pos)}
	c, err := rd.step(ctx)
	if err != nil {
		send(ctx, out, item{err: err})
		return
	}
	// objects after the first answer's position (X-WP-Total counts from pos)
	if rest := c.total - len(c.recs); !c.done && segmented && env.maxConc > 1 && rest > 2*env.segmentSize() {
		if !send(ctx, out, item{c: c}) {
			return
		}
		runSegments(ctx, env, rd, cloneInt(rd.pos), rest, out)
		return
	}
	for {
		done := c.done // the receiver owns c once it is sent
		if !send(ctx, out, item{c: c}) || done {
			return
		}
		if c, err = rd.step(ctx); err != nil {
			send(ctx, out, item{err: err})
			return
		}
	}
}

func send(ctx context.Context, out chan<- item, it item) bool {
	select {
	case out <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// boundary is the first second of a segment, known after its first answer.
type boundary struct {
	once sync.Once
	ch   chan struct{}
	v    *int64 // nil: the segment's offset is past the end of the list
	err  error
}

func newBoundary() *boundary { return &boundary{ch: make(chan struct{})} }

func (b *boundary) set(v *int64, err error) {
	b.once.Do(func() {
		b.v, b.err = v, err
		close(b.ch)
	})
}

func (b *boundary) wait(ctx context.Context) (*int64, error) {
	select {
	case <-b.ch:
		return b.v, b.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// segment is one window of a segmented backfill.
type segment struct {
	start *boundary // its first second (segment 0: the walk's position)
	ch    chan item
}

// runSegments continues a walk that is far behind as consecutive segments
// of about segmentSize objects: segment k begins with the object at offset
// k×size of the walk from base (`modified_after=<base>&offset=…`): that first
// answer gives the segment's first second b_k, and its objects after b_k are
// already the segment's first records; segment k covers (b_k, b_{k+1}],
// the last one reaches the store's present. Each segment is read by its own
// reader (the tie-safe walk of reader.step) and the segments are fetched
// concurrently, as many ahead of the one being emitted as the limiter
// allows, and emitted strictly in order, so positions only move forward.
// Objects that change during the backfill leave their segment for the
// present, where the last segment (or the next poll) reads them.
func runSegments(ctx context.Context, env *feedEnv, rd0 *reader, base *int64, total int, out chan<- item) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	size := env.segmentSize()
	k := (total + size - 1) / size
	segs := make([]*segment, k)
	for i := range segs {
		segs[i] = &segment{start: newBoundary(), ch: make(chan item, env.segPages+4)}
	}
	segs[0].start.set(base, nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	hiFor := func(i int) func(context.Context) (*int64, error) {
		if i+1 >= len(segs) {
			return nil // the last segment reaches the present
		}
		next := segs[i+1].start
		return func(ctx context.Context) (*int64, error) { return next.wait(ctx) }
	}
	run := func(i int, rd *reader) {
		defer wg.Done()
		defer close(segs[i].ch)
		for {
			c, err := rd.step(ctx)
			if err != nil {
				segs[i].start.set(nil, err) // a segment waiting for this boundary fails too
				send(ctx, segs[i].ch, item{err: err})
				return
			}
			done := c.done // the coordinator owns c once it is sent
			if !send(ctx, segs[i].ch, item{c: c}) || done {
				return
			}
		}
	}
	rd0.hiFor = hiFor(0)
	wg.Add(1)
	go run(0, rd0)
	spawned := 1
	spawn := func(i int) {
		s := segs[i].start
		rd := &reader{f: env.f, res: env.res, trash: rd0.trash, overlap: env.overlap,
			offset: i * size, base: cloneInt(base), hiFor: hiFor(i),
			onBoundary: func(b *int64) { s.set(b, nil) }}
		wg.Add(1)
		go run(i, rd)
	}

	var last *int64 // clamp: positions only move forward
	for head := 0; head < len(segs); {
		for want := min(len(segs)-1, head+env.f.lim.current()+1); spawned <= want; spawned++ {
			spawn(spawned)
		}
		var it item
		var ok bool
		select {
		case it, ok = <-segs[head].ch:
		case <-ctx.Done():
			return
		}
		if !ok {
			head++
			continue
		}
		if it.err != nil {
			send(ctx, out, it)
			return
		}
		c := it.c
		if last != nil && (c.pos == nil || *c.pos < *last) {
			c.pos = cloneInt(last)
		}
		last = cloneInt(c.pos)
		final := c.done && c.tail
		c.done = final
		if !send(ctx, out, item{c: c}) || final {
			return
		}
	}
}

// sortRecs sorts records for emission.
func sortRecs(recs []record) {
	slices.SortFunc(recs, func(a, b record) int { return cmpRec(&a, &b) })
}
