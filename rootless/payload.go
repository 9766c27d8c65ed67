package rootless

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// DefaultPath is Docker's PATH for images that set none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// startProcess runs p inside the new root with the given standard
// streams (nil: init's own). On failure code is the exit status Docker
// gives: 125 setup, 126 cannot execute, 127 not found. In single-id mode
// the payload runs under the faked identity calls (fakeids.go), and when
// notify is not nil it receives the filter's notification listener.
func startProcess(p InitProcess, stdio []uintptr, notify **os.File) (pid int, console *os.File, code int, err error) {
	if len(p.Args) == 0 {
		return 0, nil, ExitSetupFailed, errors.New("no command given")
	}
	u, err := user.GetExecUserPath(p.User, &user.ExecUser{Home: "/"}, "/etc/passwd", "/etc/group")
	if err != nil {
		return 0, nil, ExitSetupFailed, fmt.Errorf("finding user %q: %w", p.User, err)
	}
	if err := checkCwd(p.Cwd); err != nil {
		return 0, nil, ExitCannotExec, err
	}
	env := p.Environ(u.Home)
	fake := p.FakeIDs != FakeIDsNone && SingleIDNamespace()
	if fake {
		env = aptNoSandbox(env)
	}
	path, err := lookPath(p.Args[0], env)
	if err != nil {
		return 0, nil, ExitNotFound, err
	}
	cred := &syscall.Credential{Uid: uint32(u.Uid), Gid: uint32(u.Gid), NoSetGroups: setgroupsDenied()}
	for _, g := range u.Sgids {
		cred.Groups = append(cred.Groups, uint32(g))
	}
	attr := &syscall.ProcAttr{
		Dir:   p.Cwd,
		Env:   env,
		Files: stdio,
		Sys:   &syscall.SysProcAttr{Setsid: true, Credential: cred},
	}
	if attr.Files == nil {
		attr.Files = []uintptr{0, 1, 2}
	}
	var tty *os.File
	if p.Terminal {
		if console, tty, err = openPty(u.Uid); err != nil {
			return 0, nil, ExitSetupFailed, err
		}
		defer tty.Close()
		fd := tty.Fd()
		attr.Files = []uintptr{fd, fd, fd}
		attr.Sys.Setctty, attr.Sys.Ctty = true, 0
	}
	// The bounding set and the seccomp filter are per thread: set on the
	// thread that forks, which stays locked so that they never reach
	// init's other goroutines (a goroutine ending locked ends its thread).
	runtime.LockOSThread()
	err = dropCapabilities()
	var listener *os.File
	if err == nil {
		listener, err = confine(p.Seccomp, fake, notify != nil)
	}
	if err != nil {
		if console != nil {
			console.Close()
		}
		return 0, nil, ExitSetupFailed, err
	}
	if notify != nil {
		*notify = listener
	}
	pid, err = syscall.ForkExec(path, p.Args, attr)
	if err != nil {
		if console != nil {
			console.Close()
		}
		return 0, nil, execFailureCode(err), fmt.Errorf("starting %s: %w", p.Args[0], err)
	}
	return pid, console, 0, nil
}

// Environ is the payload's environment, completed as Docker does: PATH,
// HOME (home, the user's), TERM.
func (p InitProcess) Environ(home string) []string {
	env := append([]string(nil), p.Env...)
	has := func(k string) bool {
		for _, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		env = append(env, "PATH="+DefaultPath)
	}
	if !has("HOME") {
		env = append(env, "HOME="+home)
	}
	if p.Terminal && !has("TERM") {
		env = append(env, "TERM=xterm")
	}
	return env
}

// lookPath finds name in the payload's PATH, inside the container's root.
func lookPath(name string, env []string) (string, error) {
	stat := func(p string) (os.FileInfo, bool) {
		fi, err := os.Stat(p)
		return fi, err == nil
	}
	if p, ok := SearchPath(name, env, stat); ok {
		return p, nil
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// SearchPath returns name itself when it holds a slash (exec reports what
// is wrong with it), else the first executable regular file called name
// in env's PATH (Docker's default without one), as stat sees it. Relative
// PATH entries give relative results.
func SearchPath(name string, env []string, stat func(string) (os.FileInfo, bool)) (string, bool) {
	if strings.Contains(name, "/") {
		return name, true
	}
	path := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, ok := stat(p); ok && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// execFailureCode maps why exec failed to Docker's exit status.
func execFailureCode(err error) int {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return ExitNotFound
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOEXEC),
		errors.Is(err, unix.EISDIR), errors.Is(err, unix.ETXTBSY):
		return ExitCannotExec
	}
	return ExitSetupFailed
}

// setgroupsDenied reports whether setgroups(2) is refused in this user
// namespace, as it is with a single-id map.
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}

// openPty opens a pseudo-terminal in the container's own devpts and gives
// its slave to uid.
func openPty(uid int) (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(m), "ptmx")
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlocking the pty: %w", err)
	}
	// TIOCGPTPEER's argument is the open flags of the slave.
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER,
		unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		master.Close()
		return nil, nil, fmt.Errorf("opening the pty's slave: %w", errno)
	}
	slave = os.NewFile(s, "pts")
	_ = unix.Fchown(int(s), uid, -1)
	return master, slave, nil
}
