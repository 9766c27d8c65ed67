package rootless

// The parent and the child talk over one unix stream socket, the child's
// fd 3 (syncFD). Every message is a frame: one type byte, a big-endian
// uint32 payload length, the payload. Frames are read with exact-length
// reads, never buffered: the stage reads the config later from the same
// socket.
//
//	parent (Cmd.Start)                        child (Dispatch)
//	socketpair, clone(flags), exec   ──────▶  [newuidmap mode only] this binary,
//	  (newuidmap mode: every capability         started before its uid has a
//	   ambient, so the exec keeps them)         map: it runs its start-up while
//	newuidmap PID ...; newgidmap PID ...      the parent maps it, then blocks
//	           ──── msgMapped ─────────────▶  reading msgMapped: uid 0 now,
//	                                          capabilities from the exec
//	           ──── msgConfig {json} ──────▶  (queued until the stage calls
//	                (own goroutine, then        ReadConfig)
//	                 shutdown(SHUT_WR))
//	                                          setresgid/setresuid(0), pdeathsig,
//	                                          look up the stage
//	           ◀─── msgReady | msgError{text}
//	Start returns                             fd 3 becomes close-on-exec;
//	                                          the stage runs
//	Wait: exit status
//
// A program that unshares its namespaces itself (Cmd.SelfUnshare) first
// reports that it did, in raw bytes before any frame: unshare.go; one
// that joins a running container's (Join) reports the pid that did:
// join.go.
//
// With Go's own UidMappings (single map, or root) and with no user
// namespace there is no msgMapped: Go maps the child before its exec. If newuidmap fails the
// parent kills the child; if the child dies before msgReady the parent
// reports its exit status.

import (
	"io"

	"golang.org/x/sys/unix"

	"nook/internal/frame"
)

const (
	msgMapped = 'M' // parent → child: uid_map and gid_map are written
	msgConfig = 'C' // parent → child: the JSON of Cmd.Config
	msgReady  = 'R' // child → parent: setup done, the stage runs now
	msgError  = 'E' // child → parent: setup failed; payload is the text
)

// syncFD is the child's end of the socket. It is fixed, not named in the
// environment, so ReadConfig finds it after Dispatch has cleaned the
// environment. Cmd.ExtraFiles therefore start at fd 4 (ExtraFilesFD).
const syncFD = 3

// ExtraFilesFD is the child's fd number of Cmd.ExtraFiles[0].
const ExtraFilesFD = syncFD + 1

// maxFrame bounds what a reader allocates on a corrupt length.
const maxFrame = 64 << 20

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	return frame.Write(w, typ, payload, maxFrame)
}

// readFrame returns io.EOF only when the peer closed before a frame began.
func readFrame(r io.Reader) (byte, []byte, error) { return frame.Read(r, maxFrame) }

// fdReader reads a raw descriptor without os.File, which would close it
// when garbage collected.
type fdReader int

func (f fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

type fdWriter int

func (f fdWriter) Write(p []byte) (int, error) {
	total := 0
	for total < len(p) {
		n, err := unix.Write(int(f), p[total:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}
