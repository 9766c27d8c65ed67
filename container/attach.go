package container

// Attaching to a container: the client's side of the protocol drawn in
// shim/attach.go, for `attach` and for `run` and `start -a` in the
// foreground.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"nook/container/shim"
)

// ErrDetached is returned by Attach when the user typed the detach keys.
var ErrDetached = errors.New("detached")

// AttachOptions say what to attach.
type AttachOptions struct {
	Stdin          io.Reader // terminal handling needs an *os.File
	Stdout, Stderr io.Writer
	NoStdin        bool
	SigProxy       bool // pass the caller's signals on (without a terminal)
	// DetachKeys end the attachment (on a terminal); nil: ctrl-p ctrl-q.
	DetachKeys []byte
	// StdinOnce closes the container's stdin at the end of the caller's,
	// as `run -i` and `start -ai` do.
	StdinOnce bool
}

// Attach connects the caller's streams to a running container until it
// stops, returning its exit status, or until the detach keys (ErrDetached).
func (m *Manager) Attach(c *Container, o AttachOptions) (int, error) {
	if !c.Running() || c.State.AttachSocket == "" {
		return 0, fmt.Errorf("cannot attach to %s: %w", c.Name, ErrNotRunning)
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: c.State.AttachSocket, Net: "unix"})
	if err != nil {
		return 0, fmt.Errorf("attaching to %s: %w", c.Name, err)
	}
	defer conn.Close()
	return m.attach(c, conn, o)
}

// attach serves an attach connection until the container's status or a
// detach.
func (m *Manager) attach(c *Container, conn *net.UnixConn, o AttachOptions) (int, error) {
	if o.Stdin == nil {
		o.NoStdin = true
	}
	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return shim.WriteAttachFrame(conn, typ, p)
	}
	if c.Tty {
		if c.OpenStdin && !o.NoStdin {
			defer rawTerminal(o.Stdin)()
		}
		resize := func() {
			if ws := terminalSize(o.Stdin, o.Stdout); ws != nil {
				p := make([]byte, 4)
				binary.BigEndian.PutUint16(p, ws.Row)
				binary.BigEndian.PutUint16(p[2:], ws.Col)
				_ = send(shim.FrameResize, p)
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
		// Not SIGHUP: the caller's terminal went away, which the
		// container outlives, as Docker's does.
		signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
		defer signal.Stop(sigs)
		go func() {
			for sig := range sigs {
				// c may predate the start (run): its state as it is now.
				if fresh, err := m.load(c.ID); err == nil {
					_ = m.Kill(fresh, sig.(unix.Signal))
				}
			}
		}()
	}
	detached := make(chan struct{})
	if c.OpenStdin && !o.NoStdin {
		go func() {
			keys := o.DetachKeys
			if keys == nil {
				keys = DefaultDetachKeys
			}
			if copyInput(o.Stdin, func(p []byte) error { return send(shim.FrameInput, p) }, c.Tty, keys) {
				close(detached)
				conn.CloseRead() // unblocks the output loop
			} else if o.StdinOnce {
				_ = send(shim.FrameEOF, nil)
			}
		}()
	}
	// A broken output must fail the write, not kill this process, so
	// the payload hears of it (FrameBroken).
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, unix.SIGPIPE)
	defer signal.Stop(pipe)
	broken := map[byte]bool{}
	write := func(w io.Writer, typ byte, p []byte) {
		if _, err := w.Write(p); err != nil && !broken[typ] {
			broken[typ] = true
			_ = send(shim.FrameBroken, []byte{typ})
		}
	}
	code, exited := 0, false
	for {
		typ, p, err := shim.ReadAttachFrame(conn)
		if err != nil {
			break
		}
		switch typ {
		case shim.FrameStderr:
			write(o.Stderr, typ, p)
		case shim.FrameStdout:
			write(o.Stdout, typ, p)
		case shim.FrameExit:
			if len(p) == 4 {
				code, exited = int(int32(binary.BigEndian.Uint32(p))), true
			}
		}
	}
	select {
	case <-detached:
		return 0, ErrDetached
	default:
	}
	if exited {
		return code, nil
	}
	// The shim died without saying: the state settles it.
	return m.Wait(c)
}

// copyInput sends the caller's input until EOF or, on a terminal, until
// the detach keys, which it reports.
func copyInput(r io.Reader, send func([]byte) error, tty bool, keys []byte) (detach bool) {
	buf := make([]byte, 4096)
	var held []byte // a prefix of keys, held back until it is known not to be one
	for {
		n, err := r.Read(buf)
		if n > 0 {
			out := make([]byte, 0, n+len(keys))
			for _, b := range buf[:n] {
				if !tty || len(keys) == 0 {
					out = append(out, b)
					continue
				}
				if b == keys[len(held)] {
					if held = append(held, b); len(held) == len(keys) {
						return true
					}
					continue
				}
				out = append(out, held...)
				held = held[:0]
				if b == keys[0] {
					held = append(held, b)
				} else {
					out = append(out, b)
				}
			}
			if len(out) > 0 && send(out) != nil {
				return false
			}
		}
		if err != nil {
			if len(held) > 0 {
				_ = send(held)
			}
			return false
		}
	}
}

// DefaultDetachKeys are Docker's: ctrl-p ctrl-q.
var DefaultDetachKeys = []byte{0x10, 0x11}

// ParseDetachKeys reads Docker's --detach-keys: comma-separated keys, each
// a single character or ctrl- and one of a-z @ [ \ ] ^ _.
func ParseDetachKeys(s string) ([]byte, error) {
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case len(k) == 6 && strings.HasPrefix(strings.ToLower(k), "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				keys = append(keys, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				keys = append(keys, c-'A'+1)
			case c >= '@' && c <= '_':
				keys = append(keys, c-'@')
			default:
				return nil, fmt.Errorf("--detach-keys %q: %q is no ctrl key", s, k)
			}
		default:
			return nil, fmt.Errorf("--detach-keys %q: want keys such as ctrl-p,ctrl-q or ctrl-a,x", s)
		}
	}
	return keys, nil
}
