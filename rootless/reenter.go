package rootless

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// privateMountsEnv carries the caller's mount namespace inode to a
// process re-run with a private mount namespace, which then knows it has
// one. Not one of internalEnv: the re-run stage reads it itself.
const privateMountsEnv = "_NOOK_PRIVATE_MOUNTS"

// Reenter re-runs the calling program inside namespaces of its own.
type Reenter struct {
	// Stage is the stage that runs the program again with Args.
	Stage string
	Args  []string
	// Stdin, Stdout and Stderr are the re-run's streams; Stderr also gets
	// a warning when only the user's own id can be mapped.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// PrivateMounts adds a private mount namespace, for work that mounts
	// (a container's filesystem for export or cp): the mounts are its
	// own, nothing leaks to the host, and they go when it exits. As real
	// root only the mount namespace is new.
	PrivateMounts bool
}

// Run re-runs the program, unless it already runs where it would be
// re-run, inside a new user namespace that maps the user's subordinate
// ids, as Podman does, so that unpacked layers keep their owners and can
// be deleted again. It reports done=true and the re-run's exit status
// when the work already ran there; as real root, or already inside, it
// returns done=false and the caller does the work itself.
func (r Reenter) Run() (done bool, code int, err error) {
	if r.PrivateMounts {
		if v := os.Getenv(privateMountsEnv); v != "" && v != mountNSInode() {
			os.Unsetenv(privateMountsEnv)
			// A copy of the host's mounts: keep ours from propagating back.
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
				return true, 0, fmt.Errorf("making mounts private: %w", err)
			}
			return false, 0, nil
		}
	} else if InUserNS() || os.Geteuid() == 0 {
		return false, 0, nil
	}
	cmd := &Cmd{
		Stage:     r.Stage,
		Args:      r.Args,
		Stdin:     r.Stdin,
		Stdout:    r.Stdout,
		Stderr:    r.Stderr,
		Pdeathsig: syscall.SIGKILL, // the re-run dies with the command the user sees
	}
	if r.PrivateMounts {
		cmd.Env = []string{privateMountsEnv + "=" + mountNSInode()}
		cmd.Cloneflags = syscall.CLONE_NEWNS
	}
	if os.Geteuid() != 0 {
		maps, err := CurrentIDMaps()
		if err != nil {
			return true, 0, fmt.Errorf("reading subordinate ids: %w", err)
		}
		if !maps.Full && r.Stderr != nil {
			fmt.Fprintf(r.Stderr, "nook: warning: %s; files inside containers belong to root (single-id mode: their owners are recorded and kept in images); remedy: %s\n",
				maps.Why, SubIDRemedy())
		}
		cmd.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.IDMaps = maps
	}
	code, err = cmd.Run()
	if err != nil {
		return true, 0, fmt.Errorf("entering a user namespace: %w", err)
	}
	return true, code, nil
}

// mountNSInode names this process's mount namespace.
func mountNSInode() string {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &st); err != nil {
		return "?"
	}
	return strconv.FormatUint(st.Ino, 10)
}
