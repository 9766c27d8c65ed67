package registry

import (
	"context"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxResumes bounds how often one blob's download picks up again after
// its connection dropped mid-way (oras retries a request that fails whole).
const maxResumes = 3

// openBlob reads layer blob l from offset on. oras hands back a seekable
// reader when the registry serves byte ranges: a seek is a new GET with a
// Range header, so a resumed download fetches only what is missing. A
// registry without ranges sends the whole blob and the prefix is dropped.
func (m *resolved) openBlob(ctx context.Context, l ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	open := func(off int64) (io.ReadCloser, error) {
		rc, err := m.ep.Repo.Blobs().Fetch(ctx, l)
		if err != nil {
			return nil, explainFetch(err, "blob "+l.Digest.String(), m.ep.Host)
		}
		if off == 0 {
			return rc, nil
		}
		if rs, ok := rc.(io.ReadSeeker); ok {
			if _, err := rs.Seek(off, io.SeekStart); err == nil {
				return rc, nil
			}
			rc.Close()
			if rc, err = m.ep.Repo.Blobs().Fetch(ctx, l); err != nil {
				return nil, explainFetch(err, "blob "+l.Digest.String(), m.ep.Host)
			}
		}
		if _, err := io.CopyN(io.Discard, rc, off); err != nil {
			rc.Close()
			return nil, fmt.Errorf("blob %s: skipping to byte %d: %w", l.Digest, off, err)
		}
		return rc, nil
	}
	rc, err := open(offset)
	if err != nil {
		return nil, err
	}
	return &resumer{ctx: ctx, open: open, rc: rc, off: offset}, nil
}

// resumer re-opens a blob at the byte it got to when the connection drops.
type resumer struct {
	ctx   context.Context
	open  func(int64) (io.ReadCloser, error)
	rc    io.ReadCloser
	off   int64
	tries int
}

func (r *resumer) Read(b []byte) (int, error) {
	n, err := r.rc.Read(b)
	r.off += int64(n)
	if err == nil || err == io.EOF || r.ctx.Err() != nil || r.tries >= maxResumes {
		return n, err
	}
	r.tries++
	r.rc.Close()
	rc, oerr := r.open(r.off)
	if oerr != nil {
		r.rc = io.NopCloser(errReader{err})
		return n, err
	}
	r.rc = rc
	return n, nil
}

func (r *resumer) Close() error { return r.rc.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
