package tarball

import (
	"bytes"
	"io"
	"os"
	"path"
	"strings"
	"testing"

	"nook/image"
	"nook/internal/testutil"
)

// FuzzRead feeds arbitrary bytes to the archive readers: they may refuse
// them, never panic, and whatever they accept names only members inside
// the archive and opens.
func FuzzRead(f *testing.F) {
	layer := layerTar(f, "fuzz")
	// A petabyte of holes around one byte: its cost must follow the data.
	sparseLayer := testutil.SparseTar("sparse", 1<<50, 1<<49, "x")
	f.Add(twoImages(f))
	f.Add(multiPlatform(f, layer))
	f.Add(nestedIndexes(f, 2))
	f.Add(legacyArchive(f, []string{"a:1"}, [][]byte{layer, gz(f, layer)}, nil))
	f.Add(gz(f, legacyArchive(f, nil, [][]byte{layer}, nil)))
	f.Add(legacyArchive(f, []string{"s:1"}, [][]byte{sparseLayer}, nil))
	f.Add(tarOf(f, file("index.json", `{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2}]}`)))
	f.Add(tarOf(f, file("manifest.json", `[{"Config":"c.json","Layers":["../x"]}]`), file("c.json", "{}")))
	// One scratch directory for all inputs: the spooled copy is unlinked
	// at once, so nothing accumulates.
	scratch, err := os.MkdirTemp("", "fuzz-read-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(scratch) })
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Open(bytes.NewReader(data), "fuzz", spoolIn(scratch))
		if err != nil {
			return
		}
		defer a.Close()
		for key := range a.members {
			if key != path.Clean(key) || strings.HasPrefix(key, "../") || strings.HasPrefix(key, "/") || key == ".." {
				t.Fatalf("member key %q is not clean and inside", key)
			}
		}
		_ = Read(a, ReadOptions{}, func(img image.LoadImage) error {
			for _, l := range img.Layers {
				rc, err := l.Open()
				if err != nil {
					t.Fatalf("layer %s was listed but does not open: %v", l.Member, err)
				}
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
				if err != nil {
					t.Fatalf("reading layer %s: %v", l.Member, err)
				}
			}
			return nil
		})
	})
}

// FuzzLoad loads arbitrary archives into a store: a failed load must
// leave the store as it was.
func FuzzLoad(f *testing.F) {
	f.Add(twoImages(f))
	f.Add(legacyArchive(f, []string{"a:1"}, [][]byte{layerTar(f, "x")}, nil))
	f.Add(legacyArchive(f, []string{"s:1"}, [][]byte{testutil.SparseTar("sparse", 1<<50, 1<<49, "x")}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newStore(t)
		before := snapshot(t, s.Root())
		if _, err := load(s, data, ReadOptions{}); err != nil {
			if after := snapshot(t, s.Root()); after != before {
				t.Fatalf("failed load (%v) changed the store", err)
			}
		}
	})
}
