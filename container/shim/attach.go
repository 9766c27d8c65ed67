package shim

// Attaching to a container. Its shim keeps a unix socket beside the exec
// socket; every client gets the output from the moment it attaches and
// may send input and terminal sizes. A foreground `run` or `start -a` is
// such a client from before the payload starts: the shim gets its end of
// a socket pair (AttachFD), so no output is lost and the container does
// not depend on the client.
//
//	client (container.Manager.Attach)         shim (attachHub)
//	connect(<run>/<id>.attach), or AttachFD
//	  ◀── frame '1' stdout | '2' stderr ──────  whatever the payload writes
//	  ─── frame 'i' input ───────────────────▶  to the pty, or the stdin pipe (-i)
//	  ─── frame 'e' (run, start -a) ─────────▶  end of input: stdin pipe closed
//	  ─── frame 'b' stream (run, start -a) ──▶  the client's output broke: that
//	                                            pipe closed, so the payload's next
//	                                            write fails (`run img yes | head -1`)
//	  ─── frame 'r' rows,cols ───────────────▶  TIOCSWINSZ on the pty
//	  ─── frame 'n' + SCM_RIGHTS listener ───▶  an exec'd process's faked chowns
//	      (exec in single-id mode)              (rootless.ServeOwners records them)
//	  ◀── EOF ───────────────────────────────  taken: this connection ends
//	  ─── frame 'p' exec request ────────────▶  an exec's program (execprogram.go)
//	  ◀── frame 'P' program | 'F' why not, EOF
//	  ◀── frame 'x' status (int32) ────────────  the container stopped
//	  ◀── EOF ─────────────────────────────────
//	ctrl-p ctrl-q, or the client dies: it hangs up; the container runs on
//
// A frame is a type byte, a big-endian uint32 length and the payload.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"nook/internal/frame"
)

// Frame types of the attach socket.
const (
	FrameStdout = '1'
	FrameStderr = '2'
	FrameInput  = 'i'
	FrameResize = 'r'
	FrameEOF    = 'e'
	FrameBroken = 'b'
	FrameExit   = 'x'
	FrameOwners = 'n'
)

// WriteAttachFrame writes one frame of type typ.
func WriteAttachFrame(w io.Writer, typ byte, p []byte) error {
	return frame.Write(w, typ, p, maxAttachFrame)
}

// maxAttachFrame bounds what a reader allocates.
const maxAttachFrame = 1 << 20

// ReadAttachFrame reads one frame, refusing one larger than maxAttachFrame.
func ReadAttachFrame(r io.Reader) (byte, []byte, error) { return frame.Read(r, maxAttachFrame) }

// attachHub is the shim's side: it fans output out to the clients and
// feeds their input to the payload.
type attachHub struct {
	mu      sync.Mutex
	clients map[*net.UnixConn]bool
	input   io.Writer // the pty master or the stdin pipe; nil without -i
	stdin   *os.File  // the stdin pipe, closed at a client's end of input
	console *os.File  // the pty master, for resizes
	// outs are the read ends of the output pipes, by frame type, which
	// the first client's FrameBroken closes.
	outs  map[byte]*os.File
	l     *net.UnixListener
	first *net.UnixConn // the foreground CLI, attached from the start
	// owners serves the seccomp listener a FrameOwners brings.
	owners func(*os.File)
	// execProgram answers a FrameExecProgram (execprogram.go).
	execProgram func(req []byte) (byte, []byte)
}

// newAttachHub listens on path; first, when not nil, is a client from the
// start.
func newAttachHub(path string, first *os.File) (*attachHub, error) {
	h := &attachHub{clients: map[*net.UnixConn]bool{}, outs: map[byte]*os.File{}}
	if first != nil {
		c, err := net.FileConn(first)
		first.Close()
		if err != nil {
			return nil, fmt.Errorf("attach connection: %w", err)
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			c.Close()
			return nil, fmt.Errorf("attach connection is no unix socket")
		}
		h.first = uc
		h.clients[uc] = true
	}
	_ = os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		h.exit(0)
		return nil, fmt.Errorf("listening for attach: %w", err)
	}
	h.l = l
	return h, nil
}

// output sends p to every client; a client that cannot keep up is dropped.
func (h *attachHub) output(stream byte, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if WriteAttachFrame(c, stream, p) != nil {
			c.Close()
			delete(h.clients, c)
		}
	}
}

// serve reads the first client's frames and accepts clients until stop.
func (h *attachHub) serve() {
	if h.first != nil {
		go h.client(h.first)
	}
	for {
		c, err := h.l.AcceptUnix()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.clients[c] = true
		h.mu.Unlock()
		go h.client(c)
	}
}

func (h *attachHub) client(c *net.UnixConn) {
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
		c.Close()
	}()
	r := &rightsReader{c: c}
	defer func() { closeFDs(r.fds) }()
	for {
		typ, p, err := ReadAttachFrame(r)
		if err != nil {
			return
		}
		switch {
		case typ == FrameOwners && len(r.fds) > 0 && h.owners != nil:
			h.owners(os.NewFile(uintptr(r.fds[0]), "seccomp listener"))
			closeFDs(r.fds[1:])
			r.fds = nil
			return // no attach client: the hang-up tells it the listener is taken
		case typ == FrameExecProgram && h.execProgram != nil:
			h.mu.Lock()
			delete(h.clients, c) // no output frames from now
			h.mu.Unlock()
			typ, answer := h.execProgram(p)
			_ = WriteAttachFrame(c, typ, answer)
			return
		case typ == FrameInput && h.input != nil:
			_, _ = h.input.Write(p)
		case typ == FrameEOF && h.stdin != nil:
			h.stdin.Close()
		case typ == FrameBroken && c == h.first && len(p) == 1 && h.outs[p[0]] != nil:
			h.outs[p[0]].Close()
		case typ == FrameResize && h.console != nil && len(p) == 4:
			ws := &unix.Winsize{Row: binary.BigEndian.Uint16(p), Col: binary.BigEndian.Uint16(p[2:])}
			_ = unix.IoctlSetWinsize(int(h.console.Fd()), unix.TIOCSWINSZ, ws)
		}
	}
}

// stop stops accepting clients and removes the socket.
func (h *attachHub) stop() {
	if h.l != nil {
		h.l.Close()
	}
}

// exit sends every client the container's status and hangs up.
func (h *attachHub) exit(code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := binary.BigEndian.AppendUint32(nil, uint32(int32(code)))
	for c := range h.clients {
		_ = WriteAttachFrame(c, FrameExit, p)
		c.Close()
		delete(h.clients, c)
	}
}

// rightsReader reads a client's stream, keeping the descriptors that
// arrive with it (a FrameOwners's listener).
type rightsReader struct {
	c   *net.UnixConn
	fds []int
}

func (r *rightsReader) Read(p []byte) (int, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := r.c.ReadMsgUnix(p, oob)
	if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for _, m := range msgs {
			if fds, err := unix.ParseUnixRights(&m); err == nil {
				r.fds = append(r.fds, fds...)
			}
		}
	}
	return n, err
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// SendOwners hands the seccomp listener of an exec'd process's faked
// chowns to the shim serving the attach socket at path (FrameOwners).
func SendOwners(path string, listener *os.File) error {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("handing the exec's seccomp listener to the shim: %w", err)
	}
	defer c.Close()
	var hdr [5]byte
	hdr[0] = FrameOwners
	if _, _, err := c.WriteMsgUnix(hdr[:], unix.UnixRights(int(listener.Fd())), nil); err != nil {
		return fmt.Errorf("handing the exec's seccomp listener to the shim: %w", err)
	}
	// Until the shim hangs up, having taken it: closing first would let
	// the shim drop this connection, the frame unread, on a failed write
	// of the container's output to it. A shim that predates FrameOwners
	// never hangs up.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		return fmt.Errorf("handing the exec's seccomp listener to the shim: %w", err)
	}
	return nil
}
