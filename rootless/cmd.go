package rootless

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Cmd describes a stage to run in a re-executed copy of this binary.
type Cmd struct {
	Stage      string         // stage name for the child
	Program    string         // the binary to execute; "" = this one (/proc/self/exe)
	Args       []string       // child's os.Args[1:]
	Env        []string       // added to os.Environ()
	Cloneflags uintptr        // e.g. CLONE_NEWUSER|CLONE_NEWNS; 0 = plain re-exec
	IDMaps     IDMaps         // with CLONE_NEWUSER; empty means CurrentIDMaps()
	Stdin      io.Reader      // nil: /dev/null
	Stdout     io.Writer      // nil: /dev/null
	Stderr     io.Writer      // nil: /dev/null
	ExtraFiles []*os.File     // the child's fd ExtraFilesFD+i
	Config     any            // JSON-marshalled, read in the child by ReadConfig
	Setsid     bool           // start the child in a new session
	Pdeathsig  syscall.Signal // signal for the child when the spawning thread dies
	// SelfUnshare says that Program unshares its namespaces itself, at its
	// entry point (unshare.go): with newuidmap, Go then starts it with a
	// vfork instead of a fork of this process.
	SelfUnshare bool
}

// Process is a started stage.
type Process struct {
	cmd     *exec.Cmd
	sock    *net.UnixConn
	written chan struct{} // closed when the config writer is done
}

// Pid is the child's pid as the caller sees it.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Release lets go of a stage that outlives the caller, which will not
// wait for it.
func (p *Process) Release() {
	<-p.written
	p.sock.Close()
	_ = p.cmd.Process.Release()
}

// Signal sends sig to the child.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Start starts the stage and returns once its setup is done: the id maps are
// written and the child reports that the stage function runs. A failure of
// newuidmap/newgidmap (with their output) or of the child's setup is
// returned here, the child already reaped; such errors wrap ErrSetup.
func (c *Cmd) Start() (*Process, error) {
	l, err := c.Launch()
	if err != nil {
		return nil, err
	}
	return l.Start(c.Config)
}

// Launched is a stage whose process runs but whose setup may not be done
// yet, and which has not got its Config: see Cmd.Launch.
type Launched struct {
	p     *Process
	stage string
	// mapped receives the outcome of writing the id maps, then setup
	// that of the child's report; both are sent once.
	mapped, setup chan setupResult
}

type setupResult struct {
	died bool // the child closed the socket before reporting
	err  error
}

// Launch starts the stage's process and returns at once: the id maps are
// written, and the child's report awaited, in the background. The caller
// prepares the stage's config meanwhile (the child only needs it once its
// stage function runs) and hands it to Launched.Start or Run, or ends the
// child with Abort. Cmd.Config is not used.
func (c *Cmd) Launch() (*Launched, error) {
	if c.Stage == "" {
		return nil, errors.New("starting stage: no stage name")
	}
	cmd, mappers, err := c.command()
	if err != nil {
		return nil, err
	}
	sock, child, err := syncPair()
	if err != nil {
		return nil, fmt.Errorf("creating sync socket for stage %s: %w", c.Stage, err)
	}
	cmd.ExtraFiles = append([]*os.File{child}, c.ExtraFiles...)
	Trace("exec stage " + c.Stage)
	err = startLocked(cmd, c.Pdeathsig != 0)
	child.Close()
	Trace("started stage " + c.Stage)
	if err != nil {
		sock.Close()
		if c.Cloneflags&unix.CLONE_NEWUSER != 0 {
			err = userNSHint(err)
		}
		return nil, fmt.Errorf("starting stage %s: %w", c.Stage, err)
	}
	p := &Process{cmd: cmd, sock: sock, written: make(chan struct{})}
	l := &Launched{p: p, stage: c.Stage, mapped: make(chan setupResult, 1), setup: make(chan setupResult, 1)}
	go l.handshake(mappers)
	return l, nil
}

// userNSHint adds what to check to the error of creating a user namespace
// that the kernel refused.
func userNSHint(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSPC) {
		return fmt.Errorf("%w (are user namespaces disabled? see sysctls "+
			"kernel.unprivileged_userns_clone and user.max_user_namespaces)", err)
	}
	return err
}

// Start sends config (JSON-marshalled, read in the child by ReadConfig)
// and returns once the stage runs, with the errors of Cmd.Start.
func (l *Launched) Start(config any) (*Process, error) {
	data, err := json.Marshal(config)
	if err != nil {
		l.Abort()
		return nil, fmt.Errorf("encoding config of stage %s: %w", l.stage, err)
	}
	r := <-l.mapped
	if r.err == nil {
		p := l.p
		go func() {
			defer close(p.written)
			// A child that exits without reading fails this write; fine.
			if writeFrame(p.sock, msgConfig, data) == nil {
				_ = p.sock.CloseWrite()
			}
		}()
		r = <-l.setup
	} else {
		close(l.p.written)
	}
	if r.err != nil {
		_ = l.p.cmd.Process.Kill()
		code, _ := l.p.Wait()
		if r.died {
			r.err = fmt.Errorf("child exited with status %d before its stage ran (%w): %w", code, r.err, ErrSetup)
		}
		return nil, fmt.Errorf("starting stage %s: %w", l.stage, r.err)
	}
	return l.p, nil
}

// Abort kills a launched stage that will not be started, and reaps it.
func (l *Launched) Abort() {
	_ = l.p.cmd.Process.Kill()
	if r := <-l.mapped; r.err == nil {
		<-l.setup // the killed child's hang-up
	}
	close(l.p.written) // no config writer runs
	_, _ = l.p.Wait()
}

// syncPair returns the parent's end of the sync socket, with a poller so
// Wait can close it under a pending write, and the child's end.
func syncPair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	child := os.NewFile(uintptr(fds[1]), "sync-child")
	f := os.NewFile(uintptr(fds[0]), "sync")
	c, err := net.FileConn(f) // dups the fd
	f.Close()
	if err != nil {
		child.Close()
		return nil, nil, err
	}
	return c.(*net.UnixConn), child, nil
}

// ErrSetup is wrapped by the errors of a stage that never ran: the id
// mappers or the child's own setup failed.
var ErrSetup = errors.New("stage setup failed")

// idMappers are newuidmap and newgidmap when the parent must run them.
type idMappers struct {
	uid, gid string // their paths
	maps     IDMaps
	// unshared: the child unshares at its entry point and says when.
	unshared bool
}

// command builds the exec.Cmd and decides who writes the id maps.
func (c *Cmd) command() (*exec.Cmd, *idMappers, error) {
	env := cleanEnv(os.Environ())
	env = append(env, c.Env...)
	env = append(env, StageEnv+"="+c.Stage, syncEnv+"="+strconv.Itoa(syncFD))
	attr := &syscall.SysProcAttr{Cloneflags: c.Cloneflags, Setsid: c.Setsid, Pdeathsig: c.Pdeathsig}
	var mappers *idMappers
	if c.Cloneflags&unix.CLONE_NEWUSER != 0 {
		maps := c.IDMaps
		if len(maps.UIDs) == 0 {
			m, err := CurrentIDMaps()
			if err != nil {
				return nil, nil, fmt.Errorf("starting stage %s: %w", c.Stage, err)
			}
			maps = m
		}
		if len(maps.GIDs) == 0 {
			return nil, nil, fmt.Errorf("starting stage %s: uid map without gid map", c.Stage)
		}
		if maps.selfWritable() {
			attr.UidMappings = sysMaps(maps.UIDs)
			attr.GidMappings = sysMaps(maps.GIDs)
			// Unprivileged gid_map writes need setgroups denied first,
			// and a namespace cannot allow what its parent denies.
			attr.GidMappingsEnableSetgroups = os.Geteuid() == 0 && !setgroupsDenied()
		} else {
			mappers = &idMappers{maps: maps}
			var why string
			if mappers.uid, why = findIDMapper("newuidmap"); why != "" {
				return nil, nil, fmt.Errorf("starting stage %s: %s: %w", c.Stage, why, ErrSetup)
			}
			if mappers.gid, why = findIDMapper("newgidmap"); why != "" {
				return nil, nil, fmt.Errorf("starting stage %s: %s: %w", c.Stage, why, ErrSetup)
			}
			if c.SelfUnshare {
				// No namespace for Go to create: its vfork then
				// copies nothing (unshare.go).
				env = append(env, unshareEnvVar(c.Cloneflags))
				attr.Cloneflags = 0
				mappers.unshared = true
			} else {
				// The child gets every capability ambient: its
				// exec keeps them although its uid has no mapping
				// yet, so the binary starts while newuidmap runs
				// and needs no second exec once mapped (sync.go).
				attr.AmbientCaps = allCaps()
			}
			env = append(env, phaseEnv+"="+phaseAwaitMap)
			if c.Pdeathsig != 0 {
				// Changing credentials clears the parent-death
				// signal: the child sets it again once mapped.
				env = append(env, pdeathEnv+"="+strconv.Itoa(int(c.Pdeathsig)))
			}
		}
	}
	path, args := "/proc/self/exe", append([]string{os.Args[0]}, c.Args...)
	if c.Program != "" {
		path = c.Program
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        args,
		Env:         env,
		Stdin:       c.Stdin,
		Stdout:      c.Stdout,
		Stderr:      c.Stderr,
		SysProcAttr: attr,
	}
	return cmd, mappers, nil
}

// startLocked starts cmd, on a locked OS thread when a parent-death signal
// is asked for: the kernel sends it when the spawning thread exits, and Go
// may end a thread whose goroutine exits while locked to it.
func startLocked(cmd *exec.Cmd, lock bool) error {
	if lock {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	return cmd.Start()
}

func sysMaps(m []IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, e := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: e.ContainerID, HostID: e.HostID, Size: e.Size}
	}
	return out
}

// handshake runs the parent side of the ladder in sync.go but for the
// config, which Launched.Start sends between the two results.
func (l *Launched) handshake(mappers *idMappers) {
	p := l.p
	if mappers != nil {
		if mappers.unshared {
			if err := readUnshared(p.sock); err != nil {
				l.mapped <- setupResult{err: fmt.Errorf("%w: %w", err, ErrSetup)}
				return
			}
			Trace("child unshared")
		}
		if err := writeMaps(p.Pid(), mappers); err != nil {
			l.mapped <- setupResult{err: err}
			return
		}
		Trace("id maps written")
		if err := writeFrame(p.sock, msgMapped, nil); err != nil {
			l.mapped <- setupResult{died: true, err: err}
			return
		}
	}
	l.mapped <- setupResult{}
	typ, payload, err := readFrame(p.sock)
	switch {
	case err != nil:
		l.setup <- setupResult{died: true, err: err}
	case typ == msgReady:
		Trace("child ready")
		l.setup <- setupResult{}
	case typ == msgError:
		l.setup <- setupResult{err: fmt.Errorf("%s: %w", payload, ErrSetup)}
	default:
		l.setup <- setupResult{err: fmt.Errorf("unexpected message %q: %w", typ, ErrSetup)}
	}
}

// writeMaps runs newuidmap and newgidmap side by side (each is a setuid
// exec of its own) and returns their output on failure.
func writeMaps(pid int, m *idMappers) error {
	gidErr := make(chan error, 1)
	go func() { gidErr <- runMapper(m.gid, pid, m.maps.GIDs) }()
	uerr := runMapper(m.uid, pid, m.maps.UIDs)
	return errors.Join(uerr, <-gidErr)
}

func runMapper(path string, pid int, maps []IDMap) error {
	args := append([]string{strconv.Itoa(pid)}, mapperArgs(maps)...)
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("running %s %s: %w: %s: %w", path, strings.Join(args, " "), err,
			strings.TrimSpace(string(out)), ErrSetup)
	}
	return nil
}

// Wait waits for the child and returns its exit status; a child killed by
// signal N gives 128+N. The error is nil unless waiting itself failed.
func (p *Process) Wait() (int, error) {
	err := p.cmd.Wait()
	// The child is gone; closing ends a config write it never read.
	p.sock.Close()
	<-p.written
	if p.cmd.ProcessState == nil {
		return -1, fmt.Errorf("waiting for stage: %w", err)
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	code := p.cmd.ProcessState.ExitCode()
	if ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return code, fmt.Errorf("waiting for stage: %w", err)
	}
	return code, nil
}

// Forwarded are the signals a process that stands for another passes on
// to it: Run to its stage, a foreground shim to the container's init.
func Forwarded() []os.Signal {
	return []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT,
		unix.SIGUSR1, unix.SIGUSR2, unix.SIGCONT, unix.SIGWINCH}
}

// Run starts the stage, forwards the signals of Forwarded to it while it
// runs, and returns its exit status. A child in the caller's foreground process group also
// gets a terminal's ^C straight from the kernel, so it may see SIGINT twice.
func (c *Cmd) Run() (int, error) {
	sigs := notifyForwarded()
	defer signal.Stop(sigs)
	l, err := c.Launch()
	if err != nil {
		return -1, err
	}
	return l.run(c.Config, sigs)
}

// notifyForwarded catches the signals Run passes on; before the start, so
// a signal during setup neither kills us nor is lost.
func notifyForwarded() chan os.Signal {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, Forwarded()...)
	return sigs
}

func (l *Launched) run(config any, sigs chan os.Signal) (int, error) {
	p, err := l.Start(config)
	if err != nil {
		return -1, err
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = p.Signal(s)
			case <-done:
				return
			}
		}
	}()
	code, err := p.Wait()
	close(done)
	return code, err
}
