package wcsim

import "sort"

// ikey is one entry of an ordered index: a sort key (a unix second or 0) and
// the record id packed with its status code (id<<8 | status). Entries order by
// key, then id: that is the index's own order, not the store's answer, which
// returns equal keys in no fixed order (collectTies, ties.go).
type ikey struct {
	k  int64
	vs int64
}

func mkKey(k, id int64, st uint8) ikey { return ikey{k: k, vs: id<<8 | int64(st)} }
func (e ikey) id() int64               { return e.vs >> 8 }
func (e ikey) st() uint8               { return uint8(e.vs & 0xff) }
func (e ikey) less(o ikey) bool        { return e.k < o.k || (e.k == o.k && e.vs < o.vs) }

const (
	blockMax  = 512
	blockHalf = blockMax / 2
	maxStatus = 16
)

type iblock struct {
	items  []ikey
	counts [maxStatus]int32
}

func (b *iblock) count(mask uint16) int {
	n := 0
	for m := mask; m != 0; m &= m - 1 {
		n += int(b.counts[trailingZeros16(m)])
	}
	return n
}

func trailingZeros16(m uint16) int {
	n := 0
	for m&1 == 0 {
		m >>= 1
		n++
	}
	return n
}

// oindex is an ordered multiset of ikeys kept as a list of sorted blocks, each
// with per-status counts, so that counting the entries of a key range that
// match a status mask costs O(blocks) and locating the n-th match is cheap.
type oindex struct {
	blocks []*iblock
	n      int
}

type ipos struct{ b, i int }

func (x *oindex) findBlock(k ikey) int {
	// first block whose last item >= k
	j := sort.Search(len(x.blocks), func(j int) bool {
		it := x.blocks[j].items
		return !it[len(it)-1].less(k)
	})
	return j
}

func (x *oindex) insert(k ikey) {
	x.n++
	if len(x.blocks) == 0 {
		b := &iblock{items: make([]ikey, 0, blockMax)}
		b.items = append(b.items, k)
		b.counts[k.st()]++
		x.blocks = append(x.blocks, b)
		return
	}
	j := x.findBlock(k)
	if j == len(x.blocks) {
		j--
		if last := x.blocks[j]; len(last.items) >= blockMax-1 {
			// Appending past the end (seeding, touching records): start a new
			// block instead of splitting, so append-only blocks stay full.
			b := &iblock{items: make([]ikey, 0, blockMax)}
			b.items = append(b.items, k)
			b.counts[k.st()]++
			x.blocks = append(x.blocks, b)
			return
		}
	}
	b := x.blocks[j]
	i := sort.Search(len(b.items), func(i int) bool { return !b.items[i].less(k) })
	b.items = append(b.items, ikey{})
	copy(b.items[i+1:], b.items[i:])
	b.items[i] = k
	b.counts[k.st()]++
	if len(b.items) >= blockMax {
		nb := &iblock{items: make([]ikey, 0, blockMax)}
		nb.items = append(nb.items, b.items[blockHalf:]...)
		for _, e := range nb.items {
			nb.counts[e.st()]++
			b.counts[e.st()]--
		}
		b.items = b.items[:blockHalf]
		x.blocks = append(x.blocks, nil)
		copy(x.blocks[j+2:], x.blocks[j+1:])
		x.blocks[j+1] = nb
	}
}

func (x *oindex) remove(k ikey) bool {
	j := x.findBlock(k)
	if j == len(x.blocks) {
		return false
	}
	b := x.blocks[j]
	i := sort.Search(len(b.items), func(i int) bool { return !b.items[i].less(k) })
	if i == len(b.items) || b.items[i] != k {
		return false
	}
	copy(b.items[i:], b.items[i+1:])
	b.items = b.items[:len(b.items)-1]
	b.counts[k.st()]--
	x.n--
	if len(b.items) == 0 {
		copy(x.blocks[j:], x.blocks[j+1:])
		x.blocks[len(x.blocks)-1] = nil
		x.blocks = x.blocks[:len(x.blocks)-1]
	} else if len(b.items) < blockHalf/4 && j+1 < len(x.blocks) && len(x.blocks[j+1].items)+len(b.items) < blockMax {
		nb := x.blocks[j+1]
		b.items = append(b.items, nb.items...)
		for s := range nb.counts {
			b.counts[s] += nb.counts[s]
		}
		copy(x.blocks[j+1:], x.blocks[j+2:])
		x.blocks[len(x.blocks)-1] = nil
		x.blocks = x.blocks[:len(x.blocks)-1]
	}
	return true
}

// lowerBound returns the position of the first entry >= k.
func (x *oindex) lowerBound(k ikey) ipos {
	j := x.findBlock(k)
	if j == len(x.blocks) {
		return ipos{len(x.blocks), 0}
	}
	b := x.blocks[j]
	i := sort.Search(len(b.items), func(i int) bool { return !b.items[i].less(k) })
	return ipos{j, i}
}

func (x *oindex) end() ipos { return ipos{len(x.blocks), 0} }

func (p ipos) before(o ipos) bool { return p.b < o.b || (p.b == o.b && p.i < o.i) }

// countRange counts entries in [from, to) whose status is in mask.
func (x *oindex) countRange(from, to ipos, mask uint16) int {
	if !from.before(to) {
		return 0
	}
	n := 0
	scan := func(items []ikey) {
		for _, e := range items {
			if mask&(1<<e.st()) != 0 {
				n++
			}
		}
	}
	if from.b == to.b {
		scan(x.blocks[from.b].items[from.i:to.i])
		return n
	}
	scan(x.blocks[from.b].items[from.i:])
	for j := from.b + 1; j < to.b; j++ {
		n += x.blocks[j].count(mask)
	}
	if to.b < len(x.blocks) {
		scan(x.blocks[to.b].items[:to.i])
	}
	return n
}

// collect walks [from, to) ascending (or descending when desc), skips the
// first skip matching entries and returns up to limit matching entries.
// pred, when non-nil, is an extra filter (and disables block skipping).
func (x *oindex) collect(from, to ipos, mask uint16, desc bool, skip, limit int, pred func(ikey) bool, out []ikey) []ikey {
	if !from.before(to) || limit <= 0 {
		return out
	}
	match := func(e ikey) bool {
		return mask&(1<<e.st()) != 0 && (pred == nil || pred(e))
	}
	if !desc {
		for j := from.b; j <= to.b && j < len(x.blocks); j++ {
			items := x.blocks[j].items
			lo, hi := 0, len(items)
			if j == from.b {
				lo = from.i
			}
			if j == to.b {
				hi = to.i
			}
			if pred == nil && lo == 0 && hi == len(items) && skip > 0 {
				if c := x.blocks[j].count(mask); c <= skip {
					skip -= c
					continue
				}
			}
			for _, e := range items[lo:hi] {
				if !match(e) {
					continue
				}
				if skip > 0 {
					skip--
					continue
				}
				out = append(out, e)
				if limit--; limit == 0 {
					return out
				}
			}
		}
		return out
	}
	last := to.b
	if last >= len(x.blocks) {
		last = len(x.blocks) - 1
	}
	for j := last; j >= from.b; j-- {
		items := x.blocks[j].items
		lo, hi := 0, len(items)
		if j == from.b {
			lo = from.i
		}
		if j == to.b {
			hi = to.i
		}
		if pred == nil && lo == 0 && hi == len(items) && skip > 0 {
			if c := x.blocks[j].count(mask); c <= skip {
				skip -= c
				continue
			}
		}
		for i := hi - 1; i >= lo; i-- {
			e := items[i]
			if !match(e) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, e)
			if limit--; limit == 0 {
				return out
			}
		}
	}
	return out
}
