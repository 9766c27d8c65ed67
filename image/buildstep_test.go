package image

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"

	"nook/image/layer"
)

// TestCommitBuildStep: a step's directory becomes its layer by rename,
// without the paths left out of its tar and with times clamped; the blob
// is the tar; the cache entry is found by key, hidden from listings
// until named, and removed by prune.
func TestCommitBuildStep(t *testing.T) {
	s := openTestStore(t)
	upper := filepath.Join(s.Root(), "containers", "c", "upper")
	if err := os.MkdirAll(filepath.Join(upper, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "made"), []byte("by RUN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clamp := time.Unix(1700000000, 0)
	var cfg dockerspec.DockerOCIImage
	cfg.Config.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}}
	st := BuildStep{
		Config: cfg, CacheKey: "sha256:k1", FromDir: upper, NotInLayer: []string{"proc"}, Clamp: clamp,
		WriteLayer: func(w io.Writer) error {
			return layer.Write(w, upper, layer.WriteOptions{Skip: func(n string) bool { return n == "proc" }, Clamp: clamp})
		},
	}
	img, err := s.CommitBuildStep(st)
	if err != nil {
		t.Fatal(err)
	}
	d := img.Config.RootFS.DiffIDs[0]
	dir := s.LayerDir(d)
	if _, err := os.Stat(upper); !os.IsNotExist(err) {
		t.Errorf("the upper directory is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "proc")); !os.IsNotExist(err) {
		t.Errorf("a path left out of the tar is in the layer: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "made"))
	if err != nil || !fi.ModTime().Equal(clamp) {
		t.Errorf("made: %v, mtime %v, want %v", err, fi.ModTime(), clamp)
	}
	f, err := s.OpenBlob(d)
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := io.ReadAll(f)
	f.Close()
	if digest.FromBytes(blob) != d || !bytes.Contains(blob, []byte("by RUN")) || bytes.Contains(blob, []byte("proc/")) {
		t.Errorf("the blob is not the layer's tar")
	}
	raw, _ := s.RawConfig(img)
	if !bytes.Contains(raw, []byte(`"Healthcheck"`)) {
		t.Errorf("the config lost Docker's fields: %s", raw)
	}
	if got, ok, err := s.BuildCache("sha256:k1"); err != nil || !ok || got.ID != img.ID {
		t.Errorf("BuildCache(k1) = %v, %v, %v", got.ID, ok, err)
	}
	if _, ok, _ := s.BuildCache("sha256:other"); ok {
		t.Error("BuildCache found an unknown key")
	}
	imgs, _ := s.Images()
	if len(imgs) != 1 || !imgs[0].BuildCache {
		t.Errorf("the cached step is not marked intermediate: %+v", imgs)
	}
	// Named, it is an image like any other; the cache entry stays.
	named := BuildStep{Config: cfg, Layers: img.Manifest.Layers, CacheKey: "sha256:final", Names: []string{"app:1"}, Listed: true}
	named.Config.RootFS.DiffIDs = img.Config.RootFS.DiffIDs
	final, err := s.CommitBuildStep(named)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Resolve("app:1"); err != nil || r.ID != final.ID || r.BuildCache {
		t.Errorf("app:1 = %v, %v", r, err)
	}
	if _, err := s.Prune(PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.BuildCache("sha256:k1"); !ok {
		t.Error("prune removed a cached step whose layers a named image uses")
	}
	if _, ok, _ := s.BuildCache("sha256:final"); !ok {
		t.Error("prune removed the cache entry of a named image")
	}
	if _, err := s.Remove("app:1", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sha256:k1", "sha256:final"} {
		if _, ok, _ := s.BuildCache(k); ok {
			t.Errorf("prune left %s, which no image uses", k)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("prune left the layer no image uses")
	}
}
