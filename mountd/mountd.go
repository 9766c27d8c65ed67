// Package mountd serves nook's union on its own, as `nook mount` does with
// fuse-overlayfs's command line: in the foreground (Serve), or as a server
// that outlives its caller (Start), which is a rootless stage in a session
// of its own that reports on a pipe once the union is mounted.
//
//	caller (Start)                              server (Stage)
//	pipe; rootless.Cmd{Stage: "mount", Setsid}
//	  fd 4 = ready pipe, no stdio
//	  ──── Config ─────────────────────────────▶ fusefs.Mount
//	  ◀─── internal/ready: log lines, then ok | error ─
//	returns (the server lives on)               serves until unmounted or
//	                                            signalled (Serve)
package mountd

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"

	"golang.org/x/sys/unix"

	"nook/fusefs"
	"nook/internal/ready"
	"nook/rootless"
)

// StageName names the server's stage; main dispatches it to Stage.
const StageName = "mount"

// readyFD is where the server finds the ready pipe (Cmd.ExtraFiles[0]).
const readyFD = rootless.ExtraFilesFD

// Config is one union to serve. It crosses to the server as JSON, hence
// the mount options of its own rather than fusefs.Options (a logger, a
// function).
type Config struct {
	Lowers     []string // top layer first
	Upper      string   // "" for a read-only union
	Work       string
	Mountpoint string

	FsName       string
	AllowOther   bool
	SquashToRoot bool
	Volatile     bool
	Xattrs       fusefs.XattrMode
	Debug        bool // log every FUSE request (foreground only)
}

func (c Config) options(log *slog.Logger) fusefs.Options {
	return fusefs.Options{Logger: log, Debug: c.Debug, FsName: c.FsName, AllowOther: c.AllowOther,
		SquashToRoot: c.SquashToRoot, Volatile: c.Volatile, Xattrs: c.Xattrs}
}

// mount raises GOMAXPROCS to what the union's server wants (fusefs.Procs):
// serving the union is all this process does.
func mount(c Config, log *slog.Logger) (*fusefs.Server, error) {
	if p := fusefs.Procs(); runtime.GOMAXPROCS(0) < p {
		runtime.GOMAXPROCS(p)
	}
	return fusefs.Mount(c.Lowers, c.Upper, c.Work, c.Mountpoint, c.options(log))
}

// Serve mounts the union and serves it until it is unmounted or a signal
// asks to end (see serve).
func Serve(c Config, log *slog.Logger) error {
	sig := catchSignals()
	defer signal.Stop(sig)
	srv, err := mount(c, log)
	if err != nil {
		return err
	}
	serve(srv, c.Mountpoint, log, sig)
	return nil
}

// catchSignals catches the signals that end a server, from before the
// mount on: one that comes as soon as the mount is ready must unmount it,
// not kill the server with the union still mounted.
func catchSignals() chan os.Signal {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	return sig
}

// Start starts a server for c that outlives the caller and returns its
// pid once the union is mounted; the server's log lines until then go to
// logs. A server that failed is waited for, and its error returned.
func Start(c Config, logs io.Writer) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("creating the ready pipe: %w", err)
	}
	defer r.Close()
	// No stdio: a caller reading our output until EOF must not wait for
	// the server's lifetime.
	cmd := &rootless.Cmd{Stage: StageName, Config: c, ExtraFiles: []*os.File{w}, Setsid: true}
	p, err := cmd.Start()
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("starting the mount server: %w", err)
	}
	err = ready.Wait(r, logs)
	if err == nil {
		pid := p.Pid()
		p.Release()
		return pid, nil
	}
	code, _ := p.Wait()
	var re *ready.Error
	if errors.As(err, &re) {
		return 0, errors.New(re.Msg)
	}
	return 0, fmt.Errorf("mount server exited with status %d before mounting: %w", code, err)
}

// Stage is the server Start starts: it reports the mount on the ready
// pipe, with the log lines before it, and serves.
func Stage() int {
	unix.CloseOnExec(readyFD)
	rw := ready.NewWriter(os.NewFile(readyFD, "ready"))
	var c Config
	if err := rootless.ReadConfig(&c); err != nil {
		rw.Report(rootless.ExitSetupFailed, err)
		return rootless.ExitSetupFailed
	}
	// Until the mount is ready, log lines go to the waiting caller, which
	// prints them; afterwards the server has no stderr.
	log := slog.New(slog.NewTextHandler(rw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sig := catchSignals()
	srv, err := mount(c, log)
	if err != nil {
		rw.Report(rootless.ExitSetupFailed, err)
		return rootless.ExitSetupFailed
	}
	rw.Report(0, nil)
	serve(srv, c.Mountpoint, log, sig)
	return 0
}

// serve serves until the union is unmounted, or until a signal comes on
// sig (catchSignals): then it unmounts, lazily if it must, and returns either way. A
// union already detached, or copied into another mount namespace, cannot
// be unmounted from here (every attempt is EINVAL) and must not keep its
// server alive, as it does not fuse-overlayfs's: once the server exits the
// kernel ends the connection.
func serve(srv *fusefs.Server, mnt string, log *slog.Logger, sig <-chan os.Signal) {
	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case s := <-sig:
		log.Info("unmounting on signal", "mountpoint", mnt, "signal", s)
	}
	err := srv.Unmount()
	if err == nil {
		<-done
		return
	}
	log.Warn("unmounting failed; detaching", "mountpoint", mnt, "err", err)
	if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
		log.Warn("detaching failed; exiting anyway", "mountpoint", mnt, "err", err)
	}
}
