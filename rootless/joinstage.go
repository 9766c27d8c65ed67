package rootless

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The stages a joined process runs (join.go): an exec'd process, and a
// call of a Handler inside the container.

// ExecConfig is StageExec's config.
type ExecConfig struct {
	Process InitProcess `json:"process"`
}

// CallConfig is StageCall's config.
type CallConfig struct {
	Call Call `json:"call"`
}

// Call names a Handler and its argument.
type Call struct {
	Name string          `json:"name"`
	Arg  json.RawMessage `json:"arg,omitempty"`
}

// Handler is work done inside a container, in its user and mount
// namespaces, on the three streams; its return value is the exit status.
type Handler func(arg json.RawMessage, stdin, stdout, stderr *os.File) int

// Handlers are the calls by name.
type Handlers map[string]Handler

// JoinStages are the stages a joined process runs, with h serving calls;
// main dispatches them beside its others.
func JoinStages(h Handlers) map[string]func() int {
	return map[string]func() int{
		StageExec: execStage,
		StageCall: func() int { return callStage(h) },
	}
}

// execStage replaces itself with the exec'd process, or reports why it
// could not.
func execStage() int {
	var cfg ExecConfig
	if err := ReadConfig(&cfg); err != nil {
		return joinFailure(ExitSetupFailed, err)
	}
	code, err := execPayload(cfg.Process, 0, true, func(console, listener *os.File) error {
		for _, f := range []struct {
			tag  byte
			file *os.File
		}{{joinConsole, console}, {joinListener, listener}} {
			if f.file == nil {
				continue
			}
			if err := unix.Sendmsg(syncFD, []byte{f.tag}, unix.UnixRights(int(f.file.Fd())), nil, 0); err != nil {
				return err
			}
		}
		return nil
	})
	return joinFailure(code, err)
}

// joinFailure reports a process that could not start and returns code.
func joinFailure(code int, err error) int {
	msg, _ := json.Marshal(InitStatus{Code: code, Error: err.Error()})
	_ = writeFrame(fdWriter(syncFD), msgError, msg)
	return code
}

// callStage runs the handler the config names.
func callStage(h Handlers) int {
	var cfg CallConfig
	if err := ReadConfig(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ExitSetupFailed
	}
	handler, ok := h[cfg.Call.Name]
	if !ok {
		fmt.Fprintf(os.Stderr, "no call %q\n", cfg.Call.Name)
		return ExitSetupFailed
	}
	return handler(cfg.Call.Arg, os.Stdin, os.Stdout, os.Stderr)
}

// ExecSession is a process started in a running container by Exec.
type ExecSession struct {
	*Joined
	// Console is the pty master of a Terminal process, else nil.
	Console *os.File
	// Listener is the seccomp listener of the process's faked chowns in
	// single-id mode, else nil: the caller hands it to the container's
	// supervisor (ServeOwners), which records them.
	Listener *os.File
}

// Exec starts p in the container whose pid 1 is pid, from program (linked
// with EntrySymbol). stdio are its streams unless it runs on a terminal.
// run, when not nil, gives p as an exec program (BuildExecProgram),
// which starts it faster than the exec stage; an error from it starts the
// stage. A process that could not start gives an *InitError.
func Exec(program string, t Target, p InitProcess, stdio [3]*os.File, run func() (*ExecProgram, error)) (*ExecSession, error) {
	return execJoin(Join{Program: program, Pid: t.Pid, Namespaces: t.Namespaces, Stage: StageExec, Fork: true,
		Stdio: stdio, Config: ExecConfig{Process: p}, Run: run})
}

// Target is the process whose namespaces an exec enters.
type Target struct {
	Pid int
	// Namespaces are those of Pid's namespaces (CLONE_NEW* flags) that are
	// not the caller's, when the caller knows them (it made them); 0: each
	// is compared with the caller's.
	Namespaces int
}

// execJoin starts the exec stage (or its exec program) as c says.
func execJoin(c Join) (*ExecSession, error) {
	j, err := c.Start()
	if err != nil {
		return nil, err
	}
	s := &ExecSession{Joined: j}
	err = s.started()
	Trace("exec started")
	if err != nil {
		for _, f := range []*os.File{s.Console, s.Listener} {
			if f != nil {
				f.Close()
			}
		}
		_, _ = j.Wait()
		return nil, err
	}
	return s, nil
}

// RanProgram says whether the process was started by an exec program,
// not by the exec stage.
func (s *ExecSession) RanProgram() bool { return s.program != nil }

// started reads the exec stage's reports up to its exec: the socket
// closes then.
func (s *ExecSession) started() error {
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(s.sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading the exec'd process's start: %w", err)
		}
		fds := parseRights(oob[:oobn])
		if n == 0 {
			closeAll(fds)
			return nil // the exec closed it
		}
		switch {
		case buf[0] == joinConsole && len(fds) > 0 && s.Console == nil:
			s.Console = os.NewFile(uintptr(fds[0]), "console")
			closeAll(fds[1:])
			continue
		case buf[0] == joinListener && len(fds) > 0 && s.Listener == nil:
			s.Listener = os.NewFile(uintptr(fds[0]), "seccomp listener")
			closeAll(fds[1:])
			continue
		}
		closeAll(fds)
		switch {
		case buf[0] == joinProgramFailed && s.program != nil:
			var b [programFailedLen]byte
			if _, err := io.ReadFull(fdReader(s.sock), b[1:]); err != nil {
				return fmt.Errorf("reading the exec program's error: %w", err)
			}
			return s.program.failure(int(binary.LittleEndian.Uint16(b[2:])),
				unix.Errno(binary.LittleEndian.Uint32(b[4:])))
		case buf[0] == msgError:
			var b [4]byte
			if _, err := io.ReadFull(fdReader(s.sock), b[:]); err != nil {
				return fmt.Errorf("reading the exec'd process's error: %w", err)
			}
			payload := make([]byte, min(binary.BigEndian.Uint32(b[:]), 64<<10))
			if _, err := io.ReadFull(fdReader(s.sock), payload); err != nil {
				return fmt.Errorf("reading the exec'd process's error: %w", err)
			}
			var st InitStatus
			if err := json.Unmarshal(payload, &st); err != nil {
				return fmt.Errorf("decoding the exec'd process's error: %w", err)
			}
			return &InitError{Code: max(st.Code, ExitSetupFailed), Msg: st.Error}
		}
		return fmt.Errorf("unexpected byte %q from the exec'd process", buf[0])
	}
}

func parseRights(oob []byte) []int {
	var fds []int
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
