package image

import (
	"bytes"
	"errors"
	"io"
	"nook/internal/testutil"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCommit(t *testing.T) {
	testutil.RequireRoot(t) // the new layer is unpacked with its owners
	s := openTestStore(t)
	base, err := s.Import(bytes.NewReader(layerTar(t, nil, "a")), ImportOptions{Name: "base", Source: "-", Changes: func(c *ocispec.ImageConfig) error { c.Cmd = []string{"x"}; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	top := layerTar(t, nil, "b")
	img, err := s.Commit(CommitOptions{
		Parent: base.Image.ID.String(), Name: "child:1", Comment: "msg", Author: "me", CreatedBy: "sh -c b",
		Config:     ocispec.ImageConfig{Cmd: []string{"run"}, Env: []string{"A=1"}},
		Changes:    func(c *ocispec.ImageConfig) error { c.Labels = map[string]string{"k": "v"}; return nil },
		WriteLayer: func(w io.Writer) error { _, err := w.Write(top); return err },
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := img.Config.RootFS.DiffIDs
	if len(ids) != 2 || ids[0] != base.Image.Config.RootFS.DiffIDs[0] || len(img.Manifest.Layers) != 2 {
		t.Fatalf("diff ids %v, layers %v", ids, img.Manifest.Layers)
	}
	if img.Manifest.Layers[0].Digest != base.Image.Manifest.Layers[0].Digest {
		t.Errorf("the parent's layer was not reused: %v", img.Manifest.Layers[0])
	}
	if b, err := os.ReadFile(filepath.Join(s.LayerDir(ids[1]), "b")); err != nil || string(b) != "x" {
		t.Errorf("unpacked new layer: %q, %v", b, err)
	}
	h := img.Config.History
	if len(h) != 2 || h[1].Comment != "msg" || h[1].Author != "me" || h[1].CreatedBy != "sh -c b" || img.Config.Author != "me" {
		t.Errorf("history %+v", h)
	}
	c := img.Config.Config
	if len(c.Cmd) != 1 || c.Cmd[0] != "run" || c.Labels["k"] != "v" || len(c.Env) != 1 {
		t.Errorf("config %+v", c)
	}
	if len(img.Names) != 1 || img.Names[0] != "docker.io/library/child:1" {
		t.Errorf("names %v", img.Names)
	}
}

// TestCommitFailureLeavesStoreAlone: a layer writer that fails midway, or
// a bad change, adds nothing to the store.
func TestCommitFailureLeavesStoreAlone(t *testing.T) {
	s := openTestStore(t)
	base, err := s.Import(bytes.NewReader(layerTar(t, nil, "a")), ImportOptions{Source: "-"})
	if err != nil {
		t.Fatal(err)
	}
	before := storeSnapshot(t, s.Root())
	boom := errors.New("boom")
	top := layerTar(t, nil, "b")
	for name, o := range map[string]CommitOptions{
		"writer fails": {WriteLayer: func(w io.Writer) error { w.Write(top[:700]); return boom }},
		"bad change":   {Changes: func(*ocispec.ImageConfig) error { return boom }, WriteLayer: func(w io.Writer) error { _, err := w.Write(top); return err }},
		"no parent":    {Parent: "sha256:" + string(bytes.Repeat([]byte("0"), 64)), WriteLayer: func(w io.Writer) error { _, err := w.Write(top); return err }},
	} {
		if o.Parent == "" {
			o.Parent = base.Image.ID.String()
		}
		if _, err := s.Commit(o); err == nil {
			t.Errorf("%s: commit succeeded", name)
		}
		if after := storeSnapshot(t, s.Root()); after != before {
			t.Errorf("%s: the store changed", name)
		}
	}
}
