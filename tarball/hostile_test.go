package tarball

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// TestHostileArchives loads broken and hostile archives into a store that
// already holds an image: each is refused with an error naming the
// problem, and the store is byte-identical afterwards.
func TestHostileArchives(t *testing.T) {
	s := newStore(t)
	if _, err := load(s, ociArchive(t, []built{imageSpec{layers: [][]byte{layerTar(t, "base")}, name: "docker.io/library/base:1"}.build(t)}), ReadOptions{}); err != nil {
		t.Fatalf("loading the base image: %v", err)
	}
	good := layerTar(t, "good")
	goodD := digest.FromBytes(good)
	one := func(s imageSpec) []byte { return ociArchive(t, []built{s.build(t)}) }
	bad := digest.FromString("other content")

	cases := []struct {
		name    string
		archive func(testing.TB) []byte
		want    string // in the error
	}{
		{"bad digest", func(t testing.TB) []byte {
			// The manifest names a digest whose blob holds other bytes.
			return ociArchive(t, []built{imageSpec{layers: [][]byte{good}, layerDescs: func(d []ocispec.Descriptor) { d[0].Digest = bad }}.build(t)},
				tarEntry{name: "blobs/sha256/" + bad.Encoded(), body: good})
		}, bad.String()},
		{"truncated blob", func(t testing.TB) []byte {
			b := imageSpec{layers: [][]byte{good}}.build(t)
			b.blobs[goodD] = good[:len(good)-512]
			return ociArchive(t, []built{b})
		}, goodD.String()},
		{"wrong size", func(t testing.TB) []byte {
			return one(imageSpec{layers: [][]byte{good}, layerDescs: func(d []ocispec.Descriptor) { d[0].Size++ }})
		}, goodD.String()},
		{"manifest names a missing blob", func(t testing.TB) []byte {
			b := imageSpec{layers: [][]byte{good}}.build(t)
			delete(b.blobs, goodD)
			return ociArchive(t, []built{b})
		}, goodD.String()},
		{"config diff_ids disagree", func(t testing.TB) []byte {
			return one(imageSpec{layers: [][]byte{good}, diffIDs: []digest.Digest{bad}})
		}, "diff_ids"},
		{"path traversal in a layer", func(t testing.TB) []byte { return one(imageSpec{layers: [][]byte{tarOf(t, file("../escape", "x"))}}) }, "../escape"},
		{"symlink then a file through it", func(t testing.TB) []byte {
			return one(imageSpec{layers: [][]byte{tarOf(t, tarEntry{name: "up", typ: tar.TypeSymlink, link: "/tmp"}, file("up/evil", "x"))}})
		}, "up/evil"},
		{"hardlink outside the root", func(t testing.TB) []byte {
			return one(imageSpec{layers: [][]byte{tarOf(t, tarEntry{name: "pw", typ: tar.TypeLink, link: "../../etc/passwd"})}})
		}, "pw"},
		{"whiteout of dot-dot", func(t testing.TB) []byte { return one(imageSpec{layers: [][]byte{tarOf(t, file(".wh..", ""))}}) }, ".wh.."},
		{"huge header", func(t testing.TB) []byte {
			return hugePAX(t, 2<<20)
		}, "invalid image archive"},
		{"duplicate entries", func(t testing.TB) []byte {
			return ociArchive(t, []built{imageSpec{layers: [][]byte{good}}.build(t)}, tarEntry{name: "./index.json", body: []byte(`{"manifests":[]}`)})
		}, `duplicate member "./index.json"`},
		{"index that lists itself", func(t testing.TB) []byte {
			// A blob cannot hold its own digest, so the loop is a lie the
			// digest check catches; either way it is not followed.
			self := digest.FromString("self")
			idx := mustJSON(t, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
				Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageIndex, Digest: self, Size: 200, Platform: &ocispec.Platform{OS: "linux", Architecture: image.HostPlatform().Architecture}}}})
			top := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageIndex, Digest: self, Size: int64(len(idx))}}}
			return tarOf(t, tarEntry{name: "blobs/sha256/" + self.Encoded(), body: idx}, tarEntry{name: "index.json", body: mustJSON(t, top)})
		}, digest.FromString("self").String()},
		{"indexes nested too deep", func(t testing.TB) []byte { return nestedIndexes(t, maxDepth+1) }, "deeper"},
		{"index pointing at a config", func(t testing.TB) []byte {
			b := imageSpec{layers: [][]byte{good}}.build(t)
			b.manifest = b.config
			b.manifest.MediaType = ocispec.MediaTypeImageManifest
			return ociArchive(t, []built{b})
		}, "not an image manifest"},
		{"index entry of another media type", func(t testing.TB) []byte {
			b := imageSpec{layers: [][]byte{good}}.build(t)
			b.manifest.MediaType = "application/vnd.in-toto+json"
			return ociArchive(t, []built{b})
		}, "in-toto"},
		{"not a tar", func(t testing.TB) []byte { return []byte(strings.Repeat("this is not an archive\n", 100)) }, "invalid image archive"},
		{"empty input", func(t testing.TB) []byte { return nil }, "neither index.json nor manifest.json"},
		{"truncated archive", func(t testing.TB) []byte { a := one(imageSpec{layers: [][]byte{good}}); return a[:len(a)/2+100] }, "truncated"},
		{"symlink member leaving the archive", func(t testing.TB) []byte {
			return tarOf(t, tarEntry{name: "index.json", typ: tar.TypeSymlink, link: "../../etc/passwd"})
		}, "index.json"},
		{"symlink member to a missing file", func(t testing.TB) []byte {
			return tarOf(t, tarEntry{name: "index.json", typ: tar.TypeSymlink, link: "nothere"})
		}, "nothere"},
		{"hardlink member", func(t testing.TB) []byte {
			return tarOf(t, file("a", "{}"), tarEntry{name: "index.json", typ: tar.TypeLink, link: "a"})
		}, "index.json"},
		{"device member", func(t testing.TB) []byte { return tarOf(t, tarEntry{name: "dev", typ: tar.TypeChar}) }, `"dev"`},
		{"member named with dot-dot", func(t testing.TB) []byte { return tarOf(t, file("../index.json", "{}")) }, "../index.json"},
		{"legacy layer path leaving the archive", func(t testing.TB) []byte {
			return legacyArchive(t, []string{"x:1"}, [][]byte{good}, func(_ *[]tarEntry, e *legacyEntry) { e.Layers[0] = "../../etc/passwd" })
		}, "../../etc/passwd"},
		{"legacy config not matching its name", func(t testing.TB) []byte {
			return legacyArchive(t, []string{"x:1"}, [][]byte{good}, func(es *[]tarEntry, e *legacyEntry) {
				(*es)[len(*es)-1].body = append((*es)[len(*es)-1].body, ' ')
			})
		}, "config"},
		{"unknown layer media type", func(t testing.TB) []byte {
			return one(imageSpec{layers: [][]byte{good}, layerDescs: func(d []ocispec.Descriptor) { d[0].MediaType = "application/vnd.example.secret+tar" }})
		}, "application/vnd.example.secret+tar"},
		{"whiteout with children", func(t testing.TB) []byte {
			return one(imageSpec{layers: [][]byte{tarOf(t, tarEntry{name: ".wh.d/", typ: tar.TypeDir}, file(".wh.d/child", "x"))}})
		}, ".wh.d/child"},
		{"legacy bad tag", func(t testing.TB) []byte { return legacyArchive(t, []string{"Bad Name"}, [][]byte{good}, nil) }, "Bad Name"},
		{"legacy layer diff id wrong", func(t testing.TB) []byte {
			return legacyArchive(t, []string{"x:1"}, [][]byte{good}, func(es *[]tarEntry, _ *legacyEntry) { (*es)[0].body = layerTar(t, "swapped") })
		}, "diff_ids"},
		{"bzip2 layer", func(t testing.TB) []byte {
			return one(imageSpec{layers: [][]byte{bz2(t)}, diffIDs: []digest.Digest{goodD}})
		}, "bzip2"},
		{"no image for this platform", func(t testing.TB) []byte { return nestedIndexes(t, 1, "plan9") }, "no image for the platform"},
		{"oversized manifest.json", func(t testing.TB) []byte {
			return tarOf(t, tarEntry{name: "manifest.json", body: bytes.Repeat([]byte(" "), maxJSONSize+1)})
		}, "manifest.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, s.Root())
			_, err := load(s, tc.archive(t), ReadOptions{})
			if err == nil {
				t.Fatal("loaded")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
			if after := snapshot(t, s.Root()); after != before {
				t.Errorf("store changed:\n--- before\n%s\n--- after\n%s", before, after)
			}
		})
	}
}

// bz2 is an empty bzip2 stream (Go cannot write bzip2): "BZh9" and the
// end-of-stream marker with a zero checksum.
func bz2(testing.TB) []byte {
	return []byte{0x42, 0x5a, 0x68, 0x39, 0x17, 0x72, 0x45, 0x38, 0x50, 0x90, 0, 0, 0, 0}
}

// nestedIndexes is an archive whose index.json leads through depth
// indexes to one image of the given OS (linux when empty).
func nestedIndexes(t testing.TB, depth int, osName ...string) []byte {
	p := &ocispec.Platform{OS: "linux", Architecture: image.HostPlatform().Architecture}
	if len(osName) > 0 {
		p.OS = osName[0]
	}
	b := imageSpec{layers: [][]byte{layerTar(t, "nested")}, platform: p}.build(t)
	desc := b.manifest
	desc.Platform = p
	for range depth {
		body := mustJSON(t, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{desc}})
		d := digest.FromBytes(body)
		b.blobs[d] = body
		desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: int64(len(body)), Platform: p}
	}
	desc.Platform = nil
	b.manifest = desc
	return ociArchive(t, []built{b})
}

// hugePAX is a tar whose first member has a PAX header of size bytes,
// which archive/tar will not write: it is written as a file and its type
// flag patched to 'x'.
func hugePAX(t testing.TB, size int) []byte {
	rec := "comment=" + strings.Repeat("x", size)
	rec = fmt.Sprintf("%d %s\n", len(rec)+9+len(strconv.Itoa(len(rec)+9)), rec)
	b := tarOf(t, tarEntry{name: "PaxHeaders/index.json", body: []byte(rec)}, file("index.json", "{}"))
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}
