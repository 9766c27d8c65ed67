package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"reflect"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A GNU sparse entry (old GNU type 'S' or PAX GNU.sparse.*) claims its
// logical size with a few bytes of tar: 10 KB can describe a petabyte of
// holes. archive/tar's Read fills the holes with zeros, so reading one
// costs time in proportion to the claim, not to the data. The reader's
// per-entry WriteTo seeks over holes when it writes into an
// io.WriteSeeker, but archive/tar keeps it unexported until it supports
// sparse files publicly (golang.org/issue/22735); entryWriterTo reaches
// it. TestSparseFastPath fails if a Go release moves it, and until then
// writeSparse falls back to reading the zeros.
//
// Why not learn the data segments from the header instead: only the PAX
// sparse formats 0.0 and 0.1 leave their map in Header.PAXRecords
// (GNU.sparse.map). The old GNU form (type 'S', what GNU tar --sparse
// writes by default) keeps it in the raw header block and PAX 1.0 (GNU
// tar --posix) at the head of the entry's data, both consumed inside
// archive/tar and not exposed; and reading only the segments would mean
// reading the entry's bytes beside tar.Reader, whose Next then skips
// them again. Each way needs archive/tar's internals or a tar parser of
// our own; no maintained Go tar library exposes the holes
// (golang.org/issue/13548 and 22735 are open).

// entryWriterTo returns the current entry's own WriterTo of tr, or nil.
func entryWriterTo(tr *tar.Reader) io.WriterTo {
	f := reflect.ValueOf(tr).Elem().FieldByName("curr")
	if !f.IsValid() || f.Kind() != reflect.Interface || !f.CanAddr() {
		return nil
	}
	f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	if f.IsNil() {
		return nil
	}
	wt, _ := f.Interface().(io.WriterTo)
	return wt
}

// seekWriter writes at an offset of a descriptor and moves the offset
// without writing, so a skipped hole stays a hole. It remembers its own
// error, to tell the disk failing from the tar.
type seekWriter struct {
	fd  int
	off int64
	err error
}

func (w *seekWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pwrite(w.fd, p[n:], w.off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			w.err = err
			return n, err
		}
		n += m
		w.off += int64(m)
	}
	return n, nil
}

func (w *seekWriter) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += w.off
	default:
		return w.off, errors.ErrUnsupported
	}
	if off < 0 {
		return w.off, fmt.Errorf("seeking to %d: %w", off, unix.EINVAL)
	}
	w.off = off
	return off, nil
}

// ErrTooLarge marks an entry whose size the filesystem cannot hold in
// one file.
var ErrTooLarge = errors.New("larger than the filesystem holds in one file")

// writeSparse writes the current entry, a sparse file of size bytes, to
// fd with its holes left as holes. The file is sized first, so an entry
// the filesystem cannot hold is refused before any of it is read.
func (a *applier) writeSparse(fd int, name string, size int64) error {
	if err := unix.Ftruncate(fd, size); err != nil {
		if errors.Is(err, unix.EFBIG) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("entry %q: its size, %d bytes, is %w", name, size, ErrTooLarge)
		}
		return fmt.Errorf("sizing sparse file %q: %w", name, err)
	}
	w := &seekWriter{fd: fd}
	var err error
	if wt := entryWriterTo(a.tr); wt != nil {
		_, err = wt.WriteTo(w)
	} else {
		_, err = io.CopyBuffer(&holeWriter{w: w}, &a.data, a.buf)
	}
	if err == nil {
		return nil
	}
	if w.err != nil {
		if errors.Is(w.err, unix.EFBIG) {
			return fmt.Errorf("entry %q: its size, %d bytes, is %w", name, size, ErrTooLarge)
		}
		return fmt.Errorf("writing %q: %w", name, err)
	}
	if a.src.err != nil && a.src.err != io.EOF && errors.Is(err, a.src.err) {
		return fmt.Errorf("reading data of entry %q: %w", name, err)
	}
	return fmt.Errorf("%w: reading data of entry %q: %w", ErrCorrupt, name, err)
}
