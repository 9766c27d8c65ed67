package rootcopy

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"nook/internal/testutil"
)

// TestExtractSparse: a sparse file copied into a container stays sparse
// and costs its data, not its claimed terabyte (cp once re-wrote the tar,
// expanding every hole into zeros on the way).
func TestExtractSparse(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	s := rootSide(t, root, []string{"dst"}, nil, nil)
	const size = 1 << 40
	if err := s.Extract(bytes.NewReader(testutil.SparseTar("big", size, size-512, "tail")), "/dst", TreeNames("copy"), false, nil); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "dst/copy/big"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size || st.Blocks*512 > 1<<20 {
		t.Fatalf("copied sparse file: size %d, %d bytes allocated", st.Size, st.Blocks*512)
	}
}

// TestExtractDropsWhiteoutNames: an entry named like an overlay whiteout,
// or below one, is never a copied file's: it is left out, deleting
// nothing on this side and failing nothing.
func TestExtractDropsWhiteoutNames(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	s := rootSide(t, root, []string{"dst"}, map[string]string{"dst/keep": "kept"}, nil)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range []string{".wh.keep", ".wh.dir/child", "plain"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: 1})
		tw.Write([]byte("x"))
	}
	tw.Close()
	if err := s.Extract(&buf, "/dst", KeepNames, false, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "dst/keep")); err != nil || string(b) != "kept" {
		t.Errorf("dst/keep after a .wh.keep entry: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "dst/plain")); err != nil {
		t.Errorf("the plain entry was not copied: %v", err)
	}
	for _, n := range []string{"dst/.wh.keep", "dst/.wh.dir"} {
		if _, err := os.Lstat(filepath.Join(root, n)); err == nil {
			t.Errorf("the whiteout-named %s was copied", n)
		}
	}
}
