package shim

// Attaching to a detached container. Its shim keeps a unix socket beside
// the exec socket; every client gets the output from the moment it
// attaches and may send input and terminal sizes.
//
//	client (container.Manager.Attach)         shim (attachHub)
//	connect(<run>/<id>.attach)
//	  ◀── frame '1' stdout | '2' stderr ──────  whatever the payload writes
//	  ─── frame 'i' input ───────────────────▶  to the pty, or the stdin pipe (-i)
//	  ─── frame 'r' rows,cols ───────────────▶  TIOCSWINSZ on the pty
//	  ◀── EOF ─────────────────────────────────  the container stopped
//	ctrl-p ctrl-q: the client hangs up; the container runs on
//
// A frame is a type byte, a big-endian uint32 length and the payload.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"nook/internal/frame"
)

// Frame types of the attach socket.
const (
	FrameStdout = '1'
	FrameStderr = '2'
	FrameInput  = 'i'
	FrameResize = 'r'
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
	console *os.File  // the pty master, for resizes
	l       *net.UnixListener
}

func newAttachHub(path string) (*attachHub, error) {
	_ = os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening for attach: %w", err)
	}
	return &attachHub{clients: map[*net.UnixConn]bool{}, l: l}, nil
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

// serve accepts clients until close.
func (h *attachHub) serve() {
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
	for {
		typ, p, err := ReadAttachFrame(c)
		if err != nil {
			return
		}
		switch {
		case typ == FrameInput && h.input != nil:
			_, _ = h.input.Write(p)
		case typ == FrameResize && h.console != nil && len(p) == 4:
			ws := &unix.Winsize{Row: binary.BigEndian.Uint16(p), Col: binary.BigEndian.Uint16(p[2:])}
			_ = unix.IoctlSetWinsize(int(h.console.Fd()), unix.TIOCSWINSZ, ws)
		}
	}
}

// close hangs up on every client and removes the socket.
func (h *attachHub) close() {
	h.l.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		c.Close()
		delete(h.clients, c)
	}
}
