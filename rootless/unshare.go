package rootless

import (
	"fmt"
	"io"
	"strconv"

	"golang.org/x/sys/unix"
)

// Self-unsharing stages. Go's exec forks the calling process when the child
// gets CLONE_NEWUSER (a vfork child could not wait for its id maps while the
// parent sleeps): the CLI's page tables are copied for a child that execs
// at once, 3–4 ms of a `nook run` on the critical path on a VM where that is
// slow. A Go program cannot unshare a user namespace itself: its runtime
// runs threads before main. So a program linked with EntrySymbol as its
// entry point (nook-stages, see container/stagebin) does it before the Go
// runtime starts, in unshare_amd64.s, and Go starts it with a plain vfork:
//
//	parent (Cmd with SelfUnshare)             child
//	socketpair, vfork, exec, with     ──────▶  entry: unshare(flags), one
//	  _NOOK_UNSHARE=<flags>                      thread yet
//	           ◀─── unshareOK | unshareFailed, errno (raw bytes, before
//	                any frame; on failure the child exits 125)
//	newuidmap PID ...; newgidmap PID ...      Go's runtime starts, Dispatch
//	then the ladder of sync.go                  (phase await-map)
//
// Without the capabilities of a new user namespace the unshare fails as a
// clone would: the same error and hint. A program started so that lacks
// the entry point would wait for msgMapped while the parent waits for it;
// its Dispatch finds the variable under its first name (the entry point
// renames it) and sends unshareMissing instead.

// EntrySymbol is the entry point a program is linked with
// (-ldflags=-E=EntrySymbol) for Cmd.SelfUnshare; amd64 only.
const EntrySymbol = "_rt0_nook_unshare"

// The entry point (unshare_amd64.s) takes these from go_asm.h, as it does
// syncFD and ExitSetupFailed.
const (
	unshareEnv     = "_NOOK_UNSHARE" // decimal clone flags for the entry point
	unsharedEnv    = ".NOOK_UNSHARE" // its name once the entry point has run
	unshareOK      = 'U'
	unshareFailed  = 'F' // followed by one byte, the errno
	unshareMissing = 'N' // from Dispatch: the entry point did not run
	// unsharePrefixLen is the length of "_NOOK_UNSHARE=", which the entry
	// point looks for.
	//lint:ignore U1000 used by unshare_amd64.s only
	unsharePrefixLen = len(unshareEnv) + 1
)

// unshareEnvVar is the variable that makes the entry point unshare flags.
func unshareEnvVar(flags uintptr) string {
	return unshareEnv + "=" + strconv.FormatUint(uint64(flags), 10)
}

// readUnshared reads the entry point's report from the sync socket.
func readUnshared(r io.Reader) error {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return fmt.Errorf("waiting for the child to unshare its namespaces: %w", err)
	}
	switch b[0] {
	case unshareOK:
		return nil
	case unshareMissing:
		return fmt.Errorf("the stage's program did not unshare its namespaces: " +
			"it was not linked with its entry point (rootless.EntrySymbol)")
	case unshareFailed:
		if _, err := io.ReadFull(r, b[1:]); err != nil {
			return fmt.Errorf("reading the child's unshare error: %w", err)
		}
		return userNSHint(fmt.Errorf("unsharing namespaces: %w", unix.Errno(b[1])))
	}
	return fmt.Errorf("unexpected byte %q from the child before it unshared", b[0])
}
