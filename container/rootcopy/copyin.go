package rootcopy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"nook/rootless"
)

// Copying into a running container: its union is served inside its own
// user namespace, where nothing on the host can reach the mount (the
// kernel lets only that namespace use it). So a process of the stages'
// program joins the container's user and mount namespaces
// (rootless.Join) and unpacks the copy there: the CLI sends a tar on its
// stdin with a Call naming CallCopyIn, and the call resolves the
// destination inside the container's root, as cp does for a stopped
// container, and reports failures on stderr. It stays outside the
// container's pid namespace and is not dumpable, so no process of the
// container can see or trace it.

// CallCopyIn names the copy-in handler.
const CallCopyIn = "cp-in"

// Exit statuses of the copy-in call that name a sentinel error.
const (
	copyInFailed = 1 + iota
	copyInNoSuchPath
	copyInTarget
)

// CopyInRequest is the call's argument.
type CopyInRequest struct {
	Container string  `json:"container"` // for messages: "container NAME"
	Dst       string  `json:"dst"`       // absolute path in the container
	Archive   bool    `json:"archive"`
	Source    *Source `json:"source,omitempty"` // nil: the stream is a user's tar, unpacked into Dst
}

// Handlers are the calls a process joining a container serves.
func Handlers() rootless.Handlers {
	return rootless.Handlers{CallCopyIn: copyInHandler}
}

// copyInHandler unpacks stdin as req asks, inside the container.
func copyInHandler(arg json.RawMessage, stdin, _, stderr *os.File) int {
	var req CopyInRequest
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
	to := Side{root: root, inRoot: true, name: req.Container, outsidePID: true}
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
func (s Side) receive(r io.Reader, req CopyInRequest) error {
	if req.Source == nil {
		return s.Extract(r, req.Dst, KeepNames, req.Archive, nil)
	}
	dir, name, err := s.Target(req.Dst, *req.Source)
	if err != nil {
		return err
	}
	rename := func(string) string { return name } // a file: the one entry
	if req.Source.IsDir {
		rename = TreeNames(name) // the tree was sent rooted at "./"
	}
	return s.Extract(r, dir, rename, req.Archive, nil)
}

// CopyInError is the error a copy-in call's exit status and message stand
// for: nil for success, the message wrapping ErrNoSuchPath or
// ErrCopyTarget for those statuses, else the message alone (or the status
// when the call said nothing).
func CopyInError(code int, msg, container string) error {
	switch {
	case code == 0:
		return nil
	case code == copyInNoSuchPath:
		return &calledError{msg, ErrNoSuchPath}
	case code == copyInTarget:
		return &calledError{msg, ErrCopyTarget}
	case msg != "":
		return errors.New(msg)
	}
	return fmt.Errorf("copying into %s: exit status %d", container, code)
}

// calledError is a call's failure as the call worded it, with the sentinel
// its exit status stands for.
type calledError struct {
	msg      string
	sentinel error
}

func (e *calledError) Error() string { return e.msg }
func (e *calledError) Unwrap() error { return e.sentinel }
