// Package shim is the stage that runs a container: started by the CLI
// (package container) in the container's user namespace, it serves the
// container's root over FUSE, starts init, keeps the log, serves attach
// clients and records the exit. It also defines what it shares with the
// CLI: state.json, the log's format, the attach protocol. It links only
// what the shim needs, so that it can be built as a program of its own
// (cmd/nook-stages): the shim starts on every run's critical path.
package shim

// The shim: the stage `start` runs in a new user, mount, UTS and IPC
// namespace (and network namespace for --network none), with the full id
// map. It serves the container's root over FUSE from outside the
// container's pid namespace, for as long as the container lives.
//
//	CLI (Manager.Start, Manager.Run)           shim (Stage, namespace root)
//	flock(lock, EX|NB)
//	rootless.Cmd.Launch{NEWUSER|NEWNS|NEWUTS|NEWIPC[|NEWNET], Setsid},
//	  from the stages' program (stagebin) or nook's binary
//	  fd 4 = lock, fd 5 = ready pipe,         id maps, exec of the shim (Run:
//	  fd 6 = attached client (foreground)      while the CLI creates the container)
//	[Run: creates the container meanwhile]
//	  ──── Config ───────────────────────────▶ / rprivate; merged bound on itself, shared
//	                                            rootless.LaunchInit: init starts up
//	                                            (from the shim's own binary);
//	                                            prlimit(init) for --ulimit
//	                                            hostname; [lo up]
//	                                            fusefs.Mount(layers, upper) on merged,
//	                                            which reaches init's namespace
//	                                            LaunchedInit.Start: init's config
//	                                            (ladder in rootless/init.go)
//	                                            state.json: running, init's pid
//	  ◀─── ready pipe: internal/ready's report ─ (-d: the CLI exits now)
//	foreground: attached on fd 6 from the start (shim/attach.go's frames);
//	  the CLI may die or detach: the container runs on, as Docker's does
//	                                            init exits: logs flushed, union
//	                                            unmounted, state.json: exited CODE
//	                                            (created CODE if it never started),
//	  ◀─── attach: exit frame ───────────────── [--rm: directory removed]; lock freed
//	foreground: waits for the shim's exit
//
// A shim killed outright takes its mount namespace, and with it the union,
// along; init dies of its parent-death signal and the kernel ends the rest
// of the pid namespace. Whoever then reads the state finds the lock free
// and reports the container exited.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"nook/container/rootcopy"
	"nook/fusefs"
	"nook/internal/cgroups"
	"nook/internal/logline"
	"nook/internal/ready"
	"nook/rootless"
)

// StageName names the shim stage; main dispatches it to Stage.
const StageName = "shim"

// Stages are the stages that run a container, as nook and the stages'
// program (cmd/nook-stages) both dispatch them: the shim, the init it
// starts, and what joins a running container from outside: exec'd
// processes and calls such as a copy into it (container/rootcopy).
func Stages() map[string]func() int {
	stages := rootless.JoinStages(rootcopy.Handlers())
	stages[StageName] = Stage
	stages[rootless.StageInit] = rootless.InitStage
	return stages
}

// Descriptors the CLI hands the shim (rootless.ExtraFilesFD onwards).
const (
	LockFD  = rootless.ExtraFilesFD
	ReadyFD = rootless.ExtraFilesFD + 1
	// AttachFD is a foreground CLI's attach connection (Config.Attached).
	AttachFD = rootless.ExtraFilesFD + 2
)

// Config is the shim's stage configuration.
type Config struct {
	Dir    string
	Lowers []string // layer directories, top first
	// Xattrs is whether the union serves xattrs: on only when a layer
	// carries some, as the store recorded when it unpacked them.
	Xattrs fusefs.XattrMode
	Init   rootless.InitConfig
	// Attached says the CLI that started the shim is attached on AttachFD
	// from the start, as `run` and `start -a` in the foreground are; the
	// end of its input closes the payload's stdin (Docker's StdinOnce).
	Attached bool
	Remove   bool
	Hostname string
	NetNone  bool
	LogLevel slog.Level
	// AttachSocket is where the shim serves attach clients.
	AttachSocket string
	OpenStdin    bool
	// Reap keeps nook's init as the container's pid 1 (--init), reaping
	// and forwarding signals; else the payload is pid 1.
	Reap bool
	// ConsoleSize is the attached CLI's terminal size, given to the pty
	// as soon as the shim has it; attach's resizes come later.
	ConsoleSize *unix.Winsize `json:",omitempty"`
	// Rlimits are the payload's resource limits (--ulimit), which init
	// inherits from the shim when it starts.
	Rlimits []Rlimit `json:",omitempty"`
	// NoNewPrivileges is set on the shim before it starts init, which and
	// whose processes inherit it; nothing the shim runs later gains
	// privileges through exec anyway (its FUSE mount is direct).
	NoNewPrivileges bool `json:",omitempty"`
	// Restart is the payload's restart policy (restart.go).
	Restart Restart `json:",omitempty"`
	// Limits are applied through the cgroup Cgroup, a child of the
	// shim's own cgroup (internal/cgroups), which init joins before the
	// payload starts.
	Limits cgroups.Limits `json:",omitzero"`
	Cgroup string         `json:",omitempty"`
	// RemoveVolumes are the directories of the anonymous volumes a
	// --rm container takes along (as Docker's --rm does), removed under
	// the containers' lock, the file Lock.
	RemoveVolumes []string `json:",omitempty"`
	Lock          string   `json:",omitempty"`
}

// Rlimit is one resource limit, as setrlimit takes it.
type Rlimit struct {
	Name     string // as --ulimit names it
	Resource int
	Cur, Max uint64
}

// Stage is the shim stage.
func Stage() int {
	var cfg Config
	if err := rootless.ReadConfig(&cfg); err != nil {
		fmt.Fprintf(os.Stderr, "nook: shim: %v\n", err)
		return rootless.ExitSetupFailed
	}
	// Neither init nor the payload may inherit these.
	unix.CloseOnExec(LockFD)
	// A reader of our output who went away must not kill the shim (Go
	// dies of SIGPIPE on fd 1 and 2 unless it is caught); caught, not
	// ignored, so init does not inherit it ignored.
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
	s := &shim{cfg: cfg, log: logline.New(os.Stderr, cfg.LogLevel)}
	unix.CloseOnExec(ReadyFD)
	s.ready = ready.NewWriter(os.NewFile(ReadyFD, "ready"))
	if cfg.Attached {
		unix.CloseOnExec(AttachFD)
		s.first = os.NewFile(AttachFD, "attach")
	}
	return s.run()
}

type shim struct {
	cfg   Config
	log   *slog.Logger
	ready *ready.Writer // the CLI waits on it
	first *os.File      // the foreground CLI's attach connection
	srv   *fusefs.Server
	// rootBound says the root directory is bound on itself (MakeShared).
	rootBound bool
	copy      sync.WaitGroup     // log and terminal copiers
	logTo     *os.File           // the container's log
	pipes     []*os.File         // init's ends of the stdio pipes, closed here once it holds them
	hub       *attachHub         // attached clients
	stdinW    *os.File           // -i: the payload's stdin, fed by clients
	initIO    rootless.InitStdio // init's streams, again on each restart
	restarts  int                // by the restart policy
	cgroup    *cgroups.Group     // the container's, with its limits
	pid       atomic.Int64       // the payload's, for exec programs
	programs  rootless.ExecPrograms
}

func (s *shim) run() int {
	start := time.Now().UTC()
	ctr, err := s.setup()
	if err != nil {
		code := rootless.ExitSetupFailed
		var ie *rootless.InitError
		if errors.As(err, &ie) {
			code = ie.Code
		}
		// Docker leaves a container that never started Created, with
		// the failure's status and reason, recorded before the CLI hears.
		code = s.finish(StatusCreated, code, err.Error(), start)
		s.report(code, err)
		return code
	}
	st := State{Status: StatusRunning, Pid: ctr.Pid(), ShimPid: os.Getpid(),
		AttachSocket: s.cfg.AttachSocket, StartedAt: start, ExecPrograms: true}
	if s.cgroup != nil {
		st.Cgroup = s.cgroup.Dir
	}
	s.pid.Store(int64(ctr.Pid()))
	go s.hub.serve()
	_ = WriteState(s.cfg.Dir, st)
	s.report(0, nil)
	rootless.Trace("shim running")
	var delay time.Duration
	for began := time.Now(); ; began = time.Now() {
		code := s.wait(ctr)
		if !s.cfg.Restart.again(code, s.restarts) || s.stopped() {
			return s.finish(StatusExited, code, "", start)
		}
		// Restarting, as Docker shows it: counted from now, no pid.
		s.restarts++
		st.Restarting, st.Pid, st.ExitCode, st.RestartCount = true, 0, code, s.restarts
		st.FinishedAt = time.Now().UTC()
		_ = WriteState(s.cfg.Dir, st)
		delay = restartDelay(delay, time.Since(began))
		if s.sleepUnlessStopped(delay) {
			return s.finish(StatusExited, code, "", start)
		}
		if ctr, err = s.launch(); err != nil {
			s.log.Warn("restarting the container", "err", err)
			return s.finish(StatusExited, code, "", start)
		}
		st.Restarting, st.Pid, st.ExitCode, st.StartedAt = false, ctr.Pid(), 0, time.Now().UTC()
		s.pid.Store(int64(ctr.Pid()))
		_ = WriteState(s.cfg.Dir, st)
	}
}

// sleepUnlessStopped waits d before a restart, and reports whether `nook
// stop` or `kill` ended the container meanwhile: the delay may be a minute.
func (s *shim) sleepUnlessStopped(d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); {
		if s.stopped() {
			return true
		}
		time.Sleep(min(stopPoll, time.Until(end)))
	}
	return s.stopped()
}

// stopPoll is how often a restart's delay looks for the stop mark.
const stopPoll = 50 * time.Millisecond

// wait forwards signals to ctr until it exits and returns its status.
func (s *shim) wait(ctr *rootless.Init) int {
	done := make(chan struct{})
	go s.forwardSignals(ctr, done)
	code, err := ctr.Wait()
	rootless.Trace("shim init exited")
	close(done)
	if err != nil {
		s.log.Warn("waiting for init", "err", err)
	}
	return code
}

// setup makes the namespaces' world and starts init. Init's process is
// launched first, so its start-up overlaps the union's mount: the root
// is a shared mount, so the union mounted on it later reaches init's copy
// of our mount namespace, and init gets its config, which it waits for
// before it touches the root, only once the union is there.
func (s *shim) setup() (*rootless.Init, error) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("making / private: %w", err)
	}
	if err := rootless.MakeShared(s.cfg.Init.Rootfs); err != nil {
		return nil, err
	}
	s.rootBound = true
	var err error
	if s.hub, err = newAttachHub(s.cfg.AttachSocket, s.first); err != nil {
		return nil, err
	}
	s.hub.execProgram = func(req []byte) (byte, []byte) {
		return buildExecProgram(&s.programs, req, int(s.pid.Load()))
	}
	s.hub.owners = func(l *os.File) {
		go func() {
			rootless.ServeOwners(l, s.log)
			l.Close()
		}()
	}
	stdin, stdout, stderr, err := s.stdio()
	if err != nil {
		return nil, err
	}
	if s.cfg.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("--security-opt no-new-privileges: %w", err)
		}
	}
	s.initIO = rootless.InitStdio{Stdin: stdin, Stdout: stdout, Stderr: stderr, Init: s.cfg.Reap}
	_ = os.Remove(filepath.Join(s.cfg.Dir, StopFile))
	return s.launch()
}

// launch starts init and the payload, the first time and on each
// restart. The first time the union is mounted while init starts; a
// restarted payload's start keeps the stdio pipes' write ends, which the
// shim holds then until it finishes.
func (s *shim) launch() (*rootless.Init, error) {
	first := s.srv == nil
	li, err := rootless.LaunchInit(s.initIO)
	if first && !s.cfg.Restart.Restarts() {
		for _, w := range s.pipes {
			w.Close() // init holds the write ends now
		}
		s.pipes = nil
	}
	if err != nil {
		return nil, err
	}
	if err := setRlimits(li.Pid(), s.cfg.Rlimits); err != nil {
		li.Abort()
		return nil, err
	}
	if err := s.intoCgroup(li.Pid()); err != nil {
		li.Abort()
		return nil, err
	}
	if first {
		if err := s.mountRoot(); err != nil {
			li.Abort()
			return nil, err
		}
		s.warm()
		if ws := s.cfg.ConsoleSize; ws != nil && s.cfg.Init.Process.Terminal {
			// The payload may be pid 1 and read its size at once: the pty
			// has it before the payload starts.
			s.cfg.Init.Process.Rows, s.cfg.Init.Process.Cols = ws.Row, ws.Col
		}
	}
	ctr, err := li.Start(s.cfg.Init)
	if err != nil {
		return nil, err
	}
	if ctr.Console != nil {
		s.serveConsole(ctr.Console)
	}
	if ctr.Notify != nil {
		go rootless.ServeOwners(ctr.Notify, s.log)
	}
	return ctr, nil
}

// intoCgroup moves init's process pid, before it starts the payload, into
// the container's cgroup, made with its limits the first time.
func (s *shim) intoCgroup(pid int) error {
	if !s.cfg.Limits.Set() {
		return nil
	}
	if s.cgroup == nil {
		t, err := cgroups.Host()
		if err != nil {
			return fmt.Errorf("applying resource limits: %w", err)
		}
		g, err := t.Create(s.cfg.Cgroup, s.cfg.Limits)
		if err != nil {
			return fmt.Errorf("applying resource limits: %w", err)
		}
		s.cgroup = &g
	}
	return s.cgroup.Add(pid)
}

// warmBudget bounds the warming: init's own start (~20 ms here) hides it,
// and a slow one must not hold the payload back.
const warmBudget = 20 * time.Millisecond

// warm puts what init and the payload's exec read first into the kernel's
// caches (warmCaches), before init gets its config: stored into the
// page cache by the union, without READ round trips, which is safe only
// while no payload can write the files. The mount points init would create
// in the union are made first (rootless.PrepareMountpoints).
func (s *shim) warm() {
	rootless.PrepareMountpoints(s.cfg.Init)
	ctx, cancel := context.WithTimeout(context.Background(), warmBudget)
	defer cancel()
	store := func(rel string, max int64) (int64, error) { return s.srv.Prefetch(ctx, rel, max) }
	warmCaches(s.cfg.Init, store, ctx.Done())
	rootless.Trace("shim warmed")
}

// mountRoot sets the namespaces' host name and network and mounts the
// union on the container's root.
func (s *shim) mountRoot() error {
	if err := unix.Sethostname([]byte(s.cfg.Hostname)); err != nil {
		return fmt.Errorf("setting hostname %q: %w", s.cfg.Hostname, err)
	}
	if s.cfg.NetNone {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	dir := s.cfg.Dir
	rootless.Trace("shim mounting")
	// Serving the union is most of what the shim does while the
	// container runs: give its server the Ps it wants (fusefs.Procs).
	if p := fusefs.Procs(); runtime.GOMAXPROCS(0) < p {
		runtime.GOMAXPROCS(p)
	}
	srv, err := fusefs.Mount(s.cfg.Lowers, filepath.Join(dir, "upper"), filepath.Join(dir, "work"),
		s.cfg.Init.Rootfs, fusefs.Options{Logger: s.log, AllowOther: true, FsName: "nook",
			Xattrs: s.cfg.Xattrs,
			// A --rm container's layer goes with it: no crash to survive.
			Volatile: s.cfg.Remove})
	if err != nil {
		return err
	}
	s.srv = srv
	rootless.Trace("shim mounted")
	return nil
}

// stdio gives init its streams. Output goes to the container's log and
// to attached clients, input comes from attached clients (-i).
func (s *shim) stdio() (io.Reader, io.Writer, io.Writer, error) {
	lf, err := os.OpenFile(filepath.Join(s.cfg.Dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening the container log: %w", err)
	}
	s.logTo = lf
	if s.cfg.Init.Process.Terminal {
		return nil, nil, nil, nil // the payload talks to the pty
	}
	var stdin io.Reader
	if s.cfg.OpenStdin {
		// Kept open by the shim, so the payload waits for attached input.
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("creating stdin pipe: %w", err)
		}
		s.pipes = append(s.pipes, r)
		s.stdinW, s.hub.input, s.hub.stdin, stdin = w, w, w, r
	}
	var ws [2]io.Writer
	for i, stream := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("creating log pipe: %w", err)
		}
		ws[i] = w
		s.pipes = append(s.pipes, w)
		frame := []byte{FrameStdout, FrameStderr}[i]
		s.hub.outs[frame] = r
		s.copy.Add(1)
		go func() {
			defer s.copy.Done()
			s.pump(r, NewLogWriter(lf, stream), frame)
			r.Close()
		}()
	}
	return stdin, ws[0], ws[1], nil
}

// pump copies r into the log and to attached clients.
func (s *shim) pump(r io.Reader, log *LogWriter, frame byte) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = log.Write(buf[:n])
			s.hub.output(frame, buf[:n])
		}
		if err != nil {
			log.Close()
			return
		}
	}
}

// serveConsole copies the pty to the log and attached clients, and their
// input and sizes to the pty.
func (s *shim) serveConsole(console *os.File) {
	s.hub.console = console
	if s.cfg.ConsoleSize != nil {
		_ = unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, s.cfg.ConsoleSize)
	}
	if s.cfg.OpenStdin {
		s.hub.input = console
	}
	log := NewLogWriter(s.logTo, "stdout")
	s.copy.Add(1)
	go func() {
		defer s.copy.Done()
		// Reading ends with EIO once the last holder of the slave is gone.
		s.pump(console, log, FrameStdout)
		console.Close()
	}()
}

// ResizeFrom gives the pty the size of the user's terminal: stdin's, or
// stdout's when stdin is not attached.
func ResizeFrom(from, console *os.File) {
	if ws := termSize(from); ws != nil {
		_ = unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// SizeFrom sets p's terminal size to the user's, as ResizeFrom finds it,
// for the pty to have it before p starts.
func SizeFrom(from *os.File, p *rootless.InitProcess) {
	if ws := termSize(from); ws != nil {
		p.Rows, p.Cols = ws.Row, ws.Col
	}
}

func termSize(from *os.File) *unix.Winsize {
	for _, f := range []*os.File{from, os.Stdout} {
		if f == nil || !term.IsTerminal(int(f.Fd())) {
			continue
		}
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			return ws
		}
	}
	return nil
}

// forwardSignals passes signals sent to the shim on to init, until done.
func (s *shim) forwardSignals(ctr *rootless.Init, done chan struct{}) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, rootless.Forwarded()...)
	defer signal.Stop(sigs)
	for {
		select {
		case sig := <-sigs:
			_ = ctr.Signal(sig)
		case <-done:
			return
		}
	}
}

// report tells the CLI how the start went, on the ready pipe.
func (s *shim) report(code int, err error) {
	if s.ready == nil {
		return
	}
	s.ready.Report(code, err)
	s.ready = nil
}

// finish records the exit, as status, and cleans up; it returns the
// shim's status.
func (s *shim) finish(status string, code int, why string, start time.Time) int {
	for _, f := range s.pipes {
		f.Close() // kept for restarts; the copiers end with them
	}
	s.copy.Wait()
	if s.hub != nil {
		s.hub.stop()
		// Attached clients hear the status once the container is gone.
		defer s.hub.exit(code)
	}
	if s.stdinW != nil {
		s.stdinW.Close()
	}
	if s.srv != nil {
		if err := s.srv.Unmount(); err != nil {
			s.log.Warn("unmounting the container's root; detaching it", "err", err)
			_ = unix.Unmount(s.cfg.Init.Rootfs, unix.MNT_DETACH)
		}
	}
	if s.rootBound {
		// The bind below the union; --rm could not remove its directory.
		_ = unix.Unmount(s.cfg.Init.Rootfs, unix.MNT_DETACH)
	}
	rootless.Trace("shim unmounted")
	if s.cgroup != nil {
		if err := s.cgroup.Remove(); err != nil {
			s.log.Warn("removing the container's cgroup", "err", err)
		}
	}
	if s.cfg.Remove {
		if err := os.RemoveAll(s.cfg.Dir); err != nil {
			s.log.Warn("removing the container", "err", err)
		}
		s.removeVolumes()
		rootless.Trace("shim removed")
		return code
	}
	st := State{Status: status, ExitCode: code, Error: strings.TrimSpace(why),
		StartedAt: start, FinishedAt: time.Now().UTC(), RestartCount: s.restarts}
	if status == StatusCreated {
		st.StartedAt = time.Time{}
	}
	if err := WriteState(s.cfg.Dir, st); err != nil {
		s.log.Warn("recording the exit", "err", err)
	}
	return code
}

// VolumeFile is the description in a volume's directory: removed first,
// the directory is no volume any more.
const VolumeFile = "volume.json"

// removeVolumes removes a --rm container's anonymous volumes.
func (s *shim) removeVolumes() {
	if len(s.cfg.RemoveVolumes) == 0 {
		return
	}
	lock, err := os.OpenFile(s.cfg.Lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		defer lock.Close()
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX)
	}
	if err != nil {
		s.log.Warn("keeping the container's anonymous volumes", "err", err)
		return
	}
	for _, d := range s.cfg.RemoveVolumes {
		err := os.Remove(filepath.Join(d, VolumeFile))
		if err == nil || errors.Is(err, os.ErrNotExist) {
			err = os.RemoveAll(d)
		}
		if err != nil {
			s.log.Warn("removing an anonymous volume", "err", err)
		}
	}
}

// loopbackUp brings lo up in a new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading lo's flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}

// setRlimits gives init's process, before it starts the payload, the
// payload's resource limits; a hard limit above the host's fails.
func setRlimits(pid int, rl []Rlimit) error {
	for _, l := range rl {
		if err := unix.Prlimit(pid, l.Resource, &unix.Rlimit{Cur: l.Cur, Max: l.Max}, nil); err != nil {
			var old unix.Rlimit
			_ = unix.Getrlimit(l.Resource, &old)
			return fmt.Errorf("--ulimit %s=%d:%d (the host allows a hard limit up to %d): %w",
				l.Name, l.Cur, l.Max, old.Max, err)
		}
	}
	return nil
}
