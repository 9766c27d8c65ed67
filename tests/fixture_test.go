package tests

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// entry is one member of a fixture tar.
type entry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	body     []byte
	link     string
	xattrs   map[string]string
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }
func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: 0o644, body: []byte(body)}
}
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}

// tarOf writes entries as a tar in the order given.
func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Linkname: e.link, ModTime: mtime, Size: int64(len(e.body)), Format: tar.FormatPAX,
		}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if len(e.xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("writing fixture header %s: %v", e.name, err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// busyboxPath finds the host's static busybox (Debian's busybox-static).
func busyboxPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox not found: install busybox-static")
	}
	return p
}

// busyboxRootfs is a small root filesystem: the host's busybox, applet
// links, passwd and group files, and files owned by root and by nobody.
func busyboxRootfs(t testing.TB) []byte {
	t.Helper()
	bb, err := os.ReadFile(busyboxPath(t))
	if err != nil {
		t.Fatal(err)
	}
	es := []entry{
		dir("./", 0o755), dir("bin/", 0o755), dir("etc/", 0o755), dir("root/", 0o700),
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, body: bb},
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home/nobody:/bin/sh\n"),
		file("etc/group", "root:x:0:\nnobody:x:65534:\n"),
		{name: "home/", typ: tar.TypeDir, mode: 0o755},
		{name: "home/nobody/", typ: tar.TypeDir, mode: 0o755, uid: 65534, gid: 65534},
		{name: "home/nobody/owned", typ: tar.TypeReg, mode: 0o640, uid: 65534, gid: 65534, body: []byte("nobody's\n")},
		{name: "etc/secret", typ: tar.TypeReg, mode: 0o600, body: []byte("root only\n")},
	}
	for _, applet := range []string{"sh", "ls", "cat", "echo", "id", "stat", "true", "false", "sleep", "env",
		"hostname", "pwd", "touch", "mkdir", "kill", "grep", "tty", "stty", "head", "wc"} {
		es = append(es, symlink("bin/"+applet, "busybox"))
	}
	return tarOf(t, es...)
}

// bigRootfs writes a root filesystem tar of about size bytes to a file:
// one large file of incompressible data and many small files.
func bigRootfs(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "big.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	rng := rand.NewChaCha8([32]byte{1, 2})
	write := func(hdr *tar.Header, r io.Reader) {
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if r != nil {
			if _, err := io.CopyN(tw, r, hdr.Size); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	small := int64(2000)
	large := size - small*4096
	write(&tar.Header{Name: "data/large.bin", Typeflag: tar.TypeReg, Mode: 0o644, Size: large}, rng)
	for i := range small {
		write(&tar.Header{
			Name: fmt.Sprintf("data/d%d/f%d", i%20, i), Typeflag: tar.TypeReg, Mode: 0o644,
			Size: 4096, Uid: int(i % 3 * 1000),
		}, rng)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}
