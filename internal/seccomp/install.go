package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Flags for Install.
const (
	// FlagTSync applies the filter to every thread of the process.
	FlagTSync = unix.SECCOMP_FILTER_FLAG_TSYNC
	// FlagNewListener makes Install return a descriptor on which a
	// supervisor receives the UserNotif calls (seccomp_unotify(2)).
	FlagNewListener = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
)

// Installing names Install's step in its errors.
const Installing = "installing seccomp filter"

// Install applies filter to the calling thread (every thread with
// FlagTSync) and to what it later forks and executes; the caller locks
// its goroutine to the thread first. The thread needs no_new_privs or
// CAP_SYS_ADMIN in its user namespace. With FlagNewListener, listener is
// the supervisor's descriptor (close-on-exec); otherwise it is -1.
func Install(filter []unix.SockFilter, flags uint) (listener int, err error) {
	if len(filter) == 0 {
		return -1, fmt.Errorf("%s: %w", Installing, unix.EINVAL)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return -1, fmt.Errorf("%s: %w", Installing, errno)
	}
	if flags&FlagNewListener != 0 {
		return int(r), nil
	}
	return -1, nil
}
