package layer

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"

	"golang.org/x/sys/unix"
)

// fdWriter writes to a raw descriptor. It is deliberately only a Writer, so
// io.CopyBuffer uses our buffer instead of a ReaderFrom's small one.
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(w), p[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// isSparse reports a GNU sparse entry (old GNU type or PAX GNU.sparse.*).
// archive/tar expands its holes into zeros; a few hundred bytes of tar can
// describe terabytes of them.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// holeWriter writes a sparse file's data when archive/tar's hole-skipping
// copy is out of reach: all-zero blocks are seeked over, so the expanded
// holes stay holes on disk, though reading them still costs time.
type holeWriter struct {
	w    *seekWriter
	zero [4096]byte
}

func (h *holeWriter) Write(p []byte) (int, error) {
	for done := 0; done < len(p); {
		blk := p[done:min(done+len(h.zero), len(p))]
		if bytes.Equal(blk, h.zero[:len(blk)]) {
			h.w.off += int64(len(blk))
		} else if n, err := h.w.Write(blk); err != nil {
			return done + n, err
		}
		done += len(blk)
	}
	return len(p), nil
}

// countingReader counts what the tar reader consumed, keeps the first bytes
// (to say "this is gzip" when the tar header is garbage) and the source's
// own error, to tell a failing source from a malformed tar.
type countingReader struct {
	r    io.Reader
	n    int64
	head []byte
	err  error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if len(c.head) < 8 {
		c.head = append(c.head, p[:min(n, 8-len(c.head))]...)
	}
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// readErrs remembers whether a copy failed reading (a truncated entry) or
// writing (the disk).
type readErrs struct {
	r   io.Reader
	err error
}

func (e *readErrs) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// onlyReader hides WriterTo so io.CopyBuffer uses the buffer it is given.
type onlyReader struct{ io.Reader }
