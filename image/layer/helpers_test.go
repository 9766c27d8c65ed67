package layer

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent is one tar entry of a fixture.
type ent struct {
	hdr  tar.Header
	body string
}

// t0 is the fixtures' base time, with nanoseconds so PAX sub-second
// mtimes are exercised.
var t0 = time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)

func reg(name, body string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, ModTime: t0}, body: body}
}

func dirEnt(name string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: t0}}
}

func symEnt(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: t0}}
}

func linkEnt(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: t0}}
}

func withXattr(e ent, name, value string) ent {
	if e.hdr.PAXRecords == nil {
		e.hdr.PAXRecords = map[string]string{}
	}
	e.hdr.PAXRecords[paxXattrPrefix+name] = value
	return e
}

// mkTar builds a PAX tar from ents.
func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("building fixture entry %q: %v", h.Name, err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// idMap says what chown can do here: "root" (all ids, initial namespace),
// "full" (a namespace with subordinate ids), "single" (one id), "none"
// (an unprivileged user outside any namespace).
func idMap(t testing.TB) string {
	t.Helper()
	n, err := mappedIDs("/proc/self/uid_map")
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case os.Geteuid() != 0:
		return "none"
	case n == 1:
		return "single"
	case n >= 1<<32-1:
		return "root"
	}
	return "full"
}

// layout makes base/layer (the target) and base/sentinel beside it with a
// victim file, the place escapes would land.
func layout(t testing.TB) (layer, sentinel string) {
	t.Helper()
	base := t.TempDir()
	layer, sentinel = filepath.Join(base, "layer"), filepath.Join(base, "sentinel")
	for _, d := range []string{layer, sentinel, filepath.Join(sentinel, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sentinel, "victim"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Read-only directories from fixtures would stop an unprivileged
	// TempDir cleanup; this runs first (cleanups run last-in first-out).
	t.Cleanup(func() {
		filepath.WalkDir(layer, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return layer, sentinel
}

// snapshot describes a tree in one string: every entry's type, mode, owner,
// size, link count, whiteout-ness, content, symlink target and xattrs, plus
// mtimes when withTimes. Comparing snapshots compares trees.
func snapshot(t testing.TB, root string, withTimes bool) string {
	t.Helper()
	var b strings.Builder
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s type=%o mode=%o owner=%d:%d", rel, st.Mode&unix.S_IFMT, st.Mode&0o7777, st.Uid, st.Gid)
		if withTimes && rel != "." {
			fmt.Fprintf(&b, " mtime=%d", st.Mtim.Sec)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " size=%d data=%q", st.Size, data)
			if st.Nlink > 1 {
				// Name the inode by its first path so link groups compare.
				if first, ok := inodes[st.Ino]; ok {
					fmt.Fprintf(&b, " linkof=%s", first)
				} else {
					inodes[st.Ino] = rel
				}
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case unix.S_IFCHR, unix.S_IFBLK:
			fmt.Fprintf(&b, " rdev=%d", st.Rdev)
		}
		if m := st.Mode & unix.S_IFMT; m == unix.S_IFREG || m == unix.S_IFDIR {
			fmt.Fprintf(&b, " xattrs=%v", xattrsOf(t, p))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of %s: %v", root, err)
	}
	return b.String()
}

func xattrsOf(t testing.TB, p string) []string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listing xattrs of %s: %v", p, err)
	}
	var out []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || name == "security.selinux" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("reading xattr %s of %s: %v", name, p, err)
		}
		out = append(out, fmt.Sprintf("%s=%q", name, v[:m]))
	}
	slices.Sort(out)
	return out
}

func lstat(t testing.TB, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

func getxattr(p, name string) (string, error) {
	v := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, v)
	if err != nil {
		return "", err
	}
	return string(v[:n]), nil
}
