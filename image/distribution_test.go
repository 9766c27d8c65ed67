package image

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// scratchBlob writes b as a synced scratch file, as a push makes one.
func scratchBlob(t *testing.T, s *Store, b []byte) (*os.File, ocispec.Descriptor) {
	t.Helper()
	f, err := os.CreateTemp(s.ScratchDir(), "push-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// TestRecordKeepsCompressedForms: what a push records is found by the next
// one, survives a scratch area cleared meanwhile, shows in inspect's
// RepoDigests, and goes with the image it belongs to.
func TestRecordKeepsCompressedForms(t *testing.T) {
	s := openTestStore(t)
	res, err := s.Import(bytes.NewReader(layerTar(t, nil, "a")), ImportOptions{Name: "reg.lab:5000/app:1", Source: "-"})
	if err != nil {
		t.Fatal(err)
	}
	img := res.Image
	plain := img.Manifest.Layers[0].Digest
	cases := []struct {
		format  string
		cleared bool // another writer cleared tmp/ before the record
	}{{"gzip", false}, {"zstd", true}}
	kept := map[string]ocispec.Descriptor{}
	for _, tc := range cases {
		if _, ok := s.Compressed(plain, tc.format); ok {
			t.Fatalf("%s form found before any push", tc.format)
		}
		f, desc := scratchBlob(t, s, []byte("compressed as "+tc.format))
		if tc.cleared {
			if err := os.Remove(f.Name()); err != nil {
				t.Fatal(err)
			}
		}
		registryDigest := digest.FromString(tc.format)
		err := s.Record(DistributionRecord{
			Compressed: []CompressedBlob{{Uncompressed: plain, Format: tc.format, Desc: desc, File: f}},
			Sources:    map[string][]digest.Digest{"reg.lab:5000/app": {desc.Digest, img.ID}},
			RepoDigests: []RepoDigest{
				{Name: "reg.lab:5000/app:1", Manifest: img.Digest, Digest: registryDigest},
				{Name: "reg.lab:5000/app:1", Manifest: digest.FromString("another image"), Digest: digest.FromString("wrong")},
			},
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		got, ok := s.Compressed(plain, tc.format)
		if !ok || got.Digest != desc.Digest || got.Size != desc.Size {
			t.Fatalf("%s: remembered %v %v, want %v", tc.format, got, ok, desc)
		}
		if b, err := s.readBlob(desc.Digest); err != nil || string(b) != "compressed as "+tc.format {
			t.Errorf("%s: kept blob %q, %v", tc.format, b, err)
		}
		if srcs := s.BlobSources(desc.Digest); !slices.Equal(srcs, []string{"reg.lab:5000/app"}) {
			t.Errorf("%s: sources %v", tc.format, srcs)
		}
		// One digest per name: the last push's, for the image it named.
		now, err := s.Resolve("reg.lab:5000/app:1")
		if err != nil {
			t.Fatal(err)
		}
		want := "reg.lab:5000/app@" + registryDigest.String()
		if rd := s.Inspect(now).RepoDigests; !slices.Equal(rd, []string{want}) {
			t.Errorf("%s: RepoDigests %v, want [%s]", tc.format, rd, want)
		}
		kept[tc.format] = desc
	}
	if ents, _ := os.ReadDir(s.ScratchDir()); len(ents) != 0 {
		t.Errorf("scratch area holds %d files after the records", len(ents))
	}

	// An unrelated removal keeps the forms of a live layer.
	if _, err := s.Prune(PruneOptions{All: false}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Compressed(plain, "gzip"); !ok {
		t.Fatal("prune of nothing dropped a live layer's compressed form")
	}
	if _, err := s.Remove("reg.lab:5000/app:1", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	for format, desc := range kept {
		if _, err := os.Stat(s.abs(blobName(desc.Digest))); !os.IsNotExist(err) {
			t.Errorf("%s form outlived its image: %v", format, err)
		}
	}
	dist, err := s.readDistribution()
	if err != nil {
		t.Fatal(err)
	}
	if len(dist.Compressed)+len(dist.Sources) != 0 {
		t.Errorf("records outlived the image: %+v", dist)
	}
}

// TestRecordSkipsRemovedLayer: a layer removed while a push compressed it
// is not remembered, and its scratch file is not kept.
func TestRecordSkipsRemovedLayer(t *testing.T) {
	s := openTestStore(t)
	f, desc := scratchBlob(t, s, []byte("orphan"))
	gone := digest.FromString("removed meanwhile")
	if err := s.Record(DistributionRecord{Compressed: []CompressedBlob{{Uncompressed: gone, Format: "gzip", Desc: desc, File: f}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Compressed(gone, "gzip"); ok {
		t.Error("a removed layer's form was remembered")
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "blobs", "sha256", desc.Digest.Encoded())); !os.IsNotExist(err) {
		t.Errorf("orphan blob kept: %v", err)
	}
}
