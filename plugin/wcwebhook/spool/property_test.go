package spool

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// soak selects the long variants (WOOEVENTS_SOAK=1, as `make soak` sets).
func soak() bool { return os.Getenv("WOOEVENTS_SOAK") != "" }

// crash stops s and leaves its files as a SIGKILL would: what was written
// stays (the page cache survives the process), nothing more is written (no
// removal applied or persisted, no sync).
func (s *Spool) crash() {
	s.aborted.Store(true)
	_ = s.Close()
}

// TestPropertyRandomWorkloads runs random sequences of concurrent appends,
// reads, acks in any order, records that are never acked (nacked again and
// again), flushes, graceful restarts and crashes. A crash leaves the files
// as SIGKILL would and may add what a crash in the middle of a write
// leaves: the records of a group being written, cut at a random byte, at
// the end of the head segment; a torn chunk at the end of the removal file;
// a segment file whose header was never completed, or a recycled file whose
// new header never made it. Segments are small, so they roll, get recycled,
// deleted and their last records copied forward. After every reopen:
//   - every record whose Append returned and that was not acked is read
//     back, exactly once, in sequence order, with its value;
//   - no record acked before a Flush or a graceful Close comes back; a
//     record acked since may (a duplicate, never a loss);
//   - nothing else comes back but the complete records of the group being
//     written at the crash (never acknowledged: emitting them is allowed),
//     and a cut record is reported as a torn tail, not read;
//   - Depth and Bytes count exactly the records read back.
//
// After a Flush Depth and Bytes count exactly the live records, and once
// the reader has read everything the segment files shrink to a small
// multiple of the live data, stuck records included.
//
// SPOOL_SEED=<n> replays one run; WOOEVENTS_SOAK=1 runs many more, longer.
func TestPropertyRandomWorkloads(t *testing.T) {
	runs, ops, seed := 4, 250, time.Now().UnixNano()
	if soak() {
		runs, ops = 80, 2500
	}
	if v := os.Getenv("SPOOL_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		require.NoError(t, err)
		runs, seed = 1, s
	}
	for i := range runs {
		s := seed + int64(i)
		if !t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) { runWorkload(t, s, ops) }) {
			t.Logf("replay with SPOOL_SEED=%d go test -run TestPropertyRandomWorkloads ./plugin/wcwebhook/spool", s)
			return
		}
	}
}

// model is what the test knows the spool must, may and must not hold.
type model struct {
	t    *testing.T
	r    *rand.Rand
	dir  string
	opts Options
	s    *Spool

	next     int
	size     map[string]int    // every value ever appended or written
	live     map[string]bool   // appended (or read back) and not acked
	inflight map[uint64]string // read and not acked
	stuck    map[uint64]bool   // inflight records never acked (until unstuck)
	soft     map[string]bool   // acked since the last Flush or Close: may come back
	hard     map[string]bool   // acked before a Flush or Close: must not
	extras   map[string]bool   // written by the group torn by a crash: may come back
	last     uint64            // reader position

	torn      []string // OnTornTail reports since the last open
	tornMu    sync.Mutex
	wantTorn  string // file and offset a torn tail must be reported at
	maxValLen int
}

func runWorkload(t *testing.T, seed int64, ops int) {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	m := &model{
		t: t, r: r, dir: t.TempDir(),
		size: map[string]int{}, live: map[string]bool{}, inflight: map[uint64]string{}, stuck: map[uint64]bool{},
		soft: map[string]bool{}, hard: map[string]bool{}, extras: map[string]bool{},
		maxValLen: []int{40, 600, 3000}[r.IntN(3)],
	}
	m.opts = Options{
		segmentBytes:    int64([]int{4 << 10, 16 << 10, 64 << 10}[r.IntN(3)]),
		relocateAfter:   2 * time.Millisecond,
		ackCompactBytes: int64([]int{64, 1 << 10, 16 << 10}[r.IntN(3)]),
		RemoveDelay:     time.Duration(1+r.IntN(10)) * time.Millisecond,
		RemoveBatch:     1 + r.IntN(64),
		CacheBytes:      []int64{-1, 3000, 0}[r.IntN(3)],
		OnTornTail: func(file string, offset, bytes int64) {
			m.tornMu.Lock()
			defer m.tornMu.Unlock()
			m.torn = append(m.torn, fmt.Sprintf("%s@%d", filepath.Base(file), offset))
		},
	}
	t.Logf("segment %d bytes, values up to %d bytes, remove delay %s batch %d, cache %d, removal file compacted at %d",
		m.opts.segmentBytes, m.maxValLen, m.opts.RemoveDelay, m.opts.RemoveBatch, m.opts.CacheBytes, m.opts.ackCompactBytes)
	m.open()
	for range ops {
		switch n := r.IntN(100); {
		case n < 30:
			m.appendBatch()
		case n < 55:
			m.read()
		case n < 78:
			m.ack()
		case n < 86:
			m.flush()
		case n < 91:
			time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
			m.flush()
		case n < 97:
			m.crash()
		default:
			m.restart()
		}
	}
	m.checkFilesShrink()
	m.restart()
	require.NoError(t, m.s.Close())
}

func (m *model) open() {
	m.t.Helper()
	m.torn = nil
	s, err := Open(m.dir, m.opts)
	require.NoError(m.t, err)
	m.s = s
	m.verifyReopened()
}

func (m *model) value(prefix string) string {
	m.next++
	v := fmt.Sprintf("%s%06d|%s", prefix, m.next, strings.Repeat(string(rune('a'+m.next%26)), m.r.IntN(m.maxValLen+1)))
	m.size[v] = len(v)
	return v
}

// appendBatch appends 1 to 8 values concurrently.
func (m *model) appendBatch() {
	vals := make([]string, 1+m.r.IntN(8))
	for i := range vals {
		vals[i] = m.value("v")
	}
	errs := make([]error, len(vals))
	noNote := make([]bool, len(vals))
	for i := range noNote {
		noNote[i] = m.r.IntN(4) == 0
	}
	var wg sync.WaitGroup
	for i, v := range vals {
		wg.Go(func() {
			if noNote[i] { // no note: the spool keeps the value
				_, errs[i] = m.s.Append([]byte(v), nil)
				return
			}
			// With a note the spool keeps no reference to the value:
			// scribbling over it after Append returns changes nothing.
			b := []byte(v)
			_, errs[i] = m.s.Append(b, v)
			clear(b)
		})
	}
	wg.Wait()
	for i, v := range vals {
		require.NoError(m.t, errs[i])
		m.live[v] = true
	}
}

// read reads on from the reader's position.
func (m *model) read() {
	recs, err := m.s.ReadAfter(m.last, 1+m.r.IntN(20))
	require.NoError(m.t, err)
	for _, rec := range recs {
		require.Greater(m.t, rec.Seq, m.last, "records in sequence order")
		m.last = rec.Seq
		v := string(rec.Value)
		if rec.Note != nil {
			require.Nil(m.t, rec.Value, "from memory, the note stands for the value")
			v = rec.Note.(string)
		}
		require.True(m.t, m.live[v], "read %q (seq %d), which is not live", short(v), rec.Seq)
		m.inflight[rec.Seq] = v
		if m.r.IntN(12) == 0 {
			m.stuck[rec.Seq] = true
		}
	}
}

// ack acks a random part of the inflight records, in random order.
func (m *model) ack() {
	seqs := make([]uint64, 0, len(m.inflight))
	for seq := range m.inflight {
		if !m.stuck[seq] || m.r.IntN(20) == 0 {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs) // map order is not the seed's
	m.r.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
	for _, seq := range seqs[:m.r.IntN(len(seqs)+1)] {
		v := m.inflight[seq]
		require.NoError(m.t, m.s.Remove(seq))
		if os.Getenv("SPOOL_DEBUG") != "" {
			m.t.Logf("ack %d %s", seq, short(v))
		}
		delete(m.inflight, seq)
		delete(m.stuck, seq)
		delete(m.live, v)
		m.soft[v] = true
	}
}

// flush makes the acks so far durable and checks the counts.
func (m *model) flush() {
	if os.Getenv("SPOOL_DEBUG") != "" {
		m.t.Logf("flush")
	}
	require.NoError(m.t, m.s.Flush())
	for v := range m.soft {
		m.hard[v] = true
	}
	clear(m.soft)
	require.Equal(m.t, int64(len(m.live)), m.s.Depth(), "depth after a flush")
	require.Equal(m.t, m.liveBytes(), m.s.Bytes(), "bytes after a flush")
}

func (m *model) liveBytes() int64 {
	var n int64
	for v := range m.live {
		n += int64(m.size[v] + recHeaderSize)
	}
	return n
}

// restart closes gracefully (acks so far are durable) and reopens.
func (m *model) restart() {
	if os.Getenv("SPOOL_DEBUG") != "" {
		m.t.Logf("restart")
	}
	require.NoError(m.t, m.s.Close())
	for v := range m.soft {
		m.hard[v] = true
	}
	clear(m.soft)
	m.open()
}

// crash kills the spool and adds what a crash in the middle of writing
// can leave, then reopens.
func (m *model) crash() {
	s := m.s
	if os.Getenv("SPOOL_DEBUG") != "" {
		m.t.Logf("crash nextSeq=%d head=%s size=%d", s.nextSeq, filepath.Base(s.head.path), s.head.size)
	}
	s.crash()
	r := m.r
	head := s.head
	m.wantTorn = ""
	if r.IntN(3) > 0 {
		// The group a lane was writing: k records after the head's end,
		// cut at a random byte.
		var buf []byte
		var ends []int
		var vals []string
		for i := range 1 + r.IntN(4) {
			v := m.value("x")
			buf = appendRecord(buf, head.seed, s.nextSeq+uint64(i), []byte(v))
			ends = append(ends, len(buf))
			vals = append(vals, v)
		}
		cut := r.IntN(len(buf) + 1)
		f, err := os.OpenFile(head.path, os.O_RDWR, 0)
		require.NoError(m.t, err)
		_, err = f.WriteAt(buf[:cut], head.size)
		require.NoError(m.t, err)
		// A recycled file may already hold, after the cut, the very bytes
		// that were not written (runs of the same letter): a record whose
		// bytes are all there is complete, torn or not.
		onDisk := make([]byte, len(buf))
		n, _ := f.ReadAt(onDisk, head.size)
		require.NoError(m.t, f.Close())
		for cut < n && onDisk[cut] == buf[cut] {
			cut++
		}
		complete := 0
		if os.Getenv("SPOOL_DEBUG") != "" {
			m.t.Logf("extras %d..(%d) cut %d ends %v at %s+%d seq %d", m.next-len(vals)+1, len(vals), cut, ends, filepath.Base(head.path), head.size, s.nextSeq)
		}
		for i, end := range ends {
			if end <= cut {
				m.extras[vals[i]] = true
				complete = end
			}
		}
		if cut > complete && !m.recycled(head.path) {
			m.wantTorn = fmt.Sprintf("%s@%d", filepath.Base(head.path), head.size+int64(complete))
		}
	}
	if r.IntN(3) == 0 {
		// A removal chunk torn at a random byte.
		chunk := appendAckChunk(nil, ackKindRemoved, appendRemovals(nil, []uint64{1, 2, 3}))
		f, err := os.OpenFile(filepath.Join(m.dir, ackFileName), os.O_WRONLY|os.O_APPEND, 0)
		require.NoError(m.t, err)
		_, err = f.Write(chunk[:r.IntN(len(chunk))])
		require.NoError(m.t, err)
		require.NoError(m.t, f.Close())
	}
	switch r.IntN(5) {
	case 0:
		// A segment created but whose header never reached the disk.
		junk := make([]byte, r.IntN(segHeaderSize+1))
		require.NoError(m.t, os.WriteFile(filepath.Join(m.dir, segName(s.nextSegID)), junk, 0o600))
	case 1:
		// A spare renamed for recycling whose new header never made it:
		// the header still names the segment it was.
		b := append(encodeSegHeader(s.nextSegID-7, 1, 0), make([]byte, 100)...)
		b = appendRecord(b, crcSeed(s.nextSegID-7), s.nextSeq+100, []byte("stale"))
		require.NoError(m.t, os.WriteFile(filepath.Join(m.dir, segName(s.nextSegID)), b, 0o600))
	}
	m.open()
}

// recycled reports whether a segment file's header says it was recycled.
func (m *model) recycled(path string) bool {
	b, err := os.ReadFile(path)
	require.NoError(m.t, err)
	h, err := decodeSegHeader(b)
	require.NoError(m.t, err)
	return h.flags&segRecycled != 0
}

// verifyReopened reads everything back from the files of a just opened
// spool and checks it against the model, which then takes what came back
// as live.
func (m *model) verifyReopened() {
	t := m.t
	t.Helper()
	recs, err := m.s.ReadAfter(0, 1<<30)
	require.NoError(t, err)
	seen := map[string]bool{}
	var prev uint64
	var bytes int64
	for _, rec := range recs {
		require.Greater(t, rec.Seq, prev, "records in sequence order")
		prev = rec.Seq
		v := string(rec.Value)
		require.False(t, seen[v], "%q read back twice", short(v))
		seen[v] = true
		if m.hard[v] {
			m.dump()
		}
		require.False(t, m.hard[v], "%q (seq %d) was acked and flushed, yet came back", short(v), rec.Seq)
		if !(m.live[v] || m.soft[v] || m.extras[v]) {
			m.dump()
		}
		require.True(t, m.live[v] || m.soft[v] || m.extras[v], "%q (seq %d) came back from nowhere", short(v), rec.Seq)
		require.Nil(t, rec.Note, "read from the files")
		bytes += int64(len(v) + recHeaderSize)
	}
	for v := range m.live {
		require.True(t, seen[v], "%q was appended and not acked, and is lost", short(v))
	}
	if os.Getenv("SPOOL_DEBUG") != "" {
		var xs []string
		for _, rec := range recs {
			if v := string(rec.Value); v[0] == 'x' {
				xs = append(xs, fmt.Sprintf("%d:%s", rec.Seq, short(v)))
			}
		}
		m.t.Logf("reopened: %d records, extras %v", len(recs), xs)
	}
	require.Equal(t, int64(len(recs)), m.s.Depth())
	require.Equal(t, bytes, m.s.Bytes())
	m.tornMu.Lock()
	torn := slices.Clone(m.torn)
	m.tornMu.Unlock()
	if m.wantTorn != "" {
		require.Contains(t, torn, m.wantTorn, "the cut record is reported as a torn tail")
	}
	m.wantTorn = ""
	clear(m.live)
	for v := range seen {
		m.live[v] = true
	}
	clear(m.soft)
	clear(m.extras)
	clear(m.inflight)
	clear(m.stuck)
	m.last = 0
}

// checkFilesShrink reads everything, acks all but the stuck records and
// requires the segment files to come down to a small multiple of the live
// data once relocation has had its time.
func (m *model) checkFilesShrink() {
	t := m.t
	for {
		recs, err := m.s.ReadAfter(m.last, 1000)
		require.NoError(t, err)
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			m.last = rec.Seq
			m.inflight[rec.Seq] = recValue(rec)
		}
	}
	for seq, v := range m.inflight {
		if !m.stuck[seq] {
			if os.Getenv("SPOOL_DEBUG") != "" {
				m.t.Logf("ack %d %s (shrink)", seq, short(v))
			}
			require.NoError(t, m.s.Remove(seq))
			delete(m.inflight, seq)
			delete(m.live, v)
			m.soft[v] = true
		}
	}
	m.flush()
	slack := int64(maxSpares+3) * (m.opts.segmentBytes + int64(m.maxValLen) + 64)
	var files int64
	for range 200 {
		time.Sleep(3 * m.opts.relocateAfter)
		// Appends give the relocated copies a head to go to and roll it.
		m.appendBatch()
		recs, err := m.s.ReadAfter(m.last, 100)
		require.NoError(t, err)
		for _, rec := range recs {
			m.last = rec.Seq
			require.NoError(t, m.s.Remove(rec.Seq))
			v := recValue(rec)
			delete(m.live, v)
			m.soft[v] = true
		}
		m.flush()
		files = m.segmentFileBytes()
		if files <= 4*m.liveBytes()+slack {
			return
		}
	}
	t.Fatalf("segment files hold %d bytes for %d live bytes (%d stuck records)", files, m.liveBytes(), len(m.stuck))
}

func (m *model) segmentFileBytes() int64 {
	des, err := os.ReadDir(m.dir)
	require.NoError(m.t, err)
	var n int64
	for _, de := range des {
		if strings.HasSuffix(de.Name(), segSuffix) {
			info, err := de.Info()
			require.NoError(m.t, err)
			n += info.Size()
		}
	}
	return n
}

func (m *model) dump() {
	des, _ := os.ReadDir(m.dir)
	for _, de := range des {
		id, ok := parseSegName(de.Name())
		if !ok {
			m.t.Logf("file %s", de.Name())
			continue
		}
		f, _ := os.Open(filepath.Join(m.dir, de.Name()))
		var seqs []uint64
		h, end, rest, err := scanSegment(f, id, func(r scanned) { seqs = append(seqs, r.seq) })
		f.Close()
		m.t.Logf("segment %s header %+v end %d rest %d err %v seqs %v", de.Name(), h, end, rest, err, seqs)
	}
	st, err := readAckFile(filepath.Join(m.dir, ackFileName))
	m.t.Logf("acks %+v %v", st, err)
}

// recValue is the value a record stands for: its note (from memory) or its
// value.
func recValue(rec Record) string {
	if rec.Note != nil {
		return rec.Note.(string)
	}
	return string(rec.Value)
}

func short(v string) string {
	if len(v) > 12 {
		return v[:12] + "…"
	}
	return v
}
