// Package host holds the benchmark's dealings with the machine: running a
// command as the unprivileged bench user (from a root driver), dropping the
// page cache, aborting a stuck FUSE connection, reading a process's memory
// high-water mark, and describing the machine for the report header.
package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrNotRoot is returned by the operations only root may perform.
var ErrNotRoot = errors.New("needs root")

// User is who the workloads and FUSE servers run as.
type User struct {
	Name     string
	UID, GID uint32
	Home     string
	switchTo bool // the driver runs as another user (root) and must switch
}

// LookupUser finds the named user; an empty name means the current one.
func LookupUser(name string) (*User, error) {
	var (
		u   *user.User
		err error
	)
	if name == "" {
		u, err = user.Current()
	} else {
		u, err = user.Lookup(name)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s has uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s has gid %q: %w", u.Username, u.Gid, err)
	}
	return &User{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir,
		switchTo: uint32(uid) != uint32(os.Getuid())}, nil
}

// IsRoot reports whether the driver may drop caches and abort connections.
func IsRoot() bool { return os.Geteuid() == 0 }

// Command builds a command that runs as u, in its own process group (so a
// terminal's ^C reaches only the driver, which then tears down in order),
// killed if the driver dies. prefix (such as nsenter) goes before name.
func (u *User) Command(ctx context.Context, prefix []string, name string, args ...string) *exec.Cmd {
	argv := append(append([]string{}, prefix...), name)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if u.switchTo {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{u.GID}}
	}
	cmd.Env = []string{
		"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name, "LC_ALL=C",
		"PATH=" + os.Getenv("PATH"),
	}
	if d := os.Getenv("TMPDIR"); d != "" && !u.switchTo {
		cmd.Env = append(cmd.Env, "TMPDIR="+d)
	}
	// Kill the whole group on cancel: a worker's own children (tar, ls) too.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Chown gives path to u when the driver runs as someone else.
func (u *User) Chown(path string) error {
	if !u.switchTo {
		return nil
	}
	if err := os.Chown(path, int(u.UID), int(u.GID)); err != nil {
		return fmt.Errorf("giving %s to %s: %w", path, u.Name, err)
	}
	return nil
}

// DropCaches writes back dirty pages, then drops the page cache, dentries
// and inodes, so the next read comes from the disk.
func DropCaches() error {
	if !IsRoot() {
		return ErrNotRoot
	}
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("dropping caches: %w", err)
	}
	return nil
}

// AbortFUSE aborts the FUSE connection of the mount whose device number is
// dev, releasing every process stuck on it. fusectl is mounted if needed.
func AbortFUSE(dev uint64) error {
	if !IsRoot() {
		return ErrNotRoot
	}
	const dir = "/sys/fs/fuse/connections"
	conn := filepath.Join(dir, strconv.FormatUint(uint64(minor(dev)), 10))
	if _, err := os.Stat(conn); errors.Is(err, os.ErrNotExist) {
		// Not mounted yet (EBUSY if it already is, which is fine).
		_ = syscall.Mount("none", dir, "fusectl", 0, "")
	}
	if err := os.WriteFile(filepath.Join(conn, "abort"), []byte("1\n"), 0); err != nil {
		return fmt.Errorf("aborting FUSE connection %s: %w", conn, err)
	}
	return nil
}

// minor decodes the minor number of a Linux device number.
func minor(dev uint64) uint32 { return uint32((dev & 0xff) | ((dev >> 12) & 0xfff00)) }
