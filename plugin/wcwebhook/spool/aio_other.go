//go:build !linux || !(amd64 || arm64)

package spool

import "os"

// aioSyncer is a plain fdatasync where Linux AIO is not used.
type aioSyncer struct{}

func newSyncer() *aioSyncer { return &aioSyncer{} }

func (*aioSyncer) sync(f *os.File) error { return fdatasync(f) }

func (*aioSyncer) close() {}
