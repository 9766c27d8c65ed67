package rootless

// Joining a running container: a process started from outside enters the
// namespaces of the container's pid 1, as runc's nsenter does, so that
// nothing inside the container has to spawn it (without --init the
// container's pid 1 is the user's command). Go cannot setns into a user
// or mount namespace once its runtime runs threads, so the stages'
// program does it at its entry point (unshare_amd64.s), before Go starts.
//
//	caller (Join.Start)                  entry point (one thread)          the stage (Go)
//	pidfd = pidfd_open(PID); flags =
//	  CLONE_NEW{USER,NS,[PID,UTS,IPC,NET,CGROUP]}
//	  but those PID shares with us (stat;
//	  Join.Namespaces when the caller
//	  knows them: an exec, Target)
//	  [no pidfd_open: fds = open /proc/
//	   PID/ns/{the same names}, not ours]
//	socketpair; vfork + exec with
//	  fd 3 = sync, fd 4 = pidfd | fd 4… = fds,
//	  _NOOK_SETNS=<flags | n | joinFork> ─▶ non-dumpable; setns(pidfd, flags)
//	                                   once | setns(fd) each, user first;
//	                                   closing them
//	                                   [Fork: clone(CLONE_PARENT): the
//	                                    child is the caller's, in the
//	                                    container's pid namespace]
//	   ── msgConfig {json}, queued at once ─────────────────────────▶    (read by the stage)
//	   ◀── joinOK, pid (4 bytes LE) ── | joinFailed, errno (exit 125)
//	[joinFailed EPERM with Join.Namespaces:
//	 one is ours after all; all again from
//	 vfork, each compared]
//	[joinFailed EINVAL|ENOSYS of a
//	 pidfd: a kernel before 5.8; all
//	 again from vfork, with fds]
//	[Fork: reaped at the caller's      [Fork: exits 0]                   Dispatch: the stage
//	 next Wait or Release]
//	   ◀── msgReady | msgError ───────────────────────────────────────   (no id maps to await)
//	StageExec:                                                           user, command looked up
//	   ◀── [Terminal: joinConsole + SCM_RIGHTS pty master] ────────────
//	   ◀── [single-id: joinListener + SCM_RIGHTS seccomp listener] ────
//	   ◀── msgError {InitStatus: Code, Error} | EOF: the exec happened ── exec (the socket is
//	                                                                      close-on-exec)
//	kill(pid, sig) / wait4(pid): the caller's own child
//	StageCall: the handler runs in the joined process, exit status = its status
//
// An exec with an exec program (Join.Run, program.go) needs no Go in the
// child: the decisions the stage makes inside were made from outside by
// BuildExecProgram (the container's shim), and the entry point makes the
// stage's system calls itself. The program comes in place of msgConfig,
// and the child falls back to the stage when there is none:
//
//	caller (Join.Start, Run)             first (entry point)               child (entry point)
//	  _NOOK_SETNS=<n|joinFork|joinRun> ─▶ setns…, clone(CLONE_PARENT) ──▶ read u64 length
//	   ── length, blob (program.go) ────────────────────────────────────▶ 0: Go starts, the
//	                                                                      stage as above
//	   ◀── joinOK, pid ─────────────────  exits 0                         mmap, read the blob,
//	                                                                      relocate; each op:
//	   ◀── joinProgramFailed, op (u16), errno (u32) (exit 125) ─────────  a call that failed
//	   ◀── EOF: the execve happened (the socket is close-on-exec) ──────  execve
//
// The process that joins is non-dumpable and its memory was made in the
// caller's user namespace, so nothing in the container can trace it or
// read its /proc files. A call (cp into a running container) joins only
// the user and mount namespaces: it stays outside the container's pid
// namespace, invisible to its processes. An exec's stage is in the pid
// namespace, non-dumpable, for the moment before it execs the command.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Stages of a joined process; main dispatches them (JoinStages).
const (
	StageExec = "exec"
	StageCall = "call"
)

// What the entry point and the joining parent share (go_asm.h).
const (
	setnsEnv  = "_NOOK_SETNS"
	setnsDone = ".NOOK_SETNS"
	//lint:ignore U1000 used by unshare_amd64.s only
	setnsPrefixLen = len(setnsEnv) + 1
	joinCountMask  = 0xff
	joinFork       = 0x100
	joinRun        = 0x200 // with joinFork: the child reads an exec program (program.go)
	joinOK         = 'J'   // followed by the pid, 4 bytes little-endian
	joinFailed     = 'G'   // followed by one byte, the errno
	joinConsole    = 'T'   // StageExec: the pty master rides along
	joinListener   = 'L'   // StageExec: the faked chowns' seccomp listener rides along
)

// With any of these bits in _NOOK_SETNS, its one fd is a pidfd and setns
// joins these namespaces of its process at once (Linux ≥ 5.8).
//
//lint:ignore U1000 used by unshare_amd64.s only
const joinNamespaceMask = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// A namespace: its name in /proc/PID/ns and its flag for setns.
type namespace struct {
	name string
	flag int
}

// joinOrder is the order namespaces are joined in one at a time: the user
// namespace first, which gives the capabilities to join the others it
// owns (a pidfd's setns orders them itself).
var joinOrder = [...]namespace{
	{"user", unix.CLONE_NEWUSER}, {"mnt", unix.CLONE_NEWNS}, {"pid", unix.CLONE_NEWPID},
	{"uts", unix.CLONE_NEWUTS}, {"ipc", unix.CLONE_NEWIPC}, {"net", unix.CLONE_NEWNET},
	{"cgroup", unix.CLONE_NEWCGROUP},
}

// Join runs a stage of Program (linked with EntrySymbol) inside the
// namespaces of process Pid.
type Join struct {
	Program string
	Pid     int
	// Namespaces, when not 0, are Pid's namespaces that are not the
	// caller's (CLONE_NEW* flags), as the caller knows them: then they
	// are not compared with the caller's one by one (Target).
	Namespaces int
	Stage      string
	// Fork joins the pid namespace too: the stage then runs in a child,
	// which is the caller's own child.
	Fork   bool
	Stdio  [3]*os.File
	Config any
	// Run, with Fork, gives an exec program (program.go) that the child
	// runs instead of the stage; it is called once the child is started.
	// When it fails the stage runs, with Config.
	Run func() (*ExecProgram, error)

	// pidfdOpen stands in for pidfd_open in tests (nil: the kernel's).
	pidfdOpen func(pid, flags int) (int, error)
}

// Joined is a stage running in a container's namespaces.
type Joined struct {
	pid   int
	sock  int // our end of the sync socket
	first int // with Fork, the process that joined, still to reap (0: none)
	// program is the exec program the child runs, nil when it runs the
	// stage.
	program *ExecProgram
}

// Pid is the joined process's pid as the caller sees it.
func (j *Joined) Pid() int { return j.pid }

// Signal sends sig to the joined process.
func (j *Joined) Signal(sig syscall.Signal) error { return unix.Kill(j.pid, sig) }

// Wait returns the process's exit status (128+N when killed by signal N).
func (j *Joined) Wait() (int, error) {
	j.close()
	if j.pid == j.first {
		j.first = 0 // a Fork that failed: the only process
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(j.pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("waiting for process %d: %w", j.pid, err)
		}
		return statusCode(ws), nil
	}
}

// Release lets go of a process the caller will not wait for.
func (j *Joined) Release() { j.close() }

func (j *Joined) close() {
	if j.sock >= 0 {
		unix.Close(j.sock)
		j.sock = -1
	}
	if j.first > 0 {
		reap(j.first)
		j.first = 0
	}
}

// reap waits for pid, which has exited or is about to.
func reap(pid int) {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// Start starts the stage and returns once it runs.
func (c Join) Start() (*Joined, error) {
	config, err := json.Marshal(c.Config)
	if err != nil {
		return nil, fmt.Errorf("encoding config of stage %s: %w", c.Stage, err)
	}
	if c.Run != nil {
		// Asked once, though the start may be tried twice.
		c.Run = sync.OnceValues(c.Run)
	}
	ns, err := c.namespaces(true)
	if err != nil {
		return nil, err
	}
	j, err := c.start(config, ns)
	closeAll(ns.fds)
	if c.Namespaces != 0 && ns.flags != 0 && errors.Is(err, unix.EPERM) {
		// The caller was wrong about one (a namespace it shares after
		// all): each is compared with ours.
		c.Namespaces = 0
		if ns, err = c.namespaces(true); err != nil {
			return nil, err
		}
		j, err = c.start(config, ns)
		closeAll(ns.fds)
	}
	if ns.flags != 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)) {
		// A kernel older than 5.8 takes one namespace's fd at a time.
		if ns, err = c.namespaces(false); err != nil {
			return nil, err
		}
		j, err = c.start(config, ns)
		closeAll(ns.fds)
	}
	if err != nil {
		return nil, err
	}
	return j, nil
}

// start starts the stage in the namespaces ns names.
func (c Join) start(config []byte, ns joinNamespaces) (*Joined, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating sync socket: %w", err)
	}
	mine := fds[0]
	flags := len(ns.fds) | ns.flags
	if c.Fork {
		flags |= joinFork
		if c.Run != nil {
			flags |= joinRun
		}
	}
	env := append(cleanEnv(os.Environ()), StageEnv+"="+c.Stage, syncEnv+"="+strconv.Itoa(syncFD),
		setnsEnv+"="+strconv.Itoa(flags))
	if c.Stage == StageExec {
		// It execs at once: one P, no collection, fewer threads for the
		// exec to end.
		env = append(env, "GOMAXPROCS=1", "GOGC=off")
	}
	files := []uintptr{c.Stdio[0].Fd(), c.Stdio[1].Fd(), c.Stdio[2].Fd(), uintptr(fds[1])}
	for _, fd := range ns.fds {
		files = append(files, uintptr(fd))
	}
	Trace("exec joining stage " + c.Stage)
	first, err := syscall.ForkExec(c.Program, []string{c.Program}, &syscall.ProcAttr{Env: env, Files: files})
	unix.Close(fds[1])
	if err != nil {
		unix.Close(mine)
		return nil, fmt.Errorf("starting stage %s: %w", c.Stage, err)
	}
	j := &Joined{pid: first, sock: mine}
	if flags&joinRun != 0 {
		j.program = c.sendProgram(mine)
	}
	if j.program == nil {
		// Queued for the stage before it starts, so it never waits for
		// us; a child that died fails the write, and readJoined says
		// why.
		_ = writeFrame(fdWriter(mine), msgConfig, config)
	}
	pid, err := readJoined(fdReader(mine))
	if c.Fork {
		// It exits once its child is born (or failed): reaped when the
		// caller next waits, not now, while its exit is under way.
		j.first = first
	}
	if err != nil {
		if !c.Fork {
			_ = unix.Kill(first, unix.SIGKILL)
		}
		_, _ = j.Wait()
		return nil, fmt.Errorf("joining container process %d: %w", c.Pid, err)
	}
	j.pid = pid
	if j.program != nil {
		Trace("joined exec program")
		return j, nil // no Dispatch to report
	}
	if err := j.handshake(); err != nil {
		_ = unix.Kill(j.pid, unix.SIGKILL)
		_, _ = j.Wait()
		return nil, fmt.Errorf("starting stage %s: %w", c.Stage, err)
	}
	Trace("joined stage " + c.Stage)
	return j, nil
}

// sendProgram sends the child its exec program, or a length of 0 when
// there is none: the stage then runs. It returns the program sent.
func (c Join) sendProgram(sock int) *ExecProgram {
	prog, err := c.Run()
	if err != nil {
		Trace("exec stage: " + err.Error())
		prog = nil
	}
	var b []byte
	if prog != nil {
		b = prog.Blob
	}
	msg := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(b)), uint64(len(b)))
	_, _ = fdWriter(sock).Write(append(msg, b...))
	return prog
}

// joinNamespaces is what the entry point joins: with flags, fds holds a
// pidfd of the process and flags its namespaces to join, in one setns;
// else fds holds one fd per namespace, in joinOrder.
type joinNamespaces struct {
	fds   []int
	flags int
}

// namespaces finds the namespaces of c.Pid that are not the caller's:
// by a pidfd when pidfd is set and the kernel has pidfd_open, else by
// opening each.
func (c Join) namespaces(pidfd bool) (joinNamespaces, error) {
	if pidfd {
		open := c.pidfdOpen
		if open == nil {
			open = unix.PidfdOpen
		}
		fd, err := open(c.Pid, 0)
		if err == nil {
			flags := 0
			for _, ns := range c.joined() {
				if c.Namespaces != 0 && c.Namespaces&ns.flag != 0 || c.Namespaces == 0 && !c.shared(ns.name) {
					flags |= ns.flag
				}
			}
			return joinNamespaces{fds: []int{fd}, flags: flags}, nil
		}
		if !errors.Is(err, unix.ENOSYS) {
			return joinNamespaces{}, fmt.Errorf("opening process %d: %w", c.Pid, err)
		}
	}
	var fds []int
	for _, ns := range c.joined() {
		p := c.nsPath(ns.name)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && ns.name == "cgroup" {
			continue
		}
		if err != nil {
			closeAll(fds)
			return joinNamespaces{}, fmt.Errorf("opening %s: %w", p, err)
		}
		var theirs, ours unix.Stat_t
		if unix.Fstat(fd, &theirs) == nil && unix.Stat("/proc/self/ns/"+ns.name, &ours) == nil &&
			theirs.Ino == ours.Ino && theirs.Dev == ours.Dev {
			unix.Close(fd) // shared with the host (--network host): nothing to join
			continue
		}
		fds = append(fds, fd)
	}
	return joinNamespaces{fds: fds}, nil
}

// joined is the namespaces c joins where they are not the caller's: the
// user and mount namespaces, and with Fork all of joinOrder.
func (c Join) joined() []namespace {
	if !c.Fork {
		return joinOrder[:2]
	}
	return joinOrder[:]
}

// shared says whether c.Pid's namespace ns is the caller's own (the host
// network of --network host) or missing (a kernel without cgroup
// namespaces), which setns must leave out: joining a namespace owned
// outside the container's user namespace is refused.
func (c Join) shared(ns string) bool {
	var theirs, ours unix.Stat_t
	if err := unix.Stat(c.nsPath(ns), &theirs); err != nil {
		return errors.Is(err, unix.ENOENT) && ns == "cgroup"
	}
	return unix.Stat("/proc/self/ns/"+ns, &ours) == nil && theirs.Ino == ours.Ino && theirs.Dev == ours.Dev
}

func (c Join) nsPath(ns string) string {
	return "/proc/" + strconv.Itoa(c.Pid) + "/ns/" + ns
}

// readJoined reads the entry point's report: the pid of the process that
// runs the stage.
func readJoined(r io.Reader) (int, error) {
	var b [5]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return 0, fmt.Errorf("waiting for the namespaces to be joined: %w", err)
	}
	switch b[0] {
	case joinOK:
		if _, err := io.ReadFull(r, b[1:]); err != nil {
			return 0, fmt.Errorf("reading the joined pid: %w", err)
		}
		return int(binary.LittleEndian.Uint32(b[1:])), nil
	case joinFailed:
		if _, err := io.ReadFull(r, b[1:2]); err != nil {
			return 0, fmt.Errorf("reading the setns error: %w", err)
		}
		return 0, fmt.Errorf("entering the container's namespaces: %w", unix.Errno(b[1]))
	case unshareMissing:
		return 0, errors.New("the stages' program was not linked with its entry point (rootless.EntrySymbol)")
	}
	return 0, fmt.Errorf("unexpected byte %q before the namespaces were joined", b[0])
}

// handshake waits for Dispatch's report.
func (j *Joined) handshake() error {
	typ, payload, err := readFrame(fdReader(j.sock))
	switch {
	case err != nil:
		return fmt.Errorf("the stage exited before it ran: %w", err)
	case typ == msgError:
		return fmt.Errorf("%s: %w", payload, ErrSetup)
	case typ != msgReady:
		return fmt.Errorf("unexpected message %q: %w", typ, ErrSetup)
	}
	return nil
}
