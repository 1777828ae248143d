//go:build linux && (amd64 || arm64)

package spool

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// A plain fdatasync holds the calling goroutine's P for the whole sync:
// sysmon hands the P to another thread only when it sees the same syscall
// on two of its polls, 20 µs to 10 ms apart, so with GOMAXPROCS=1 (a
// process pinned to one CPU, or a one-CPU container) the process stops
// during nearly every sync of a few hundred µs. aioSyncer runs the sync
// through Linux AIO instead (IOCB_CMD_FDSYNC, Linux 4.18 and later): the
// kernel syncs in a worker while the goroutine waits on an eventfd in the
// netpoller, and the P runs the other goroutines (requests that will join
// the next group) meanwhile. Where AIO is not available (older kernel,
// seccomp, aio-max-nr reached, a file system without it) it falls back to
// fdatasync.

const (
	iocbCmdFdsync = 3
	iocbFlagResfd = 1
)

// iocb is struct iocb of linux/aio_abi.h (little endian, 64-bit): data,
// key, rw_flags, opcode, reqprio, fildes, buf, nbytes, offset, reserved2,
// flags, resfd. An fdsync uses opcode, fildes, flags and resfd.
type iocb struct {
	_      uint64
	_      uint32
	_      uint32
	opcode uint16
	_      int16
	fildes uint32
	_      uint64
	_      uint64
	_      int64
	_      uint64
	flags  uint32
	resfd  uint32
}

// ioEvent is struct io_event: data, obj, res, res2.
type ioEvent struct {
	_, _ uint64
	res  int64
	_    int64
}

// aioSyncer syncs one file at a time (one per commit lane).
type aioSyncer struct {
	ctx   uint64   // 0: fall back to fdatasync
	event *os.File // eventfd told of completions
}

func newSyncer() *aioSyncer {
	var ctx uint64
	if _, _, e := syscall.Syscall(syscall.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return &aioSyncer{}
	}
	fd, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		_, _, _ = syscall.Syscall(syscall.SYS_IO_DESTROY, uintptr(ctx), 0, 0)
		return &aioSyncer{}
	}
	return &aioSyncer{ctx: ctx, event: os.NewFile(fd, "spool-sync-eventfd")}
}

// sync is fdatasync(f), waiting in the netpoller when it can.
func (a *aioSyncer) sync(f *os.File) error {
	if a.ctx == 0 {
		return fdatasync(f)
	}
	cb := &iocb{opcode: iocbCmdFdsync, fildes: uint32(f.Fd()), flags: iocbFlagResfd, resfd: uint32(a.event.Fd())}
	cbs := [1]*iocb{cb}
	n, _, e := syscall.Syscall(syscall.SYS_IO_SUBMIT, uintptr(a.ctx), 1, uintptr(unsafe.Pointer(&cbs[0])))
	runtime.KeepAlive(cb)
	runtime.KeepAlive(f)
	if e == syscall.EBADF {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: e}
	}
	if e != 0 || n != 1 {
		// Not supported here (EINVAL before Linux 4.18, or by the file
		// system), or out of AIO resources: plain fdatasync from now on.
		a.close()
		return fdatasync(f)
	}
	var ev ioEvent
	for {
		var cnt [8]byte
		if _, err := a.event.Read(cnt[:]); err != nil {
			// The request is in flight and its completion cannot be
			// waited for: sync the plain way, which covers it.
			a.close()
			return fdatasync(f)
		}
		ts := syscall.Timespec{}
		n, _, e = syscall.Syscall6(syscall.SYS_IO_GETEVENTS, uintptr(a.ctx), 1, 1,
			uintptr(unsafe.Pointer(&ev)), uintptr(unsafe.Pointer(&ts)), 0)
		if e == 0 && n == 1 {
			break
		}
		if e != 0 && e != syscall.EINTR {
			a.close()
			return fdatasync(f)
		}
	}
	if ev.res < 0 {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: syscall.Errno(-ev.res)}
	}
	return nil
}

func (a *aioSyncer) close() {
	if a.ctx == 0 {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_IO_DESTROY, uintptr(a.ctx), 0, 0)
	_ = a.event.Close()
	a.ctx, a.event = 0, nil
}
