// Package startup benchmarks how long nook takes to run a container, with
// Go's benchmark harness (bench/runbench.sh sets it beside its peers):
//
//	bash build.sh /tmp/nook && go test -c -o /tmp/startup.test ./bench/startup &&
//	  runuser -u nook-ci -- env NOOK_BIN=/tmp/nook /tmp/startup.test -test.bench . -test.count 5
//
// Without NOOK_BIN it builds nook with build.sh.
package startup

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"nook/internal/testutil"
)

// nook builds nook (or takes NOOK_BIN) and returns a command line for it
// over a store of its own in which the busybox image "bb" exists.
func nook(b *testing.B) func(args ...string) *exec.Cmd {
	b.Helper()
	testutil.RequireUnprivileged(b)
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	testutil.Require(b, err == nil, "/dev/fuse is not usable")
	f.Close()
	bin := os.Getenv("NOOK_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "nook")
		if out, err := exec.Command("bash", "../../build.sh", bin).CombinedOutput(); err != nil {
			b.Fatalf("building nook: %v\n%s", err, out)
		}
	}
	store := filepath.Join(b.TempDir(), "store")
	cmd := func(args ...string) *exec.Cmd {
		return exec.Command(bin, append([]string{"--root", store}, args...)...)
	}
	imp := cmd("import", "-", "bb")
	imp.Stdin = bytes.NewReader(busybox(b))
	if out, err := imp.CombinedOutput(); err != nil {
		b.Fatalf("importing busybox: %v\n%s", err, out)
	}
	b.Cleanup(func() { _ = cmd("image", "prune", "-a", "-f").Run() })
	return cmd
}

// busybox is a root filesystem tar of the host's static busybox with
// /bin/true.
func busybox(b *testing.B) []byte {
	b.Helper()
	var body []byte
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if data, err := os.ReadFile(p); err == nil {
			body = data
			break
		}
	}
	testutil.Require(b, body != nil, "busybox-static is not installed")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))},
		{Name: "bin/true", Typeflag: tar.TypeSymlink, Linkname: "busybox"},
	} {
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(body); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkRunRm is `nook run --rm bb /bin/true`, start to exit.
func BenchmarkRunRm(b *testing.B) {
	nook := nook(b)
	for b.Loop() {
		if out, err := nook("run", "--rm", "bb", "/bin/true").CombinedOutput(); err != nil {
			b.Fatalf("nook run: %v\n%s", err, out)
		}
	}
}

// BenchmarkRunRmUnconfined is BenchmarkRunRm without the seccomp filter
// (--security-opt seccomp=unconfined): the difference is what Docker's
// default profile costs a run.
func BenchmarkRunRmUnconfined(b *testing.B) {
	nook := nook(b)
	for b.Loop() {
		if out, err := nook("run", "--rm", "--security-opt", "seccomp=unconfined", "bb", "/bin/true").CombinedOutput(); err != nil {
			b.Fatalf("nook run: %v\n%s", err, out)
		}
	}
}
