package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nook/container/shim"
	"nook/rootless"
)

// runtimeDir is where running containers keep their sockets:
// $XDG_RUNTIME_DIR/nook, or a private /tmp/nook-UID without it.
func runtimeDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		dir := filepath.Join(d, "nook")
		return dir, os.MkdirAll(dir, 0o700)
	}
	dir := filepath.Join(os.TempDir(), "nook-"+strconv.Itoa(hostUID()))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("creating runtime directory %s: %w", dir, err)
	}
	// /tmp is everyone's: the directory must be ours and no link.
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", fmt.Errorf("runtime directory %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		return "", fmt.Errorf("runtime directory %s is not a private directory of uid %d; set XDG_RUNTIME_DIR", dir, os.Geteuid())
	}
	return dir, nil
}

// hostUID is the uid whose runtime directory this process uses: its own,
// or inside a user namespace (a build starting its steps' containers) the
// host uid its root maps to, whose directory it owns there too.
func hostUID() int {
	uid := os.Geteuid()
	if uid != 0 || !rootless.InUserNS() {
		return uid
	}
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return uid
	}
	for line := range strings.Lines(string(b)) {
		var inside, outside, n int
		if c, _ := fmt.Sscan(line, &inside, &outside, &n); c == 3 && inside == 0 {
			return outside
		}
	}
	return uid
}

// ExecOptions describe a process to run in a running container.
type ExecOptions struct {
	Args        []string
	Env         []string // over the container's; a bare KEY takes the caller's value
	WorkingDir  string   // default: the container's
	User        string   // default: the container's
	Tty         bool
	Interactive bool
	Detach      bool
	// The caller's streams; Stdin is used with Interactive.
	Stdin, Stdout, Stderr *os.File
}

// Exec runs a process in c and, unless detached, returns its exit status.
func (m *Manager) Exec(c *Container, o ExecOptions) (int, error) {
	if !c.Running() || c.State.ExecSocket == "" {
		return 0, fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
	}
	if len(o.Args) == 0 {
		return 0, ErrNoCommand
	}
	p := rootless.InitProcess{
		Args: o.Args, Env: mergeEnv(c.Env, o.Env), Cwd: c.WorkingDir, User: c.User, Terminal: o.Tty,
	}
	if o.WorkingDir != "" {
		p.Cwd = o.WorkingDir
	}
	if o.User != "" {
		p.User = o.User
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	stdio := [3]*os.File{devnull, o.Stdout, o.Stderr}
	if o.Interactive && !o.Detach {
		stdio[0] = o.Stdin
	}
	if o.Detach {
		stdio[1], stdio[2] = devnull, devnull
	}
	s, err := rootless.Exec(c.State.ExecSocket, rootless.ExecRequest{Process: p}, stdio)
	if err != nil {
		var ie *rootless.InitError
		if errors.As(err, &ie) {
			return 0, &StartError{Code: ie.Code, Msg: ie.Msg}
		}
		return 0, err
	}
	if o.Detach {
		if s.Console != nil {
			s.Console.Close()
		}
		return 0, nil
	}
	var drained chan struct{}
	if s.Console != nil {
		defer s.Console.Close()
		if o.Interactive {
			defer rawTerminal(o.Stdin)()
			go func() { _, _ = io.Copy(s.Console, o.Stdin) }()
		}
		shim.ResizeFrom(o.Stdin, s.Console)
		drained = make(chan struct{})
		go func() { _, _ = io.Copy(o.Stdout, s.Console); close(drained) }()
	}
	done := make(chan struct{})
	go forwardToSession(s, done)
	code, err := s.Wait()
	close(done)
	if drained != nil {
		// Output still in the pty; a background child may hold it open.
		select {
		case <-drained:
		case <-time.After(200 * time.Millisecond):
		}
	}
	return code, err
}

// forwardToSession passes the caller's signals to the exec'd process and
// resizes its terminal, until done.
func forwardToSession(s *rootless.ExecSession, done chan struct{}) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, shim.Forwarded()...)
	defer signal.Stop(sigs)
	for {
		select {
		case sig := <-sigs:
			if sig == unix.SIGWINCH {
				if s.Console != nil {
					shim.ResizeFrom(os.Stdin, s.Console)
				}
				continue
			}
			_ = s.Signal(sig.(unix.Signal))
		case <-done:
			return
		}
	}
}
