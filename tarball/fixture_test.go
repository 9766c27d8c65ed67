package tarball

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"nook/internal/testutil"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// tarEntry is one member of a fixture tar.
type tarEntry struct {
	name string
	body []byte
	typ  byte // tar.TypeReg when 0
	link string
	pax  map[string]string
}

// tarOf writes entries in the order given.
func tarOf(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.link,
			ModTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), PAXRecords: e.pax, Format: tar.FormatPAX}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if hdr.Typeflag == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("writing fixture header %s: %v", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(name, body string) tarEntry { return tarEntry{name: name, body: []byte(body)} }

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layerTar is a small layer: a directory and a file with the given body.
func layerTar(t testing.TB, body string) []byte {
	return tarOf(t, tarEntry{name: "etc/", typ: tar.TypeDir}, file("etc/hello", body))
}

// imageSpec describes a fixture image; the zero value of each tweak
// leaves the image well formed.
type imageSpec struct {
	layers     [][]byte // layer blobs as stored in the archive (maybe compressed)
	diffIDs    []digest.Digest
	name       string            // io.containerd.image.name
	platform   *ocispec.Platform // config's os/arch; linux/host when nil
	layerDescs func([]ocispec.Descriptor)
}

// built is a fixture image's pieces.
type built struct {
	manifest, config ocispec.Descriptor
	blobs            map[digest.Digest][]byte
}

func (s imageSpec) build(t testing.TB) built {
	t.Helper()
	b := built{blobs: map[digest.Digest][]byte{}}
	put := func(mt string, body []byte) ocispec.Descriptor {
		d := digest.FromBytes(body)
		b.blobs[d] = body
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(body))}
	}
	var descs []ocispec.Descriptor
	diffIDs := s.diffIDs
	for _, l := range s.layers {
		mt := ocispec.MediaTypeImageLayer
		raw := l
		if bytes.HasPrefix(l, []byte{0x1f, 0x8b}) {
			mt = ocispec.MediaTypeImageLayerGzip
			raw = gunzip(t, l)
		}
		descs = append(descs, put(mt, l))
		if s.diffIDs == nil {
			diffIDs = append(diffIDs, digest.FromBytes(raw))
		}
	}
	if s.layerDescs != nil {
		s.layerDescs(descs)
	}
	p := ocispec.Platform{OS: "linux", Architecture: image.HostPlatform().Architecture}
	if s.platform != nil {
		p = *s.platform
	}
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := ocispec.Image{Created: &created, Platform: p, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}}
	b.config = put(ocispec.MediaTypeImageConfig, mustJSON(t, cfg))
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: b.config, Layers: descs}
	b.manifest = put(ocispec.MediaTypeImageManifest, mustJSON(t, m))
	if s.name != "" {
		b.manifest.Annotations = map[string]string{image.AnnotationImageName: s.name}
	}
	return b
}

func gunzip(t testing.TB, b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// ociArchive is an OCI layout tar holding the images, each listed in
// index.json, with extra entries appended.
func ociArchive(t testing.TB, imgs []built, extra ...tarEntry) []byte {
	t.Helper()
	return tarOf(t, append(ociEntries(t, imgs), extra...)...)
}

func ociEntries(t testing.TB, imgs []built) []tarEntry {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	blobs := map[digest.Digest][]byte{}
	for _, b := range imgs {
		idx.Manifests = append(idx.Manifests, b.manifest)
		for d, body := range b.blobs {
			blobs[d] = body
		}
	}
	var es []tarEntry
	for _, d := range sortedKeys(blobs) {
		es = append(es, tarEntry{name: "blobs/sha256/" + d.Encoded(), body: blobs[d]})
	}
	return append(es,
		tarEntry{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		tarEntry{name: "index.json", body: mustJSON(t, idx)})
}

func sortedKeys(m map[digest.Digest][]byte) []digest.Digest {
	var ds []digest.Digest
	for d := range m {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

// legacyArchive is `docker save` before Docker 25: <id>/layer.tar members
// and manifest.json, config named <hex>.json.
func legacyArchive(t testing.TB, repoTags []string, layers [][]byte, mutate func(*[]tarEntry, *legacyEntry)) []byte {
	t.Helper()
	var diffIDs []digest.Digest
	var es []tarEntry
	e := legacyEntry{RepoTags: repoTags}
	for i, l := range layers {
		raw := l
		if bytes.HasPrefix(l, []byte{0x1f, 0x8b}) {
			raw = gunzip(t, l)
		}
		diffIDs = append(diffIDs, digest.FromBytes(raw))
		p := fmt.Sprintf("%02d%s/layer.tar", i, strings.Repeat("a", 62))
		es = append(es, tarEntry{name: p, body: l})
		e.Layers = append(e.Layers, p)
	}
	cfg := mustJSON(t, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: image.HostPlatform().Architecture}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
	e.Config = digest.FromBytes(cfg).Encoded() + ".json"
	es = append(es, tarEntry{name: e.Config, body: cfg})
	if mutate != nil {
		mutate(&es, &e)
	}
	es = append(es, tarEntry{name: "manifest.json", body: mustJSON(t, []legacyEntry{e})})
	return tarOf(t, es...)
}

// newStore opens an empty store in a temporary directory.
func newStore(t testing.TB) *image.Store {
	t.Helper()
	s, err := image.Open(t.TempDir(), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// load reads an archive from a stream into s.
func load(s *image.Store, archive []byte, opts ReadOptions) (image.LoadResult, error) {
	a, err := Open(bytes.NewReader(archive), "fixture.tar", s.Spool)
	if err != nil {
		return image.LoadResult{}, err
	}
	defer a.Close()
	return s.Load(image.LoadOptions{Chown: os.Geteuid() == 0}, func(add image.AddFunc) error { return Read(a, opts, add) })
}

// snapshot describes every file under root, one sorted line each: what
// a failed load must leave exactly as it was.
func snapshot(t testing.TB, root string) string { return testutil.TreeSnapshot(t, root) }

// spoolIn spools into dir, as the store spools into its tmp/.
func spoolIn(dir string) Spool {
	return func() (*os.File, error) {
		f, err := os.CreateTemp(dir, "archive-")
		if err == nil {
			err = os.Remove(f.Name())
		}
		return f, err
	}
}
