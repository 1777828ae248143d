//go:build !unix

package spool

import (
	"os"
	"time"
)

// lockDir opens the lock file; without flock, nothing stops a second
// process from opening the same spool on this platform.
func lockDir(path string, _ time.Duration) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

// syncDir is a no-op where directories cannot be synced.
func syncDir(string) error { return nil }
