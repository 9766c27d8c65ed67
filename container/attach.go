package container

// Attaching to a detached container. Its shim keeps a unix socket beside
// the exec socket; every client gets the output from the moment it
// attaches and may send input and terminal sizes.
//
//	client (Manager.Attach)                   shim (attachHub)
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
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// Frame types of the attach socket.
const (
	frameStdout = '1'
	frameStderr = '2'
	frameInput  = 'i'
	frameResize = 'r'
)

func writeAttachFrame(w io.Writer, typ byte, p []byte) error {
	buf := make([]byte, 5+len(p))
	buf[0] = typ
	binary.BigEndian.PutUint32(buf[1:], uint32(len(p)))
	copy(buf[5:], p)
	_, err := w.Write(buf)
	return err
}

// maxAttachFrame bounds what a reader allocates.
const maxAttachFrame = 1 << 20

func readAttachFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxAttachFrame {
		return 0, nil, fmt.Errorf("attach frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return hdr[0], p, nil
}

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
		if writeAttachFrame(c, stream, p) != nil {
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
		typ, p, err := readAttachFrame(c)
		if err != nil {
			return
		}
		switch {
		case typ == frameInput && h.input != nil:
			_, _ = h.input.Write(p)
		case typ == frameResize && h.console != nil && len(p) == 4:
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

// ErrDetached is returned by Attach when the user typed the detach keys.
var ErrDetached = errors.New("detached")

// AttachOptions say what to attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr *os.File
	NoStdin               bool
	SigProxy              bool // pass the caller's signals on (without a terminal)
}

// Attach connects the caller's streams to a detached container until it
// stops, returning its exit status, or until ctrl-p ctrl-q (ErrDetached).
func (m *Manager) Attach(c *Container, o AttachOptions) (int, error) {
	if !c.Running() || c.State.AttachSocket == "" {
		return 0, fmt.Errorf("cannot attach to %s: %w (or it was started in the foreground)", c.Name, ErrNotRunning)
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: c.State.AttachSocket, Net: "unix"})
	if err != nil {
		return 0, fmt.Errorf("attaching to %s: %w", c.Name, err)
	}
	defer conn.Close()
	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return writeAttachFrame(conn, typ, p)
	}
	if c.Tty {
		defer rawTerminal(o.Stdin)()
		resize := func() {
			for _, f := range []*os.File{o.Stdin, o.Stdout} {
				if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
					p := make([]byte, 4)
					binary.BigEndian.PutUint16(p, ws.Row)
					binary.BigEndian.PutUint16(p[2:], ws.Col)
					_ = send(frameResize, p)
					return
				}
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				resize()
			}
		}()
	} else if o.SigProxy {
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
		defer signal.Stop(sigs)
		go func() {
			for sig := range sigs {
				_ = m.Kill(c, sig.(unix.Signal))
			}
		}()
	}
	detached := make(chan struct{})
	if c.OpenStdin && !o.NoStdin {
		go func() {
			if copyInput(o.Stdin, func(p []byte) error { return send(frameInput, p) }, c.Tty) {
				close(detached)
				conn.CloseRead() // unblocks the output loop
			}
		}()
	}
	for {
		typ, p, err := readAttachFrame(conn)
		if err != nil {
			break
		}
		if typ == frameStderr {
			_, _ = o.Stderr.Write(p)
		} else {
			_, _ = o.Stdout.Write(p)
		}
	}
	select {
	case <-detached:
		return 0, ErrDetached
	default:
	}
	return m.Wait(c)
}

// copyInput sends the caller's input until EOF or, on a terminal, until
// ctrl-p ctrl-q, which it reports.
func copyInput(r io.Reader, send func([]byte) error, tty bool) (detach bool) {
	buf := make([]byte, 4096)
	pendingP := false // a ctrl-p held back until the next byte shows it is not a detach
	for {
		n, err := r.Read(buf)
		if n > 0 {
			out := make([]byte, 0, n+1)
			for _, b := range buf[:n] {
				switch {
				case !tty:
					out = append(out, b)
				case pendingP && b == 0x11:
					return true
				case b == 0x10:
					if pendingP {
						out = append(out, 0x10)
					}
					pendingP = true
					continue
				default:
					if pendingP {
						out = append(out, 0x10)
					}
					out = append(out, b)
				}
				pendingP = false
			}
			if len(out) > 0 && send(out) != nil {
				return false
			}
		}
		if err != nil {
			return false
		}
	}
}
