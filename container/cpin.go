package container

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"nook/container/rootcopy"
	"nook/rootless"
)

// Copying into a running container: a process that joins the container's
// user and mount namespaces unpacks the copy (rootcopy's copy-in call,
// where the reasons are told); this is the CLI's side, which sends it the
// tar on its stdin.

// copyIntoRunning copies src on the host (a tar read from r for "-") to
// dst in the running container c.
func (m *Manager) copyIntoRunning(c *Container, src string, r io.Reader, dst string, o CopyOptions) error {
	req := rootcopy.CopyInRequest{Container: "container " + c.Name, Dst: containerPath(dst), Archive: o.Archive}
	send := func(w io.Writer) error { _, err := io.Copy(w, r); return err }
	if src != "-" {
		host := rootcopy.Host()
		s, err := host.Source(src, o.FollowLink)
		if err != nil {
			return err
		}
		req.Source = &s
		name := s.Name // renamed on arrival
		if s.IsDir {
			name = "."
		}
		send = func(w io.Writer) error { return host.Archive(w, src, o.FollowLink, name, m.log) }
	}
	arg, _ := json.Marshal(req)
	code, msg, sendErr, err := m.call(c, rootless.Call{Name: rootcopy.CallCopyIn, Arg: arg}, send)
	if err != nil {
		return fmt.Errorf("copying into %s: %w", c.Name, err)
	}
	if err := rootcopy.CopyInError(code, msg, c.Name); err != nil {
		return err
	}
	return sendErr
}

// call runs call in c's namespaces with send writing the call's stdin;
// it returns the call's exit status, what it wrote to stderr (one line),
// and send's own error.
func (m *Manager) call(c *Container, call rootless.Call, send func(io.Writer) error) (code int, msg string, sendErr, err error) {
	if c.State.Pid <= 0 {
		return 0, "", nil, fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
	}
	program, err := m.joinProgram()
	if err != nil {
		return 0, "", nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return 0, "", nil, err
	}
	defer inW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		return 0, "", nil, err
	}
	defer errR.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		inR.Close()
		errW.Close()
		return 0, "", nil, err
	}
	s, err := rootless.Join{Program: program, Pid: c.State.Pid, Stage: rootless.StageCall,
		Stdio: [3]*os.File{inR, devnull, errW}, Config: rootless.CallConfig{Call: call}}.Start()
	inR.Close() // the call holds its own copies now
	errW.Close()
	devnull.Close()
	if err != nil {
		return 0, "", nil, err
	}
	stderr := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(errR, 64<<10))
		stderr <- b
	}()
	sendErr = send(inW)
	inW.Close() // the end of the stream
	code, err = s.Wait()
	b := <-stderr
	return code, strings.TrimSpace(string(b)), sendErr, err
}
