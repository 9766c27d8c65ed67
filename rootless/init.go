package rootless

// The container's init: a stage the shim starts in a new mount and pid
// namespace, the container's pid 1. It prepares the root filesystem the
// shim mounted and execs the payload, which becomes pid 1 itself, as
// Docker runs it; with --init (InitStdio.Init) it stays pid 1 and runs the
// payload under it, reaping and forwarding signals.
//
//	shim (LaunchInit, then LaunchedInit.Start) init (InitStageWith: pid 1 of a new pid namespace)
//	Cmd{NEWNS|NEWPID, Setsid, Pdeathsig KILL}
//	  fd 4 = status socket                     Go start-up; [--init: catching all
//	[the shim mounts the root meanwhile]       signals, in the background]
//	  ──── msgConfig ───────────────────────▶  / rprivate (the root is there: the
//	                                           config comes after it); mounts proc,
//	                                           sys, dev, the files and
//	                                           volumes under Rootfs; pivot_root(".", ".");
//	                                           umount2(".", MNT_DETACH); [ro root];
//	                                           bounding set cut to Docker's default
//	                                           [Terminal: a pty of its own devpts]
//	                                           user and command looked up in the
//	                                           container's files
//	  ◀── status: one JSON InitStatus (a SOCK_SEQPACKET record)
//	      [Terminal: the pty master rides along as SCM_RIGHTS]
//	      --init: {Pid} once the payload is forked and exec'd
//	      else: {Exec: true}, then init execs the payload; the socket
//	      is close-on-exec, so its end (EOF) says the exec happened, or
//	      a second record follows: {Code 126|127, Error}
//	  Init.Signal(sig) ─────────────────────▶  --init: forwarded to the payload,
//	                                           else the payload's own
//	                                           --init: reaps every child; once the
//	  Init.Wait() = payload's status ◀──────── payload is gone, exits with its
//	                                           status (128+N when killed by signal
//	                                           N); the kernel then kills what is left
//
// A failure before the payload runs is sent as InitStatus{Code, Error} and
// also ends init with that code; LaunchedInit.Start returns it as
// *InitError. Exec sessions enter the container from outside (join.go).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// StageInit names the init stage; main dispatches it to InitStageWith's
// function.
const StageInit = "init"

// InitConfig is what init needs to set up a container.
type InitConfig struct {
	// Rootfs is the container's root directory, already mounted by the
	// caller; init never changes the caller's mount namespace.
	Rootfs string
	// ReadOnly makes the root mount read-only once set up.
	ReadOnly bool
	// Unmasked leaves /proc and /sys whole (--privileged): no masked or
	// read-only paths (procmount.go).
	Unmasked bool `json:",omitempty"`
	// Mounts are made after proc, sys and dev, in order: the container's
	// /etc/hosts and friends, volumes, tmpfs.
	Mounts []Mount
	// Process is the payload.
	Process InitProcess
}

// Mount is one mount inside the container.
type Mount struct {
	Type    string   // "bind" or a filesystem type such as "tmpfs"
	Source  string   // host path for "bind"
	Target  string   // absolute path inside the container
	Options []string // ro, nosuid, nodev, noexec, and filesystem data such as size=64m
	// Populate fills an empty bind source, a volume, from the root's
	// content at Target before the mount hides it (Docker's copy-up).
	Populate bool `json:",omitempty"`
}

// InitProcess is the payload init runs.
type InitProcess struct {
	Args []string
	Env  []string
	Cwd  string // created when missing, as Docker does
	// User is user[:group], by name or number, looked up in the
	// container's /etc/passwd and /etc/group; empty means root.
	User     string
	Terminal bool // run on a new pseudo-terminal whose master goes to the shim
	// Rows and Cols size the terminal before the process starts, so it
	// never sees the 0×0 of a new pty (the user's terminal's size).
	Rows uint16 `json:",omitempty"`
	Cols uint16 `json:",omitempty"`
	// Seccomp is the payload's filter: "" Docker's default profile,
	// "unconfined" none, else a profile in Docker's JSON (confine).
	Seccomp string `json:",omitempty"`
	// filter, when set, returns Seccomp's filter compiled ahead (init
	// compiles the payload's beside its setup of the root).
	filter func() ([]unix.SockFilter, error)
	// FakeIDs is FakeIDsSeccomp (or empty) or FakeIDsNone: whether the
	// identity calls are faked in single-id mode (fakeids.go).
	FakeIDs string `json:",omitempty"`
	// Caps are the capabilities the process's bounding set keeps, by
	// name (Capabilities): nil for Docker's default set, empty for none
	// (hence no omitempty).
	Caps []string
	// Groups are supplementary groups beyond the user's own, by name in
	// the container's /etc/group or by number (--group-add).
	Groups []string `json:",omitempty"`
	// NoNewPrivileges sets no_new_privs before the exec (--security-opt
	// no-new-privileges): an exec'd process needs it set, the container's
	// pid 1 has it from the shim already.
	NoNewPrivileges bool `json:",omitempty"`
}

// InitStatus is init's report to the shim.
type InitStatus struct {
	Pid   int    `json:"pid,omitempty"`   // --init: the payload, in init's pid namespace
	Exec  bool   `json:"exec,omitempty"`  // init execs the payload now
	Code  int    `json:"code,omitempty"`  // 125, 126 or 127 when it could not start
	Error string `json:"error,omitempty"` // why
	// Notify says the seccomp notification listener rides along (after
	// the console, when both do).
	Notify bool `json:"notify,omitempty"`
}

// InitError is a payload that never started; Code is Docker's exit status
// for it: 125 setup failed, 126 cannot execute, 127 not found.
type InitError struct {
	Code int
	Msg  string
}

func (e *InitError) Error() string { return e.Msg }

// Init is a started container init.
type Init struct {
	proc *Process
	// Console is the pty master of a Terminal payload, else nil.
	Console *os.File
	// Notify is the seccomp listener of the payload's faked chowns in
	// single-id mode (ServeOwners), else nil.
	Notify *os.File
}

// Pid is init's pid in the caller's pid namespace.
func (i *Init) Pid() int { return i.proc.Pid() }

// Signal sends sig to the container's pid 1: the payload, or with --init
// nook's init, which passes it on; SIGKILL ends the whole container.
func (i *Init) Signal(sig os.Signal) error { return i.proc.Signal(sig) }

// Wait returns the payload's exit status (128+N when killed by signal N).
func (i *Init) Wait() (int, error) { return i.proc.Wait() }

// InitStdio are init's standard streams (nil means /dev/null; *os.File
// values are passed on as they are) and whether it stays pid 1 (--init).
type InitStdio struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Init           bool
}

// reapArg is init's argument when it stays pid 1: it must know before
// its config arrives, to catch signals meanwhile.
const reapArg = "--init"

// LaunchedInit is an init whose process starts while the caller still
// prepares the container's root: see LaunchInit.
type LaunchedInit struct {
	l      *Launched
	status *os.File // our end of the status socket
}

// LaunchInit starts init's process (and so its own start-up) before the
// root it will use is ready. Its mount namespace is a copy of the caller's
// taken now: a filesystem the caller mounts on the root later reaches it
// only if the root is a shared mount (MakeShared); the caller mounts it
// before calling Start, which hands init its config. Init runs from the
// caller's own binary.
func LaunchInit(stdio InitStdio) (*LaunchedInit, error) {
	// Records: the exec's end of the socket must not merge two reports.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating init status socket: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "status"), os.NewFile(uintptr(fds[1]), "status-child")
	cmd := &Cmd{
		Stage:      StageInit,
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID,
		Stdin:      stdio.Stdin,
		Stdout:     stdio.Stdout,
		Stderr:     stdio.Stderr,
		ExtraFiles: []*os.File{theirs},
		Setsid:     true,
		// The container must not outlive the shim that serves its root.
		Pdeathsig: unix.SIGKILL,
	}
	if stdio.Init {
		cmd.Args = []string{reapArg}
	}
	l, err := cmd.Launch()
	theirs.Close()
	if err != nil {
		mine.Close()
		return nil, err
	}
	return &LaunchedInit{l: l, status: mine}, nil
}

// Abort kills an init that will not be started.
func (li *LaunchedInit) Abort() {
	li.l.Abort()
	li.status.Close()
}

// Start hands init cfg and returns once the payload runs, or an
// *InitError when it could not be started.
func (li *LaunchedInit) Start(cfg InitConfig) (*Init, error) {
	defer li.status.Close()
	p, err := li.l.Start(cfg)
	if err != nil {
		return nil, err
	}
	st, console, notify, err := readStatus(int(li.status.Fd()))
	if err == nil && st.Exec {
		// The exec closes the socket, or init reports why it failed.
		var again InitStatus
		var c2, n2 *os.File
		again, c2, n2, err = readStatus(int(li.status.Fd()))
		for _, f := range []*os.File{c2, n2} {
			if f != nil {
				f.Close()
			}
		}
		st = again
		if errors.Is(err, errNoReport) {
			st, err = InitStatus{}, nil
		}
	}
	if err == nil && st.Code != 0 {
		err = &InitError{Code: st.Code, Msg: st.Error}
	}
	if err != nil {
		for _, f := range []*os.File{console, notify} {
			if f != nil {
				f.Close()
			}
		}
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		return nil, err
	}
	return &Init{proc: p, Console: console, Notify: notify}, nil
}

// MakeShared bind-mounts dir on itself as a shared mount, so that what is
// later mounted on it in this mount namespace also appears in the copies
// of the namespace taken in between (LaunchInit). Call it after making /
// private: the peers are then only those copies.
func MakeShared(dir string) error {
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s on itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("making %s shared: %w", dir, err)
	}
	return nil
}

// errNoReport is init's status socket closed without a report.
var errNoReport = errors.New("init exited before reporting")

// readStatus reads init's status message and the fds that may ride along:
// the console of a Terminal payload, then the seccomp listener.
func readStatus(fd int) (st InitStatus, console, notify *os.File, err error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(8))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	for errors.Is(err, unix.EINTR) {
		n, oobn, _, _, err = unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	}
	if err != nil {
		return st, nil, nil, fmt.Errorf("reading init status: %w", err)
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil && len(msgs) == 1 {
			fds, _ = unix.ParseUnixRights(&msgs[0])
		}
	}
	if n > 0 {
		err = json.Unmarshal(buf[:n], &st)
	}
	if len(fds) > 0 && st.Notify {
		notify = os.NewFile(uintptr(fds[len(fds)-1]), "seccomp-notify")
		fds = fds[:len(fds)-1]
	}
	if len(fds) > 0 {
		console = os.NewFile(uintptr(fds[0]), "console")
	}
	switch {
	case n == 0:
		return st, console, notify, errNoReport
	case err != nil:
		return st, console, notify, fmt.Errorf("decoding init status: %w", err)
	}
	return st, console, notify, nil
}

// statusFD is init's status socket: Cmd.ExtraFiles of LaunchInit.
const statusFD = ExtraFilesFD

// InitStage is the init stage; main hands it to Dispatch under StageInit.
func InitStage() int {
	// The payload must not inherit it: its end tells the shim the exec
	// happened.
	unix.CloseOnExec(statusFD)
	reap := len(os.Args) > 1 && os.Args[1] == reapArg
	// Catching every signal costs milliseconds (the runtime enables them
	// one by one, each a round trip to its signal-mask thread): done
	// beside the setup, and finished before the payload exists, so no
	// signal to it is lost. Without --init the payload gets them itself.
	sigs := make(chan os.Signal, 64)
	notified := make(chan struct{})
	if reap {
		go func() {
			signal.Notify(sigs)
			close(notified)
		}()
	}
	var cfg InitConfig
	if err := ReadConfig(&cfg); err != nil {
		return initFailed(ExitSetupFailed, err)
	}
	Trace("init config read")
	cfg.Process.filter = compileAhead(cfg.Process, true)
	if err := setupRootfs(&cfg); err != nil {
		return initFailed(ExitSetupFailed, err)
	}
	Trace("init rootfs ready")
	if !reap {
		code, err := execPayload(cfg.Process, unix.SIGKILL, true, reportExec)
		return initFailed(code, err)
	}
	<-notified
	var notify *os.File
	pid, console, code, err := startProcess(cfg.Process, nil, &notify)
	if err != nil {
		return initFailed(code, err)
	}
	Trace("init payload started")
	msg, _ := json.Marshal(InitStatus{Pid: pid, Notify: notify != nil})
	var rights []byte
	if fds := sentFDs(console, notify); len(fds) > 0 {
		rights = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(statusFD, msg, rights, nil, 0); err != nil {
		// The shim is gone; so must the container be.
		_ = unix.Kill(pid, unix.SIGKILL)
		return ExitSetupFailed
	}
	for _, f := range []*os.File{console, notify} {
		if f != nil {
			f.Close()
		}
	}
	unix.Close(statusFD)
	return reapUntil(pid, sigs)
}

// reportExec tells the shim that init execs the payload now, handing it
// the pty master of a Terminal payload and the seccomp listener of a
// single-id one.
func reportExec(console, notify *os.File) error {
	msg, _ := json.Marshal(InitStatus{Exec: true, Notify: notify != nil})
	var rights []byte
	if fds := sentFDs(console, notify); len(fds) > 0 {
		rights = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(statusFD, msg, rights, nil, 0); err != nil {
		return fmt.Errorf("reporting to the shim: %w", err)
	}
	return nil
}

// sentFDs are the descriptors init's status carries, in readStatus's order.
func sentFDs(console, notify *os.File) []int {
	var fds []int
	for _, f := range []*os.File{console, notify} {
		if f != nil {
			fds = append(fds, int(f.Fd()))
		}
	}
	return fds
}

// Exit statuses shared with Docker, the one definition in nook: of a
// payload that never ran, and ExitSetupFailed of nook itself failing (the
// CLI's status for its own errors, the entry point's in unshare_amd64.s).
const (
	ExitSetupFailed = 125
	ExitCannotExec  = 126
	ExitNotFound    = 127
)

// initFailed reports err to the shim, which prints it, and returns code.
func initFailed(code int, err error) int {
	msg, _ := json.Marshal(InitStatus{Code: code, Error: err.Error()})
	_, _ = fdWriter(statusFD).Write(msg)
	return code
}

// reapUntil forwards signals to the payload and reaps every child of init
// (orphans are reparented to pid 1) until the payload is gone, then
// returns its status.
func reapUntil(pid int, sigs chan os.Signal) int {
	for sig := range sigs {
		switch sig {
		case unix.SIGCHLD:
			if code, done := reapAll(pid); done {
				Trace("init payload exited")
				return code
			}
		case unix.SIGURG, unix.SIGPIPE:
			// The Go runtime's preemption signal, and init's own
			// writes to a closed pipe: not meant for the payload.
		default:
			_ = unix.Kill(pid, sig.(syscall.Signal))
		}
	}
	return ExitSetupFailed
}

// reapAll collects every exited child; done says the payload was one.
func reapAll(payload int) (code int, done bool) {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || wpid <= 0 {
			return code, done
		}
		if wpid == payload {
			code, done = statusCode(ws), true
		}
	}
}

func statusCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
