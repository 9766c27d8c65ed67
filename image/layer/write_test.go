package layer

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nook/internal/overlay"
)

func applyT(t *testing.T, data []byte) string {
	t.Helper()
	layer, _ := layout(t)
	if _, err := Apply(bytes.NewReader(data), layer, ApplyOptions{Chown: idMap(t) != "none"}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return layer
}

func writeT(t *testing.T, dir string, opts WriteOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, dir, opts); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

// readAll lists a tar's headers (and bodies of regular files).
func readAll(t *testing.T, data []byte) ([]*tar.Header, map[string]string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var hdrs []*tar.Header
	bodies := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs, bodies
		}
		if err != nil {
			t.Fatalf("reading written tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		bodies[h.Name] = string(b)
		hdrs = append(hdrs, h)
	}
}

// TestApplyWriteApply: a tree unpacked, written and unpacked again is the
// same tree (to the second: Write drops sub-second times).
func TestApplyWriteApply(t *testing.T) {
	for _, root := range []bool{false, true} {
		first := applyT(t, goodTar(t))
		second := applyT(t, writeT(t, first, WriteOptions{Root: root}))
		a, b := snapshot(t, first, true), snapshot(t, second, true)
		if a != b {
			t.Errorf("Root=%v: trees differ:\n%s\nvs\n%s", root, a, b)
		}
		if got := lstat(t, second).Mtim.Sec; root && got != t0.Unix() {
			t.Errorf("Root entry: root mtime %d, want %d", got, t0.Unix())
		}
	}
}

// TestWriteApplyWrite: the tar written from an unpacked tar carries the
// same entries as the original (names normalised, times to the second),
// and is byte-identical across runs and across two unpacks.
func TestWriteApplyWrite(t *testing.T) {
	first := applyT(t, goodTar(t))
	out1 := writeT(t, first, WriteOptions{})
	if out2 := writeT(t, first, WriteOptions{}); !bytes.Equal(out1, out2) {
		t.Fatal("two writes of one tree differ")
	}
	if out3 := writeT(t, applyT(t, goodTar(t)), WriteOptions{}); !bytes.Equal(out1, out3) {
		t.Fatal("writes of two unpacks of one tar differ")
	}

	// Owners survive where chown works; elsewhere everything is ours.
	ownersKept := slices.Contains([]string{"root", "full"}, idMap(t))
	owner := func(h tar.Header) (int, int) {
		if ownersKept {
			return h.Uid, h.Gid
		}
		return os.Geteuid(), os.Getegid()
	}
	hdrs, bodies := readAll(t, out1)
	got := map[string]*tar.Header{}
	for _, h := range hdrs {
		got[strings.TrimSuffix(h.Name, "/")] = h
	}
	for _, e := range goodEntries() {
		name, _ := cleanName(e.hdr.Name)
		if name == "." {
			continue
		}
		h, ok := got[name]
		if !ok {
			t.Errorf("%s: missing from the written tar", name)
			continue
		}
		// Markers and hardlinks carry no mode of their own.
		modeMatters := e.hdr.Typeflag != tar.TypeLink && !strings.Contains(name, ".wh.")
		uid, gid := owner(e.hdr)
		if h.Typeflag != e.hdr.Typeflag || (modeMatters && h.Mode != e.hdr.Mode) || h.Uid != uid || h.Gid != gid {
			t.Errorf("%s: type %c mode %o owner %d:%d, want %c %o %d:%d", name, h.Typeflag, h.Mode, h.Uid, h.Gid,
				e.hdr.Typeflag, e.hdr.Mode, uid, gid)
		}
		if !strings.Contains(name, ".wh.") && e.hdr.Typeflag != tar.TypeLink && h.ModTime.Unix() != e.hdr.ModTime.Unix() {
			t.Errorf("%s: mtime %v, want %v", name, h.ModTime, e.hdr.ModTime)
		}
		if e.hdr.Typeflag == tar.TypeReg && bodies[h.Name] != e.body {
			t.Errorf("%s: body differs", name)
		}
		if e.hdr.Typeflag == tar.TypeLink || e.hdr.Typeflag == tar.TypeSymlink {
			if want, _ := cleanName(e.hdr.Linkname); e.hdr.Typeflag == tar.TypeLink && h.Linkname != want {
				t.Errorf("%s: hardlink to %q, want %q", name, h.Linkname, want)
			} else if e.hdr.Typeflag == tar.TypeSymlink && h.Linkname != e.hdr.Linkname {
				t.Errorf("%s: symlink to %q, want %q", name, h.Linkname, e.hdr.Linkname)
			}
		}
		for k, v := range e.hdr.PAXRecords {
			if k == paxXattrPrefix+capabilityXattr && os.Geteuid() != 0 {
				continue // unprivileged: skipped by Apply, listed
			}
			if h.PAXRecords[k] != v {
				t.Errorf("%s: record %s = %q, want %q", name, k, h.PAXRecords[k], v)
			}
		}
	}
	if len(hdrs) != len(goodEntries())-1 { // all but "./"
		t.Errorf("wrote %d entries, want %d", len(hdrs), len(goodEntries())-1)
	}
}

// TestWriteFormat pins the conventions readers depend on.
func TestWriteFormat(t *testing.T) {
	dir := applyT(t, goodTar(t))
	// Overlay itself shares one whiteout inode among many names: those must
	// stay whiteouts, not become hardlinks. And a file whose name reads as
	// a marker cannot be represented.
	if err := unix.Link(filepath.Join(dir, "usr/gone"), filepath.Join(dir, "usr/gone2")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".wh.evil"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(dir, "etc/tagged"), overlay.RedirectXattr, []byte("/x"), 0); err != nil {
		t.Fatal(err)
	}
	hdrs, _ := readAll(t, writeT(t, dir, WriteOptions{}))
	var names []string
	for i, h := range hdrs {
		names = append(names, h.Name)
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.ModTime.Nanosecond() != 0 {
			t.Errorf("%s: uname %q gname %q atime %v ctime %v mtime %v", h.Name, h.Uname, h.Gname, h.AccessTime, h.ChangeTime, h.ModTime)
		}
		if h.Format != tar.FormatPAX && h.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v", h.Name, h.Format)
		}
		if _, ok := h.PAXRecords[paxXattrPrefix+overlay.RedirectXattr]; ok {
			t.Errorf("%s: overlay xattr written", h.Name)
		}
		if h.Name == "var/lib/" && (i+1 >= len(hdrs) || hdrs[i+1].Name != "var/lib/.wh..wh..opq") {
			t.Errorf("opaque marker does not follow var/lib/")
		}
		// Parents come first.
		if parent := strings.TrimSuffix(h.Name, "/"); strings.Contains(parent, "/") {
			parent = parent[:strings.LastIndex(parent, "/")+1]
			if !slices.Contains(names, parent) {
				t.Errorf("%s written before its parent %s", h.Name, parent)
			}
		}
	}
	for _, wh := range []string{"usr/.wh.gone", "usr/.wh.gone2"} {
		i := slices.Index(names, wh)
		if i < 0 || hdrs[i].Typeflag != tar.TypeReg || hdrs[i].Size != 0 {
			t.Errorf("whiteout %s not written as an empty file: %v", wh, names)
		}
	}
	if slices.Contains(names, ".wh.evil") {
		t.Error(".wh.evil written: it would read back as a whiteout")
	}
	if i := slices.Index(names, "bin/ln"); i < 0 || hdrs[i].Typeflag != tar.TypeLink || hdrs[i].Linkname != "bin/busybox" {
		t.Errorf("bin/ln not a hardlink to bin/busybox")
	}
}

// TestWriteMissingDir: a missing directory is an error naming it.
func TestWriteMissingDir(t *testing.T) {
	err := Write(io.Discard, "/nonexistent/nook", WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/nook") {
		t.Fatalf("Write of a missing dir: %v", err)
	}
	if err := SyncTree("/nonexistent/nook"); err == nil {
		t.Fatal("SyncTree of a missing dir succeeded")
	}
}
