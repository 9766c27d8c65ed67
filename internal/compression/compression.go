// Package compression recognises the compressions a layer blob or an
// imported tarball may carry (gzip, zstd, bzip2, xz) by their magic bytes
// rather than by file names or media types, which are often wrong, and
// opens a decompressing reader for them. It also writes gzip and zstd for
// save and push.
package compression

import (
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"nook/internal/compression/magic"
)

// Kind is a compression format (see package magic, which recognises them
// without linking any codec).
type Kind = magic.Kind

// The formats Detect recognises.
const (
	None  = magic.None
	Gzip  = magic.Gzip
	Zstd  = magic.Zstd
	Bzip2 = magic.Bzip2
	Xz    = magic.Xz
)

// ErrUnsupported is returned by NewWriter for a format it cannot write.
var ErrUnsupported = errors.New("unsupported compression")

// Detect peeks at the first bytes of r and says which compression they
// announce. The returned reader yields the whole stream, the peeked bytes
// included. A stream shorter than any magic is None, not an error.
func Detect(r io.Reader) (Kind, io.Reader, error) { return magic.Detect(r) }

// Decompress detects the compression of r and returns a reader of the
// decompressed stream (r itself when uncompressed). Close releases the
// decoder (zstd keeps goroutines until then); it does not close r. A
// corrupt stream shows up as an error from Read that names the format.
func Decompress(r io.Reader) (io.ReadCloser, Kind, error) {
	kind, r, err := Detect(r)
	if err != nil {
		return nil, None, err
	}
	var (
		dec     io.Reader
		closeFn func() error
	)
	switch kind {
	case None:
		return io.NopCloser(r), None, nil
	case Gzip:
		// Multistream (the default) because pigz and some registries
		// emit concatenated members.
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, kind, fmt.Errorf("decompressing %s: %w", kind, err)
		}
		dec, closeFn = zr, zr.Close
	case Zstd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, kind, fmt.Errorf("decompressing %s: %w", kind, err)
		}
		dec, closeFn = zr, func() error { zr.Close(); return nil }
	case Bzip2:
		dec = bzip2.NewReader(r)
	case Xz:
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, kind, fmt.Errorf("decompressing %s: %w", kind, err)
		}
		dec = xr
	}
	return &reader{r: dec, kind: kind, close: closeFn}, kind, nil
}

// reader names the format in every error but io.EOF, so "corrupt input"
// from deep inside a layer pull says which decoder complained.
type reader struct {
	r     io.Reader
	kind  Kind
	close func() error
}

func (d *reader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("decompressing %s: %w", d.kind, err)
	}
	return n, err
}

func (d *reader) Close() error {
	if d.close == nil {
		return nil
	}
	return d.close()
}

// NewWriter compresses into w with format k. Level 0 means the format's
// default; otherwise it is the format's own scale (gzip 1-9, zstd 1-22).
// None passes writes through. Close flushes the stream, not w.
func NewWriter(w io.Writer, k Kind, level int) (io.WriteCloser, error) {
	switch k {
	case None:
		return nopWriteCloser{w}, nil
	case Gzip:
		if level == 0 {
			level = gzip.DefaultCompression
		}
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, fmt.Errorf("creating %s writer at level %d: %w", k, level, err)
		}
		return zw, nil
	case Zstd:
		opts := []zstd.EOption{}
		if level != 0 {
			opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
		}
		zw, err := zstd.NewWriter(w, opts...)
		if err != nil {
			return nil, fmt.Errorf("creating %s writer at level %d: %w", k, level, err)
		}
		return zw, nil
	}
	return nil, fmt.Errorf("writing %s: %w", k, ErrUnsupported)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
