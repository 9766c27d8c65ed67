package image

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image/layer"
	"nook/internal/compression"
)

// layer verifies one layer blob against its descriptor (when the archive
// has one) and its diff id, staging the blob and the unpacked layer unless
// the store or this load has them already. It returns the blob's
// descriptor.
func (tx *loadTx) layer(l LoadLayer, diffID digest.Digest) (ocispec.Descriptor, error) {
	desc := l.Desc
	key := string(desc.Digest)
	if desc.Digest == "" {
		key = "member:" + l.Member
		if d, ok := tx.legacy[l.Member]; ok {
			desc = d
		}
	} else if err := checkDigest(desc.Digest); err != nil {
		return desc, fmt.Errorf("%w: %s: %v", ErrVerify, l.Member, err)
	}
	if seen, ok := tx.verified[key]; ok {
		if seen != diffID {
			return desc, fmt.Errorf("%w: %s has diff id %s, the config says %s", ErrVerify, l.Member, seen, diffID)
		}
		return desc, nil
	}
	_, blobStaged := tx.blobs[desc.Digest]
	_, layerStaged := tx.layers[diffID]
	blobHave := blobStaged || (desc.Digest != "" && tx.s.exists(blobName(desc.Digest)))
	layerHave := layerStaged || tx.s.exists(layerName(diffID))
	// An uncompressed blob already stored under its diff id was unpacked
	// from those very bytes: there is nothing to read or check.
	if blobHave && layerHave && desc.Digest == diffID {
		tx.verified[key] = diffID
		return desc, nil
	}
	got, err := tx.readLayer(l, desc, diffID, !blobHave, !layerHave)
	if err != nil {
		return desc, err
	}
	tx.verified[key] = diffID
	if l.Desc.Digest == "" {
		tx.legacy[l.Member] = got
	}
	return got, nil
}

func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %s: only sha256 is supported", d)
	}
	return nil
}

// hashCounter hashes and counts what passes through it.
type hashCounter struct {
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// readLayer streams a layer blob once: the raw bytes are hashed (and
// staged as the blob when wanted), the decompressed tar is hashed for the
// diff id (and unpacked when wanted). Every check happens before the
// caller may commit anything.
func (tx *loadTx) readLayer(l LoadLayer, desc ocispec.Descriptor, diffID digest.Digest, wantBlob, wantLayer bool) (ocispec.Descriptor, error) {
	rc, err := l.Open()
	if err != nil {
		return desc, fmt.Errorf("opening %s: %w", l.Member, err)
	}
	defer rc.Close()
	in, closeIn, err := legacyStream(rc, desc)
	if err != nil {
		return desc, fmt.Errorf("reading %s: %w", l.Member, err)
	}
	defer closeIn()
	var blob *os.File
	var blobTmp string
	var bw *bufio.Writer
	if wantBlob {
		blobTmp = tx.tempPath("blob")
		if blob, err = tx.s.r.Create(blobTmp); err != nil {
			return desc, fmt.Errorf("staging %s: %w", l.Member, err)
		}
		defer blob.Close()
		bw = bufio.NewWriterSize(blob, 1<<20)
		in = io.TeeReader(in, bw)
	}
	var dir, root string
	if wantLayer {
		dir = tx.tempPath("layer")
		root = path.Join(dir, "diff")
	}
	st, err := tx.s.streamLayer(in, root, tx.opts.Chown, l.Member)
	if err != nil {
		return desc, err
	}
	got := ocispec.Descriptor{MediaType: desc.MediaType, Digest: st.digest, Size: st.size}
	if desc.Digest == "" {
		got.MediaType = layerMediaType(st.kind)
	} else if got.Digest != desc.Digest || got.Size != desc.Size {
		return desc, fmt.Errorf("%w: blob %s (%s) is %s, %d bytes; its descriptor says %s, %d bytes", ErrVerify, desc.Digest, l.Member, got.Digest, got.Size, desc.Digest, desc.Size)
	}
	if st.diffID != diffID {
		return desc, fmt.Errorf("%w: layer %s has diff id %s, the config's rootfs.diff_ids says %s", ErrVerify, l.Member, st.diffID, diffID)
	}
	if wantBlob {
		if err := bw.Flush(); err != nil {
			return desc, fmt.Errorf("staging %s: %w", l.Member, err)
		}
		if err := blob.Sync(); err != nil {
			return desc, fmt.Errorf("staging %s: %w", l.Member, err)
		}
		tx.blobs[got.Digest] = blobTmp
	} else if _, ok := tx.blobs[got.Digest]; !ok {
		tx.blobs[got.Digest] = ""
	}
	if wantLayer {
		tx.layers[diffID] = stagedLayer{dir: dir, size: st.tarSize, xattrs: st.applied.Xattrs}
		tx.res.note(st.applied)
	}
	return got, nil
}

// note keeps an unpack's warnings.
func (r *LoadResult) note(applied layer.ApplyResult) {
	r.SingleID = r.SingleID || applied.SingleID
	for _, s := range applied.Skipped {
		if !slices.Contains(r.Skipped, s) {
			r.Skipped = append(r.Skipped, s)
		}
	}
}

// streamed is what one pass over a layer blob found.
type streamed struct {
	digest  digest.Digest // of the blob's bytes
	size    int64
	diffID  digest.Digest // of the uncompressed tar
	tarSize int64
	kind    compression.Kind
	applied layer.ApplyResult
}

// streamLayer reads a layer blob once from in: it hashes the raw bytes,
// decompresses them (gzip, zstd or none), hashes the tar and, when root is
// not "", unpacks it there. It reads in to its end, so the digests cover
// every byte; comparing them is the caller's job, before it commits
// anything. what names the blob in errors.
func (s *Store) streamLayer(in io.Reader, root string, chown bool, what string) (streamed, error) {
	source := &sourceErr{r: in}
	raw := &hashCounter{h: sha256.New()}
	// The source is read, hashed (and, in a pull, written as the blob) in
	// a goroutine of its own, ahead of the decoder. Large reads below the
	// decoders: gzip reads through a 4 KiB buffer of its own otherwise.
	ahead := newReadahead(io.TeeReader(source, raw))
	defer ahead.Close()
	src := bufio.NewReaderSize(ahead, 1<<20)
	st, err := s.streamTar(src, raw, root, chown, what)
	if err != nil {
		// Bad content: read on, so the caller can tell a blob that is
		// not the one described (a digest mismatch) from a bad layer.
		// Reading to the end also settles source.err (see readahead).
		_, derr := io.Copy(io.Discard, src)
		if derr == nil && source.err == nil {
			st.digest, st.size = digest.NewDigest(digest.SHA256, raw.h), raw.n
		}
	}
	return st, err
}

// sourceErr remembers a failure of the stream itself (a dropped
// connection, a read error) as opposed to what was made of its bytes.
type sourceErr struct {
	r   io.Reader
	err error
}

func (e *sourceErr) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

func (s *Store) streamTar(src io.Reader, raw *hashCounter, root string, chown bool, what string) (streamed, error) {
	var st streamed
	kind, detected, err := compression.Detect(src)
	if err != nil {
		return st, fmt.Errorf("reading %s: %w", what, err)
	}
	if kind != compression.None && kind != compression.Gzip && kind != compression.Zstd {
		return st, fmt.Errorf("%w: %s is compressed with %s, which an image layer cannot be", ErrVerify, what, kind)
	}
	dec, _, err := compression.Decompress(detected)
	if err != nil {
		return st, fmt.Errorf("reading %s: %w", what, err)
	}
	defer dec.Close()
	// An uncompressed blob is its own tar: its digest is the diff id, and
	// hashing the same bytes twice would cost a second pass of SHA-256.
	tarHash := raw
	var tarStream io.Reader = dec
	if kind != compression.None {
		// Decompression, the costliest stage, gets a goroutine of its
		// own; the tar's hash and the unpack run in this one.
		inflated := newReadahead(dec)
		defer inflated.Close() // before dec.Close (deferred earlier, run later)
		tarHash = &hashCounter{h: sha256.New()}
		tarStream = io.TeeReader(inflated, tarHash)
	}
	if root != "" {
		if st.applied, err = s.applyLayer(tarStream, root, chown); err != nil {
			return st, fmt.Errorf("unpacking %s: %w", what, err)
		}
	}
	// The tar reader stops at the end-of-archive marker and a decoder at
	// the end of its stream; the digests cover every byte after them.
	if _, err := io.Copy(io.Discard, tarStream); err != nil {
		return st, fmt.Errorf("reading %s: %w", what, err)
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return st, fmt.Errorf("reading %s: %w", what, err)
	}
	st.digest, st.size, st.kind = digest.NewDigest(digest.SHA256, raw.h), raw.n, kind
	st.diffID, st.tarSize = st.digest, raw.n
	if tarHash != raw {
		st.diffID, st.tarSize = digest.NewDigest(digest.SHA256, tarHash.h), tarHash.n
	}
	return st, nil
}

// legacyStream returns the stream readLayer stores and hashes as a layer's
// blob: r itself, but for a layer of a docker-archive without manifests
// (no descriptor) compressed with bzip2 or xz, which Docker's load takes
// and OCI has no media type for. Such a layer is stored as its tar: its
// blob is then uncompressed, its digest the diff id. A layer that comes
// with a descriptor keeps its bytes, and bzip2 or xz is refused.
func legacyStream(r io.Reader, desc ocispec.Descriptor) (io.Reader, func() error, error) {
	nop := func() error { return nil }
	if desc.Digest != "" {
		return r, nop, nil
	}
	kind, detected, err := compression.Detect(r)
	if err != nil {
		return nil, nil, err
	}
	if kind != compression.Bzip2 && kind != compression.Xz {
		return detected, nop, nil
	}
	dec, _, err := compression.Decompress(detected)
	if err != nil {
		return nil, nil, err
	}
	return dec, dec.Close, nil
}

func layerMediaType(k compression.Kind) string {
	switch k {
	case compression.Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case compression.Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// commit moves what the load staged into the store: blobs, then layers,
// then the index, so a crash in between leaves only unreferenced data
// that gc removes.
func (tx *loadTx) commit() error {
	for d, p := range tx.blobs {
		if p == "" {
			continue
		}
		if err := tx.s.commitBlob(p, d); err != nil {
			return err
		}
	}
	for d, l := range tx.layers {
		if l.dir == "" {
			continue
		}
		if err := tx.s.commitLayer(l.dir, layerMeta{DiffID: d, Size: l.size, Xattrs: l.xattrs}); err != nil {
			return err
		}
	}
	idx, err := tx.s.readIndex()
	if err != nil {
		return err
	}
	before, err := tx.s.images(idx)
	if err != nil {
		return err
	}
	for _, img := range tx.images {
		if len(img.names) == 0 {
			setName(&idx, img.desc, "")
		}
		for _, n := range img.names {
			for _, old := range before {
				// The same config under another manifest (its layers
				// compressed differently) is no news to the user.
				if old.ID != img.id && slices.Contains(old.Names, n) {
					tx.res.Renamed = append(tx.res.Renamed, Renamed{Name: n, OldID: old.ID})
				}
			}
			setName(&idx, img.desc, n)
		}
	}
	return tx.s.writeIndex(idx)
}

// result lists the loaded images in the order the archive gave them.
func (tx *loadTx) result() (LoadResult, error) {
	res := tx.res
	for _, st := range tx.images {
		i := slices.IndexFunc(res.Images, func(l Loaded) bool { return l.Image.Digest == st.desc.Digest })
		if i < 0 {
			img, err := tx.s.imageByDigest(st.desc.Digest)
			if err != nil {
				return res, err
			}
			res.Images = append(res.Images, Loaded{Image: img})
			i = len(res.Images) - 1
		}
		for _, n := range st.names {
			if !slices.Contains(res.Images[i].Names, n) {
				res.Images[i].Names = append(res.Images[i].Names, n)
			}
		}
	}
	return res, nil
}
