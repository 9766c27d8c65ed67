package tarball

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// save writes the named images of s as an archive.
func save(t testing.TB, s *image.Store, format string, refs ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := s.Export(refs, func(imgs []image.ExportImage) error {
		return Write(&buf, imgs, s.OpenBlob, WriteOptions{Format: format})
	})
	if err != nil {
		t.Fatalf("saving %v: %v", refs, err)
	}
	return buf.Bytes()
}

// twoImages is an archive of two images sharing a base layer, one of
// them with a gzip layer on top.
func twoImages(t testing.TB) []byte {
	base := layerTar(t, "base")
	a := imageSpec{layers: [][]byte{base}, name: "docker.io/library/alpha:1"}.build(t)
	b := imageSpec{layers: [][]byte{base, gz(t, tarOf(t, file("top", "beta")))}, name: "example.com/team/beta:2"}.build(t)
	return ociArchive(t, []built{a, b})
}

func loadedNames(res image.LoadResult) []string {
	var names []string
	for _, l := range res.Images {
		if len(l.Names) == 0 {
			names = append(names, l.Image.ID.String())
		}
		names = append(names, l.Names...)
	}
	slices.Sort(names)
	return names
}

// TestSaveLoadSave: an archive nook wrote loads into an empty store and
// saves again to the same bytes; saving is deterministic whatever the
// order of the names.
func TestSaveLoadSave(t *testing.T) {
	a := newStore(t)
	if _, err := load(a, twoImages(t), ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{FormatDocker, FormatOCI} {
		t.Run(format, func(t *testing.T) {
			first := save(t, a, format, "alpha:1", "example.com/team/beta:2")
			if again := save(t, a, format, "example.com/team/beta:2", "alpha:1"); !bytes.Equal(first, again) {
				t.Fatal("saving the same images twice gave different archives")
			}
			b := newStore(t)
			res, err := load(b, first, ReadOptions{})
			if err != nil {
				t.Fatalf("loading what nook saved: %v", err)
			}
			if got, want := loadedNames(res), []string{"docker.io/library/alpha:1", "example.com/team/beta:2"}; !slices.Equal(got, want) {
				t.Errorf("loaded %v, want %v", got, want)
			}
			if second := save(t, b, format, "alpha:1", "example.com/team/beta:2"); !bytes.Equal(first, second) {
				t.Error("save → load → save changed the archive")
			}
			img, err := b.Resolve("example.com/team/beta:2")
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(b.LayerDir(img.Config.RootFS.DiffIDs[1]), "top"))
			if err != nil || string(got) != "beta" {
				t.Errorf("top layer file = %q, %v", got, err)
			}
		})
	}
}

// TestArchiveShape checks what other tools rely on in nook's archive.
func TestArchiveShape(t *testing.T) {
	s := newStore(t)
	if _, err := load(s, twoImages(t), ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var names []string
	tr := tar.NewReader(bytes.NewReader(save(t, s, FormatDocker, "alpha")))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || !hdr.ModTime.Equal(time.Unix(0, 0)) || hdr.Format != tar.FormatUSTAR {
			t.Errorf("%s: uid %d gid %d uname %q mtime %v format %v; want 0 0 \"\" epoch USTAR", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.ModTime, hdr.Format)
		}
		files[hdr.Name], _ = io.ReadAll(tr)
	}
	if !slices.IsSorted(names) {
		t.Errorf("entries not sorted: %v", names)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json = %s (%v)", files["index.json"], err)
	}
	if got := idx.Manifests[0].Annotations; got[ocispec.AnnotationRefName] != "1" || got[image.AnnotationImageName] != "docker.io/library/alpha:1" {
		t.Errorf("index annotations = %v, want ref.name 1 and the full name", got)
	}
	var legacy []legacyEntry
	if err := json.Unmarshal(files["manifest.json"], &legacy); err != nil || len(legacy) != 1 {
		t.Fatalf("manifest.json = %s (%v)", files["manifest.json"], err)
	}
	if !slices.Equal(legacy[0].RepoTags, []string{"alpha:1"}) || len(legacy[0].Layers) != 1 {
		t.Errorf("manifest.json entry = %+v", legacy[0])
	}
	for _, p := range append(legacy[0].Layers, legacy[0].Config) {
		if _, ok := files[p]; !ok {
			t.Errorf("manifest.json names %s, which the archive lacks", p)
		}
	}
	if !bytes.Contains(files["repositories"], []byte(`{"alpha":{"1":"`)) {
		t.Errorf("repositories = %s", files["repositories"])
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", files["oci-layout"])
	}
}

// TestLoadFormats loads each archive shape other tools write and checks
// the names and a file of the top layer.
func TestLoadFormats(t *testing.T) {
	top := tarOf(t, file("top", "hello"))
	plainOCI := ociArchive(t, []built{imageSpec{layers: [][]byte{layerTar(t, "b"), gz(t, top)}, name: "docker.io/library/x:1"}.build(t)})
	cases := []struct {
		name  string
		input func(t *testing.T) (archive []byte, dir string)
		opts  ReadOptions
		want  []string
		arch  string // the architecture picked from an index
	}{
		{"OCI archive", func(t *testing.T) ([]byte, string) { return plainOCI, "" }, ReadOptions{}, []string{"docker.io/library/x:1"}, ""},
		{"gzip-compressed archive", func(t *testing.T) ([]byte, string) { return gz(t, plainOCI), "" }, ReadOptions{}, []string{"docker.io/library/x:1"}, ""},
		{"zstd-compressed archive", func(t *testing.T) ([]byte, string) { return zst(t, plainOCI), "" }, ReadOptions{}, []string{"docker.io/library/x:1"}, ""},
		{"OCI layout directory", func(t *testing.T) ([]byte, string) { return nil, unpackTo(t, plainOCI) }, ReadOptions{}, []string{"docker.io/library/x:1"}, ""},
		{"legacy docker save with a linked layer", func(t *testing.T) ([]byte, string) {
			return legacyArchive(t, []string{"busybox:latest", "localhost/mine:2"}, [][]byte{layerTar(t, "b"), gz(t, top)}, func(es *[]tarEntry, e *legacyEntry) {
				// Docker before 25 linked a repeated layer to its first copy.
				(*es)[1].name = "blob.tar"
				*es = append(*es, tarEntry{name: e.Layers[1], typ: tar.TypeSymlink, link: "../blob.tar"})
			}), ""
		}, ReadOptions{}, []string{"docker.io/library/busybox:latest", "localhost/mine:2"}, ""},
		{"Docker 25 with names only in manifest.json", func(t *testing.T) ([]byte, string) {
			b := imageSpec{layers: [][]byte{layerTar(t, "b"), top}}.build(t)
			b.manifest.Annotations = map[string]string{ocispec.AnnotationRefName: "latest"} // a bare tag names nothing
			m := mustJSON(t, []legacyEntry{{Config: "blobs/sha256/" + b.config.Digest.Encoded(), RepoTags: []string{"docker25:latest"}}})
			return ociArchive(t, []built{b}, tarEntry{name: "manifest.json", body: m}), ""
		}, ReadOptions{}, []string{"docker.io/library/docker25:latest"}, ""},
		{"untagged image", func(t *testing.T) ([]byte, string) {
			return ociArchive(t, []built{imageSpec{layers: [][]byte{top}}.build(t)}), ""
		}, ReadOptions{}, []string{"sha256:"}, ""},
		{"multi-platform index, this machine", func(t *testing.T) ([]byte, string) { return multiPlatform(t, top), "" }, ReadOptions{}, []string{"docker.io/library/multi:1"}, image.HostPlatform().Architecture},
		{"multi-platform index, another platform", func(t *testing.T) ([]byte, string) { return multiPlatform(t, top), "" },
			ReadOptions{Platform: image.Platform{OS: "linux", Architecture: "s390x"}, Explicit: true}, []string{"docker.io/library/multi:1"}, "s390x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			archive, dir := tc.input(t)
			var a *Archive
			var err error
			if dir != "" {
				a, err = OpenFile(dir, s.Spool)
			} else {
				a, err = Open(bytes.NewReader(archive), "fixture", s.Spool)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			res, err := s.Load(image.LoadOptions{Chown: os.Geteuid() == 0}, func(add image.AddFunc) error { return Read(a, tc.opts, add) })
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			got := loadedNames(res)
			if len(got) != len(tc.want) || !strings.HasPrefix(got[0], tc.want[0]) || (len(got) > 1 && !slices.Equal(got, tc.want)) {
				t.Errorf("loaded %v, want %v", got, tc.want)
			}
			img := res.Images[0].Image
			if tc.arch != "" && img.Config.Architecture != tc.arch {
				t.Errorf("picked %s, want %s", img.Config.Architecture, tc.arch)
			}
			ids := img.Config.RootFS.DiffIDs
			body, err := os.ReadFile(filepath.Join(s.LayerDir(ids[len(ids)-1]), "top"))
			if err != nil || !strings.HasPrefix(string(body), "hello") {
				t.Errorf("top layer file = %q, %v", body, err)
			}
		})
	}
}

// multiPlatform is an index with an image for this machine and one for
// s390x (each with a file "top" naming its platform), plus an attestation
// manifest of platform unknown/unknown, as BuildKit writes.
func multiPlatform(t testing.TB, top []byte) []byte {
	host := &ocispec.Platform{OS: "linux", Architecture: image.HostPlatform().Architecture}
	other := &ocispec.Platform{OS: "linux", Architecture: "s390x"}
	a := imageSpec{layers: [][]byte{top}, platform: host}.build(t)
	b := imageSpec{layers: [][]byte{tarOf(t, file("top", "hello s390x"))}, platform: other}.build(t)
	att := imageSpec{layers: [][]byte{tarOf(t, file("att", "x"))}, platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}}.build(t)
	var ms []ocispec.Descriptor
	for _, x := range []struct {
		b built
		p *ocispec.Platform
	}{{att, &ocispec.Platform{OS: "unknown", Architecture: "unknown"}}, {b, other}, {a, host}} {
		d := x.b.manifest
		d.Platform = x.p
		ms = append(ms, d)
		for k, v := range x.b.blobs {
			a.blobs[k] = v
		}
	}
	body := mustJSON(t, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: ms})
	d := digest.FromBytes(body)
	a.blobs[d] = body
	a.manifest = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: int64(len(body)),
		Annotations: map[string]string{image.AnnotationImageName: "docker.io/library/multi:1", ocispec.AnnotationRefName: "1"}}
	return ociArchive(t, []built{a})
}

func zst(t testing.TB, b []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll(b, nil)
}

// unpackTo extracts a fixture archive (plain files and directories) into
// a new directory.
func unpackTo(t testing.TB, archive []byte) string {
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, hdr.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenFileKinds: a plain file is read in place, a compressed file and
// a pipe are spooled, a directory is an OCI layout; all give the image.
func TestOpenFileKinds(t *testing.T) {
	archive := ociArchive(t, []built{imageSpec{layers: [][]byte{layerTar(t, "k")}, name: "docker.io/library/k:1"}.build(t)})
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		path    string
		inPlace bool
	}{
		{"plain file", write("plain.tar", archive), true},
		{"gzip file", write("a.tar.gz", gz(t, archive)), false},
		{"zstd file", write("a.tar.zst", zst(t, archive)), false},
		{"pipe", fifo, false},
		{"layout directory", unpackTo(t, archive), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == fifo {
				go func() {
					f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
					if err == nil {
						f.Write(archive)
						f.Close()
					}
				}()
			}
			scratch := t.TempDir()
			a, err := OpenFile(tc.path, spoolIn(scratch))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if inPlace := a.file != nil && a.file.Name() == tc.path; inPlace != tc.inPlace {
				t.Errorf("read in place: %v, want %v", inPlace, tc.inPlace)
			}
			if ents, _ := os.ReadDir(scratch); len(ents) != 0 {
				t.Errorf("spooled copy left in scratch: %v", ents)
			}
			var names []string
			if err := Read(a, ReadOptions{}, func(img image.LoadImage) error { names = append(names, img.Names...); return nil }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names, []string{"docker.io/library/k:1"}) {
				t.Errorf("names = %v", names)
			}
		})
	}
}
