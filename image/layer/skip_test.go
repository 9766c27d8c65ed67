package layer

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestWriteSkip: a skipped name is left out, and a skipped directory with
// everything below it.
func TestWriteSkip(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a", "b/c", "b/d", "e/f"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		skip []string
		want []string
	}{
		{nil, []string{"a", "b/", "b/c", "b/d", "e/", "e/f"}},
		{[]string{"b"}, []string{"a", "e/", "e/f"}},
		{[]string{"b/c", "e/f"}, []string{"a", "b/", "b/d", "e/"}},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		skip := func(n string) bool {
			for _, s := range tc.skip {
				if s == n {
					return true
				}
			}
			return false
		}
		if err := Write(&buf, dir, WriteOptions{Skip: skip}); err != nil {
			t.Fatal(err)
		}
		var got []string
		tr := tar.NewReader(&buf)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, hdr.Name)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("skip %v: got %v, want %v", tc.skip, got, tc.want)
		}
	}
}
