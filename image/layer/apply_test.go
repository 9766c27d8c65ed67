package layer

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nook/internal/overlay"
	"nook/internal/testutil"
)

// capNetRaw is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_raw (bit 13) permitted and effective, as ping carries.
func capNetRaw() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<13)
	return string(b)
}

const nobody = 65534

// bigBody is larger than the copy buffer, so a file spans several writes.
var bigBody = strings.Repeat("large file, several copy buffers. ", 100_000)

// goodEntries holds every entry type Apply handles, each with its own
// mtime. Every directory has an entry so two unpacks agree on all times;
// var/lib's opaque marker comes before var/ and var/lib/ to exercise
// implicit parents merged with later entries.
func goodEntries() []ent {
	owned := func(e ent, uid, gid int) ent { e.hdr.Uid, e.hdr.Gid = uid, gid; return e }
	es := []ent{
		dirEnt("./", 0o755),
		dirEnt("./bin/", 0o755),
		reg("./bin/busybox", "#!busybox", 0o755),
		linkEnt("./bin/ln", "./bin/busybox"),
		symEnt("./bin/sh", "busybox"),
		reg("./bin/su", "su", 0o4755),
		owned(reg("./bin/wall", "wall", 0o2755), 0, 5),
		withXattr(reg("./bin/ping", "ping", 0o755), capabilityXattr, capNetRaw()),
		withXattr(dirEnt("./etc/", 0o755), "user.origin", "test"),
		withXattr(reg("./etc/tagged", "t", 0o644), "user.mime_type", "text/plain"),
		reg("./empty", "", 0o644),
		reg("./big", bigBody, 0o644),
		dirEnt("./home/", 0o755),
		owned(dirEnt("./home/nobody/", 0o700), nobody, nobody),
		owned(reg("./home/nobody/.profile", "export X=1", 0o600), nobody, nobody),
		owned(symEnt("./home/nobody/link", "/etc/passwd"), nobody, nobody),
		dirEnt("./ro/", 0o555),
		reg("./ro/inside", "read only", 0o444),
		dirEnt("./run/", 0o755),
		{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "./run/initctl", Mode: 0o600}},
		dirEnt("./tmp/", 0o1777),
		dirEnt("./usr/", 0o755),
		reg("./usr/.wh.gone", "", 0o644),
		reg("./var/lib/.wh..wh..opq", "", 0o644),
		dirEnt("./var/", 0o755),
		dirEnt("./var/lib/", 0o751),
		reg("./var/lib/kept", "kept", 0o644),
	}
	for i := range es {
		es[i].hdr.ModTime = t0.Add(time.Duration(i) * time.Hour)
		es[i].hdr.AccessTime = t0.Add(time.Duration(i) * time.Minute)
	}
	return es
}

func goodTar(t testing.TB) []byte { return mkTar(t, goodEntries()...) }

// checkGood asserts what Apply(goodTar) must have produced.
func checkGood(t *testing.T, layer string, res ApplyResult, ownersKept bool) {
	t.Helper()
	p := func(n string) string { return filepath.Join(layer, n) }
	type want struct {
		typ  uint32
		mode uint32
	}
	for name, w := range map[string]want{
		".": {unix.S_IFDIR, 0o755}, "bin/busybox": {unix.S_IFREG, 0o755}, "bin/su": {unix.S_IFREG, 0o4755},
		"bin/wall": {unix.S_IFREG, 0o2755}, "tmp": {unix.S_IFDIR, 0o1777}, "ro": {unix.S_IFDIR, 0o555},
		"ro/inside": {unix.S_IFREG, 0o444}, "home/nobody": {unix.S_IFDIR, 0o700},
		"home/nobody/.profile": {unix.S_IFREG, 0o600}, "run/initctl": {unix.S_IFIFO, 0o600},
		"bin/sh": {unix.S_IFLNK, 0o777}, "var/lib": {unix.S_IFDIR, 0o751}, "empty": {unix.S_IFREG, 0o644},
	} {
		st := lstat(t, p(name))
		if st.Mode&unix.S_IFMT != w.typ || st.Mode&0o7777 != w.mode {
			t.Errorf("%s: type %o mode %o, want %o %o", name, st.Mode&unix.S_IFMT, st.Mode&0o7777, w.typ, w.mode)
		}
	}
	for name, content := range map[string]string{"bin/busybox": "#!busybox", "big": bigBody, "var/lib/kept": "kept", "empty": ""} {
		if got, err := os.ReadFile(p(name)); err != nil || string(got) != content {
			t.Errorf("%s: content differs (%d bytes, %v)", name, len(got), err)
		}
	}
	if a, b := lstat(t, p("bin/busybox")), lstat(t, p("bin/ln")); a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("bin/ln is not a hardlink of bin/busybox: inodes %d %d, nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	if target, _ := os.Readlink(p("bin/sh")); target != "busybox" {
		t.Errorf("bin/sh -> %q", target)
	}
	var sst syscall.Stat_t
	if err := syscall.Lstat(p("usr/gone"), &sst); err != nil || !overlay.IsWhiteoutStat(&sst) {
		t.Errorf("usr/gone is not a whiteout: mode %o rdev %d (%v)", sst.Mode, sst.Rdev, err)
	}
	if v, err := getxattr(p("var/lib"), overlay.OpaqueXattr); v != overlay.OpaqueValue {
		t.Errorf("var/lib opaque xattr = %q, %v", v, err)
	}
	if v, err := getxattr(p("etc"), "user.origin"); v != "test" {
		t.Errorf("etc user.origin = %q, %v", v, err)
	}
	if v, err := getxattr(p("etc/tagged"), "user.mime_type"); v != "text/plain" {
		t.Errorf("etc/tagged user.mime_type = %q, %v", v, err)
	}
	if os.Geteuid() == 0 {
		if v, err := getxattr(p("bin/ping"), capabilityXattr); v != capNetRaw() {
			t.Errorf("bin/ping capability = %x, %v", v, err)
		}
	}
	// Times: every entry keeps its header's mtime, to the nanosecond;
	// directories too, though children were created after them.
	for _, e := range goodEntries() {
		name, _ := cleanName(e.hdr.Name)
		if e.hdr.Typeflag == tar.TypeLink || strings.Contains(name, ".wh.") {
			continue
		}
		st := lstat(t, p(name))
		if got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec); !got.Equal(e.hdr.ModTime) {
			t.Errorf("%s: mtime %v, want %v", name, got.UTC(), e.hdr.ModTime)
		}
		if name == "bin/su" {
			if got := time.Unix(st.Atim.Sec, st.Atim.Nsec); !got.Equal(e.hdr.AccessTime) {
				t.Errorf("%s: atime %v, want %v", name, got.UTC(), e.hdr.AccessTime)
			}
		}
	}
	// Owners.
	wantUID := map[string]uint32{"home/nobody": nobody, "home/nobody/.profile": nobody, "home/nobody/link": nobody, "bin/busybox": 0}
	wantGID := map[string]uint32{"bin/wall": 5, "home/nobody": nobody}
	if ownersKept {
		for n, u := range wantUID {
			if st := lstat(t, p(n)); st.Uid != u {
				t.Errorf("%s: uid %d, want %d", n, st.Uid, u)
			}
		}
		for n, g := range wantGID {
			if st := lstat(t, p(n)); st.Gid != g {
				t.Errorf("%s: gid %d, want %d", n, st.Gid, g)
			}
		}
	}
	if len(res.Skipped) != 0 && os.Geteuid() == 0 {
		t.Errorf("Skipped = %q, want nothing", res.Skipped)
	}
}

func TestApplyGood(t *testing.T) {
	layer, sentinel := layout(t)
	before := snapshot(t, sentinel, true)
	data := goodTar(t)
	// Padding after the end marker (as tar(1) writes in 10 KiB records)
	// must be consumed and counted.
	data = append(data, make([]byte, 10240-len(data)%10240)...)
	mode := idMap(t)
	res, err := Apply(bytes.NewReader(data), layer, ApplyOptions{Chown: mode != "none"})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if res.Size != int64(len(data)) {
		t.Errorf("Size = %d, want %d", res.Size, len(data))
	}
	if res.SingleID != (mode == "single") {
		t.Errorf("SingleID = %v in a %q id map", res.SingleID, mode)
	}
	checkGood(t, layer, res, mode == "root" || mode == "full")
	if mode == "single" {
		for _, n := range []string{"home/nobody", "bin/wall"} {
			if st := lstat(t, filepath.Join(layer, n)); st.Uid != 0 || st.Gid != 0 {
				t.Errorf("%s: owner %d:%d in a single-id namespace, want 0:0", n, st.Uid, st.Gid)
			}
		}
	}
	assertUntouched(t, layer, sentinel, before)
	if err := SyncTree(layer); err != nil {
		t.Errorf("SyncTree: %v", err)
	}
}

// TestApplyOwners pins the owner policy in each kind of id map; run it as
// root, and as an unprivileged user inside `unshare --user
// --map-root-user` (single id) and `--map-auto --map-root-user` (full).
func TestApplyOwners(t *testing.T) {
	mode := idMap(t)
	if mode == "none" {
		testutil.RequireRoot(t) // chown needs root or a user namespace
	}
	const unmapped = 70000 // beyond a 65536-id subordinate range
	owned := func(e ent, id int) ent { e.hdr.Uid, e.hdr.Gid = id, id; return e }
	data := mkTar(t, owned(reg("root", "", 0o644), 0), owned(reg("nobody", "", 0o644), nobody),
		owned(reg("far", "", 0o644), unmapped), owned(reg("after", "", 0o644), 1000))
	layer, _ := layout(t)
	res, err := Apply(bytes.NewReader(data), layer, ApplyOptions{Chown: true})
	if err != nil {
		t.Fatalf("Apply in a %q id map: %v", mode, err)
	}
	uid := func(n string) uint32 { return lstat(t, filepath.Join(layer, n)).Uid }
	t.Logf("id map %q: SingleID=%v Skipped=%q", mode, res.SingleID, res.Skipped)
	switch mode {
	case "root":
		if uid("nobody") != nobody || uid("far") != unmapped || uid("after") != 1000 || res.SingleID {
			t.Errorf("as root: owners %d %d %d, SingleID %v", uid("nobody"), uid("far"), uid("after"), res.SingleID)
		}
	case "full":
		if uid("nobody") != nobody || uid("far") != 0 || uid("after") != 1000 || res.SingleID {
			t.Errorf("full map: owners %d %d %d, SingleID %v", uid("nobody"), uid("far"), uid("after"), res.SingleID)
		}
		if !slices.ContainsFunc(res.Skipped, func(s string) bool { return strings.HasPrefix(s, "far: owner 70000:70000 is not mapped") }) {
			t.Errorf("full map: unmapped owner not listed: %q", res.Skipped)
		}
	case "single":
		if !res.SingleID || uid("nobody") != 0 || uid("after") != 0 {
			t.Errorf("single id: SingleID %v, owners %d %d", res.SingleID, uid("nobody"), uid("after"))
		}
	}
	// Without Chown, everything is ours whatever the tar says.
	layer2, _ := layout(t)
	if _, err := Apply(bytes.NewReader(data), layer2, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(layer2, "nobody")); st.Uid != uint32(os.Geteuid()) {
		t.Errorf("without Chown: uid %d, want %d", st.Uid, os.Geteuid())
	}
}

// TestApplyReplace: later entries replace earlier ones; a directory onto a
// directory merges and takes the later metadata.
func TestApplyReplace(t *testing.T) {
	layer, _ := layout(t)
	data := mkTar(t,
		dirEnt("d/", 0o700), reg("d/keep", "1", 0o644),
		reg("f", "old", 0o644), reg("f", "new", 0o600),
		dirEnt("x/", 0o755), reg("x/child", "gone", 0o644), reg("x", "file now", 0o644),
		reg("y", "file", 0o644), dirEnt("y/", 0o750), reg("y/z", "in dir", 0o644),
		dirEnt("d/", 0o711), reg("d/more", "2", 0o644),
		reg("w", "whited", 0o644), reg(".wh.w", "", 0o644),
		reg("a", "a", 0o644), linkEnt("a", "a"))
	if _, err := Apply(bytes.NewReader(data), layer, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	wantFile("f", "new")(t, layer, "", ApplyResult{})
	wantFile("x", "file now")(t, layer, "", ApplyResult{})
	wantFile("y/z", "in dir")(t, layer, "", ApplyResult{})
	wantFile("d/keep", "1")(t, layer, "", ApplyResult{})
	wantFile("d/more", "2")(t, layer, "", ApplyResult{})
	wantFile("a", "a")(t, layer, "", ApplyResult{})
	if m := lstat(t, filepath.Join(layer, "d")).Mode & 0o7777; m != 0o711 {
		t.Errorf("merged dir mode %o, want the later 711", m)
	}
	if m := lstat(t, filepath.Join(layer, "f")).Mode & 0o7777; m != 0o600 {
		t.Errorf("replaced file mode %o, want 600", m)
	}
	if st := lstat(t, filepath.Join(layer, "w")); st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("w was not replaced by a whiteout: mode %o", st.Mode)
	}
}

// TestApplyRebuild: applying the same layer over a partial copy of itself
// gives the same tree.
func TestApplyRebuild(t *testing.T) {
	data := goodTar(t)
	clean, _ := layout(t)
	if _, err := Apply(bytes.NewReader(data), clean, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	partial, _ := layout(t)
	if _, err := Apply(bytes.NewReader(data[:len(data)/2]), partial, ApplyOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("half a tar: %v", err)
	}
	if _, err := Apply(bytes.NewReader(data), partial, ApplyOptions{}); err != nil {
		t.Fatalf("re-applying over a partial layer: %v", err)
	}
	if a, b := snapshot(t, clean, true), snapshot(t, partial, true); a != b {
		t.Errorf("rebuilt layer differs:\n%s\nvs\n%s", a, b)
	}
}

// TestApplySparse: a GNU sparse entry becomes a sparse file whose cost
// follows its data, not its claimed size: a terabyte of holes is seeked
// over (reading it as zeros took 40 s of CPU), and a size the filesystem
// cannot hold is refused by name before any of it is read.
func TestApplySparse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int64
		tooLarge bool // the filesystem may refuse it (ext4 holds 16 TiB)
	}{
		{"one GiB", 1 << 30, false},
		{"one TiB", 1 << 40, false},
		{"four EiB", 1 << 62, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			off := tc.size - 4096
			layer, _ := layout(t)
			_, err := Apply(bytes.NewReader(testutil.SparseTar("sparse", tc.size, off, "hello")), layer, ApplyOptions{})
			if tc.tooLarge && err != nil {
				if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `"sparse"`) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("refusal %q: want ErrTooLarge naming the entry, in one line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st := lstat(t, filepath.Join(layer, "sparse"))
			if st.Size != tc.size || st.Blocks*512 > 1<<20 {
				t.Fatalf("sparse file: size %d, %d bytes allocated", st.Size, st.Blocks*512)
			}
			f, _ := os.Open(filepath.Join(layer, "sparse"))
			defer f.Close()
			got := make([]byte, 5)
			if _, err := f.ReadAt(got, off); err != nil || string(got) != "hello" {
				t.Errorf("sparse data %q, %v", got, err)
			}
		})
	}
}

// TestSparseFastPath: archive/tar's hole-skipping copy is reachable for a
// sparse entry. If a Go release moves it, Apply falls back to reading
// holes as zeros, and this says so before a hostile tar does.
func TestSparseFastPath(t *testing.T) {
	tr := tar.NewReader(bytes.NewReader(testutil.SparseTar("s", 1<<50, 0, "x")))
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	if entryWriterTo(tr) == nil {
		t.Fatal("archive/tar's per-entry WriteTo is out of reach: sparse entries cost their claimed size")
	}
}

// errAfter fails with a source error after n bytes, like a dropped download.
type errAfter struct {
	r io.Reader
	n int
}

var errNetwork = errors.New("connection reset")

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, errNetwork
	}
	p = p[:min(len(p), e.n)]
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}

// TestApplySourceError: a failing source is passed through, not blamed on
// the tar.
func TestApplySourceError(t *testing.T) {
	data := goodTar(t)
	for _, at := range []int{0, 700, len(data) / 2} {
		layer, _ := layout(t)
		_, err := Apply(&errAfter{r: bytes.NewReader(data), n: at}, layer, ApplyOptions{})
		if !errors.Is(err, errNetwork) || errors.Is(err, ErrCorrupt) {
			t.Errorf("source failing at %d: %v, want the source's error and not ErrCorrupt", at, err)
		}
	}
}

// TestApplyDeep walks past the descriptors dirs holds (maxHeld levels),
// back up, and replaces a deep directory with a file: the cached chain must
// never point into a removed directory.
func TestApplyDeep(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("d/", n) }
	var ents []ent
	for i := 1; i <= maxHeld+40; i++ {
		ents = append(ents, dirEnt(deep(i), 0o755))
	}
	ents = append(ents,
		reg(deep(maxHeld+40)+"bottom", "b", 0o644),
		reg(deep(maxHeld+5)+"mid", "m", 0o644),
		reg(deep(maxHeld+40)+"bottom2", "b2", 0o644),
		reg(deep(maxHeld+20)+"d", "now a file", 0o644), // replaces the directory below it
		reg(deep(maxHeld+20)+"after", "a", 0o644),
		reg(deep(10)+"d", "shallow file", 0o644), // replaces a held directory
		reg(deep(10)+"x", "x", 0o644),
	)
	layer, _ := layout(t)
	if _, err := Apply(bytes.NewReader(mkTar(t, ents...)), layer, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	wantFile(deep(10)+"d", "shallow file")(t, layer, "", ApplyResult{})
	wantFile(deep(10)+"x", "x")(t, layer, "", ApplyResult{})
	if _, err := os.Lstat(filepath.Join(layer, deep(12))); err == nil {
		t.Error("the replaced directory still exists")
	}
	// Before the shallow replacement, check on a second layer without it.
	layer2, _ := layout(t)
	if _, err := Apply(bytes.NewReader(mkTar(t, ents[:len(ents)-2]...)), layer2, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	wantFile(deep(maxHeld+5)+"mid", "m")(t, layer2, "", ApplyResult{})
	wantFile(deep(maxHeld+20)+"d", "now a file")(t, layer2, "", ApplyResult{})
	wantFile(deep(maxHeld+20)+"after", "a")(t, layer2, "", ApplyResult{})
	n := 0
	filepath.WalkDir(layer2, func(string, fs.DirEntry, error) error { n++; return nil })
	if want := 1 + maxHeld + 20 + 3; n != want { // root, dirs down to the file, mid, d, after
		t.Errorf("%d entries after replacing the deep directory, want %d", n, want)
	}
}
