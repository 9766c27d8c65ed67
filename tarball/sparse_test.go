package tarball

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"nook/image/layer"
	"nook/internal/testutil"
)

// TestLoadSparse: a layer holding a sparse entry loads at the cost of its
// data (a terabyte of holes is seeked over, not read as zeros) and is
// stored sparse; an entry the filesystem cannot hold is refused by name
// in one line, the store untouched.
func TestLoadSparse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int64
		tooLarge bool // the filesystem may refuse it (ext4 holds 16 TiB)
	}{
		{"one TiB", 1 << 40, false},
		{"four EiB", 1 << 62, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			before := snapshot(t, s.Root())
			l := testutil.SparseTar("sparse", tc.size, tc.size/2, "data")
			_, err := load(s, legacyArchive(t, []string{"sparse:1"}, [][]byte{l}, nil), ReadOptions{})
			if tc.tooLarge && err != nil {
				if !errors.Is(err, layer.ErrTooLarge) || !strings.Contains(err.Error(), `"sparse"`) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("refusal %q: want ErrTooLarge naming the entry, in one line", err)
				}
				if after := snapshot(t, s.Root()); after != before {
					t.Fatalf("refused load changed the store:\n%s\n---\n%s", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			found := false
			filepath.WalkDir(s.Root(), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.Name() != "sparse" || !d.Type().IsRegular() {
					return nil
				}
				var st syscall.Stat_t
				if syscall.Lstat(p, &st) == nil && st.Size == tc.size && st.Blocks*512 <= 1<<20 {
					found = true
				}
				return nil
			})
			if !found {
				t.Fatal("no sparse file of the claimed size in the store's unpacked layers")
			}
		})
	}
}
