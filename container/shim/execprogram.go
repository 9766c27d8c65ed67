package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"nook/rootless"
)

// An exec's program (rootless.BuildExecProgram) is built by the shim: it
// is in the container's user namespace with its capabilities, so it sees
// the container's root as the exec stage would inside, which the CLI,
// outside, cannot (the FUSE root refuses it).
//
//	CLI (ExecProgram)                       shim (attachHub)
//	connect(<run>/<id>.attach)
//	  ─── frame 'p' {pid, process} ───────▶  no attach client from now;
//	                                         BuildExecProgram(pid, process)
//	  ◀── frame 'P' {the program} ─────────  | frame 'F' why not: the CLI
//	  ◀── EOF                                  starts the exec stage
//
// Output frames that reached the connection before the request are
// skipped.

// Frame types of an exec program's request and answers.
const (
	FrameExecProgram = 'p'
	FrameProgram     = 'P'
	FrameNoProgram   = 'F'
)

// programWait bounds the wait for the shim's answer (a shim that predates
// FrameExecProgram, which never answers, says so in its State); the exec
// stage then starts.
const programWait = 2 * time.Second

// execRequest is FrameExecProgram's payload.
type execRequest struct {
	Pid     int                  `json:"pid"`
	Process rootless.InitProcess `json:"process"`
}

// ExecProgram asks the shim serving the attach socket at path for p's
// exec program in its container, whose pid 1 is pid; the answer returns
// it. The question is sent at once, so that the shim works on it while
// the caller goes on.
func ExecProgram(path string, pid int, p rootless.InitProcess) (answer func() (*rootless.ExecProgram, error)) {
	failed := func(err error) func() (*rootless.ExecProgram, error) {
		return func() (*rootless.ExecProgram, error) { return nil, err }
	}
	req, err := json.Marshal(execRequest{Pid: pid, Process: p})
	if err != nil {
		return failed(err)
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return failed(fmt.Errorf("asking the shim for the exec program: %w", err))
	}
	_ = c.SetDeadline(time.Now().Add(programWait))
	if err := WriteAttachFrame(c, FrameExecProgram, req); err != nil {
		c.Close()
		return failed(fmt.Errorf("asking the shim for the exec program: %w", err))
	}
	return func() (*rootless.ExecProgram, error) {
		defer c.Close()
		return readProgram(c)
	}
}

// readProgram reads the shim's answer.
func readProgram(c *net.UnixConn) (*rootless.ExecProgram, error) {
	for {
		typ, payload, err := ReadAttachFrame(c)
		if err != nil {
			return nil, fmt.Errorf("reading the shim's exec program: %w", err)
		}
		switch typ {
		case FrameProgram:
			var prog rootless.ExecProgram
			if err := prog.UnmarshalBinary(payload); err != nil {
				return nil, fmt.Errorf("decoding the shim's exec program: %w", err)
			}
			return &prog, nil
		case FrameNoProgram:
			return nil, fmt.Errorf("%w: %s", rootless.ErrNoProgram, payload)
		case FrameExit:
			return nil, errors.New("the container stopped")
		}
	}
}

// buildExecProgram answers a FrameExecProgram for the container whose
// payload's pid is pid.
func buildExecProgram(progs *rootless.ExecPrograms, req []byte, pid int) (byte, []byte) {
	var r execRequest
	if err := json.Unmarshal(req, &r); err != nil {
		return FrameNoProgram, []byte(err.Error())
	}
	if r.Pid != pid {
		return FrameNoProgram, fmt.Appendf(nil, "pid %d is not the container's (%d)", r.Pid, pid)
	}
	prog, err := progs.Build(r.Pid, r.Process)
	if err != nil {
		return FrameNoProgram, []byte(err.Error())
	}
	b, err := prog.MarshalBinary()
	if err != nil {
		return FrameNoProgram, []byte(err.Error())
	}
	return FrameProgram, b
}
