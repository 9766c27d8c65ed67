package rootless

// Exec sessions: a process started by the container's init, so it shares
// every namespace and the root of the container without setns (which Go
// cannot do for user and mount namespaces). The shim hands init a
// listening unix socket; each connection is one session.
//
//	caller (Exec)                                  init (serveExec, one goroutine per session)
//	connect(socket)
//	  ── ExecRequest JSON + SCM_RIGHTS [stdin, stdout, stderr] ──▶
//	     (with Tty: no descriptors)                 user, command looked up; fork + exec
//	  ◀─ ExecReply {Pid} [+ pty master] | {Code, Error} ──
//	  ── ExecSignal {Signal} ───────────────────▶   kill(pid, Signal)
//	  ◀─ ExecReply {Exit} ─────────────────────     once reaped
//
// A request may instead name a Call: a Handler that init runs itself, in
// a goroutine, on the three streams (work that must happen inside the
// container but must not be a process the container could trace, such
// as copying into its filesystem):
//
//	  ── ExecRequest {Call} + SCM_RIGHTS [stdin, stdout, stderr] ──▶
//	  ◀─ ExecReply {} | {Code, Error} ──             handler found; runs
//	  ◀─ ExecReply {Exit} ─────────────────────     handler's status
//
// Messages are JSON lines, at most one descriptor set per message.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExecRequest is a process to start in a running container, or a call.
type ExecRequest struct {
	Process InitProcess `json:"process"`
	Call    *Call       `json:"call,omitempty"`
}

// Call asks init to run the Handler registered under Name with Arg.
type Call struct {
	Name string          `json:"name"`
	Arg  json.RawMessage `json:"arg,omitempty"`
}

// Handler is work init does on request, inside the container, with its
// own privileges; its return value is the session's exit status.
type Handler func(arg json.RawMessage, stdin, stdout, stderr *os.File) int

// Handlers are init's calls by name.
type Handlers map[string]Handler

// execReply is init's answer: once {Pid} or {Code, Error}, later {Exit}.
type execReply struct {
	Pid   int    `json:"pid,omitempty"`
	Code  int    `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
}

// execSignal asks init to signal the session's process.
type execSignal struct {
	Signal int `json:"signal"`
}

// ExecSession is a process started by Exec.
type ExecSession struct {
	conn *net.UnixConn
	r    *bufio.Reader
	// Pid is the process's pid in the container.
	Pid int
	// Console is the pty master of a Terminal process, else nil.
	Console *os.File
}

// Exec connects to a container init's exec socket and starts req there.
// stdio are the process's stdin, stdout and stderr unless it runs on a
// terminal. A process that could not start gives an *InitError.
func Exec(socket string, req ExecRequest, stdio [3]*os.File) (*ExecSession, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("connecting to the container's init: %w", err)
	}
	msg, _ := json.Marshal(req)
	var rights []byte
	if !req.Process.Terminal || req.Call != nil {
		rights = unix.UnixRights(int(stdio[0].Fd()), int(stdio[1].Fd()), int(stdio[2].Fd()))
	}
	if _, _, err := c.WriteMsgUnix(append(msg, '\n'), rights, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("sending the exec request: %w", err)
	}
	reply, fds, err := readExecReply(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	if reply.Code != 0 || (reply.Pid == 0 && req.Call == nil) {
		c.Close()
		closeAll(fds)
		return nil, &InitError{Code: max(reply.Code, ExitSetupFailed), Msg: reply.Error}
	}
	s := &ExecSession{conn: c, r: bufio.NewReader(c), Pid: reply.Pid}
	if len(fds) == 1 {
		s.Console = os.NewFile(uintptr(fds[0]), "console")
	} else {
		closeAll(fds)
	}
	return s, nil
}

// readExecReply reads the first reply, which may carry a descriptor; it
// reads byte-wise up to the newline so nothing later is swallowed.
func readExecReply(c *net.UnixConn) (execReply, []int, error) {
	var line []byte
	var fds []int
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					if got, err := unix.ParseUnixRights(&m); err == nil {
						fds = append(fds, got...)
					}
				}
			}
		}
		if err != nil || n == 0 {
			closeAll(fds)
			return execReply{}, nil, fmt.Errorf("reading the exec reply: %w", errors.Join(err, errors.New("init closed the session")))
		}
		if buf[0] == '\n' {
			break
		}
		line = append(line, buf[0])
	}
	var r execReply
	if err := json.Unmarshal(line, &r); err != nil {
		closeAll(fds)
		return r, nil, fmt.Errorf("decoding the exec reply: %w", err)
	}
	return r, fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Signal asks init to send sig to the process.
func (s *ExecSession) Signal(sig syscall.Signal) error {
	msg, _ := json.Marshal(execSignal{Signal: int(sig)})
	_, err := s.conn.Write(append(msg, '\n'))
	return err
}

// Wait returns the process's exit status (128+N when killed by signal N).
func (s *ExecSession) Wait() (int, error) {
	defer s.conn.Close()
	for {
		line, err := s.r.ReadBytes('\n')
		if err != nil {
			return -1, fmt.Errorf("waiting for the exec'd process: the container stopped: %w", err)
		}
		var r execReply
		if json.Unmarshal(line, &r) == nil && r.Exit != nil {
			return *r.Exit, nil
		}
	}
}

// serveExec accepts exec sessions until the container ends.
func serveExec(f *os.File, r *reaper, h Handlers) {
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go serveSession(c.(*net.UnixConn), r, h)
	}
}

func serveSession(c *net.UnixConn, r *reaper, h Handlers) {
	defer c.Close()
	req, fds, err := readExecRequest(c)
	defer func() { closeAll(fds) }()
	reply := func(v execReply, rights []byte) {
		msg, _ := json.Marshal(v)
		_, _, _ = c.WriteMsgUnix(append(msg, '\n'), rights, nil)
	}
	if err != nil {
		reply(execReply{Code: ExitSetupFailed, Error: err.Error()}, nil)
		return
	}
	if req.Call != nil {
		serveCall(req.Call, h, fds, reply)
		fds = nil
		return
	}
	var stdio []uintptr
	if !req.Process.Terminal {
		if len(fds) != 3 {
			reply(execReply{Code: ExitSetupFailed, Error: "exec request without its 3 streams"}, nil)
			return
		}
		stdio = []uintptr{uintptr(fds[0]), uintptr(fds[1]), uintptr(fds[2])}
	}
	pid, console, code, err := startProcess(req.Process, stdio, nil)
	if err != nil {
		reply(execReply{Code: code, Error: err.Error()}, nil)
		return
	}
	exited := r.wait(pid)
	var rights []byte
	if console != nil {
		rights = unix.UnixRights(int(console.Fd()))
	}
	reply(execReply{Pid: pid}, rights)
	if console != nil {
		console.Close()
	}
	closeAll(fds)
	fds = nil
	go forwardSessionSignals(c, pid)
	code = <-exited
	reply(execReply{Exit: &code}, nil)
}

// serveCall runs a call's handler on the session's streams, which it
// owns; there is no process, so nothing to signal.
func serveCall(call *Call, h Handlers, fds []int, reply func(execReply, []byte)) {
	if len(fds) != 3 {
		closeAll(fds)
		reply(execReply{Code: ExitSetupFailed, Error: "call without its 3 streams"}, nil)
		return
	}
	files := [3]*os.File{os.NewFile(uintptr(fds[0]), "stdin"), os.NewFile(uintptr(fds[1]), "stdout"), os.NewFile(uintptr(fds[2]), "stderr")}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	handler, ok := h[call.Name]
	if !ok {
		reply(execReply{Code: ExitSetupFailed, Error: fmt.Sprintf("init has no call %q", call.Name)}, nil)
		return
	}
	reply(execReply{}, nil)
	code := runHandler(handler, call, files)
	for _, f := range files {
		f.Close() // before the exit reply: the caller reads streams to their end
	}
	reply(execReply{Exit: &code}, nil)
}

// runHandler runs handler; a panic is the call's failure, not init's:
// init is the container's pid 1.
func runHandler(handler Handler, call *Call, files [3]*os.File) (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(files[2], "call %s failed: %v\n", call.Name, p)
			code = ExitSetupFailed
		}
	}()
	return handler(call.Arg, files[0], files[1], files[2])
}

// readExecRequest reads the request line and the descriptors with it.
func readExecRequest(c *net.UnixConn) (ExecRequest, []int, error) {
	var req ExecRequest
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return req, nil, fmt.Errorf("reading the exec request: %w", err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		return req, fds, fmt.Errorf("decoding the exec request: %w", err)
	}
	return req, fds, nil
}

// forwardSessionSignals passes the session's signal requests on to pid.
func forwardSessionSignals(c *net.UnixConn, pid int) {
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		var s execSignal
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.Signal > 0 {
			_ = unix.Kill(pid, syscall.Signal(s.Signal))
		}
	}
}
