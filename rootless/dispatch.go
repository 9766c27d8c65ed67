// Package rootless runs parts of nook in new namespaces without privilege:
// it re-executes the nook binary (Go cannot unshare a user or mount
// namespace from a running, multithreaded process; a program linked with
// this package's entry point does it before its runtime starts, see
// unshare.go) into a "stage" named by
// an environment variable, with a user namespace whose id maps are the
// caller's subordinate ids when newuidmap/newgidmap allow it, or the
// caller's single id otherwise. It knows nothing of images or FUSE.
//
// The parent side is Cmd; the child side is Dispatch, which main calls
// before anything else. The message ladder between them is drawn in sync.go.
package rootless

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// StageEnv names the stage a re-executed process runs.
const StageEnv = "_NOOK_STAGE"

// Internal environment of a re-executed child; Dispatch removes it before
// the stage runs so a stage that re-executes again starts clean.
const (
	syncEnv   = "_NOOK_SYNC_FD"   // the sync socket is open on syncFD
	phaseEnv  = "_NOOK_PHASE"     // where the child is in the id-map handshake
	pdeathEnv = "_NOOK_PDEATHSIG" // parent-death signal to set again once mapped
	// phaseAwaitMap: started before newuidmap ran, with ambient
	// capabilities; wait for the maps, then run the stage.
	phaseAwaitMap = "await-map"
)

// internalEnv names every variable of a re-executed child's internal
// environment (unshare.go's two included).
func internalEnv() []string {
	return []string{StageEnv, syncEnv, phaseEnv, pdeathEnv, unshareEnv, unsharedEnv, setnsEnv, setnsDone}
}

// cleanEnv drops the internal variables from env.
func cleanEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(internalEnv(), k) {
			out = append(out, kv)
		}
	}
	return out
}

// Dispatch runs the stage named by StageEnv and returns its exit code and
// true; without StageEnv it returns (0, false). It first completes the
// id-map handshake (sync.go). A failure before the stage function runs,
// an unknown stage name included, is written to stderr on one line and sent
// to the parent, and gives exit code 255.
func Dispatch(stages map[string]func() int) (int, bool) {
	name, ok := os.LookupEnv(StageEnv)
	if !ok {
		Trace("main")
		return 0, false
	}
	Trace("stage " + name + " " + os.Getenv(phaseEnv))
	fd := -1
	if os.Getenv(syncEnv) == strconv.Itoa(syncFD) {
		fd = syncFD
	}
	phase, pdeath := os.Getenv(phaseEnv), os.Getenv(pdeathEnv)
	_, notUnshared := os.LookupEnv(unshareEnv) // the entry point renames it
	_, notJoined := os.LookupEnv(setnsEnv)     // this one too (join.go)
	for _, k := range internalEnv() {
		os.Unsetenv(k)
	}
	if notJoined {
		fmt.Fprintf(os.Stderr, "nook: stage %s: this program does not join namespaces itself\n", name)
		if fd >= 0 {
			_, _ = fdWriter(fd).Write([]byte{unshareMissing})
		}
		return 255, true
	}
	if phase == phaseAwaitMap {
		if notUnshared {
			// The parent waits for the entry point's report
			// (unshare.go), not for a frame.
			fmt.Fprintf(os.Stderr, "nook: stage %s: this program does not unshare its namespaces itself\n", name)
			if fd >= 0 {
				_, _ = fdWriter(fd).Write([]byte{unshareMissing})
			}
			return 255, true
		}
		if err := awaitMaps(fd); err != nil {
			return setupFailed(fd, name, err), true
		}
		if err := becomeRoot(pdeath); err != nil {
			return setupFailed(fd, name, err), true
		}
	}
	stage, ok := stages[name]
	if !ok {
		return setupFailed(fd, name, fmt.Errorf("unknown stage %q", name)), true
	}
	if fd >= 0 {
		// Also the last check that the parent lives: had it died
		// before becomeRoot set the parent-death signal, this fails.
		if err := writeFrame(fdWriter(fd), msgReady, nil); err != nil {
			return setupFailed(-1, name, fmt.Errorf("reporting ready: %w", err)), true
		}
		// The stage's own children must not hold the socket.
		unix.CloseOnExec(fd)
	}
	Trace("stage " + name + " ready")
	return stage(), true
}

// setupFailed reports err to stderr and, when there is one, the parent.
func setupFailed(fd int, stage string, err error) int {
	fmt.Fprintf(os.Stderr, "nook: stage %s: %v\n", stage, err)
	if fd >= 0 {
		_ = writeFrame(fdWriter(fd), msgError, []byte(err.Error()))
	}
	return 255
}

// awaitMaps waits until the parent has written the id maps: until then
// the process's uid and gid have no mapping (they read as the overflow
// ids) and files it made would belong to nobody. Its capabilities came
// ambient through the exec (Cmd.command).
func awaitMaps(fd int) error {
	if fd < 0 {
		return errors.New("no sync socket to wait for the id maps on")
	}
	typ, _, err := readFrame(fdReader(fd))
	if err != nil {
		return fmt.Errorf("waiting for the id maps: %w", err)
	}
	if typ != msgMapped {
		return fmt.Errorf("waiting for the id maps: unexpected message %q", typ)
	}
	return nil
}

// becomeRoot ends the id-map handshake. The maps made the user's uid and
// gid 0 already; the set calls only run if something differs.
// Supplementary groups are left alone: they still grant the user's host
// access, and the container init sets the payload's own.
func becomeRoot(pdeath string) error {
	if os.Getgid() != 0 || os.Getegid() != 0 {
		if err := unix.Setresgid(0, 0, 0); err != nil {
			return fmt.Errorf("setting gid 0 in the user namespace: %w", err)
		}
	}
	if os.Getuid() != 0 || os.Geteuid() != 0 {
		if err := unix.Setresuid(0, 0, 0); err != nil {
			return fmt.Errorf("setting uid 0 in the user namespace: %w", err)
		}
	}
	// A change of credentials makes the process non-dumpable, which
	// hands its /proc files to the host's root; as namespace root it
	// owns nothing worth hiding from the user who created it.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting dumpable: %w", err)
	}
	if pdeath != "" {
		sig, err := strconv.Atoi(pdeath)
		if err != nil {
			return fmt.Errorf("parsing parent-death signal %q: %w", pdeath, err)
		}
		// A change of credentials clears it.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0); err != nil {
			return fmt.Errorf("setting parent-death signal %d: %w", sig, err)
		}
	}
	return nil
}

// ReadConfig decodes the Cmd.Config the parent sent into v. Call it at
// most once, from a stage.
func ReadConfig(v any) error {
	var st unix.Stat_t
	if err := unix.Fstat(syncFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("reading stage config: fd %d is not the sync socket", syncFD)
	}
	typ, payload, err := readFrame(fdReader(syncFD))
	if err != nil {
		return fmt.Errorf("reading stage config: %w", err)
	}
	if typ != msgConfig {
		return fmt.Errorf("reading stage config: unexpected message %q", typ)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("decoding stage config: %w", err)
	}
	return nil
}

// procUserInitIno is the inode of the initial user namespace
// (PROC_USER_INIT_INO in the kernel's proc_ns.h).
const procUserInitIno = 0xEFFFFFFD

// InUserNS reports whether this process is uid 0 of a user namespace other
// than the host's, as in every stage started with CLONE_NEWUSER. It holds
// for real root's identity-mapped namespace too, whose uid_map looks like
// the host's.
func InUserNS() bool {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &st); err != nil {
		return false
	}
	return st.Ino != procUserInitIno && os.Geteuid() == 0
}
