package spool

import (
	"fmt"
	"sync"
	"testing"

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
			seq, err := s.Append([]byte(fmt.Sprintf("rec-%02d", i)))
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
	rest, err := s.ReadAfter(recs[19].Seq, 100)
	require.NoError(t, err)
	require.Len(t, rest, 30)

	// Remove the first 20, one twice.
	for _, r := range recs {
		require.NoError(t, s.Remove(r.Seq))
	}
	require.NoError(t, s.Remove(recs[0].Seq))
	assert.Equal(t, int64(30), s.Depth())
	require.NoError(t, s.Close())
	_, err = s.Append([]byte("x"))
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
	seq, err := s.Append([]byte("new"))
	require.NoError(t, err)
	assert.Greater(t, seq, again[len(again)-1].Seq)
}

func TestFull(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxBytes: 3 * (100 + keyOverhead)})
	require.NoError(t, err)
	defer s.Close()
	rec := make([]byte, 100)
	var seqs []uint64
	for range 3 {
		seq, err := s.Append(rec)
		require.NoError(t, err)
		seqs = append(seqs, seq)
	}
	_, err = s.Append(rec)
	require.ErrorIs(t, err, ErrFull)
	assert.Equal(t, int64(3), s.Depth())
	require.NoError(t, s.Remove(seqs[0]))
	_, err = s.Append(rec)
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
