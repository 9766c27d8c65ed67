package tarball

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// Formats Write can produce.
const (
	// FormatDocker is what Docker 25 writes: an OCI image layout whose
	// index.json entries carry the tag (org.opencontainers.image.ref.name)
	// and the full name (io.containerd.image.name), plus the legacy
	// manifest.json and repositories, so Docker of any age, Podman and
	// skopeo (docker-archive: and oci-archive:) all read it.
	FormatDocker = "docker-archive"
	// FormatOCI is a plain OCI image layout whose ref.name is the full
	// name, for tools that name images by it.
	FormatOCI = "oci-archive"
)

// WriteOptions tune Write.
type WriteOptions struct {
	Format string // FormatDocker when empty
}

// epoch is every entry's mtime: the output depends only on the images.
var epoch = time.Unix(0, 0)

// Write writes imgs as one tar to w. The output is a function of the
// images and their names alone: entries sorted by name, mtime 0, owner
// 0:0 without names, USTAR headers (PAX only for a blob of 8 GiB or
// more), and JSON with sorted entries. open opens a blob of the store;
// blobs are written as stored.
func Write(w io.Writer, imgs []image.ExportImage, open func(digest.Digest) (*os.File, error), opts WriteOptions) error {
	format := opts.Format
	if format == "" {
		format = FormatDocker
	}
	if format != FormatDocker && format != FormatOCI {
		return fmt.Errorf("unknown archive format %q: want %s or %s", format, FormatDocker, FormatOCI)
	}
	files, err := metadataFiles(imgs, format)
	if err != nil {
		return err
	}
	blobs := map[digest.Digest]int64{}
	for _, img := range imgs {
		blobs[img.Digest] = img.Desc.Size
		blobs[img.ID] = img.Manifest.Config.Size
		for _, l := range img.Manifest.Layers {
			blobs[l.Digest] = l.Size
		}
	}
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
	}
	for _, d := range sortedDigests(blobs) {
		if err := writeBlob(tw, d, blobs[d], open); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := writeFile(tw, n, files[n]); err != nil {
			return err
		}
	}
	return tw.Close()
}

func sortedDigests(m map[digest.Digest]int64) []digest.Digest {
	ds := make([]digest.Digest, 0, len(m))
	for d := range m {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return ds
}

func header(name string, size int64) *tar.Header {
	h := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: epoch, Format: tar.FormatUSTAR}
	if size >= 1<<33 {
		h.Format = tar.FormatPAX // USTAR's size field stops at 8 GiB
	}
	return h
}

func writeFile(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(header(name, int64(len(b)))); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	_, err := tw.Write(b)
	return err
}

// writeBlob copies a blob from the store, refusing one whose size is not
// what its descriptor says: the tar header has promised that size.
func writeBlob(tw *tar.Writer, d digest.Digest, size int64, open func(digest.Digest) (*os.File, error)) error {
	f, err := open(d)
	if err != nil {
		return fmt.Errorf("reading blob %s: %w", d, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading blob %s: %w", d, err)
	}
	if fi.Size() != size {
		return fmt.Errorf("%w: blob %s is %d bytes, its descriptor says %d", image.ErrCorruptStore, d, fi.Size(), size)
	}
	if err := tw.WriteHeader(header("blobs/sha256/"+d.Encoded(), size)); err != nil {
		return fmt.Errorf("writing blob %s: %w", d, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("writing blob %s: %w", d, err)
	}
	return nil
}

// metadataFiles builds index.json and oci-layout, and for Docker's format
// manifest.json and repositories.
func metadataFiles(imgs []image.ExportImage, format string) (map[string][]byte, error) {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	var legacy []legacyEntry
	repos := map[string]map[string]string{}
	for _, img := range imgs {
		desc := img.Desc
		desc.Annotations = nil
		if len(img.Tags) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		e := legacyEntry{Config: "blobs/sha256/" + img.ID.Encoded(), Layers: []string{}}
		for _, l := range img.Manifest.Layers {
			e.Layers = append(e.Layers, "blobs/sha256/"+l.Digest.Encoded())
		}
		for _, full := range img.Tags {
			repo, tag := image.FamiliarRepoTag(full)
			refName := tag
			if format == FormatOCI {
				refName = full
			}
			d := desc
			d.Annotations = map[string]string{image.AnnotationImageName: full, ocispec.AnnotationRefName: refName}
			idx.Manifests = append(idx.Manifests, d)
			e.RepoTags = append(e.RepoTags, image.FamiliarName(full))
			if n := len(e.Layers); n > 0 {
				if repos[repo] == nil {
					repos[repo] = map[string]string{}
				}
				repos[repo][tag] = img.Manifest.Layers[n-1].Digest.Encoded()
			}
		}
		legacy = append(legacy, e)
	}
	slices.SortStableFunc(idx.Manifests, func(a, b ocispec.Descriptor) int {
		if c := strings.Compare(a.Annotations[image.AnnotationImageName], b.Annotations[image.AnnotationImageName]); c != 0 {
			return c
		}
		return strings.Compare(string(a.Digest), string(b.Digest))
	})
	files := map[string][]byte{}
	var err error
	if files["index.json"], err = json.Marshal(idx); err != nil {
		return nil, err
	}
	files[ocispec.ImageLayoutFile], _ = json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if format == FormatOCI {
		return files, nil
	}
	if files["manifest.json"], err = json.Marshal(legacy); err != nil {
		return nil, err
	}
	if len(repos) > 0 {
		if files["repositories"], err = json.Marshal(repos); err != nil {
			return nil, err
		}
	}
	return files, nil
}
