package stagebin

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"nook/internal/testutil"
	"nook/rootless"
)

const testSum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func embedFS(bin, sum string) fstest.MapFS {
	m := fstest.MapFS{"bin/README.md": {Data: []byte("x")}}
	if bin != "" {
		m[binFile] = &fstest.MapFile{Data: []byte(bin)}
	}
	if sum != "" {
		m[sumFile] = &fstest.MapFile{Data: []byte(sum + "\n")}
	}
	return m
}

// TestPathWithoutEmbedded: a plain `go build` (or a half-written bin/)
// embeds no stages; Path says so and writes nothing, and nook runs its
// stages from its own binary.
func TestPathWithoutEmbedded(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"nothing":    embedFS("", ""),
		"no sum":     embedFS("binary", ""),
		"no binary":  embedFS("", testSum),
		"bad sum":    embedFS("binary", "abc"),
		"empty file": {binFile: {}, sumFile: {Data: []byte(testSum)}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bin")
			p, err := path(fsys, dir)
			if p != "" || err != nil {
				t.Fatalf("path = %q, %v; want \"\", nil", p, err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s made: %v", dir, err)
			}
		})
	}
}

// TestPathWritesOnceAndReplaces: the binary lands under its digest's name,
// executable, once; a wrong-sized file of that name is replaced; other
// builds' programs go but the newest few, and unrelated files stay.
func TestPathWritesOnceAndReplaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bin")
	fsys := embedFS("#!/bin/sh\necho init\n", testSum)
	want := filepath.Join(dir, "nook-stages-0123456789abcdef")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Other builds' programs, the oldest first; the newest three stay.
	old := []string{"nook-stages-1000000000000000", "nook-stages-2000000000000000", "nook-stages-3000000000000000",
		"nook-stages-4000000000000000", "nook-stages-5000000000000000"}
	for i, n := range append(old, "other") {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("old"), 0o755); err != nil {
			t.Fatal(err)
		}
		mod := time.Now().Add(time.Duration(i-10) * time.Hour)
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}

	p, err := path(fsys, dir)
	if err != nil || p != want {
		t.Fatalf("path = %q, %v; want %q", p, err, want)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o555 {
		t.Errorf("mode %v, want r-xr-xr-x", st.Mode())
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, fsys[binFile].Data) {
		t.Errorf("content %q", b)
	}
	if out, err := exec.Command(p).Output(); err != nil || string(out) != "init\n" {
		t.Errorf("running it: %q, %v", out, err)
	}
	for i, n := range old {
		_, err := os.Stat(filepath.Join(dir, n))
		if gone := os.IsNotExist(err); gone != (i < len(old)-kept) {
			t.Errorf("%s gone: %v (%v); want the %d newest kept", n, gone, err, kept)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "other")); err != nil {
		t.Errorf("an unrelated file went: %v", err)
	}

	// Found: not written again (same inode).
	if p2, err := path(fsys, dir); err != nil || p2 != p {
		t.Fatalf("second path = %q, %v", p2, err)
	}
	if st2, _ := os.Stat(p); !os.SameFile(st, st2) {
		t.Error("a present init was written again")
	}

	// A truncated file of that name is replaced.
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := path(fsys, dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, fsys[binFile].Data) {
		t.Errorf("truncated init kept: %q", b)
	}
}

// TestPathUnwritable: a store nook cannot write to fails with an error
// naming the operation (the caller then runs init from nook's binary).
func TestPathUnwritable(t *testing.T) {
	testutil.RequireUnprivileged(t) // root writes anywhere
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(parent, 0o755) })
	p, err := path(embedFS("bin", testSum), filepath.Join(parent, "bin"))
	if err == nil || p != "" || !strings.Contains(err.Error(), "writing the container stages") {
		t.Fatalf("path = %q, %v; want an error", p, err)
	}
}

// TestSelfUnshares: the CLI starts the program so that it unshares its
// namespaces itself only when gen.go linked it with the entry point that
// rootless names, and said so beside it.
func TestSelfUnshares(t *testing.T) {
	with := func(fsys fstest.MapFS, entry string) fstest.MapFS {
		fsys[entryFile] = &fstest.MapFile{Data: []byte(entry + "\n")}
		return fsys
	}
	for name, tt := range map[string]struct {
		fsys fstest.MapFS
		want bool
	}{
		"its entry point":  {with(embedFS("binary", testSum), rootless.EntrySymbol), true},
		"Go's entry point": {embedFS("binary", testSum), false},
		"another symbol":   {with(embedFS("binary", testSum), "_rt0_amd64_linux"), false},
		"no program":       {with(embedFS("", ""), rootless.EntrySymbol), false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := selfUnshares(tt.fsys); got != tt.want {
				t.Errorf("selfUnshares = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEmbeddedIsCurrent builds cmd/nook-stages again and compares it with
// the embedded one: stages older than the sources beside them (go build
// without go generate after a change to the shim or rootless) would speak
// an older protocol to the CLI. With CI=true the build must have embedded one.
func TestEmbeddedIsCurrent(t *testing.T) {
	testutil.RequireRoot(t) // the user pass cannot read the module cache
	size, sum, ok := embedded(files)
	testutil.Require(t, ok, "no stages embedded: run go generate ./container/stagebin (tests/run.sh does)")
	out := t.TempDir()
	cmd := exec.Command("go", "run", "gen.go", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen.go: %v\n%s", err, b)
	}
	fresh, err := os.ReadFile(filepath.Join(out, "nook-stages.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(fresh)); got != sum {
		t.Fatalf("the embedded stages (%d bytes, %s) is not what the sources build (%s): run go generate ./container/stagebin", size, sum[:16], got[:16])
	}
	if runtime.GOARCH == "amd64" && !selfUnshares(files) {
		t.Errorf("the embedded stages do not unshare at their entry point (gen.go links them so on amd64)")
	}
}
