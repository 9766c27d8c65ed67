package cli

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nook/internal/testutil"
)

// busyboxTar is a root filesystem of the host's static busybox.
func busyboxTar(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	testutil.Require(t, err == nil, "needs /bin/busybox (busybox-static)")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, bb)
	add(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:0::/root:/bin/sh\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bb.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunVerbs drives the container verbs in process, with this test
// binary as the shim and init (TestMain dispatches Stages). As root it
// covers real root's identity-mapped namespace, which the end-to-end
// tests, run unprivileged, do not.
func TestRunVerbs(t *testing.T) {
	_, err := os.Stat("/dev/fuse")
	testutil.Require(t, err == nil, "needs /dev/fuse")
	root := filepath.Join(t.TempDir(), "store")
	nook := func(stdin string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := run(append([]string{"--root", root}, args...), strings.NewReader(stdin), &out, &errb)
		return out.String(), errb.String(), code
	}
	if _, e, code := nook("", "import", busyboxTar(t), "bb"); code != 0 {
		t.Fatalf("import: %d %s", code, e)
	}
	t.Cleanup(func() {
		nook("", "container", "prune", "-f")
		nook("", "image", "prune", "-a", "-f")
	})
	if out, e, code := nook("", "run", "--rm", "bb", "sh", "-c", "echo hi; echo err >&2; exit 3"); code != 3 || out != "hi\n" || e != "err\n" {
		t.Errorf("run: exit %d, stdout %q, stderr %q", code, out, e)
	}
	if out, _, code := nook("", "run", "--name", "c1", "bb", "sh", "-c", "echo $HOSTNAME > /h; cat /h"); code != 0 || out == "" {
		t.Errorf("run --name: exit %d, stdout %q", code, out)
	}
	if out, _, _ := nook("", "ps", "-a", "--format", "{{.Names}} {{.State}}"); out != "c1 exited\n" {
		t.Errorf("ps -a = %q", out)
	}
	if out, _, code := nook("", "logs", "c1"); code != 0 || out == "" {
		t.Errorf("logs: exit %d, %q", code, out)
	}
	if _, e, code := nook("", "rm", "c1"); code != 0 {
		t.Errorf("rm: exit %d %s", code, e)
	}
	if _, e, code := nook("", "run", "--rm", "bb", "/nonexistent"); code != 127 || !strings.Contains(e, "no such file") {
		t.Errorf("run of a missing command: exit %d, stderr %q", code, e)
	}
}
