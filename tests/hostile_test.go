package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"nook/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileImports feeds broken and hostile tars to import: each is
// refused with one line naming the problem, and the store is unchanged.
func TestHostileImports(t *testing.T) {
	e := newEnv(t)
	e.ok(busyboxRootfs(t), "import", "-", "base") // the store exists and holds an image
	good := tarOf(t, file("a", strings.Repeat("x", 5000)))
	cases := []struct {
		name  string
		input []byte
		want  string // in the message
	}{
		{"not a tar", []byte("this is plain text, not an archive\n" + strings.Repeat("junk ", 200)), "tar"},
		{"empty input", []byte{}, "tar"},
		{"truncated data", good[:1024], "unexpected EOF"},
		{"truncated header", good[:300], "tar"},
		{"corrupt gzip", append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}, bytes.Repeat([]byte{0xff}, 100)...), "gzip"},
		{"truncated gzip", gz(t, good)[:60], "unexpected EOF"},
		{"dot-dot path", tarOf(t, file("../escape", "x")), "../escape"},
		{"nested dot-dot path", tarOf(t, dir("a/", 0o755), file("a/../../escape", "x")), "escape"},
		{"absolute path", tarOf(t, file("/etc/evil", "x")), "/etc/evil"},
		{"hardlink outside the root", tarOf(t, entry{name: "pw", typ: tar.TypeLink, link: "../../etc/passwd"}), "pw"},
		{"hardlink to a missing file", tarOf(t, entry{name: "pw", typ: tar.TypeLink, link: "nothere"}), "pw"},
		{"file through a symlink", tarOf(t, symlink("up", "/tmp"), file("up/evil", "x")), "up/evil"},
		{"hardlink through a symlink", tarOf(t, symlink("up", "/etc"), entry{name: "pw", typ: tar.TypeLink, link: "up/passwd"}), "pw"},
		{"whiteout of dot-dot", tarOf(t, file(".wh..", "")), ".wh.."},
		{"forged opaque marker", tarOf(t, entry{name: "d/", typ: tar.TypeDir, mode: 0o755, xattrs: map[string]string{"user.overlay.opaque": "y"}}), "user.overlay"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.refused(t, tc.input, []string{"import", "-", "hostile"}, "nook: ", tc.want)
		})
	}
	// Escapes never landed beside the store either.
	if _, err := os.Lstat(filepath.Join(filepath.Dir(e.store), "escape")); err == nil {
		t.Error("a ../ entry was written outside the layer")
	}
}

func TestDeviceNodesAreSkipped(t *testing.T) {
	e := newEnv(t)
	in := tarOf(t, file("keep", "k"), entry{name: "dev-sda", typ: tar.TypeBlock, mode: 0o600})
	r := e.nook(in, "import", "-", "devs")
	if r.code != 0 {
		t.Fatalf("import with a device node: %s", r)
	}
	if !strings.Contains(r.stderr, "dev-sda") || !strings.Contains(r.stderr, "warning") {
		t.Errorf("stderr = %q, want a warning naming dev-sda", r.stderr)
	}
	diff := onlyLayer(t, e)
	if _, err := os.Lstat(filepath.Join(diff, "dev-sda")); err == nil {
		t.Error("the device node was created")
	}
	if _, err := os.Lstat(filepath.Join(diff, "keep")); err != nil {
		t.Errorf("the regular file is missing: %v", err)
	}
}

func TestBadReferences(t *testing.T) {
	e := newEnv(t)
	e.ok(busyboxRootfs(t), "import", "-", "present")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "Not/A:Valid:Ref"}, "Not/A:Valid:Ref"},
		{[]string{"inspect", "absent"}, "absent"},
		{[]string{"rmi", "absent:1"}, "absent:1"},
		{[]string{"tag", "absent", "x"}, "absent"},
		{[]string{"tag", "present", "UPPER"}, "UPPER"},
		{[]string{"import", "-", "Bad Name"}, "Bad Name"},
		{[]string{"import", "/nonexistent/file.tar"}, "/nonexistent/file.tar"},
		{[]string{"import", "-c", "RUN rm -rf /", "-", "x"}, "RUN"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			before := snapshot(t, e.store)
			r := e.nook(busyboxRootfs(t), tc.args...)
			if r.code == 0 {
				t.Fatalf("succeeded: %s", r)
			}
			if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(lines) != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr = %q, want one line naming %q", r.stderr, tc.want)
			}
			if after := snapshot(t, e.store); after != before {
				t.Errorf("store changed")
			}
		})
	}
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// refused runs nook and checks it turned the input down as a user should
// see it: exit 125, one stderr line starting with prefix and naming want,
// nothing on stdout, and the store exactly as it was.
func (e *env) refused(t *testing.T, input []byte, args []string, prefix, want string) {
	t.Helper()
	before := snapshot(t, e.store)
	r := e.nook(input, args...)
	if r.code != 125 {
		t.Fatalf("nook %s exited %d, want 125: %s", strings.Join(args, " "), r.code, r)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], prefix) || !strings.Contains(lines[0], want) {
		t.Errorf("stderr = %q, want one line starting %q and naming %q", r.stderr, prefix, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if after := snapshot(t, e.store); after != before {
		t.Errorf("store changed:\n--- before\n%s\n--- after\n%s", before, after)
	}
}

// snapshot describes every file under a store, for before/after checks.
func snapshot(t *testing.T, root string) string { return testutil.TreeSnapshot(t, root) }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
