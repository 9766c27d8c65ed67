package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"nook/image/layer"
)

// A pull stages what it fetches in pulls/, beside the store, without the
// store's lock: a registry is slow and the lock must never wait on the
// network. The next writer clears tmp/, so pulls keep their own area:
//
//	pulls/blobs/sha256/HEX          a blob fetched and verified, not yet in the store
//	pulls/blobs/sha256/HEX.partial  a blob being fetched (flock'd by its fetcher);
//	                                a killed pull leaves it for the next to resume
//	pulls/run-*/                    one pull's unpacked layers (flock'd on run-*/lock),
//	                                removed by the next pull once its owner is gone
//
// Blobs left in pulls/blobs go when a day old (the next pull clears them)
// or at `image prune` when no pull runs (see clearPullBlobs).
//
// Commit then takes the lock briefly and renames blobs and layers into the
// store, the index entry last: nothing is visible under the image's name
// before every blob is verified.

// AnnotationRepoDigest on an index entry is the digest a registry gave for
// the entry's name when it was pulled (an index's digest for a
// multi-platform image): what Docker shows as RepoDigests.
const AnnotationRepoDigest = "io.nook.repo.digest"

// PullOptions tune a pull's staging.
type PullOptions struct {
	Chown bool // keep the layers' owners (needs root, real or in a user namespace)
}

// Pull is one pull's staging area. Its methods may be called from several
// goroutines at once.
type Pull struct {
	s    *Store
	dir  string   // pulls/run-*: this pull's layers
	lock *os.File // held while the pull lives
	opts PullOptions

	settling  sync.WaitGroup // blobs being synced and renamed aside (fetch)
	mu        sync.Mutex
	settleErr error                         // the first of those that failed
	blobs     map[digest.Digest]string      // verified blobs: path under pulls/, "" when the store has it
	layers    map[digest.Digest]stagedLayer // unpacked layers by diff id
	res       LoadResult                    // warnings (Skipped, SingleID)
}

// PullLayer is one layer blob a pull wants.
type PullLayer struct {
	Desc   ocispec.Descriptor // from the manifest
	DiffID digest.Digest      // from the config
	// Fetch opens the blob from offset on: 0 for all of it, more to
	// resume a partial download.
	Fetch func(ctx context.Context, offset int64) (io.ReadCloser, error)
	// Progress, when set, is told the bytes of the blob had so far.
	Progress func(current int64)
}

// LayerOutcome says what Layer had to do.
type LayerOutcome int

// Outcomes of Layer.
const (
	LayerExists   LayerOutcome = iota // blob and unpacked layer both there: nothing done
	LayerFetched                      // fetched (resumed or whole), verified, unpacked as it arrived
	LayerUnpacked                     // the blob was there; unpacked from it
)

// BeginPull makes this pull's staging area and clears what killed pulls
// left: their unpacked layers, and blobs older than a day (younger ones,
// complete or partial, wait for a later pull to reuse them).
func (s *Store) BeginPull(opts PullOptions) (*Pull, error) {
	if err := s.r.MkdirAll("pulls/blobs/sha256", 0o700); err != nil {
		return nil, fmt.Errorf("creating pull area: %w", err)
	}
	s.clearDeadPulls()
	s.clearPullBlobs(false)
	dir, err := s.mkdirTemp("pulls", "run-")
	if err != nil {
		return nil, fmt.Errorf("creating pull area: %w", err)
	}
	lock, err := s.r.Create(path.Join(dir, "lock"))
	if err == nil {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX)
	}
	if err != nil {
		s.r.RemoveAll(dir)
		return nil, fmt.Errorf("locking pull area: %w", err)
	}
	return &Pull{s: s, dir: dir, lock: lock, opts: opts,
		blobs: map[digest.Digest]string{}, layers: map[digest.Digest]stagedLayer{}}, nil
}

// Close removes the pull's unpacked layers that Commit did not take.
func (p *Pull) Close() error {
	p.settling.Wait()
	err := p.s.r.RemoveAll(p.dir)
	p.lock.Close()
	return err
}

// Result is the warnings the pull's unpacking gave.
func (p *Pull) Result() LoadResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.res
}

func (p *Pull) stagedBlob(d digest.Digest) string {
	return path.Join("pulls", "blobs", "sha256", d.Encoded())
}

// Layer makes sure the store will have layer l, blob and unpacked
// directory, fetching only what neither the store nor an earlier pull has.
// A fetched blob is hashed, decompressed, hashed again and unpacked in one
// pass as it arrives; it stays (verified) in the pull area if the pull
// fails later. A digest or diff id that does not match deletes what was
// fetched and fails with ErrVerify.
func (p *Pull) Layer(ctx context.Context, l PullLayer) (LayerOutcome, error) {
	if err := checkDigest(l.Desc.Digest); err != nil {
		return 0, fmt.Errorf("%w: layer digest: %v", ErrVerify, err)
	}
	if err := checkDigest(l.DiffID); err != nil {
		return 0, fmt.Errorf("%w: diff id of layer %s: %v", ErrVerify, l.Desc.Digest, err)
	}
	for {
		if blob, ok := p.haveBlob(l.Desc.Digest); ok {
			p.keepBlob(l.Desc.Digest, blob)
			if p.haveLayer(l.DiffID) {
				return LayerExists, nil
			}
			return LayerUnpacked, p.unpackLocal(l, blob)
		}
		fetched, err := p.fetch(ctx, l)
		if err != nil || fetched {
			return LayerFetched, err
		}
		// Another pull fetched the blob while this one waited for it.
	}
}

// Have reports that the store has layer l's blob and unpacked layer
// already: Layer would do nothing.
func (p *Pull) Have(l PullLayer) bool {
	_, ok := p.haveBlob(l.Desc.Digest)
	return ok && p.haveLayer(l.DiffID)
}

// haveBlob finds a blob in the store ("") or the pull area (its name).
func (p *Pull) haveBlob(d digest.Digest) (string, bool) {
	if p.s.exists(blobName(d)) {
		return "", true
	}
	if staged := p.stagedBlob(d); p.s.exists(staged) {
		return staged, true
	}
	return "", false
}

// haveLayer reports an unpacked layer the store or this pull has.
func (p *Pull) haveLayer(diffID digest.Digest) bool {
	p.mu.Lock()
	_, staged := p.layers[diffID]
	p.mu.Unlock()
	return staged || p.s.exists(layerName(diffID))
}

func (p *Pull) keepBlob(d digest.Digest, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blobs[d] = name
}

// unpackLocal unpacks a layer from a blob the store or the pull area has,
// checking it again on the way.
func (p *Pull) unpackLocal(l PullLayer, name string) error {
	staged := name != ""
	if !staged {
		name = blobName(l.Desc.Digest)
	}
	f, err := p.s.r.Open(name)
	if err != nil {
		return fmt.Errorf("reading blob %s: %w", l.Desc.Digest, err)
	}
	defer f.Close()
	err = p.unpack(l, f)
	if staged && errors.Is(err, ErrVerify) {
		// Damaged since it was fetched: the next pull fetches it again.
		p.s.r.Remove(name)
	}
	return err
}

// unpack streams blob bytes from in through the checks and, when neither
// the store nor this pull has it, into an unpacked layer.
func (p *Pull) unpack(l PullLayer, in io.Reader) error {
	root, dir := "", ""
	if !p.haveLayer(l.DiffID) {
		var err error
		if dir, err = p.s.mkdirTemp(p.dir, "layer-"); err != nil {
			return fmt.Errorf("staging layer %s: %w", l.DiffID, err)
		}
		root = path.Join(dir, "diff")
	}
	st, err := p.s.streamLayer(in, root, p.opts.Chown, "blob "+l.Desc.Digest.String())
	if st.digest != "" && (st.digest != l.Desc.Digest || st.size != l.Desc.Size) {
		err = fmt.Errorf("%w: blob %s is %s, %d bytes; the manifest says %s, %d bytes", ErrVerify, l.Desc.Digest, st.digest, st.size, l.Desc.Digest, l.Desc.Size)
	} else if err == nil && st.diffID != l.DiffID {
		err = fmt.Errorf("%w: layer %s has diff id %s, the config's rootfs.diff_ids says %s", ErrVerify, l.Desc.Digest, st.diffID, l.DiffID)
	}
	if err != nil {
		if dir != "" {
			p.s.r.RemoveAll(dir)
		}
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if root != "" {
		p.layers[l.DiffID] = stagedLayer{dir: dir, size: st.tarSize, xattrs: st.applied.Xattrs}
		p.res.note(st.applied)
	}
	return nil
}

// fetch downloads a blob into pulls/, resuming a partial one, and unpacks
// it as it arrives (unless the layer is there: then it only checks). A
// failure of the network keeps what arrived for the next pull to resume;
// any other (a digest that does not match, a corrupt stream, a hostile
// tar) deletes it. It reports false, having done nothing, when another
// pull completed the blob while this one waited for its lock.
func (p *Pull) fetch(ctx context.Context, l PullLayer) (bool, error) {
	d := l.Desc.Digest
	final := p.stagedBlob(d)
	f, err := p.s.r.OpenFile(final+".partial", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("staging blob %s: %w", d, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	// Two pulls of one blob: the second waits and then finds it complete.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return false, fmt.Errorf("locking blob %s: %w", d, err)
	}
	if _, ok := p.haveBlob(d); ok {
		return false, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("staging blob %s: %w", d, err)
	}
	have := fi.Size()
	if have >= l.Desc.Size { // a longer partial is no prefix of this blob
		have = 0
	}
	if err := f.Truncate(have); err != nil {
		return false, fmt.Errorf("staging blob %s: %w", d, err)
	}
	rc, err := l.Fetch(ctx, have)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	// The bytes kept from an earlier try are read back for the checks
	// and the unpack; only what is new crosses the network and is written.
	// Whole chunks from the network: one write of the blob per chunk,
	// not one per TCP read.
	net := &readErr{r: fillReader{io.LimitReader(rc, l.Desc.Size-have+1)}}
	arriving := io.TeeReader(net, &fileAppender{f: f, off: have})
	in := io.MultiReader(io.NewSectionReader(f, 0, have), arriving)
	if l.Progress != nil {
		in = &progressReader{r: in, fn: l.Progress}
	}
	if err := p.unpack(l, in); err != nil {
		if net.err == nil {
			p.s.r.Remove(final + ".partial")
		}
		return true, err
	}
	// One syncfs makes the blob and the layer just unpacked durable (the
	// rename, and Commit's, depend on it) while the other layers still
	// download: Commit's own sync then finds little left to write. It
	// runs aside, so that the next layer's download starts meanwhile;
	// the partial blob stays locked until it is renamed.
	held := f
	f = nil
	p.settling.Go(func() {
		defer held.Close()
		err := p.s.syncFS()
		if err == nil {
			err = p.s.r.Rename(final+".partial", final)
		}
		if err != nil {
			p.settleFailed(fmt.Errorf("staging blob %s: %w", d, err))
			return
		}
		p.keepBlob(d, final)
	})
	return true, nil
}

// settleFailed keeps the first failure of a blob's background sync for
// Commit to return.
func (p *Pull) settleFailed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.settleErr == nil {
		p.settleErr = err
	}
}

// settled waits for the blobs' background syncs and says whether one failed.
func (p *Pull) settled() error {
	p.settling.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settleErr
}

// fileAppender writes at a moving offset of f (which a SectionReader reads
// from the start at the same time).
type fileAppender struct {
	f   *os.File
	off int64
}

func (a *fileAppender) Write(b []byte) (int, error) {
	n, err := a.f.WriteAt(b, a.off)
	layer.StartWriteback(a.f, a.off, int64(n))
	a.off += int64(n)
	return n, err
}

// fillReader fills what it is asked to read, as far as its source goes.
type fillReader struct{ r io.Reader }

func (f fillReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readErr remembers its source's failure, to tell a lost connection from
// bad content.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n += int64(n)
	r.fn(r.n)
	return n, err
}
