package fusefs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckDeviceRemedy(t *testing.T) {
	dir := t.TempDir()
	closed := filepath.Join(dir, "closed")
	if err := os.WriteFile(closed, nil, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, remedy string
	}{
		{"absent", filepath.Join(dir, "absent"), "; remedy: sudo modprobe fuse"},
		{"usable", filepath.Join(dir, "usable"), ""},
	}
	if os.Geteuid() != 0 { // root opens any mode
		tests = append(tests, struct{ name, path, remedy string }{"closed", closed, "; remedy: sudo chmod 0666 /dev/fuse"})
	}
	if err := os.WriteFile(filepath.Join(dir, "usable"), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		err := checkDevice(tt.path)
		if tt.remedy == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrNoFuse) || !strings.Contains(err.Error(), tt.remedy) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want ErrNoFuse with %q on one line", tt.name, err, tt.remedy)
		}
	}
}
