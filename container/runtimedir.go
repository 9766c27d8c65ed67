package container

// The runtime directory, where running containers keep their sockets: one
// resolution for `run` and `info`, which both create it (a private
// directory, cheap to try), so both name the same problem and remedy.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// HostError is a problem of the host's set-up and what fixes it, as info
// reports them; its message carries the remedy, so that a command failing
// on it says the remedy in its one line too.
type HostError struct {
	Problem, Remedy string
}

func (e *HostError) Error() string { return e.Problem + "; remedy: " + e.Remedy }

// runtimeDir is where running containers keep their sockets, created when
// missing: $XDG_RUNTIME_DIR/nook, or a private $TMPDIR/nook-UID without
// it. Half a container's id keeps the sockets' paths within the 107 bytes
// a unix socket address holds.
func runtimeDir() (string, error) { return resolveRuntimeDir(os.Getenv, os.Geteuid(), hostUID()) }

// resolveRuntimeDir finds the runtime directory and makes it if missing.
// Its errors are *HostError.
// The directory is named for hostUID, the uid euid is on the host (they
// differ inside a user namespace: a build running its steps).
func resolveRuntimeDir(getenv func(string) string, euid, hostUID int) (string, error) {
	if xdg := getenv("XDG_RUNTIME_DIR"); xdg != "" {
		dir := filepath.Join(xdg, "nook")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return dir, &HostError{
				Problem: fmt.Sprintf("XDG_RUNTIME_DIR=%s: cannot create %s: %v", xdg, dir, unwrapPath(err)),
				Remedy: fmt.Sprintf("set XDG_RUNTIME_DIR to a directory of yours (a login session's /run/user/%d), "+
					"or unset it to use %s", hostUID, tmpRuntimeDir(getenv, hostUID))}
		}
		return dir, nil
	}
	dir := tmpRuntimeDir(getenv, hostUID)
	var st unix.Stat_t
	err := unix.Lstat(dir, &st)
	if errors.Is(err, unix.ENOENT) {
		if err = os.Mkdir(dir, 0o700); err == nil || errors.Is(err, fs.ErrExist) {
			err = unix.Lstat(dir, &st)
		}
	}
	elsewhere := "set XDG_RUNTIME_DIR to a directory of yours, mode 0700"
	if err != nil {
		return dir, &HostError{Problem: fmt.Sprintf("runtime directory %s: %v", dir, unwrapPath(err)), Remedy: elsewhere}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return dir, &HostError{Problem: fmt.Sprintf("runtime directory %s is not a directory", dir),
			Remedy: fmt.Sprintf("remove %s, or %s", dir, elsewhere)}
	case int(st.Uid) != euid:
		return dir, &HostError{Problem: fmt.Sprintf("runtime directory %s belongs to uid %d, not you (%d)", dir, st.Uid, euid),
			Remedy: fmt.Sprintf("sudo rm -rf %s (someone else made it), or %s", dir, elsewhere)}
	case st.Mode&0o077 != 0:
		return dir, &HostError{Problem: fmt.Sprintf("runtime directory %s is mode %04o, open to others", dir, st.Mode&0o7777),
			Remedy: fmt.Sprintf("chmod 0700 %s, or %s", dir, elsewhere)}
	}
	return dir, nil
}

// tmpRuntimeDir is the runtime directory without XDG_RUNTIME_DIR, in
// os.TempDir's directory.
func tmpRuntimeDir(getenv func(string) string, euid int) string {
	tmp := getenv("TMPDIR")
	if tmp == "" {
		tmp = "/tmp"
	}
	return filepath.Join(tmp, "nook-"+strconv.Itoa(euid))
}

// unwrapPath drops a *fs.PathError's path, which the message names anyway.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
