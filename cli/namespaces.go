package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"nook/rootless"
)

// stageCLI re-runs a verb inside new namespaces (see enterNamespaces).
const stageCLI = "cli"

// privateMountsEnv carries the caller's mount namespace inode to a verb
// re-run with a private mount namespace, which then knows it has one.
const privateMountsEnv = "_NOOK_PRIVATE_MOUNTS"

// enterUserNS re-runs the current verb inside a new user namespace that
// maps the user's subordinate ids, as Podman does, so that unpacked layers
// keep their owners and can be deleted again. It reports done=true when the
// verb already ran there; the returned error then carries its exit status.
// As real root, or already inside, the verb just runs here.
func (g *Globals) enterUserNS() (done bool, err error) { return g.enterNamespaces(false) }

// enterMountNS is enterUserNS plus a private mount namespace, for verbs
// that mount a container's filesystem (export, cp): the mount is theirs
// alone, nothing leaks to the host, and it goes when they exit. As root
// only the mount namespace is new.
func (g *Globals) enterMountNS() (done bool, err error) { return g.enterNamespaces(true) }

func (g *Globals) enterNamespaces(mounts bool) (done bool, err error) {
	if mounts {
		if v := os.Getenv(privateMountsEnv); v != "" && v != mountNSInode() {
			os.Unsetenv(privateMountsEnv)
			// A copy of the host's mounts: keep ours from propagating back.
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
				return true, fmt.Errorf("making mounts private: %w", err)
			}
			return false, nil
		}
	} else if rootless.InUserNS() || os.Geteuid() == 0 {
		return false, nil
	}
	return true, g.reexec(g.Args, g.Stdout, mounts)
}

// runInUserNS runs nook with args in a new user namespace (as
// enterUserNS does for the current verb), its stdout going to stdout; as
// root, or inside one already, it runs here.
func (g *Globals) runInUserNS(args []string, stdout io.Writer) error {
	if rootless.InUserNS() || os.Geteuid() == 0 {
		return fmt.Errorf("running %v: already in a user namespace", args)
	}
	return g.reexec(args, stdout, false)
}

// reexec re-runs nook with args in new namespaces.
func (g *Globals) reexec(args []string, stdout io.Writer, mounts bool) error {
	cmd := &rootless.Cmd{
		Stage:     stageCLI,
		Args:      args,
		Stdin:     g.Stdin,
		Stdout:    stdout,
		Stderr:    g.Stderr,
		Pdeathsig: syscall.SIGKILL, // the verb dies with the command the user sees
	}
	if mounts {
		cmd.Env = []string{privateMountsEnv + "=" + mountNSInode()}
		cmd.Cloneflags = syscall.CLONE_NEWNS
	}
	if os.Geteuid() != 0 {
		maps, err := rootless.CurrentIDMaps()
		if err != nil {
			return fmt.Errorf("reading subordinate ids: %w", err)
		}
		if !maps.Full {
			fmt.Fprintf(g.Stderr, "nook: warning: %s; every file in an image will belong to root\n", maps.Why)
		}
		cmd.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.IDMaps = maps
	}
	code, err := cmd.Run()
	if err != nil {
		return fmt.Errorf("entering a user namespace: %w", err)
	}
	if code != 0 {
		return ExitError{Code: code}
	}
	return nil
}

// mountNSInode names this process's mount namespace.
func mountNSInode() string {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &st); err != nil {
		return "?"
	}
	return strconv.FormatUint(st.Ino, 10)
}
