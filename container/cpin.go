package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"nook/rootless"
)

// Copying into a running container: its union is served inside its own
// user namespace, where nothing on the host can reach the mount (the
// kernel lets only that namespace use it) and Go cannot setns. So the
// container's init, already inside, unpacks the copy itself: the CLI
// sends a tar on an exec session's stdin with a Call naming callCopyIn,
// and init resolves the destination inside its root, as cp does for a
// stopped container, and reports failures on the session's stderr.
// Init does the work in-process rather than starting a helper process
// that container processes could trace or reach /proc/PID/exe of.

// callCopyIn names init's copy-in handler.
const callCopyIn = "cp-in"

// Exit statuses of the copy-in call that name a sentinel error.
const (
	copyInFailed = 1 + iota
	copyInNoSuchPath
	copyInTarget
)

// copyInRequest is the call's argument.
type copyInRequest struct {
	Container string  `json:"container"` // for messages: "container NAME"
	Dst       string  `json:"dst"`       // absolute path in the container
	Archive   bool    `json:"archive"`
	Source    *source `json:"source,omitempty"` // nil: the stream is a user's tar, unpacked into Dst
}

// InitHandlers are the calls the container's init serves.
func InitHandlers() rootless.Handlers {
	return rootless.Handlers{callCopyIn: copyInHandler}
}

// copyInHandler runs in init: it unpacks stdin as req asks.
func copyInHandler(arg json.RawMessage, stdin, _, stderr *os.File) int {
	var req copyInRequest
	if err := json.Unmarshal(arg, &req); err != nil {
		fmt.Fprintf(stderr, "decoding the copy request: %v\n", err)
		return copyInFailed
	}
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintf(stderr, "opening the filesystem of %s: %v\n", req.Container, err)
		return copyInFailed
	}
	defer unix.Close(root)
	to := side{root: root, inRoot: true, name: req.Container}
	// On failure stdin is closed unread, so the sender stops at once (its
	// EPIPE loses to this status); on success the rest, padding after the
	// end-of-archive marker, is read so the sender's writes all succeed.
	if err := to.receive(stdin, req); err != nil {
		fmt.Fprintln(stderr, err)
		switch {
		case errors.Is(err, ErrNoSuchPath):
			return copyInNoSuchPath
		case errors.Is(err, ErrCopyTarget):
			return copyInTarget
		}
		return copyInFailed
	}
	_, _ = io.Copy(io.Discard, stdin)
	return 0
}

// receive unpacks r, a stream sent by copyIntoRunning, as req asks.
func (s side) receive(r io.Reader, req copyInRequest) error {
	if req.Source == nil {
		return s.extract(r, req.Dst, keepNames, req.Archive, nil)
	}
	dir, name, err := s.target(req.Dst, *req.Source)
	if err != nil {
		return err
	}
	rename := func(string) string { return name } // a file: the one entry
	if req.Source.IsDir {
		rename = treeNames(name) // the tree was sent rooted at "./"
	}
	return s.extract(r, dir, rename, req.Archive, nil)
}

// copyIntoRunning copies src on the host (a tar read from r for "-") to
// dst in the running container c through its init.
func (m *Manager) copyIntoRunning(c *Container, src string, r io.Reader, dst string, o CopyOptions) error {
	req := copyInRequest{Container: "container " + c.Name, Dst: containerPath(dst), Archive: o.Archive}
	send := func(w io.Writer) error { _, err := io.Copy(w, r); return err }
	if src != "-" {
		host := side{root: unix.AT_FDCWD, name: "host"}
		s, err := host.source(src, o.FollowLink)
		if err != nil {
			return err
		}
		req.Source = &s
		name := s.Name // renamed on arrival
		if s.IsDir {
			name = "."
		}
		send = func(w io.Writer) error { return host.archive(w, src, o.FollowLink, name, m.log) }
	}
	arg, _ := json.Marshal(req)
	code, msg, sendErr, err := callInit(c, rootless.Call{Name: callCopyIn, Arg: arg}, send)
	switch {
	case err != nil:
		return fmt.Errorf("copying into %s: %w", c.Name, err)
	case code == copyInNoSuchPath:
		return &calledError{msg, ErrNoSuchPath}
	case code == copyInTarget:
		return &calledError{msg, ErrCopyTarget}
	case code != 0 && msg != "":
		return errors.New(msg)
	case code != 0:
		return fmt.Errorf("copying into %s: exit status %d", c.Name, code)
	case sendErr != nil:
		return sendErr
	}
	return nil
}

// calledError is a call's failure as init worded it, with the sentinel
// its exit status stands for.
type calledError struct {
	msg      string
	sentinel error
}

func (e *calledError) Error() string { return e.msg }
func (e *calledError) Unwrap() error { return e.sentinel }

// callInit runs call in c's init with send writing the call's stdin; it
// returns the call's exit status, what it wrote to stderr (one line), and
// send's own error.
func callInit(c *Container, call rootless.Call, send func(io.Writer) error) (code int, msg string, sendErr, err error) {
	if c.State.ExecSocket == "" {
		return 0, "", nil, fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
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
	s, err := rootless.Exec(c.State.ExecSocket, rootless.ExecRequest{Call: &call}, [3]*os.File{inR, devnull, errW})
	inR.Close() // init holds its own copies now
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
