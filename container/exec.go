package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nook/container/shim"
	"nook/container/stagebin"
	"nook/rootless"
)

// joinProgram is the stages' program, which enters a running container's
// namespaces at its entry point (rootless.Join).
func (m *Manager) joinProgram() (string, error) {
	program, err := stagebin.Path(filepath.Join(m.store.Root(), "bin"))
	if err != nil {
		return "", err
	}
	if program == "" || !stagebin.SelfUnshares() {
		return "", errors.New("entering a running container needs the stages' program, " +
			"which this build of nook lacks: build nook with build.sh")
	}
	return program, nil
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
	Privileged  bool // every capability, as exec --privileged
	// The caller's streams; Stdin is used with Interactive.
	Stdin, Stdout, Stderr *os.File
}

// Exec runs a process in c and, unless detached, returns its exit status.
func (m *Manager) Exec(c *Container, o ExecOptions) (int, error) {
	if !c.Running() || c.State.Pid <= 0 {
		return 0, fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
	}
	if c.paused {
		return 0, fmt.Errorf("%s: %w: unpause it first", c.Name, ErrPaused)
	}
	if len(o.Args) == 0 {
		return 0, ErrNoCommand
	}
	p := rootless.InitProcess{
		Args: o.Args, Env: mergeEnv(c.Env, o.Env), Cwd: c.WorkingDir, User: c.User, Terminal: o.Tty,
		Seccomp: c.seccompSpec(), FakeIDs: c.FakeIDs, Caps: c.caps(o.Privileged), Groups: c.GroupAdd,
		NoNewPrivileges: c.NoNewPrivileges, // as Docker's exec inherits it
	}
	if o.WorkingDir != "" {
		p.Cwd = o.WorkingDir
	}
	if o.Tty {
		shim.SizeFrom(o.Stdin, &p)
	}
	if o.User != "" {
		p.User = o.User
	}
	// Asked first: the shim's answer is the longest wait of the start.
	run := m.execProgram(c, p)
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
	program, err := m.joinProgram()
	if err != nil {
		return 0, err
	}
	// Caught while the process starts (a round trip per signal to the
	// runtime's signal thread), so that one sent once it runs is its.
	sigs, notified := make(chan os.Signal, 16), make(chan struct{})
	go func() {
		signal.Notify(sigs, rootless.Forwarded()...)
		close(notified)
	}()
	// Stopped off the exit's path: Stop waits for the runtime's signal
	// loop, a few tenths of a millisecond of an exec.
	defer func() { go func() { <-notified; signal.Stop(sigs) }() }()
	// The namespaces it enters are known from the container's network,
	// not looked up in /proc: pid 1 is in init's pid namespace, and the
	// others are the shim's.
	ns := shimNamespaces(c.Network) | unix.CLONE_NEWPID
	s, err := rootless.Exec(program, rootless.Target{Pid: c.State.Pid, Namespaces: ns}, p, stdio, run)
	<-notified
	if err != nil {
		var ie *rootless.InitError
		if errors.As(err, &ie) {
			return 0, &StartError{Code: ie.Code, Msg: ie.Msg}
		}
		return 0, err
	}
	if s.Listener != nil {
		// The shim records the process's faked chowns, as its payload's;
		// it outlives this caller (exec -d, or a background child).
		if err := shim.SendOwners(c.State.AttachSocket, s.Listener); err != nil {
			m.log.Warn("the exec'd process's chowns will fail", "err", err)
		}
		s.Listener.Close()
	}
	if o.Detach {
		if s.Console != nil {
			s.Console.Close()
		}
		s.Release()
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
	go forwardToSession(s, sigs, done)
	code, err := s.Wait()
	rootless.Trace("exec done")
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

// execProgram asks c's shim for p's exec program, which starts it faster
// than the exec stage; the answer is read once the stage's program runs.
// A terminal needs the stage: nil then.
func (m *Manager) execProgram(c *Container, p rootless.InitProcess) func() (*rootless.ExecProgram, error) {
	if p.Terminal || !c.State.ExecPrograms || c.State.AttachSocket == "" {
		return nil
	}
	return shim.ExecProgram(c.State.AttachSocket, c.State.Pid, p)
}

// forwardToSession passes the caller's signals to the exec'd process and
// resizes its terminal, until done.
func forwardToSession(s *rootless.ExecSession, sigs chan os.Signal, done chan struct{}) {
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
