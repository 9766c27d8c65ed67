package shim

import (
	"debug/elf"
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nook/rootless"
)

// dynamicBinary returns a host binary with an ELF interpreter and that
// interpreter, read with debug/elf.
func dynamicBinary(t *testing.T) (path, interp string) {
	t.Helper()
	for _, p := range []string{"/bin/ls", "/usr/bin/ls", "/bin/sh"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				b := make([]byte, prog.Filesz)
				if _, err := prog.ReadAt(b, 0); err == nil {
					f.Close()
					return p, string(b[:len(b)-1])
				}
			}
		}
		f.Close()
	}
	t.Fatal("no dynamically linked binary on this host")
	return "", ""
}

// staticBinary returns a host binary without an ELF interpreter: busybox
// from busybox-static, which the test command installs. (The test binary
// itself is dynamic when built with -race.)
func staticBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			static = static && prog.Type != elf.PT_INTERP
		}
		f.Close()
		if static {
			return p
		}
	}
	t.Fatal("no statically linked busybox on this host (Debian: busybox-static)")
	return ""
}

// warmRoot writes a container root: bin/tool is a copy of a dynamic host
// binary, bin/big the same padded past 1 MiB, sbin/static a static binary,
// bin/fifo a FIFO on the PATH, and link/escape a symlink that would leave
// the root.
func warmRoot(t *testing.T) (root, interp string) {
	t.Helper()
	bin, interp := dynamicBinary(t)
	root = t.TempDir()
	for _, d := range []string{"bin", "sbin", "link", "work"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(bin, "bin/tool")
	// Past the first read buffer (512 KiB): the ELF magic must still
	// be recognised once later reads have reused the buffer.
	big, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	big = append(big, make([]byte, 1<<20)...)
	if err := os.WriteFile(filepath.Join(root, "bin/big"), big, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(staticBinary(t), "sbin/static")
	if err := unix.Mkfifo(filepath.Join(root, "bin/fifo"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Outside the root, a dynamic binary: were the link followed out of
	// the root, its interpreter would come back.
	outside := filepath.Join(filepath.Dir(root), "outside-tool")
	copyFile(bin, "../outside-tool")
	t.Cleanup(func() { os.Remove(outside) })
	if err := os.Symlink("../../../../../../../.."+outside, filepath.Join(root, "link/escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/tool", filepath.Join(root, "link/tool")); err != nil {
		t.Fatal(err)
	}
	return root, interp
}

// TestWarmRead checks what warmer.read reads: the interpreter of a dynamic
// binary comes back (Warm reads it next), static binaries, FIFOs and
// paths that would leave the root give none, and a FIFO does not block.
func TestWarmRead(t *testing.T) {
	root, interp := warmRoot(t)
	tests := []struct{ path, want string }{
		{"/bin/tool", interp},
		{"/bin/big", interp},
		{"/link/tool", interp}, // an absolute link resolves inside the root
		{"/sbin/static", ""},
		{"/bin/fifo", ""},
		{"/link/escape", ""}, // resolves to ROOT/.../outside-tool: absent
		{"/../../bin/tool", interp},
		{"/missing", ""},
	}
	for _, tc := range tests {
		done := make(chan string)
		go func() {
			deps, _ := (&warmer{root: root}).read(tc.path, false)
			done <- deps.interp
		}()
		select {
		case got := <-done:
			if got != tc.want {
				t.Errorf("read(%q) = %q, want %q", tc.path, got, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("read(%q) blocked", tc.path)
		}
	}
}

// TestWarmLookPath checks that the binary Warm reads is the one init
// will run: found on the payload's PATH inside the root, relative to the
// working directory, or taken as given.
func TestWarmLookPath(t *testing.T) {
	root, _ := warmRoot(t)
	if err := os.WriteFile(filepath.Join(root, "bin/plain"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p    rootless.InitProcess
		want string
	}{
		{rootless.InitProcess{Args: []string{"tool"}}, "/bin/tool"}, // Docker's default PATH
		{rootless.InitProcess{Args: []string{"static"}, Env: []string{"PATH=/nope:/sbin"}}, "/sbin/static"},
		{rootless.InitProcess{Args: []string{"tool"}, Env: []string{"PATH=/sbin"}}, ""},
		{rootless.InitProcess{Args: []string{"plain"}}, ""}, // not executable
		{rootless.InitProcess{Args: []string{"fifo"}}, ""},  // not a regular file
		{rootless.InitProcess{Args: []string{"tool"}, Env: []string{"PATH=bin"}, Cwd: "/"}, "/bin/tool"},
		{rootless.InitProcess{Args: []string{"./tool"}, Cwd: "/bin"}, "/bin/tool"},
		{rootless.InitProcess{Args: []string{"/sbin/static"}}, "/sbin/static"},
		{rootless.InitProcess{Args: []string{"escape"}, Env: []string{"PATH=/link"}}, ""},
		{rootless.InitProcess{}, ""},
	}
	for _, tc := range tests {
		if got := warmLookPath(root, tc.p); got != tc.want {
			t.Errorf("warmLookPath(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

// TestWarmStops checks that Warm on a closed stop channel returns without
// reading a FIFO named as the payload or anything else blocking it.
func TestWarmStops(t *testing.T) {
	root, _ := warmRoot(t)
	stop := make(chan struct{})
	close(stop)
	done := make(chan struct{})
	go func() {
		warmCaches(rootless.InitConfig{Rootfs: root, Mounts: []rootless.Mount{{Target: "/bin/fifo"}},
			Process: rootless.InitProcess{Args: []string{"/bin/fifo"}, Cwd: "/work"}}, nil, stop)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Warm blocked")
	}
}

// libRoot writes a container root holding the host's dynamic ls, its ELF
// interpreter and, under libDir, the libraries ls needs and theirs but the
// interpreter; it returns the root and those libraries' names, breadth
// first.
func libRoot(t *testing.T, libDir string) (root, interp string, libs []string) {
	t.Helper()
	bin, interp := dynamicBinary(t)
	root = t.TempDir()
	put := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(dst)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	put(bin, "/bin/tool")
	put(interp, interp)
	hostDirs := []string{"/lib/" + multiarch(), "/usr/lib/" + multiarch(), "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	queue, seen := []string{bin}, map[string]bool{filepath.Base(interp): true}
	for len(queue) > 0 {
		f, err := elf.Open(queue[0])
		queue = queue[1:]
		if err != nil {
			t.Fatal(err)
		}
		needed, _ := f.ImportedLibraries()
		f.Close()
		for _, name := range needed {
			if seen[name] {
				continue
			}
			seen[name] = true
			for _, d := range hostDirs {
				if p := filepath.Join(d, name); fileExists(p) {
					put(p, filepath.Join(libDir, name))
					libs = append(libs, name)
					queue = append(queue, p)
					break
				}
			}
		}
	}
	if len(libs) == 0 {
		t.Fatalf("%s needs no library found on this host", bin)
	}
	return root, interp, libs
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// TestWarmExecLibraries checks that the payload's shared libraries are
// read, as the loader finds them: in the system directories (Debian's
// multiarch one here) or on LD_LIBRARY_PATH, each once, breadth first; a
// library nowhere to be found is skipped and the others still read.
func TestWarmExecLibraries(t *testing.T) {
	for _, tc := range []struct {
		name, libDir string
		env          []string
	}{
		{"multiarch", "/lib/" + multiarch(), nil},
		{"lib64", "/usr/lib64", nil},
		{"LD_LIBRARY_PATH", "/opt/app/lib", []string{"LD_LIBRARY_PATH=/nope:/opt/app/lib"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, interp, libs := libRoot(t, tc.libDir)
			want := []string{"/bin/tool", interp}
			for _, l := range libs {
				want = append(want, path.Join(tc.libDir, l))
			}
			if got := (&warmer{root: root}).exec("/bin/tool", tc.env); !slices.Equal(got, want) {
				t.Errorf("read %q, want %q", got, want)
			}
			// Without the last library (breadth first, nothing
			// after it depends on it alone), the others are still read.
			last := libs[len(libs)-1]
			if err := os.Remove(filepath.Join(root, tc.libDir, last)); err != nil {
				t.Fatal(err)
			}
			want = want[:len(want)-1]
			if got := (&warmer{root: root}).exec("/bin/tool", tc.env); !slices.Equal(got, want) {
				t.Errorf("without %s: read %q, want %q", last, got, want)
			}
		})
	}
}

func TestExpandOrigin(t *testing.T) {
	got := expandOrigin([]string{"$ORIGIN/../lib", "${ORIGIN}", "/usr/lib/app", "x$ORIGIN"}, "/opt/app/bin/tool")
	want := []string{"/opt/app/bin/../lib", "/opt/app/bin", "/usr/lib/app", "x/opt/app/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("expandOrigin = %q, want %q", got, want)
	}
}

// TestWarmStore checks the store path: every file warmed is handed to
// store as its path inside the root, links resolved (what the union's
// Prefetch needs), and its ELF dependencies are still followed; a file
// store fails on is read through the mount instead.
func TestWarmStore(t *testing.T) {
	root, interp, libs := libRoot(t, "/lib/"+multiarch())
	if err := os.Symlink("tool", filepath.Join(root, "bin/link")); err != nil {
		t.Fatal(err)
	}
	var stored []string
	store := func(rel string, max int64) (int64, error) {
		stored = append(stored, rel)
		if rel == interp {
			return 0, errors.New("refused")
		}
		return max, nil
	}
	w := &warmer{root: root, store: store}
	read := w.exec("/bin/link", nil)
	want := []string{"/bin/tool", interp}
	for _, l := range libs {
		want = append(want, path.Join("/lib/"+multiarch(), l))
	}
	if !slices.Equal(stored, want) {
		t.Errorf("stored %q, want %q", stored, want)
	}
	if len(read) != len(want) {
		t.Errorf("warmed %q: the refused interpreter or a library is missing", read)
	}
}

// TestWarmCache checks the store path of cache: a regular file is stored
// under its path inside the root, links resolved; FIFOs and paths that
// would leave the root are never handed over, and nothing blocks. A file
// the store refuses is still read (it counts what it read).
func TestWarmCache(t *testing.T) {
	root, _ := warmRoot(t)
	tests := []struct {
		path, stored string // stored "" when store must not be called
		refuse       bool
	}{
		{"/bin/tool", "/bin/tool", false},
		{"/link/tool", "/bin/tool", false},
		{"/bin/fifo", "", false},
		{"/link/escape", "", false},
		{"/missing", "", false},
		{"/bin/big", "/bin/big", true},
	}
	for _, tc := range tests {
		var got []string
		store := func(rel string, max int64) (int64, error) {
			got = append(got, rel)
			if tc.refuse {
				return 0, errors.New("refused")
			}
			return 7, nil
		}
		done := make(chan int64)
		go func() { done <- (&warmer{root: root, store: store}).cache(tc.path) }()
		var n int64
		select {
		case n = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("cache(%q) blocks", tc.path)
		}
		var want []string
		if tc.stored != "" {
			want = append(want, tc.stored)
		}
		if !slices.Equal(got, want) {
			t.Errorf("cache(%q) stored %q, want %q", tc.path, got, want)
		}
		switch {
		case tc.refuse && n < 1<<20:
			t.Errorf("cache(%q) refused by the store read %d bytes, want the file", tc.path, n)
		case !tc.refuse && tc.stored != "" && n != 7:
			t.Errorf("cache(%q) = %d, want the store's 7", tc.path, n)
		}
	}
}
