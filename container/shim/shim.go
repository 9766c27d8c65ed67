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
//	  fd 4 = lock, fd 5 = ready pipe (-d)     id maps, exec of the shim (Run:
//	[Run: creates the container meanwhile]     while the CLI creates the container)
//	  ──── Config ───────────────────────────▶ / rprivate; merged bound on itself, shared
//	                                            rootless.LaunchInit: init starts up
//	                                            (from the shim's own binary)
//	                                            hostname; [lo up]
//	                                            fusefs.Mount(layers, upper) on merged,
//	                                            which reaches init's namespace
//	                                            LaunchedInit.Start: init's config
//	                                            (ladder in rootless/init.go)
//	                                            state.json: running, init's pid
//	  ◀─── ready pipe: internal/ready's report ─ (-d: the CLI exits now)
//	  signals (foreground) ──────────────────▶  passed to init, which passes them on
//	  CLI gone (foreground: fd 3 hangs up) ──▶  SIGKILL to init
//	                                            init exits: logs flushed, union
//	                                            unmounted, state.json: exited CODE,
//	  ◀─── exit status = payload's ──────────── [--rm: directory removed]; lock freed
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
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"nook/container/rootcopy"
	"nook/fusefs"
	"nook/internal/logline"
	"nook/internal/ready"
	"nook/rootless"
)

// StageName names the shim stage; main dispatches it to Stage.
const StageName = "shim"

// Stages are the stages that run a container, as nook and the stages'
// program (cmd/nook-stages) both dispatch them: the shim, and the init it
// starts, whose exec sessions may also copy files (container/rootcopy).
func Stages() map[string]func() int {
	return map[string]func() int{
		StageName:          Stage,
		rootless.StageInit: rootless.InitStageWith(rootcopy.InitHandlers()),
	}
}

// Descriptors the CLI hands the shim (rootless.ExtraFilesFD onwards).
const (
	LockFD  = rootless.ExtraFilesFD
	ReadyFD = rootless.ExtraFilesFD + 1
	syncFD  = rootless.ExtraFilesFD - 1 // rootless's sync socket: hangs up when the CLI dies
)

// Config is the shim's stage configuration.
type Config struct {
	Dir    string
	Lowers []string // layer directories, top first
	// Xattrs is whether the union serves xattrs: on only when a layer
	// carries some, as the store recorded when it unpacked them.
	Xattrs   fusefs.XattrMode
	Init     rootless.InitConfig
	Detached bool
	Remove   bool
	Hostname string
	NetNone  bool
	LogLevel slog.Level
	// ExecSocket is where init serves exec sessions.
	ExecSocket string
	// AttachSocket is where a detached shim serves attach clients.
	AttachSocket string
	OpenStdin    bool
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
	if cfg.Detached {
		unix.CloseOnExec(ReadyFD)
		s.ready = ready.NewWriter(os.NewFile(ReadyFD, "ready"))
	}
	code := s.run()
	if !cfg.Detached {
		// Everything is cleaned up: the CLI may exit while the kernel
		// still tears down our namespaces.
		rootless.ReportExit(code)
	}
	return code
}

type shim struct {
	cfg   Config
	log   *slog.Logger
	ready *ready.Writer // detached: the CLI waits on it
	srv   *fusefs.Server
	// rootBound says the root directory is bound on itself (MakeShared).
	rootBound bool
	copy      sync.WaitGroup // log and terminal copiers
	logTo     *os.File       // the container's log, unless foreground --rm
	pipes     []*os.File     // init's ends of the stdio pipes, closed here once it holds them
	// console is a foreground terminal's pty master, resized on SIGWINCH.
	console *os.File
	execL   *net.UnixListener
	hub     *attachHub // detached: attached clients
	stdinW  *os.File   // detached -i: the payload's stdin, fed by clients
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
		s.report(code, err)
		return s.finish(code, err.Error(), start)
	}
	st := State{Status: StatusRunning, Pid: ctr.Pid(), ShimPid: os.Getpid(), ExecSocket: s.cfg.ExecSocket, StartedAt: start}
	if s.hub != nil {
		st.AttachSocket = s.cfg.AttachSocket
		go s.hub.serve()
	}
	_ = WriteState(s.cfg.Dir, st)
	s.report(0, nil)
	done := make(chan struct{})
	go s.forwardSignals(ctr, done)
	if !s.cfg.Detached {
		go watchParent(func() { _ = ctr.Signal(unix.SIGKILL) })
	}
	rootless.Trace("shim running")
	code, err := ctr.Wait()
	rootless.Trace("shim init exited")
	close(done)
	if err != nil {
		s.log.Warn("waiting for init", "err", err)
	}
	return s.finish(code, "", start)
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
	if s.cfg.Detached && s.cfg.AttachSocket != "" {
		if s.hub, err = newAttachHub(s.cfg.AttachSocket); err != nil {
			return nil, err
		}
	}
	stdin, stdout, stderr, err := s.stdio()
	if err != nil {
		return nil, err
	}
	execL, err := s.execListener()
	if err != nil {
		return nil, err
	}
	li, err := rootless.LaunchInit(rootless.InitStdio{Stdin: stdin, Stdout: stdout, Stderr: stderr, Exec: execL})
	execL.Close() // init's now
	for _, w := range s.pipes {
		w.Close() // init holds the write ends now
	}
	if err != nil {
		return nil, err
	}
	if err := s.mountRoot(); err != nil {
		li.Abort()
		return nil, err
	}
	s.warm()
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

// execListener listens on the exec socket; closing the listener at the
// end removes the socket file.
func (s *shim) execListener() (*os.File, error) {
	_ = os.Remove(s.cfg.ExecSocket)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.cfg.ExecSocket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening for exec sessions: %w", err)
	}
	s.execL = l
	f, err := l.File()
	if err != nil {
		return nil, fmt.Errorf("listening for exec sessions: %w", err)
	}
	return f, nil
}

// stdio gives init its streams. Output goes to the container's log,
// and in the foreground also to the CLI's streams; a foreground --rm
// container, whose log nobody could read, gets the CLI's streams as they
// are.
func (s *shim) stdio() (io.Reader, io.Writer, io.Writer, error) {
	fg, tty := !s.cfg.Detached, s.cfg.Init.Process.Terminal
	if fg && s.cfg.Remove {
		if tty {
			return nil, nil, nil, nil // the payload talks to the pty
		}
		return os.Stdin, os.Stdout, os.Stderr, nil
	}
	lf, err := os.OpenFile(filepath.Join(s.cfg.Dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening the container log: %w", err)
	}
	s.logTo = lf
	if tty {
		return nil, nil, nil, nil
	}
	var stdin io.Reader
	if fg {
		stdin = os.Stdin
	} else if s.cfg.OpenStdin && s.hub != nil {
		// Kept open by the shim, so the payload waits for attached input.
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("creating stdin pipe: %w", err)
		}
		s.pipes = append(s.pipes, r)
		s.stdinW, s.hub.input, stdin = w, w, r
	}
	var ws [2]io.Writer
	for i, stream := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("creating log pipe: %w", err)
		}
		ws[i] = w
		s.pipes = append(s.pipes, w)
		var echo io.Writer
		if fg {
			echo = []io.Writer{os.Stdout, os.Stderr}[i]
		}
		frame := []byte{FrameStdout, FrameStderr}[i]
		s.copy.Add(1)
		go func() {
			defer s.copy.Done()
			s.pump(r, NewLogWriter(lf, stream), echo, frame)
			r.Close()
		}()
	}
	return stdin, ws[0], ws[1], nil
}

// pump copies r into the log and, when echo is set, to the user. When the
// user's end breaks it stops, so the payload's next write fails as it
// would writing there directly (`nook run img yes | head -1` ends).
func (s *shim) pump(r io.Reader, log *LogWriter, echo io.Writer, frame byte) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = log.Write(buf[:n])
			if s.hub != nil {
				s.hub.output(frame, buf[:n])
			}
			if echo != nil {
				if _, werr := echo.Write(buf[:n]); werr != nil {
					err = werr
				}
			}
		}
		if err != nil {
			log.Close()
			return
		}
	}
}

// serveConsole copies the pty: to the log when detached, else between the
// shim's own terminal streams and the pty.
func (s *shim) serveConsole(console *os.File) {
	var echo io.Writer
	if !s.cfg.Detached {
		s.console = console
		ResizeFrom(os.Stdin, console)
		go func() { _, _ = io.Copy(console, os.Stdin) }()
		echo = os.Stdout
	} else if s.hub != nil {
		s.hub.console = console
		if s.cfg.OpenStdin {
			s.hub.input = console
		}
	}
	var log *LogWriter
	if s.logTo != nil {
		log = NewLogWriter(s.logTo, "stdout")
	}
	s.copy.Add(1)
	go func() {
		defer s.copy.Done()
		// Reading ends with EIO once the last holder of the slave is gone.
		if log != nil {
			s.pump(console, log, echo, FrameStdout)
		} else {
			_, _ = io.Copy(echo, console)
		}
		console.Close()
	}()
}

// ResizeFrom gives the pty the size of the user's terminal: stdin's, or
// stdout's when stdin is not attached.
func ResizeFrom(from, console *os.File) {
	for _, f := range []*os.File{from, os.Stdout} {
		if f == nil || !term.IsTerminal(int(f.Fd())) {
			continue
		}
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			_ = unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, ws)
			return
		}
	}
}

// forwardSignals passes signals sent to the shim on to init, until done.
func (s *shim) forwardSignals(ctr *rootless.Init, done chan struct{}) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, rootless.Forwarded()...)
	defer signal.Stop(sigs)
	for {
		select {
		case sig := <-sigs:
			if sig == unix.SIGWINCH && s.console != nil {
				ResizeFrom(os.Stdin, s.console)
				continue
			}
			_ = ctr.Signal(sig)
		case <-done:
			return
		}
	}
}

// watchParent calls kill once the CLI that started a foreground shim is
// gone: its end of the sync socket closes, which the kernel reports as a
// hang-up (events 0 asks for nothing else).
func watchParent(kill func()) {
	fds := []unix.PollFd{{Fd: syncFD}}
	for {
		n, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		if n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			if fds[0].Revents&unix.POLLNVAL == 0 {
				kill()
			}
			return
		}
	}
}

// report tells the CLI how the start went: a detached CLI on the ready
// pipe; a foreground one reads errors on stderr.
func (s *shim) report(code int, err error) {
	if s.ready == nil {
		if err != nil {
			fmt.Fprintf(os.Stderr, "nook: %v\n", err)
		}
		return
	}
	s.ready.Report(code, err)
	s.ready = nil
}

// finish records the exit and cleans up; it returns the shim's status.
func (s *shim) finish(code int, why string, start time.Time) int {
	s.copy.Wait()
	if s.execL != nil {
		s.execL.Close()
	}
	if s.hub != nil {
		s.hub.close()
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
	if s.cfg.Remove {
		if err := os.RemoveAll(s.cfg.Dir); err != nil {
			s.log.Warn("removing the container", "err", err)
		}
		rootless.Trace("shim removed")
		return code
	}
	st := State{Status: StatusExited, ExitCode: code, Error: strings.TrimSpace(why),
		StartedAt: start, FinishedAt: time.Now().UTC()}
	if err := WriteState(s.cfg.Dir, st); err != nil {
		s.log.Warn("recording the exit", "err", err)
	}
	return code
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
