//go:build linux && (amd64 || arm64)

package spool

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// On Linux the syncs go through AIO and stay there: a sync error of one
// file (a closed one) does not drop the syncer to plain fdatasync.
func TestSyncerUsesAIO(t *testing.T) {
	sy := newSyncer()
	defer sy.close()
	require.NotZero(t, sy.ctx, "io_setup failed: this kernel or sandbox has no AIO")
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt([]byte("data"), 0)
	require.NoError(t, err)
	require.NoError(t, sy.sync(f))
	require.NotZero(t, sy.ctx, "the sync went through AIO")
	g, err := os.Create(filepath.Join(t.TempDir(), "g"))
	require.NoError(t, err)
	require.NoError(t, g.Close())
	require.Error(t, sy.sync(g))
	require.NoError(t, sy.sync(f))
	require.NotZero(t, sy.ctx, "still AIO after a closed file's error")
}
