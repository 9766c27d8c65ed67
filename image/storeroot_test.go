package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlantedLinkNotFollowed: a symbolic link put where the store keeps a
// directory or a file, after the store was opened (as if planted while it
// was open to others), is refused, never followed: nothing of the
// store's lands in the link's target and nothing there is read. Before
// the store reached everything through one descriptor of its root, an
// import wrote its blob to theirs/ through "blobs/sha256 -> theirs",
// its layer through "layers", its staging through "tmp", and a pull
// its download through "pulls".
func TestPlantedLinkNotFollowed(t *testing.T) {
	for _, tc := range []struct {
		planted string // the store's entry replaced by a link to theirs/
		op      string // import, pull, spool (a load's archive) or scratch (a push's layer)
	}{
		{"blobs/sha256", "import"},
		{"blobs/sha256", "pull"},
		{"blobs", "import"},
		{"layers", "import"},
		{"layers", "pull"},
		{"tmp", "import"},
		{"tmp", "spool"},
		{"tmp", "scratch"},
		{"pulls", "pull"},
		{"pulls/blobs/sha256", "pull"},
		{"index.json", "import"},
	} {
		t.Run(tc.op+" "+strings.ReplaceAll(tc.planted, "/", "_"), func(t *testing.T) {
			s := openTestStore(t)
			if _, err := s.BeginPull(PullOptions{}); err != nil { // makes pulls/
				t.Fatal(err)
			}
			theirs := t.TempDir()
			target := theirs
			if tc.planted == "index.json" {
				target = filepath.Join(theirs, "index.json")
				if err := os.WriteFile(target, []byte(`{"schemaVersion":2,"manifests":[]}`), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := storeSnapshot(t, theirs)
			p := s.abs(tc.planted)
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			var err error
			switch tc.op {
			case "import":
				_, err = s.Import(bytes.NewReader(layerTar(t, nil, "f")), ImportOptions{Name: "x", Source: "-"})
			case "pull":
				err = pullThrough(s, newPullSource(t, "hello"))
			case "spool", "scratch":
				var f *os.File
				if tc.op == "spool" {
					f, err = s.Spool()
				} else {
					f, err = s.Scratch("push-")
				}
				if err == nil {
					f.Write([]byte("spooled"))
					f.Close()
				}
			}
			if err == nil {
				t.Errorf("%s through a link at %s succeeded; want it refused", tc.op, tc.planted)
			}
			if after := storeSnapshot(t, theirs); after != before {
				t.Errorf("%s wrote through the link at %s:\n%s", tc.op, tc.planted, after)
			}
			if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the planted link was replaced, not refused: %v, %v", fi, err)
			}
		})
	}
}

func pullThrough(s *Store, src *pullSource) error {
	p, err := s.BeginPull(PullOptions{})
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := p.Layer(context.Background(), src.layer()); err != nil {
		return err
	}
	_, err = p.Commit(src.image(nil))
	return err
}
