package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/ulikunitz/xz"
)

// testLayer is a one-file layer tar.
func testLayer(t testing.TB, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	return buf.Bytes()
}

// counted is a layer whose opens are counted.
type counted struct {
	blob  []byte
	opens int
}

func (c *counted) layer(desc ocispec.Descriptor) LoadLayer {
	return LoadLayer{Desc: desc, Member: "member", Open: func() (io.ReadCloser, error) {
		c.opens++
		return io.NopCloser(bytes.NewReader(c.blob)), nil
	}}
}

// testImage is an OCI image of the given layer blobs (uncompressed tars).
func testImage(t testing.TB, names []string, layers ...*counted) LoadImage {
	t.Helper()
	var descs []ocispec.Descriptor
	var diffIDs []digest.Digest
	img := LoadImage{Names: names, Source: "test image", ManifestMediaType: ocispec.MediaTypeImageManifest}
	for _, l := range layers {
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(l.blob), Size: int64(len(l.blob))}
		descs = append(descs, d)
		diffIDs = append(diffIDs, d.Digest)
		img.Layers = append(img.Layers, l.layer(d))
	}
	img.Config, _ = json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(img.Config), Size: int64(len(img.Config))}, Layers: descs}
	img.Manifest, _ = json.Marshal(m)
	return img
}

func storeSnapshot(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		line := p + " " + d.Type().String()
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			line += " " + digest.FromBytes(b).String()
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func openTestStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLoadAllOrNothing: whatever fails during a load, even after images
// were verified and staged, the store is left exactly as it was.
func TestLoadAllOrNothing(t *testing.T) {
	s := openTestStore(t)
	if _, err := s.Load(LoadOptions{}, func(add AddFunc) error {
		return add(testImage(t, []string{"base:1"}, &counted{blob: testLayer(t, "base", "b")}))
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("archive ends early")
	bad := testImage(t, []string{"bad:1"}, &counted{blob: testLayer(t, "bad", "x")})
	bad.Config = append(bad.Config, ' ') // no longer what the manifest says
	cases := []struct {
		name string
		fn   func(add AddFunc) error
		want string
	}{
		{"reader fails after an image", func(add AddFunc) error {
			if err := add(testImage(t, []string{"good:1"}, &counted{blob: testLayer(t, "good", "g")})); err != nil {
				return err
			}
			return boom
		}, boom.Error()},
		{"second image fails", func(add AddFunc) error {
			if err := add(testImage(t, []string{"good:1"}, &counted{blob: testLayer(t, "good", "g")})); err != nil {
				return err
			}
			return add(bad)
		}, "config is"},
		{"name taken by a digest", func(add AddFunc) error {
			return add(testImage(t, []string{"x@sha256:" + strings.Repeat("a", 64)}, &counted{blob: testLayer(t, "d", "d")}))
		}, "digest"},
		{"no image at all", func(AddFunc) error { return nil }, "no image"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := storeSnapshot(t, s.Root())
			_, err := s.Load(LoadOptions{}, func(add AddFunc) error { return tc.fn(add) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
			if after := storeSnapshot(t, s.Root()); after != before {
				t.Errorf("store changed:\n--- before\n%s\n--- after\n%s", before, after)
			}
		})
	}
}

// TestLoadReadsSharedLayersOnce: a layer two images share is read once per
// load, and not at all when the store already has it uncompressed.
func TestLoadReadsSharedLayersOnce(t *testing.T) {
	s := openTestStore(t)
	shared := &counted{blob: testLayer(t, "shared", "s")}
	res, err := s.Load(LoadOptions{}, func(add AddFunc) error {
		if err := add(testImage(t, []string{"a:1"}, shared, &counted{blob: testLayer(t, "a", "a")})); err != nil {
			return err
		}
		return add(testImage(t, []string{"b:1", "docker.io/library/b:1", "b:2"}, shared))
	})
	if err != nil {
		t.Fatal(err)
	}
	if shared.opens != 1 {
		t.Errorf("shared layer opened %d times in one load, want 1", shared.opens)
	}
	if len(res.Images) != 2 || !slices.Equal(res.Images[1].Names, []string{"docker.io/library/b:1", "docker.io/library/b:2"}) {
		t.Errorf("loaded %+v", res.Images)
	}
	again := &counted{blob: shared.blob}
	if _, err := s.Load(LoadOptions{}, func(add AddFunc) error {
		return add(testImage(t, []string{"c:1"}, again))
	}); err != nil {
		t.Fatal(err)
	}
	if again.opens != 0 {
		t.Errorf("a layer the store has was opened %d times", again.opens)
	}
	if img, err := s.Resolve("c:1"); err != nil || len(img.Manifest.Layers) != 1 {
		t.Errorf("c:1 = %+v, %v", img, err)
	}
}

// TestLoadLegacyLayer: without a manifest the store writes one, with the
// digest, size and media type of the blob as read.
func TestLoadLegacyLayer(t *testing.T) {
	s := openTestStore(t)
	raw := testLayer(t, "f", "legacy")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	blob := &counted{blob: buf.Bytes()}
	img := testImage(t, nil, &counted{blob: raw})
	img.Manifest, img.ManifestMediaType = nil, ""
	img.Layers = []LoadLayer{blob.layer(ocispec.Descriptor{})}
	res, err := s.Load(LoadOptions{}, func(add AddFunc) error { return add(img) })
	if err != nil {
		t.Fatal(err)
	}
	got := res.Images[0].Image.Manifest.Layers[0]
	if got.Digest != digest.FromBytes(blob.blob) || got.Size != int64(len(blob.blob)) || got.MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("layer descriptor = %+v", got)
	}
	if len(res.Images[0].Names) != 0 {
		t.Errorf("names = %v, want none", res.Images[0].Names)
	}
	b, err := os.ReadFile(filepath.Join(s.LayerDir(digest.FromBytes(raw)), "f"))
	if err != nil || string(b) != "legacy" {
		t.Errorf("unpacked file = %q, %v", b, err)
	}
}

// bzip2EmptyTar is `head -c 1024 /dev/zero | bzip2 -9`: an empty layer
// (just the end-of-archive blocks). Go reads bzip2 but cannot write it.
const bzip2EmptyTar = "425a683931415926535974f5adf70000044000c0000008200030802a6945ac38bb9229c28483a7ad6fb8"

// TestLoadLegacyOldCompressions: a docker-archive layer compressed with
// bzip2 or xz loads, as with Docker, and is stored as its tar (OCI has no
// media type for either): an uncompressed blob whose digest is the diff
// id. Stored as read, the image could not be saved or pushed as OCI.
func TestLoadLegacyOldCompressions(t *testing.T) {
	xzTar := func(t *testing.T) (raw, blob []byte) {
		raw = testLayer(t, "f", "from xz")
		var buf bytes.Buffer
		zw, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(raw)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return raw, buf.Bytes()
	}
	bzip2Tar := func(t *testing.T) (raw, blob []byte) {
		blob, err := hex.DecodeString(bzip2EmptyTar)
		if err != nil {
			t.Fatal(err)
		}
		return make([]byte, 1024), blob
	}
	for name, fixture := range map[string]func(*testing.T) ([]byte, []byte){"xz": xzTar, "bzip2": bzip2Tar} {
		t.Run(name, func(t *testing.T) {
			s := openTestStore(t)
			raw, compressed := fixture(t)
			img := testImage(t, []string{"old:" + name}, &counted{blob: raw})
			img.Manifest, img.ManifestMediaType = nil, ""
			img.Layers = []LoadLayer{(&counted{blob: compressed}).layer(ocispec.Descriptor{})}
			res, err := s.Load(LoadOptions{}, func(add AddFunc) error { return add(img) })
			if err != nil {
				t.Fatal(err)
			}
			got := res.Images[0].Image.Manifest.Layers[0]
			want := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
			if got.MediaType != want.MediaType || got.Digest != want.Digest || got.Size != want.Size {
				t.Errorf("layer descriptor = %+v, want %+v", got, want)
			}
			stored, err := os.ReadFile(s.abs(blobName(got.Digest)))
			if err != nil || !bytes.Equal(stored, raw) {
				t.Errorf("stored blob is not the layer's tar (%d bytes, %v)", len(stored), err)
			}
			if name == "xz" {
				b, err := os.ReadFile(filepath.Join(s.LayerDir(digest.FromBytes(raw)), "f"))
				if err != nil || string(b) != "from xz" {
					t.Errorf("unpacked file = %q, %v", b, err)
				}
			}
		})
	}
}

// TestLoadReportsRenames: a name moving to the loaded image is reported
// with the id of the image that had it, which stays, untagged.
func TestLoadReportsRenames(t *testing.T) {
	s := openTestStore(t)
	loadOne := func(body string) LoadResult {
		t.Helper()
		res, err := s.Load(LoadOptions{}, func(add AddFunc) error {
			return add(testImage(t, []string{"app:1"}, &counted{blob: testLayer(t, "f", body)}))
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := loadOne("one")
	if len(first.Renamed) != 0 {
		t.Errorf("first load renamed %v", first.Renamed)
	}
	second := loadOne("two")
	want := []Renamed{{Name: "docker.io/library/app:1", OldID: first.Images[0].Image.ID}}
	if !slices.Equal(second.Renamed, want) {
		t.Errorf("renamed %v, want %v", second.Renamed, want)
	}
	imgs, _ := s.Images()
	if len(imgs) != 2 {
		t.Errorf("store has %d images, want the old one kept untagged", len(imgs))
	}
}
