package fsbench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"nook/bench/fixture"
	"nook/bench/host"
	"nook/internal/testutil"
)

func TestRotate(t *testing.T) {
	xs := []string{"a", "b", "c"}
	for i, want := range [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}, {"a", "b", "c"}} {
		if got := rotate(xs, i); !slices.Equal(got, want) {
			t.Errorf("rotate(%v, %d) = %v, want %v", xs, i, got, want)
		}
	}
	if !slices.Equal(xs, []string{"a", "b", "c"}) {
		t.Errorf("rotate changed its input: %v", xs)
	}
}

func worker(t *testing.T, args ...string) Result {
	t.Helper()
	var out strings.Builder
	if err := Worker(args, &out); err != nil {
		t.Fatalf("worker %v: %v", args, err)
	}
	var r Result
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("worker %v printed %q: %v", args, out.String(), err)
	}
	return r
}

// TestWorkerOps runs each workload's operation on a native fixture tree
// and checks it touched what the workload claims to touch.
func TestWorkerOps(t *testing.T) {
	dir := t.TempDir()
	spec, err := json.Marshal(fixture.Quick())
	if err != nil {
		t.Fatal(err)
	}
	worker(t, "fixture", filepath.Join(dir, "fx"), string(spec))
	fx, err := readManifest(filepath.Join(dir, "fx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range workloads(fx, 8<<20) {
		t.Run(w.name, func(t *testing.T) {
			root := fx.Native
			if w.write {
				root = t.TempDir()
				if w.prep != nil {
					for _, args := range w.prep(fx, root) {
						worker(t, args...)
					}
				}
			}
			r := worker(t, w.args(fx, root, true)...)
			if w.want != nil {
				if err := w.want(fx, r); err != nil {
					t.Error(err)
				}
			}
			if r.NS <= 0 {
				t.Errorf("duration %d ns", r.NS)
			}
		})
	}
	t.Run("append adds one byte", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
			t.Fatal(err)
		}
		worker(t, "append", p)
		if fi, err := os.Stat(p); err != nil || fi.Size() != 4 {
			t.Errorf("after append: %v, %v", fi, err)
		}
	})
	t.Run("waitmount fails on a plain dir", func(t *testing.T) {
		if err := Worker([]string{"waitmount", t.TempDir(), "20ms"}, &strings.Builder{}); err == nil {
			t.Error("waitmount saw a mount on a plain directory")
		}
	})
}

// fakeNook is a stand-in for `nook mount`: fuse-overlayfs behind nook's
// command line, so the nook column's machinery (trial mount, user
// namespace, nsenter) is exercised before nook's union exists.
const fakeNook = `#!/bin/sh
[ "$1" = mount ] || exit 1
shift
[ "$1" = --help ] && exit 0
exec fuse-overlayfs "$@"
`

// TestRunQuick runs the whole suite in quick mode against fuse-overlayfs
// and a fake nook in a user namespace: every cell must have a value, and
// no mount may survive.
func TestRunQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the quick suite mounts and takes seconds")
	}
	fo, err := exec.LookPath("fuse-overlayfs")
	testutil.Require(t, err == nil, "fuse-overlayfs is not installed")
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	testutil.Require(t, err == nil, fmt.Sprintf("/dev/fuse cannot be opened: %v", err))
	f.Close()
	_, err = exec.LookPath("nsenter")
	testutil.Require(t, err == nil, "nsenter is not installed")

	dir := t.TempDir()
	nook := filepath.Join(dir, "nook")
	if err := os.WriteFile(nook, []byte(fakeNook), 0o755); err != nil {
		t.Fatal(err)
	}
	u, err := host.LookupUser("")
	if err != nil {
		t.Fatal(err)
	}
	// The driver's worker is nookbench itself, built without -race: a race
	// binary starts too slowly to run a hundred times.
	gobin, err := exec.LookPath("go")
	testutil.Require(t, err == nil, "the go tool is not on PATH")
	self := filepath.Join(dir, "nookbench")
	build := exec.Command(gobin, "build", "-buildvcs=false", "-o", self, "nook/bench/cmd/nookbench")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building nookbench: %v\n%s", err, out)
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		defer cancel()
	}
	work := filepath.Join(dir, "nookbench-test")
	tiny := fixture.Spec{BigSize: 1 << 20, Files: 200, Dirs: 4, MinSize: 1 << 10, MaxSize: 8 << 10,
		Whiteouts: 5, OpaqueHide: 3, OpaqueNew: 2, Seed: 3}
	opts := Options{Work: work, Runs: 1, Spec: tiny, WriteBytes: 8 << 20, Quick: true, Timeout: time.Minute, Self: self, User: u,
		FuseOverlayfs: fo, Nook: nook, NookUserns: "always", NoCold: true, // others may be timing things
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	tab, notes, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err != nil || strings.Contains(string(mi), work) {
		t.Errorf("a mount under %s survived the run (%v)", work, err)
	}
	if !slices.Equal(tab.Configs, []string{Native, FuseOverlayfs, Nook}) {
		t.Errorf("columns %v", tab.Configs)
	}
	if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "unshare") }) {
		t.Errorf("notes do not say nook ran in a user namespace: %q", notes)
	}
	for _, r := range tab.Rows {
		for _, c := range tab.Configs {
			_, ok := r.Value(c)
			want := c != Native || r.Unit == "ms"
			if strings.Contains(r.Name, "cold") {
				want = false
			}
			if ok != want {
				t.Errorf("%s / %s: has value %v, want %v (missing: %q)", r.Name, c, ok, want, r.Missing[c])
			}
		}
	}
	if _, err := os.Stat(filepath.Join(work, "fixture", fixture.ManifestName)); err != nil {
		t.Errorf("fixture manifest: %v", err)
	}
}
