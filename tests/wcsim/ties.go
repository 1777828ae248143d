package wcsim

import (
	"math"
	"sort"
)

// Ties in a non-unique order (orderby=modified, date, title, slug, a
// customer's registered_date) come back the way MySQL returns them: in no
// fixed order, and in a different order for each LIMIT. WooCommerce adds no id
// tie-breaker to these orders (captures in
// tests/fixtures/woocommerce/rest/ties/): within one date_modified_gmt second
// the rows are not by id, page 3 of a walk is positions 20-29 of the
// per_page=100 answer while page 2 came back by id, and a page walk repeats
// some ids and never returns others. MySQL keeps the first offset+limit rows
// of the sort in a priority queue, so the order of equal keys is a function of
// the query's LIMIT (offset+per_page), stable for a repeated identical query.
//
// The simulator reproduces that: inside each group of equal sort keys that
// intersects the requested window, the members are ordered by
// tieHash(seed, offset+per_page, id) (ties of the hash, which do not happen in
// practice, by id; descending queries use another seed). Only the groups of
// the window are ranked: the group of the window's first row and the group of
// its last row are collected whole (every group between them lies inside the
// window), ranked by quickselect as far as the window needs, and the window
// is cut, so a page costs O(page + the two edge groups), never a sort of the
// collection. orderby=id, orderby=include, orderby=price (which
// WooCommerce breaks by product id) stay exact.

// defaultTieSeed is used when Options.TieSeed is 0.
const defaultTieSeed int64 = 0x5eed_71e5

// tieSeed is the seed of one query: ascending and descending queries order
// ties differently (neither is the other reversed).
func tieSeed(storeSeed int64, desc bool) int64 {
	if desc {
		return storeSeed ^ 0x3c6ef372fe94f82b
	}
	return storeSeed
}

// tieHash mixes the store's tie seed, the query's LIMIT and a row id into the
// row's rank among its ties (splitmix64 finalizers).
func tieHash(seed int64, limit int, id int64) uint64 {
	return mix64(uint64(seed) ^ mix64(uint64(limit)+0x9e3779b97f4a7c15*mix64(uint64(id))))
}

func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// tieItem is one row of a tie group with its rank key.
type tieItem[T any] struct {
	h  uint64
	id int64
	v  T
}

func tieLess[T any](a, b tieItem[T]) bool { return a.h < b.h || (a.h == b.h && a.id < b.id) }

// selectSmallest reorders x so that x[:k] holds its k smallest items (in
// any order): quickselect, expected O(len(x)) as the hashes are random.
func selectSmallest[T any](x []tieItem[T], k int) {
	lo, hi := 0, len(x)
	for hi-lo > 1 && k > lo && k < hi {
		m := lo + (hi-lo)/2
		x[m], x[hi-1] = x[hi-1], x[m]
		p := x[hi-1]
		st := lo
		for i := lo; i < hi-1; i++ {
			if tieLess(x[i], p) {
				x[i], x[st] = x[st], x[i]
				st++
			}
		}
		x[st], x[hi-1] = x[hi-1], x[st]
		switch { // x[lo:st] < p = x[st] < x[st+1:hi]
		case k == st || k == st+1:
			return
		case k < st:
			hi = st
		default:
			lo = st + 1
		}
	}
}

// orderGroup puts the members of one tie group at ranks [a, b) of the order
// by tieHash(seed, bound, id) into positions [a, b) of g. Other positions
// get the other members in no defined order (the caller cuts them off).
func orderGroup[T any](g []T, a, b int, seed int64, bound int, id func(T) int64) {
	items := make([]tieItem[T], len(g))
	for i, v := range g {
		items[i] = tieItem[T]{h: tieHash(seed, bound, id(v)), id: id(v), v: v}
	}
	selectSmallest(items, a)
	selectSmallest(items[a:], b-a)
	part := items[a:b]
	sort.Slice(part, func(i, j int) bool { return tieLess(part[i], part[j]) })
	for i := range items {
		g[i] = items[i].v
	}
}

// tieBound is the LIMIT the tie order depends on: skip+limit, or the number
// of matching rows when the LIMIT covers them all. A LIMIT past the last row
// sorts every row, the same whatever the LIMIT: in the captures, page 3 of
// 30 tied rows at per_page=10 (LIMIT 20,10) is rows 20-29 of per_page=100.
func tieBound(skip, limit, total int) int { return min(skip+limit, total) }

// tieWindow returns the rows at [skip, skip+limit) of items once the ties are
// ordered as for a query whose LIMIT is bound (offset+per_page): within each
// group of equal keys (same), by tieHash(seed, bound, id). items must be in
// sort order and hold whole groups at the window's edges; it is modified.
// Only the groups touching the window are ranked, and only as far as the
// window needs.
func tieWindow[T any](items []T, skip, limit, bound int, seed int64, same func(a, b T) bool, id func(T) int64) []T {
	if skip >= len(items) || limit <= 0 {
		return nil
	}
	end := min(skip+limit, len(items))
	g0 := skip
	for g0 > 0 && same(items[g0-1], items[skip]) {
		g0--
	}
	for g0 < end {
		g1 := g0 + 1
		for g1 < len(items) && same(items[g0], items[g1]) {
			g1++
		}
		if g1-g0 > 1 {
			orderGroup(items[g0:g1], max(skip, g0)-g0, min(end, g1)-g0, seed, bound, id)
		}
		g0 = g1
	}
	return items[skip:end]
}

// collectTies is oindex.collect for a non-unique index: the page of limit
// matching entries after skip (of total matching), with ties ordered as
// MySQL would for a query with LIMIT skip+limit.
func (x *oindex) collectTies(from, to ipos, mask uint16, desc bool, skip, limit, total int, pred func(ikey) bool, seed int64) []ikey {
	page := x.collect(from, to, mask, desc, skip, limit, pred, make([]ikey, 0, limit))
	if len(page) == 0 {
		return page
	}
	// The index range holding the whole groups of the page's first and last
	// keys, clipped to [from, to).
	kLo, kHi := page[0].k, page[len(page)-1].k
	if desc {
		kLo, kHi = kHi, kLo
	}
	gFrom := x.lowerBound(ikey{k: kLo, vs: math.MinInt64})
	gTo := x.end()
	if kHi < math.MaxInt64 {
		gTo = x.lowerBound(ikey{k: kHi + 1, vs: math.MinInt64})
	}
	if gFrom.before(from) {
		gFrom = from
	}
	if to.before(gTo) {
		gTo = to
	}
	ext := x.collect(gFrom, gTo, mask, desc, 0, math.MaxInt, pred, make([]ikey, 0, len(page)+8))
	off := 0
	for off < len(ext) && ext[off] != page[0] {
		off++
	}
	if off == len(ext) { // cannot happen: page[0] lies in [gFrom, gTo)
		return page
	}
	same := func(a, b ikey) bool { return a.k == b.k }
	return tieWindow(ext, off, len(page), tieBound(skip, limit, total), seed, same, ikey.id)
}
