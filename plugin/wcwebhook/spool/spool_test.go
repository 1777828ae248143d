package spool

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
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
	assert.Equal(t, int64(50*(6+recHeaderSize)), s.Bytes())

	recs, err := s.ReadAfter(0, 20)
	require.NoError(t, err)
	require.Len(t, recs, 20)
	for i := 1; i < len(recs); i++ {
		require.Greater(t, recs[i].Seq, recs[i-1].Seq, "records come in sequence order")
	}
	for _, r := range recs {
		// Served from memory: the note of the append stands for the value.
		i, ok := r.Note.(int)
		require.True(t, ok, "record %d has no note", r.Seq)
		assert.Equal(t, seqs[i], r.Seq)
		assert.Nil(t, r.Value)
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
		assert.Equal(t, fmt.Sprintf("rec-%02d", want.Note.(int)), string(r.Value))
		assert.Nil(t, r.Note)
	}

	// Remove the first 20, one twice. Removals wait for a commit.
	for _, r := range recs {
		require.NoError(t, s.Remove(r.Seq))
	}
	require.NoError(t, s.Remove(recs[0].Seq))
	require.NoError(t, s.Flush())
	assert.Equal(t, int64(30), s.Depth())
	assert.Equal(t, int64(30*(6+recHeaderSize)), s.Bytes())
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
	assert.Equal(t, fmt.Sprintf("rec-%02d", rest[0].Note.(int)), string(again[0].Value))
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
// removals are applied after RemoveDelay, or at once at RemoveBatch.
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

	// Appends do not hold removals back.
	require.NoError(t, s.Remove(seqs[6]))
	_, err = s.Append([]byte("x"), nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.Depth() == 2 }, 2*time.Second, time.Millisecond, "7 removed, one appended")
}

// TestReaderBehindTheCache: appends beyond the in-memory bound are read back
// from the file, in order, none lost or repeated.
func TestReaderBehindTheCache(t *testing.T) {
	s, err := Open(t.TempDir(), Options{CacheBytes: 10 * 100})
	require.NoError(t, err)
	defer s.Close()
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	appended := map[uint64]int{} // seq → i
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := make([]byte, 100)
			v[0] = byte(i)
			seq, err := s.Append(v, i)
			assert.NoError(t, err)
			mu.Lock()
			appended[seq] = i
			mu.Unlock()
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
		if r.Note != nil {
			fromMemory++
			assert.Equal(t, appended[r.Seq], r.Note.(int))
			assert.Nil(t, r.Value)
		} else {
			require.Len(t, r.Value, 100)
			assert.Equal(t, byte(appended[r.Seq]), r.Value[0])
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
	s, err := Open(t.TempDir(), Options{MaxBytes: 3 * (100 + recHeaderSize)})
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

// TestTornTailSkipped: a record cut short at the end of a segment (a write
// torn by a crash) is reported and skipped; the records before it stay, and
// appends go on after a restart.
func TestTornTailSkipped(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	for i := range 5 {
		_, err := s.Append(fmt.Appendf(nil, "rec-%d", i), nil)
		require.NoError(t, err)
	}
	head, size, next := s.head.path, s.head.size, s.nextSeq
	s.crash()

	// The group being written at the crash: one whole record, then half of
	// the next one.
	group := appendRecord(nil, crcSeed(s.head.id), next, []byte("whole, never acknowledged"))
	whole := len(group)
	group = appendRecord(group, crcSeed(s.head.id), next+1, []byte("torn, never acknowledged"))
	f, err := os.OpenFile(head, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(group[:whole+20], size)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	var torn []string
	opts := Options{OnTornTail: func(file string, offset, bytes int64) {
		torn = append(torn, fmt.Sprintf("%s@%d+%d", filepath.Base(file), offset, bytes))
	}}
	s, err = Open(dir, opts)
	require.NoError(t, err)
	assert.Equal(t, []string{fmt.Sprintf("%s@%d+%d", filepath.Base(head), size+int64(whole), 20)}, torn)
	recs, err := s.ReadAfter(0, 100)
	require.NoError(t, err)
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Value))
	}
	assert.Equal(t, []string{"rec-0", "rec-1", "rec-2", "rec-3", "rec-4", "whole, never acknowledged"}, got)
	seq, err := s.Append([]byte("after"), nil)
	require.NoError(t, err)
	assert.Equal(t, next+1, seq, "the torn record's number is free again")
	require.NoError(t, s.Close())

	torn = nil
	s, err = Open(dir, opts)
	require.NoError(t, err)
	defer s.Close()
	assert.Len(t, torn, 1, "the torn bytes stay where they are, reported again")
	recs, err = s.ReadAfter(0, 100)
	require.NoError(t, err)
	require.Len(t, recs, 7)
	assert.Equal(t, "after", string(recs[6].Value))
}

// TestStuckRecordCopiedForward: a record that is never acked does not keep
// its old segment on disk: once the segment is mostly acked and was read a
// while ago, the record is copied forward and the segment goes.
func TestStuckRecordCopiedForward(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{segmentBytes: 4 << 10, relocateAfter: time.Millisecond, RemoveDelay: time.Millisecond})
	require.NoError(t, err)
	stuck, err := s.Append([]byte("stuck"), nil)
	require.NoError(t, err)
	firstSeg := s.head.path
	var last uint64
	readAndAck := func() {
		recs, err := s.ReadAfter(last, 1000)
		require.NoError(t, err)
		for _, r := range recs {
			last = r.Seq
			if r.Seq != stuck {
				require.NoError(t, s.Remove(r.Seq))
			}
		}
		require.NoError(t, s.Flush())
	}
	for i := 0; ; i++ {
		_, err := s.Append(make([]byte, 500), nil)
		require.NoError(t, err)
		readAndAck()
		if _, err := os.Stat(firstSeg); os.IsNotExist(err) {
			break
		}
		require.Less(t, i, 2000, "the first segment is still there")
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, int64(1), s.Depth())
	require.NoError(t, s.Close())

	s, err = Open(dir, Options{})
	require.NoError(t, err)
	defer s.Close()
	recs, err := s.ReadAfter(0, 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, stuck, recs[0].Seq)
	assert.Equal(t, "stuck", string(recs[0].Value))
}

// TestMigrateBboltSpool: a spool directory of the earlier bbolt format is
// read on Open (records in their order, renumbered) and the bbolt file is
// deleted; a crash before the deletion only duplicates them.
func TestMigrateBboltSpool(t *testing.T) {
	dir := t.TempDir()
	legacy := filepath.Join(dir, legacyFileName)
	writeLegacy := func() {
		db, err := bolt.Open(legacy, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(legacyBucket)
			if err != nil {
				return err
			}
			for _, seq := range []uint64{3, 7, 12} { // 1, 2, ... were acked and removed
				var k [8]byte
				binary.BigEndian.PutUint64(k[:], seq)
				if err := b.Put(k[:], fmt.Appendf(nil, "legacy-%d", seq)); err != nil {
					return err
				}
			}
			return b.SetSequence(12)
		}))
		require.NoError(t, db.Close())
	}
	writeLegacy()
	saved, err := os.ReadFile(legacy)
	require.NoError(t, err)

	s, err := Open(dir, Options{})
	require.NoError(t, err)
	_, err = os.Stat(legacy)
	assert.True(t, os.IsNotExist(err), "the bbolt file is gone once migrated")
	assert.Equal(t, int64(3), s.Depth())
	assert.Equal(t, int64(len("legacy-3")+len("legacy-7")+len("legacy-12")+3*recHeaderSize), s.Bytes())
	values := func(s *Spool) []string {
		recs, err := s.ReadAfter(0, 100)
		require.NoError(t, err)
		var out []string
		for _, r := range recs {
			out = append(out, string(r.Value))
		}
		return out
	}
	assert.Equal(t, []string{"legacy-3", "legacy-7", "legacy-12"}, values(s))
	require.NoError(t, s.Close())

	// Reopened: read from the log, once.
	s, err = Open(dir, Options{})
	require.NoError(t, err)
	assert.Equal(t, []string{"legacy-3", "legacy-7", "legacy-12"}, values(s))
	require.NoError(t, s.Close())

	// A crash between the migration's sync and the deletion leaves both:
	// migrated again, duplicates and no loss.
	require.NoError(t, os.WriteFile(legacy, saved, 0o600))
	s, err = Open(dir, Options{})
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, []string{"legacy-3", "legacy-7", "legacy-12", "legacy-3", "legacy-7", "legacy-12"}, values(s))
}

// TestSyncer: the sync through Linux AIO (or the fallback) syncs.
func TestSyncer(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	sy := newSyncer()
	defer sy.close()
	for i := range 3 {
		_, err := f.WriteAt([]byte("data"), int64(4*i))
		require.NoError(t, err)
		require.NoError(t, sy.sync(f))
	}
	// A closed file: an error, not a hang, and the syncer goes on.
	g, err := os.Create(filepath.Join(t.TempDir(), "g"))
	require.NoError(t, err)
	require.NoError(t, g.Close())
	require.Error(t, sy.sync(g))
	require.NoError(t, sy.sync(f))
}

// A record over 1 GiB is refused before anything is written: recovery
// would read its length as damage and drop it with everything after it.
func TestRecordTooLarge(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Append(make([]byte, maxRecordBytes+1), nil)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Zero(t, s.Depth())
	assert.Zero(t, s.Bytes())
}
