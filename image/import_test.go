package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"nook/image/layer"
)

func layerTar(t *testing.T, xattrs map[string]string, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, Format: tar.FormatPAX}
		for k, v := range xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportRecordsXattrs(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		xattrs map[string]string
		want   bool
	}{
		{"plain", nil, false},
		{"with-user-xattr", map[string]string{"user.origin": "lab"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.Import(bytes.NewReader(layerTar(t, tc.xattrs, tc.name)), ImportOptions{Name: tc.name, Source: "-"})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.LayersHaveXattrs(res.Image.Config.RootFS.DiffIDs); got != tc.want {
				t.Errorf("LayersHaveXattrs = %v, want %v", got, tc.want)
			}
			got, err := os.ReadFile(filepath.Join(s.LayerDir(res.Image.Config.RootFS.DiffIDs[0]), tc.name))
			if err != nil || string(got) != "x" {
				t.Errorf("unpacked file: %q, %v", got, err)
			}
		})
	}
}

func TestImportFailureLeavesStoreAlone(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(s.Root(), "index.json"))
	good := layerTar(t, nil, "a")
	bad := layerTar(t, nil, "../escape")
	for _, in := range [][]byte{good[:300], bad, {}} {
		if _, err := s.Import(bytes.NewReader(in), ImportOptions{Name: "x", Source: "-"}); !errors.Is(err, layer.ErrCorrupt) && !errors.Is(err, layer.ErrUnsafe) {
			t.Errorf("import of a broken tar: err = %v, want ErrCorrupt or ErrUnsafe", err)
		}
	}
	after, _ := os.ReadFile(filepath.Join(s.Root(), "index.json"))
	if !bytes.Equal(before, after) {
		t.Errorf("index.json changed: %s -> %s", before, after)
	}
	for _, d := range []string{"tmp", "layers", "blobs/sha256"} {
		if ents, _ := os.ReadDir(filepath.Join(s.Root(), d)); len(ents) != 0 {
			t.Errorf("%s holds %d entries after failed imports", d, len(ents))
		}
	}
}
