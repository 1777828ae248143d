package spool

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendReadRemoveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)

	var wg sync.WaitGroup
	seqs := make([]uint64, 50)
	for i := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq, err := s.Append([]byte(fmt.Sprintf("rec-%02d", i)), i)
			assert.NoError(t, err)
			seqs[i] = seq
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(50), s.Depth())
	assert.Equal(t, int64(50*(6+keyOverhead)), s.Bytes())

	recs, err := s.ReadAfter(0, 20)
	require.NoError(t, err)
	require.Len(t, recs, 20)
	for i := 1; i < len(recs); i++ {
		require.Greater(t, recs[i].Seq, recs[i-1].Seq, "records come in sequence order")
	}
	for _, r := range recs {
		// Served from memory: the note of the append comes along.
		i, ok := r.Note.(int)
		require.True(t, ok, "record %d has no note", r.Seq)
		assert.Equal(t, seqs[i], r.Seq)
		assert.Equal(t, fmt.Sprintf("rec-%02d", i), string(r.Value))
	}
	rest, err := s.ReadAfter(recs[19].Seq, 100)
	require.NoError(t, err)
	require.Len(t, rest, 30)

	// Reading again from the start goes to the file: same records, no notes.
	fromDisk, err := s.ReadAfter(0, 100)
	require.NoError(t, err)
	require.Len(t, fromDisk, 50)
	for i, r := range fromDisk {
		want := append(append([]Record(nil), recs...), rest...)[i]
		assert.Equal(t, want.Seq, r.Seq)
		assert.Equal(t, want.Value, r.Value)
		assert.Nil(t, r.Note)
	}

	// Remove the first 20, one twice. Removals wait for a commit.
	for _, r := range recs {
		require.NoError(t, s.Remove(r.Seq))
	}
	require.NoError(t, s.Remove(recs[0].Seq))
	require.NoError(t, s.Flush())
	assert.Equal(t, int64(30), s.Depth())
	assert.Equal(t, int64(30*(6+keyOverhead)), s.Bytes())
	require.NoError(t, s.Close())
	_, err = s.Append([]byte("x"), nil)
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.ReadAfter(0, 1)
	require.ErrorIs(t, err, ErrClosed)

	// Reopen: the 30 left are still there, with their values.
	s, err = Open(dir, Options{})
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, int64(30), s.Depth())
	again, err := s.ReadAfter(0, 100)
	require.NoError(t, err)
	require.Len(t, again, 30)
	assert.Equal(t, rest[0].Value, again[0].Value)
	// New sequence numbers continue after the old ones.
	seq, err := s.Append([]byte("new"), nil)
	require.NoError(t, err)
	assert.Greater(t, seq, again[len(again)-1].Seq)
	next, err := s.ReadAfter(again[len(again)-1].Seq, 10)
	require.NoError(t, err)
	require.Len(t, next, 1)
	assert.Equal(t, seq, next[0].Seq)
	assert.Equal(t, "new", string(next[0].Value))
}

// TestRemovalsCommitOnTheirOwn: without appends to ride along with,
// removals are committed after RemoveDelay, or at once at RemoveBatch.
func TestRemovalsCommitOnTheirOwn(t *testing.T) {
	s, err := Open(t.TempDir(), Options{RemoveDelay: 30 * time.Millisecond, RemoveBatch: 5})
	require.NoError(t, err)
	defer s.Close()
	var seqs []uint64
	for i := range 8 {
		seq, err := s.Append([]byte{byte(i)}, nil)
		require.NoError(t, err)
		seqs = append(seqs, seq)
	}
	require.NoError(t, s.Remove(seqs[0]))
	assert.Equal(t, int64(8), s.Depth(), "a lone removal waits for company")
	require.Eventually(t, func() bool { return s.Depth() == 7 }, 2*time.Second, 5*time.Millisecond)

	for _, seq := range seqs[1:6] { // RemoveBatch of them
		require.NoError(t, s.Remove(seq))
	}
	require.Eventually(t, func() bool { return s.Depth() == 2 }, 2*time.Second, time.Millisecond)

	// A removal rides along with the next append.
	require.NoError(t, s.Remove(seqs[6]))
	_, err = s.Append([]byte("x"), nil)
	require.NoError(t, err)
	assert.Equal(t, int64(2), s.Depth(), "7 removed, one appended")
}

// TestReaderBehindTheCache: appends beyond the in-memory bound are read back
// from the file, in order, none lost or repeated.
func TestReaderBehindTheCache(t *testing.T) {
	s, err := Open(t.TempDir(), Options{CacheBytes: 10 * 100})
	require.NoError(t, err)
	defer s.Close()
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := make([]byte, 100)
			v[0] = byte(i)
			_, err := s.Append(v, i)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	var got []Record
	var last uint64
	for {
		recs, err := s.ReadAfter(last, 7)
		require.NoError(t, err)
		if len(recs) == 0 {
			break
		}
		got = append(got, recs...)
		last = recs[len(recs)-1].Seq
	}
	require.Len(t, got, n)
	fromMemory := 0
	for i, r := range got {
		assert.Equal(t, uint64(i+1), r.Seq)
		require.Len(t, r.Value, 100)
		if r.Note != nil {
			fromMemory++
			assert.Equal(t, byte(r.Note.(int)), r.Value[0])
		}
	}
	assert.Positive(t, fromMemory)
	assert.LessOrEqual(t, fromMemory, 10, "the cache holds at most its bound")

	// Disabled cache: everything from the file.
	s2, err := Open(t.TempDir(), Options{CacheBytes: -1})
	require.NoError(t, err)
	defer s2.Close()
	seq, err := s2.Append([]byte("a"), "note")
	require.NoError(t, err)
	recs, err := s2.ReadAfter(0, 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, seq, recs[0].Seq)
	assert.Equal(t, "a", string(recs[0].Value))
	assert.Nil(t, recs[0].Note)
}

// TestCloseCommitsWaitingRemovals: a graceful close does not leave acked
// records behind.
func TestCloseCommitsWaitingRemovals(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{RemoveDelay: time.Hour})
	require.NoError(t, err)
	a, err := s.Append([]byte("a"), nil)
	require.NoError(t, err)
	_, err = s.Append([]byte("b"), nil)
	require.NoError(t, err)
	require.NoError(t, s.Remove(a))
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Remove(a), ErrClosed)

	s, err = Open(dir, Options{})
	require.NoError(t, err)
	defer s.Close()
	recs, err := s.ReadAfter(0, 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "b", string(recs[0].Value))
}

func TestFull(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxBytes: 3 * (100 + keyOverhead)})
	require.NoError(t, err)
	defer s.Close()
	rec := make([]byte, 100)
	var seqs []uint64
	for range 3 {
		seq, err := s.Append(rec, nil)
		require.NoError(t, err)
		seqs = append(seqs, seq)
	}
	_, err = s.Append(rec, nil)
	require.ErrorIs(t, err, ErrFull)
	assert.Equal(t, int64(3), s.Depth())
	require.NoError(t, s.Remove(seqs[0]))
	require.NoError(t, s.Flush())
	_, err = s.Append(rec, nil)
	require.NoError(t, err, "room again after a removal")
}

func TestLockedByAnotherHandle(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	defer s.Close()
	_, err = Open(dir, Options{OpenTimeout: 50_000_000})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "locked")
}
