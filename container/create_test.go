package container

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
