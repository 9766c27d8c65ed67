package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/internal/atomicfile"
)

// What the store knows of registries, in distribution.json beside
// index.json (Docker keeps the same facts in image/*/distribution/):
//
//   - the compressed forms of uncompressed layer blobs (import and commit
//     store layers as plain tars) a push made, so the next push of the
//     same layer compresses nothing: uncompressed digest → format →
//     descriptor of a blob kept in blobs/;
//   - the repositories (host/path) known to hold a blob, from pulls and
//     pushes, so a push to another repository of the same registry can
//     ask for a cross-repository mount instead of sending the bytes.
//
// The digest a registry gave a name (RepoDigests) is not here: it is an
// annotation of the name's index entry (AnnotationRepoDigest), which pull
// and push both set.
//
// gc keeps a remembered compressed blob while its uncompressed blob lives
// and drops the records of what it removes.
type distribution struct {
	Compressed map[digest.Digest]map[string]ocispec.Descriptor `json:"compressed,omitempty"`
	Sources    map[digest.Digest][]string                      `json:"sources,omitempty"`
}

const distributionFile = "distribution.json"

// maxSources bounds the repositories remembered per blob: a mount needs
// one that still holds it, and the newest are likeliest to.
const maxSources = 8

func (s *Store) readDistribution() (distribution, error) {
	var d distribution
	b, err := s.r.ReadFile(distributionFile)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("reading %s: %w", s.abs(distributionFile), err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("%w: parsing %s: %v", ErrCorruptStore, s.abs(distributionFile), err)
	}
	return d, nil
}

func (s *Store) writeDistribution(d distribution) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return atomicfile.WriteFileIn(s.r, distributionFile, b, 0o644)
}

// Compressed returns the remembered compressed form, in format ("gzip",
// "zstd"), of the uncompressed blob d, when the store still holds it. Call
// it with the store's lock held (inside Export's fn), so the blob stays.
func (s *Store) Compressed(d digest.Digest, format string) (ocispec.Descriptor, bool) {
	dist, err := s.readDistribution()
	if err != nil {
		s.log.Warn("ignoring unreadable registry records", "err", err)
		return ocispec.Descriptor{}, false
	}
	desc, ok := dist.Compressed[d][format]
	if !ok {
		return desc, false
	}
	if fi, err := s.r.Stat(blobName(desc.Digest)); err != nil || fi.Size() != desc.Size {
		return desc, false
	}
	return desc, true
}

// BlobSources lists the repositories (host/path) known to hold blob d,
// newest first.
func (s *Store) BlobSources(d digest.Digest) []string {
	dist, err := s.readDistribution()
	if err != nil {
		s.log.Warn("ignoring unreadable registry records", "err", err)
		return nil
	}
	return dist.Sources[d]
}

// CompressedBlob is a compressed form of an uncompressed layer blob, made
// by a push in the store's scratch area (ScratchDir), to be kept.
type CompressedBlob struct {
	Uncompressed digest.Digest
	Format       string             // "gzip" or "zstd"
	Desc         ocispec.Descriptor // of the compressed blob
	// File holds the compressed bytes (Record syncs them). Its name is a
	// temporary path under ScratchDir; another writer may have cleared
	// it, then the content is copied from the open file.
	File *os.File
}

// DistributionRecord is what one transfer learned, recorded at once.
type DistributionRecord struct {
	Compressed []CompressedBlob
	// Sources: blobs a repository (host/path) holds now.
	Sources     map[string][]digest.Digest
	RepoDigests []RepoDigest
}

// RepoDigest is the digest a registry gave a name of the store's image.
type RepoDigest struct {
	Name     string        // full name: reg.lab:5000/app:1
	Manifest digest.Digest // the store's manifest the name pointed at when sent
	Digest   digest.Digest // the registry's manifest digest
}

// Record keeps what a push or a pull learned, under the store's exclusive
// lock. The caller has finished its network I/O: nothing here waits on a
// registry.
func (s *Store) Record(r DistributionRecord) error {
	unlock, err := s.lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	dist, err := s.readDistribution()
	if err != nil {
		return err
	}
	for _, c := range r.Compressed {
		if !s.exists(blobName(c.Uncompressed)) {
			continue // removed meanwhile: gc would drop the record anyway
		}
		if err := s.keepScratchBlob(c.File, c.Desc.Digest); err != nil {
			return err
		}
		if dist.Compressed == nil {
			dist.Compressed = map[digest.Digest]map[string]ocispec.Descriptor{}
		}
		if dist.Compressed[c.Uncompressed] == nil {
			dist.Compressed[c.Uncompressed] = map[string]ocispec.Descriptor{}
		}
		dist.Compressed[c.Uncompressed][c.Format] = ocispec.Descriptor{MediaType: c.Desc.MediaType, Digest: c.Desc.Digest, Size: c.Desc.Size}
	}
	for repo, blobs := range r.Sources {
		for _, b := range blobs {
			if dist.Sources == nil {
				dist.Sources = map[digest.Digest][]string{}
			}
			srcs := slices.DeleteFunc(dist.Sources[b], func(x string) bool { return x == repo })
			dist.Sources[b] = append([]string{repo}, srcs[:min(len(srcs), maxSources-1)]...)
		}
	}
	if err := s.writeDistribution(dist); err != nil {
		return err
	}
	if len(r.RepoDigests) == 0 {
		return nil
	}
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	changed := false
	for _, rd := range r.RepoDigests {
		for i := range idx.Manifests {
			// A name moved to another image meanwhile keeps its own.
			if e := &idx.Manifests[i]; e.Digest == rd.Manifest && e.Annotations[AnnotationRefName] == rd.Name {
				e.Annotations[AnnotationRepoDigest] = rd.Digest.String()
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	return s.writeIndex(idx)
}

// keepScratchBlob moves a scratch file into blobs/ as d, synced first.
// The caller holds the exclusive lock. When another writer cleared the
// scratch name (or the file is not in tmp/ at all), the open file's
// content is copied instead.
func (s *Store) keepScratchBlob(f *os.File, d digest.Digest) error {
	if s.exists(blobName(d)) {
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing compressed blob %s: %w", d, err)
	}
	err := fs.ErrNotExist
	if name, ok := s.scratchName(f); ok {
		err = s.r.Rename(name, blobName(d))
	}
	if errors.Is(err, fs.ErrNotExist) {
		err = atomicfile.WriteIn(s.r, blobName(d), 0o644, func(w io.Writer) error {
			_, err := io.Copy(w, io.NewSectionReader(f, 0, 1<<62))
			return err
		})
	} else if err == nil {
		if err = s.r.Chmod(blobName(d), 0o644); err == nil {
			err = atomicfile.SyncDirIn(s.r, path.Dir(blobName(d)))
		}
	}
	if err != nil {
		return fmt.Errorf("keeping compressed blob %s: %w", d, err)
	}
	return nil
}

// keepDistribution is gc's part: it adds to live the compressed blobs of
// live uncompressed ones and drops the records of everything else. The
// caller holds the exclusive lock. live maps encoded sha256 digests.
func (s *Store) keepDistribution(live map[string]bool) error {
	dist, err := s.readDistribution()
	if err != nil {
		return err
	}
	if dist.Compressed == nil && dist.Sources == nil {
		return nil
	}
	for d, forms := range dist.Compressed {
		if !live[d.Encoded()] {
			delete(dist.Compressed, d)
			continue
		}
		for _, c := range forms {
			live[c.Digest.Encoded()] = true
		}
	}
	for d := range dist.Sources {
		if !live[d.Encoded()] {
			delete(dist.Sources, d)
		}
	}
	return s.writeDistribution(dist)
}
