package rootless

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

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
	pr, code, err := preparePayload(p, ownRoot{})
	if err != nil {
		return 0, nil, code, err
	}
	u, env, path := pr.user, pr.env, pr.path
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
		sizePty(console, p)
		defer tty.Close()
		fd := tty.Fd()
		attr.Files = []uintptr{fd, fd, fd}
		attr.Sys.Setctty, attr.Sys.Ctty = true, 0
	}
	// The bounding set and the seccomp filter are per thread: set on a
	// thread of its own that forks and then ends, so that they never reach
	// init's other goroutines (nor does a profile stop init's own calls).
	var listener *os.File
	forked := make(chan struct{})
	go func() {
		defer close(forked)
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err = dropCapabilities(p.keptCaps()); err == nil {
			listener, err = confine(p, notify != nil)
		}
		if err != nil {
			code = ExitSetupFailed
			return
		}
		if pid, err = syscall.ForkExec(path, p.Args, attr); err != nil {
			code = execFailureCode(err)
			err = fmt.Errorf("%s: %w", stepStart(p.Args[0]), err)
		}
	}()
	<-forked
	if err != nil {
		if console != nil {
			console.Close()
		}
		if listener != nil {
			listener.Close()
		}
		return 0, nil, code, err
	}
	if notify != nil {
		*notify = listener
	}
	return pid, console, 0, nil
}

// payload is a process resolved inside the container: its user, its
// environment, and the executable.
type payload struct {
	user *user.ExecUser
	env  []string
	path string
}

// payloadFS is the container's root, where a payload's user and command
// are looked up: this process's own root (init, the exec stage), or the
// container's seen from outside (rootAt, the exec program).
type payloadFS interface {
	Open(name string) (*os.File, error)
	Stat(name string) (os.FileInfo, error)
}

// ownRoot is this process's root.
type ownRoot struct{}

func (ownRoot) Open(name string) (*os.File, error)    { return os.Open(name) }
func (ownRoot) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// preparePayload looks p's user and command up in the container's files,
// in root. On failure code is the exit status Docker gives: 125 setup,
// 126 cannot execute, 127 not found.
func preparePayload(p InitProcess, root payloadFS) (payload, int, error) {
	if len(p.Args) == 0 {
		return payload{}, ExitSetupFailed, errors.New("no command given")
	}
	// As user.GetExecUserPath and GetAdditionalGroupsPath: a file that
	// cannot be opened is no file.
	open := func(name string) (io.Reader, func()) {
		f, err := root.Open(name)
		if err != nil {
			return nil, func() {}
		}
		return f, func() { f.Close() }
	}
	passwd, closePasswd := open("/etc/passwd")
	defer closePasswd()
	group, closeGroup := open("/etc/group")
	defer closeGroup()
	u, err := user.GetExecUser(p.User, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return payload{}, ExitSetupFailed, fmt.Errorf("finding user %q: %w", p.User, err)
	}
	if len(p.Groups) > 0 {
		group, closeGroup := open("/etc/group")
		defer closeGroup()
		extra, err := user.GetAdditionalGroups(p.Groups, group)
		if err != nil {
			return payload{}, ExitSetupFailed, fmt.Errorf("finding groups %s: %w", strings.Join(p.Groups, ","), err)
		}
		u.Sgids = append(u.Sgids, extra...)
	}
	if err := checkCwd(root, p.Cwd); err != nil {
		return payload{}, ExitCannotExec, err
	}
	env := p.Environ(u.Home)
	if p.fakesIDs() {
		env = aptNoSandbox(env)
	}
	path, err := lookPath(root, p.Args[0], env)
	if err != nil {
		return payload{}, ExitNotFound, err
	}
	return payload{user: u, env: env, path: path}, 0, nil
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
func lookPath(root payloadFS, name string, env []string) (string, error) {
	stat := func(p string) (os.FileInfo, bool) {
		fi, err := root.Stat(p)
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
func setgroupsDenied() bool { return setgroupsDeniedIn("/proc/self") }

// setgroupsDeniedIn reports it for the user namespace of the process whose
// /proc directory is proc.
func setgroupsDeniedIn(proc string) bool {
	b, err := os.ReadFile(proc + "/setgroups")
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

// execPayload replaces this process with p, as prepared inside the
// container: the container's pid 1 without --init, and an exec'd
// process (join.go). Before the exec it hands sent the pty master of a
// Terminal process and, with notify in single-id mode, the seccomp
// listener of the faked chowns; sent must not keep them. pdeathsig, when
// not 0, is set again once the credentials change (which clears it): the
// container's pid 1 must die with its shim, which serves its root. It
// returns only on failure, with Docker's exit status for it.
func execPayload(p InitProcess, pdeathsig unix.Signal, notify bool, sent func(console, listener *os.File) error) (int, error) {
	pr, code, err := preparePayload(p, ownRoot{})
	if err != nil {
		return code, err
	}
	// Credentials are per process (Go sets them on every thread), the
	// bounding set and the seccomp filter per thread: the exec happens on
	// this one.
	runtime.LockOSThread()
	// A session of its own, as a forked payload gets; init is already the
	// leader of one.
	_, _ = unix.Setsid()
	var console, tty *os.File
	if p.Terminal {
		if console, tty, err = openPty(pr.user.Uid); err != nil {
			return ExitSetupFailed, err
		}
		sizePty(console, p)
		defer tty.Close()
	}
	closeConsole := func() {
		if console != nil {
			console.Close()
		}
	}
	if err := dropCapabilities(p.keptCaps()); err != nil {
		closeConsole()
		return ExitSetupFailed, err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			closeConsole()
			return ExitSetupFailed, fmt.Errorf("%s: %w", stepNoNewPrivs, err)
		}
	}
	// The filter goes on while this thread still has CAP_SYS_ADMIN in the
	// user namespace (no no_new_privs needed), and stays with the exec.
	listener, err := confine(p, notify)
	if err != nil {
		closeConsole()
		return ExitSetupFailed, err
	}
	err = sent(console, listener)
	closeConsole()
	if listener != nil {
		listener.Close()
	}
	if err == nil && tty != nil {
		err = attachTerminal(tty)
	}
	if err != nil {
		return ExitSetupFailed, err
	}
	if err := becomeUser(pr.user); err != nil {
		return ExitSetupFailed, err
	}
	if pdeathsig != 0 {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(pdeathsig), 0, 0, 0); err != nil {
			return ExitSetupFailed, fmt.Errorf("setting the parent-death signal: %w", err)
		}
	}
	if p.Cwd != "" {
		if err := unix.Chdir(p.Cwd); err != nil {
			return ExitCannotExec, fmt.Errorf("%s: %w", stepCwd(p.Cwd), err)
		}
	}
	Trace("exec payload")
	err = unix.Exec(pr.path, p.Args, pr.env)
	return execFailureCode(err), fmt.Errorf("%s: %w", stepStart(p.Args[0]), err)
}

// sizePty gives the pty the size p asks for, if any.
func sizePty(console *os.File, p InitProcess) {
	if p.Rows > 0 && p.Cols > 0 {
		_ = unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: p.Rows, Col: p.Cols})
	}
}

// attachTerminal makes tty the controlling terminal and the standard
// streams.
func attachTerminal(tty *os.File) error {
	fd := int(tty.Fd())
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("making the pty the controlling terminal: %w", err)
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("attaching the pty: %w", err)
		}
	}
	return nil
}

// becomeUser takes u's ids and groups on the calling thread only, by the
// raw system calls (Go's own stop every thread to change them all): the
// exec that follows runs from this thread, and the others end with it.
func becomeUser(u *user.ExecUser) error {
	if !setgroupsDenied() {
		groups := make([]uint32, len(u.Sgids))
		for i, g := range u.Sgids {
			groups[i] = uint32(g)
		}
		var p unsafe.Pointer
		if len(groups) > 0 {
			p = unsafe.Pointer(&groups[0])
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0); e != 0 {
			return fmt.Errorf("%s: %w", stepGroups(u.Uid), e)
		}
	}
	gid, uid := uintptr(u.Gid), uintptr(u.Uid)
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, gid, gid, gid); e != 0 {
		return fmt.Errorf("%s: %w", stepGID(u.Gid), e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uid, uid, uid); e != 0 {
		return fmt.Errorf("%s: %w", stepUID(u.Uid), e)
	}
	return nil
}
