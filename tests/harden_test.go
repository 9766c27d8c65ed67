package tests

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nook/internal/testutil"
)

// TestSparseEntries: a sparse entry claiming a terabyte around four bytes
// of data imports, loads and copies into a container at the cost of its
// data (reading its holes as zeros took 40 s of CPU a terabyte, eleven
// hours a petabyte), and one the filesystem cannot hold is refused in one
// line naming it, the store unchanged.
func TestSparseEntries(t *testing.T) {
	e := runEnv(t)
	const tib = int64(1) << 40
	huge := testutil.SparseTar("sparse", 1<<62, 1<<61, "data")
	fits := testutil.SparseTar("sparse", tib, tib/2, "data")

	e.ok(nil, "run", "-d", "--name", "c", "bb", "sleep", "1000")

	// Refusals first: the store must hold no terabyte file while it is
	// snapshotted (a snapshot reads every file).
	for _, args := range [][]string{{"import", "-", "huge:1"}, {"load"}, {"cp", "-", "c:/tmp"}} {
		input := huge
		if args[0] == "load" {
			input = legacyWithLayer(t, huge)
		}
		before := snapshot(t, e.store)
		r := e.nook(input, args...)
		if r.code == 0 {
			continue // this filesystem holds 4 EiB in a file (tmpfs does)
		}
		if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); r.code != 125 || len(lines) != 1 || !strings.Contains(r.stderr, `"sparse"`) || !strings.Contains(r.stderr, "larger than the filesystem holds") {
			t.Errorf("nook %s of 4 EiB: %s; want 125 and one line naming the entry", strings.Join(args, " "), r)
		}
		if args[0] != "cp" && snapshot(t, e.store) != before {
			t.Errorf("refused %s changed the store", args[0])
		}
	}
	e.ok(fits, "import", "-", "sparse:1")
	if n := sparseFiles(t, e.store, tib); n != 1 {
		t.Errorf("after import: %d sparse files of 1 TiB in the store, want 1", n)
	}
	e.ok(nil, "rmi", "sparse:1")
	e.ok(legacyWithLayer(t, fits), "load")
	if n := sparseFiles(t, e.store, tib); n != 1 {
		t.Errorf("after load: %d sparse files of 1 TiB in the store, want 1", n)
	}
	e.ok(fits, "cp", "-", "c:/tmp")
	if got := strings.TrimSpace(e.ok(nil, "exec", "c", "stat", "-c", "%s %b", "/tmp/sparse")); !strings.HasPrefix(got, "1099511627776 ") {
		t.Errorf("copied sparse file: stat says %q, want 1 TiB", got)
	}
}

// sparseFiles counts the regular files under root of size bytes that
// take at most a MiB of disk.
func sparseFiles(t *testing.T, root string, size int64) int {
	n := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil && st.Size == size && st.Blocks*512 <= 1<<20 {
			n++
		}
		return nil
	})
	return n
}

// TestExecWorkdir: exec with a working directory that is missing or is a
// file says so, naming it, and exits 126 as Docker's exec does (it said
// "starting pwd: no such file or directory" and exited 127, "not found").
func TestExecWorkdir(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "--name", "c", "bb", "sleep", "1000")
	for _, tc := range []struct{ dir, want string }{
		{"/nonexistent", "working directory /nonexistent: no such file or directory"},
		{"/etc/passwd", "working directory /etc/passwd: not a directory"},
	} {
		r := e.nook(nil, "exec", "-w", tc.dir, "c", "pwd")
		if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); r.code != 126 || len(lines) != 1 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("exec -w %s: %s; want 126 and one line with %q", tc.dir, r, tc.want)
		}
	}
	if got := e.ok(nil, "exec", "-w", "/tmp", "c", "pwd"); got != "/tmp\n" {
		t.Errorf("exec -w /tmp pwd printed %q", got)
	}
	// run names the container's path alone: it printed the host's, under
	// the store's merged/ directory.
	r := e.nook(nil, "run", "--rm", "-w", "/etc/passwd", "bb", "pwd")
	if want := "creating working directory /etc/passwd: not a directory"; r.code != 125 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "merged") {
		t.Errorf("run -w /etc/passwd: %s; want 125 and %q without a host path", r, want)
	}
}

// TestShimKilledSettles: a container whose shim was killed shows what is
// known: exited 137 (its processes died with the shim, as by SIGKILL) at
// the time it was found dead, the same at every look (it showed "Exited
// (255) 292 years ago", FinishedAt 0001-01-01); a --rm one is removed
// when found so, as its owner asked.
func TestShimKilledSettles(t *testing.T) {
	e := runEnv(t)
	for _, name := range []string{"kept", "gone"} {
		args := []string{"run", "-d", "--name", name, "bb", "sleep", "100000"}
		if name == "gone" {
			args = append(args[:1], append([]string{"--rm"}, args[1:]...)...)
		}
		e.ok(nil, args...)
		pid := shimPid(t, e, name)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the shim to die", func() bool { return syscall.Kill(pid, 0) != nil })
	}
	killed := time.Now()

	const format = "{{.State.Status}} {{.State.ExitCode}} {{.State.FinishedAt}}"
	first := strings.TrimSpace(e.ok(nil, "inspect", "-f", format, "kept"))
	f := strings.Fields(first)
	if len(f) != 3 || f[0] != "exited" || f[1] != "137" {
		t.Fatalf("inspect of a container whose shim died: %q, want exited 137", first)
	}
	if at, err := time.Parse(time.RFC3339Nano, f[2]); err != nil || at.Before(killed.Add(-time.Minute)) || at.After(time.Now()) {
		t.Errorf("FinishedAt %q, want the time it was found dead (%v)", f[2], killed)
	}
	if again := strings.TrimSpace(e.ok(nil, "inspect", "-f", format, "kept")); again != first {
		t.Errorf("a second look says %q, the first %q", again, first)
	}
	if ps := e.ok(nil, "ps", "-a", "--filter", "name=kept"); !strings.Contains(ps, "Exited (137)") || strings.Contains(ps, "years") {
		t.Errorf("ps -a shows:\n%s", ps)
	}
	if ps := e.ok(nil, "ps", "-a", "-q", "--filter", "name=gone"); ps != "" {
		t.Errorf("a --rm container found dead is still listed: %q", ps)
	}
	if r := e.nook(nil, "inspect", "gone"); r.code == 0 {
		t.Errorf("inspect of a removed --rm container: %s", r)
	}
	e.ok(nil, "rm", "kept")
}

// TestStoreRootChecked: a store directory others can write to, or with a
// planted link at its top, is refused in one line with the remedy, and
// nothing is written through it (nook created container directories
// through "containers -> /their/dir" in a 0777 --root).
func TestStoreRootChecked(t *testing.T) {
	e := newEnv(t)
	open := filepath.Join(e.home, "open")
	theirs := filepath.Join(e.home, "theirs")
	for _, d := range []string{open, theirs} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, 0o777)
	}
	e.store = open
	r := e.nook(tarOf(t, file("a", "a")), "import", "-", "x")
	if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); r.code != 125 || len(lines) != 1 || !strings.Contains(r.stderr, "chmod go-w "+open) {
		t.Errorf("a 0777 store: %s; want 125 and one line with the remedy", r)
	}
	os.Chmod(open, 0o700)
	if err := os.Symlink(theirs, filepath.Join(open, "containers")); err != nil {
		t.Fatal(err)
	}
	r = e.nook(nil, "create", "--name", "c", "x")
	if r.code != 125 || !strings.Contains(r.stderr, "containers is a symbolic link") {
		t.Errorf("a store with a planted link: %s", r)
	}
	if ents, _ := os.ReadDir(theirs); len(ents) != 0 {
		t.Errorf("nook wrote through the planted link: %v", ents)
	}
	if ents, _ := os.ReadDir(open); len(ents) != 1 {
		t.Errorf("the refused store was populated: %v", ents)
	}
	os.Remove(filepath.Join(open, "containers"))
}

// TestSaveKilledMidway: a `save -o FILE` killed while it writes leaves
// nothing beside FILE (it left ".FILE.tmp-N", up to the archive's size,
// in 8 of 22 kills): the archive is written unnamed and linked in whole.
func TestSaveKilledMidway(t *testing.T) {
	e := newEnv(t)
	big, err := os.ReadFile(bigRootfs(t, 64<<20))
	if err != nil {
		t.Fatal(err)
	}
	e.ok(big, "import", "-", "big")
	out := t.TempDir()
	for try := 0; ; try++ {
		cmd := exec.Command(nookBin, "save", "-o", filepath.Join(out, "big.tar"), "big")
		cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once it holds a file in out/ open: mid-write.
		fds := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "fd")
		writing := false
		for !writing {
			ents, err := os.ReadDir(fds)
			if err != nil {
				break // it finished
			}
			for _, en := range ents {
				if l, _ := os.Readlink(filepath.Join(fds, en.Name())); strings.HasPrefix(l, out+"/") {
					writing = true
				}
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if !writing {
			if try == 5 {
				t.Fatal("save never caught mid-write")
			}
			os.Remove(filepath.Join(out, "big.tar"))
			continue
		}
		ents, _ := os.ReadDir(out)
		for _, en := range ents {
			if en.Name() != "big.tar" {
				t.Errorf("a killed save left %s beside its output", en.Name())
			}
		}
		return
	}
}

// TestMountOverProcThroughLink: a mount point that leads to /proc through
// a link of the image is refused at start, as runc checks where a mount
// point resolves to; the name as given passed the check of the command
// line.
func TestMountOverProcThroughLink(t *testing.T) {
	e := runEnv(t)
	e.ok(tarOf(t, symlink("x", "/proc"), symlink("y", "proc/sys")), "import", "-", "links")
	host := t.TempDir()
	for _, target := range []string{"/x", "/y/kernel"} {
		r := e.nook(nil, "run", "--rm", "-v", host+":"+target, "links", "/bin/true")
		if r.code != 125 || !strings.Contains(r.stderr, "mount point "+target+", through a link: /proc") {
			t.Errorf("run -v HOST:%s with %s a link into /proc: %s", target, target, r)
		}
	}
}

// TestStoreLinksNotFollowed: a symbolic link where the store keeps a
// directory below its top (blobs/sha256, pulls/blobs/sha256), which the
// check at open does not see, is refused in one line, and nothing of the
// store lands where it points: before, import wrote its blob through
// "blobs/sha256 -> theirs" and pull its download through
// "pulls/blobs/sha256". A store whose parent others can write (they
// could swap the store between the check and its use) is refused too.
func TestStoreLinksNotFollowed(t *testing.T) {
	reg := startRegistry(t, false)
	src := newEnv(t)
	ref := reg.Host + "/lab/x:1"
	src.ok(tarOf(t, file("a", "a")), "import", "-", ref)
	src.ok(nil, "push", ref)
	for _, tc := range []struct {
		planted string
		args    []string
	}{
		{"blobs/sha256", []string{"import", "-", "y"}},
		{"blobs/sha256", []string{"pull", ref}},
		{"pulls/blobs/sha256", []string{"pull", ref}},
	} {
		t.Run(strings.ReplaceAll(tc.planted, "/", "_")+"_"+tc.args[0], func(t *testing.T) {
			e := newEnv(t)
			e.ok(tarOf(t, file("b", "b")), "import", "-", "base") // the store exists
			theirs := filepath.Join(e.home, "theirs")
			if err := os.Mkdir(theirs, 0o777); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(e.store, tc.planted)
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(p, p+".away"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(theirs, p); err != nil {
				t.Fatal(err)
			}
			defer func() { os.Remove(p); os.Rename(p+".away", p) }()
			r := e.nook(tarOf(t, file("c", "c")), tc.args...)
			// A pull's progress lines come first; the refusal is one line.
			if r.code != 125 || strings.Count(r.stderr, "nook: ") != 1 || !strings.Contains(r.stderr, tc.planted+" is a symbolic link") {
				t.Errorf("nook %s through a link at %s: %s; want 125 and one line", strings.Join(tc.args, " "), tc.planted, r)
			}
			if ents, _ := os.ReadDir(theirs); len(ents) != 0 {
				t.Errorf("nook wrote through the link at %s: %v", tc.planted, ents)
			}
		})
	}
	t.Run("open parent", func(t *testing.T) {
		e := newEnv(t)
		open := filepath.Join(e.home, "open")
		if err := os.Mkdir(open, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(open, 0o777)
		e.store = filepath.Join(open, "store")
		r := e.nook(tarOf(t, file("a", "a")), "import", "-", "x")
		if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); r.code != 125 || len(lines) != 1 || !strings.Contains(r.stderr, "chmod go-w "+open) {
			t.Errorf("a store below a 0777 directory: %s; want 125 and one line with the remedy", r)
		}
		if _, err := os.Stat(e.store); err == nil {
			t.Error("the refused store was made")
		}
	})
}
