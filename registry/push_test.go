package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
	"nook/internal/compression"
)

func TestPushRef(t *testing.T) {
	dg := "@sha256:" + digest.FromString("x").Encoded()
	cases := []struct {
		ref     string
		all     bool
		want    string
		wantErr error
	}{
		{"busybox", false, "docker.io/library/busybox:latest", nil},
		{"reg.lab:5000/team/app:1", false, "reg.lab:5000/team/app:1", nil},
		{"reg.lab:5000/team/app", true, "reg.lab:5000/team/app", nil},
		{"reg.lab:5000/team/app:1", true, "", ErrAllTags},
		{"reg.lab:5000/team/app" + dg, false, "", image.ErrInvalidReference},
		{"Bad/Name", false, "", image.ErrInvalidReference},
	}
	for _, tc := range cases {
		got, err := pushRef(tc.ref, tc.all)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("pushRef(%q, %v): err %v, want %v", tc.ref, tc.all, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("pushRef(%q, %v) = %s, %v; want %s", tc.ref, tc.all, got, err, tc.want)
		}
	}
}

// TestPushManifest: the stored manifest goes unchanged when its layers
// do, and a rewritten one has the compressed layers' descriptors and media
// types a registry and Docker accept.
func TestPushManifest(t *testing.T) {
	plainDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("plain"), Size: 5}
	gz := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("gz"), Size: 2}
	zst := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerZstd, Digest: digest.FromString("zst"), Size: 3}
	cases := []struct {
		name         string
		manifestType string
		layers       []ocispec.Descriptor
		wantSame     bool
		wantType     string // of the manifest
		wantLayer    string // media type of the layer
		wantConfig   string
	}{
		{"unchanged", ocispec.MediaTypeImageManifest, []ocispec.Descriptor{plainDesc}, true, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageConfig},
		{"oci gzip", ocispec.MediaTypeImageManifest, []ocispec.Descriptor{gz}, false, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageConfig},
		{"docker gzip", mediaTypeDockerManifest, []ocispec.Descriptor{gz}, false, mediaTypeDockerManifest, mediaTypeDockerLayerGzip, mediaTypeDockerConfig},
		{"docker zstd becomes oci", mediaTypeDockerManifest, []ocispec.Descriptor{zst}, false, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfgType := ocispec.MediaTypeImageConfig
			if tc.manifestType == mediaTypeDockerManifest {
				cfgType = mediaTypeDockerConfig
			}
			m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: tc.manifestType,
				Config: ocispec.Descriptor{MediaType: cfgType, Digest: digest.FromString("cfg"), Size: 3},
				Layers: []ocispec.Descriptor{plainDesc}}
			raw, _ := json.Marshal(m)
			pl := &planImage{tags: []string{"reg.lab/a:1"}, local: digest.FromBytes(raw), manifest: m, raw: raw}
			desc, b, err := pushManifest(pl, tc.layers)
			if err != nil {
				t.Fatal(err)
			}
			if same := bytes.Equal(b, raw); same != tc.wantSame {
				t.Errorf("manifest unchanged = %v, want %v", same, tc.wantSame)
			}
			if desc.Digest != digest.FromBytes(b) || desc.Size != int64(len(b)) || desc.MediaType != tc.wantType {
				t.Errorf("descriptor %+v does not describe %s of type %s", desc, b, tc.wantType)
			}
			var got ocispec.Manifest
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.MediaType != tc.wantType || got.Config.MediaType != tc.wantConfig || got.Layers[0].MediaType != tc.wantLayer || got.Layers[0].Digest != tc.layers[0].Digest {
				t.Errorf("manifest %s", b)
			}
		})
	}
}

// TestCompressBlob: the scratch file holds the layer compressed in the
// format asked, described by its digest; a blob that is not what the
// store says is refused.
func TestCompressBlob(t *testing.T) {
	plain := bytes.Repeat([]byte("layer bytes "), 100000)
	src := writeTemp(t, plain)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(plain), Size: int64(len(plain))}
	for _, tc := range []struct {
		format   string
		kind     compression.Kind
		wantType string
	}{{CompressionGzip, compression.Gzip, ocispec.MediaTypeImageLayerGzip}, {CompressionZstd, compression.Zstd, ocispec.MediaTypeImageLayerZstd}} {
		c, err := compressBlob(src, desc, tc.format, dirScratch(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(c.File.Name())
		c.File.Close()
		if err != nil {
			t.Fatal(err)
		}
		if c.Desc.Digest != digest.FromBytes(b) || c.Desc.Size != int64(len(b)) || c.Desc.MediaType != tc.wantType || c.Uncompressed != desc.Digest {
			t.Errorf("%s: descriptor %+v does not describe the file", tc.format, c.Desc)
		}
		dec, kind, err := compression.Decompress(bytes.NewReader(b))
		if err != nil || kind != tc.kind {
			t.Fatalf("%s: compressed as %v, %v", tc.format, kind, err)
		}
		if got, err := io.ReadAll(dec); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: round trip differs: %v", tc.format, err)
		}
	}
	bad := desc
	bad.Digest = digest.FromString("other")
	dir := t.TempDir()
	if _, err := compressBlob(src, bad, CompressionGzip, dirScratch(dir)); !errors.Is(err, image.ErrCorruptStore) {
		t.Errorf("a blob of another digest: err %v, want ErrCorruptStore", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed compression left %d files", len(ents))
	}
}

func writeTemp(t *testing.T, b []byte) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "blob")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f
}

// dirScratch makes scratch files in a directory, as the store does in its
// tmp/.
type dirScratch string

func (d dirScratch) Scratch(prefix string) (*os.File, error) {
	return os.CreateTemp(string(d), prefix+"*")
}

func (d dirScratch) RemoveScratch(f *os.File) error { return os.Remove(f.Name()) }
