package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"nook/image"
)

// TestPickNameReadsNames: the names taken are those of every directory
// with a readable config, whatever its state; a directory without one (half
// created or removed) or with a damaged one takes none, as List skips it.
func TestPickNameReadsNames(t *testing.T) {
	root := t.TempDir()
	m := &Manager{root: root}
	for dir, cfg := range map[string]string{
		"c1": `{"id":"c1","name":"taken_one"}`, "c2": `{"id":"c2","name":"taken_two"}`,
		"c3": "", "c4": `{"name":`, ".layers": `{"name":"hidden"}`,
	} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if cfg != "" {
			if err := os.WriteFile(filepath.Join(root, dir, configFile), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	taken, err := m.names()
	if err != nil {
		t.Fatal(err)
	}
	if len(taken) != 2 || !taken["taken_one"] || !taken["taken_two"] {
		t.Errorf("names = %v, want taken_one and taken_two", taken)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{{"taken_one", ErrNameInUse}, {"/taken_two", ErrNameInUse}, {"hidden", nil}, {"free", nil}} {
		c := Config{Name: tc.name}
		if err := m.pickName(&c); !errors.Is(err, tc.err) {
			t.Errorf("pickName(%q) = %v, want %v", tc.name, err, tc.err)
		}
	}
	c := Config{}
	if err := m.pickName(&c); err != nil || c.Name == "" || taken[c.Name] {
		t.Errorf("a random name: %q, %v", c.Name, err)
	}
}

// TestMkdirNoFollow: a container directory is created only where it
// belongs: a link planted in its place, or in place of the containers
// directory after the store was opened, is refused, and nothing is
// created through it.
func TestMkdirNoFollow(t *testing.T) {
	base := t.TempDir()
	theirs := filepath.Join(base, "theirs")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	store, err := image.Open(filepath.Join(base, "store"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.dirs(true)
	if err != nil {
		t.Fatal(err)
	}
	if err := mkdirIn(r, "c1", "upper", "work"); err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(store.Root(), "containers")
	if fi, err := os.Stat(filepath.Join(parent, "c1", "work")); err != nil || !fi.IsDir() {
		t.Fatalf("c1/work: %v", err)
	}
	if err := os.Symlink(theirs, filepath.Join(parent, "c2")); err != nil {
		t.Fatal(err)
	}
	if err := mkdirIn(r, "c2", "upper"); err == nil {
		t.Error("created a container directory over a planted link")
	}
	if err := os.Symlink("c1", filepath.Join(parent, "c3")); err != nil {
		t.Fatal(err)
	}
	if err := mkdirIn(r, "c3", "upper"); err == nil {
		t.Error("created a container directory over a link to another")
	}
	// The containers directory itself, swapped for a link after the
	// store was opened (its check at Open passed).
	if err := os.RemoveAll(parent); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(theirs, parent); err != nil {
		t.Fatal(err)
	}
	m, _ = Open(store, Options{})
	if _, err := m.dirs(true); err == nil {
		t.Error("opened a linked containers directory")
	}
	if _, err := m.lockAll(); err == nil {
		t.Error("locked through a linked containers directory")
	}
	if ents, _ := os.ReadDir(theirs); len(ents) != 0 {
		t.Errorf("created through a link: %v", ents)
	}
}

// TestImageVolumes: each of the image's VOLUME paths not covered by a
// mount of the user's gets an anonymous volume, in order; "/" and
// relative paths get none.
func TestImageVolumes(t *testing.T) {
	var img image.Image
	img.Config.Config.Volumes = map[string]struct{}{"/b": {}, "/a/": {}, "/taken": {}, "/": {}, "rel": {}}
	mine := []MountSpec{{Type: "bind", Source: "/h", Target: "/taken/"}}
	got := imageVolumes(img, mine)
	want := []MountSpec{mine[0], {Type: "volume", Target: "/a", Anonymous: true}, {Type: "volume", Target: "/b", Anonymous: true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("imageVolumes = %+v, want %+v", got, want)
	}
	if len(mine) != 1 {
		t.Errorf("the user's mounts changed: %+v", mine)
	}
}
