package tests

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// changeScript adds, changes, deletes, and empties and refills a
// directory, so diff and commit have each kind of change to show.
const changeScript = `echo new > /new; echo more >> /etc/group; busybox rm /etc/secret; ` +
	`busybox rm -rf /home/nobody; mkdir /home/nobody; echo fresh > /home/nobody/fresh`

func TestDiff(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "--name", "c1", "bb", "sh", "-c", changeScript)
	want := "C /etc\nC /etc/group\nD /etc/secret\nC /home/nobody\nA /home/nobody/fresh\nA /new\n"
	if got := e.ok(nil, "diff", "c1"); got != want {
		t.Errorf("diff of a stopped container:\n got %q\nwant %q", got, want)
	}
	// A running container: its changes so far, and `container diff` too.
	e.ok(nil, "run", "-d", "--name", "c2", "bb", "sh", "-c", "touch /running; sleep 60")
	eventually(t, "the running container's change", func() bool {
		return e.nook(nil, "container", "diff", "c2").stdout == "A /running\n"
	})
	if r := e.nook(nil, "diff", "nosuch"); r.code != 125 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("diff of a missing container: %s", r)
	}
}

func TestCommit(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "--name", "c1", "-e", "FROM_RUN=1", "bb", "sh", "-c", changeScript)
	id := strings.TrimSpace(e.ok(nil, "commit", "-m", "the message", "-a", "someone", "-c", `LABEL k=v`, "c1", "committed:v1"))
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("commit printed %q, want an image id", id)
	}
	check := `cat /new /etc/group; test -e /etc/secret && echo secret-left; ls /home/nobody; echo env=$FROM_RUN`
	want := "new\nroot:x:0:\nnobody:x:65534:\nmore\nfresh\nenv=1\n"
	if got := e.ok(nil, "run", "--rm", "committed:v1", "sh", "-c", check); got != want {
		t.Errorf("a container of the committed image sees:\n%q\nwant\n%q", got, want)
	}
	img := e.inspectImage("committed:v1")
	layers := img["RootFS"].(map[string]any)["Layers"].([]any)
	base := e.inspectImage("bb")["RootFS"].(map[string]any)["Layers"].([]any)
	if len(layers) != len(base)+1 || fmt.Sprint(layers[:len(base)]) != fmt.Sprint(base) {
		t.Errorf("layers %v, want the image's %v plus one", layers, base)
	}
	wantFields(t, "committed image", field{"Comment", img["Comment"], "the message"}, field{"Author", img["Author"], "someone"})
	cfg := img["Config"].(map[string]any)
	if fmt.Sprint(cfg["Cmd"]) != "[sh -c "+changeScript+"]" || fmt.Sprint(cfg["Labels"]) != "map[k:v]" ||
		strings.Contains(fmt.Sprint(cfg["Env"]), "HOSTNAME") || !strings.Contains(fmt.Sprint(cfg["Env"]), "FROM_RUN=1") {
		t.Errorf("config: %v", cfg)
	}
	// Mount points nook made are not the container's changes.
	top := strings.TrimPrefix(layers[len(layers)-1].(string), "sha256:")
	diff := filepath.Join(e.store, "layers", top, "diff")
	for _, p := range []string{"proc", "sys", "dev", "etc/hosts", "etc/resolv.conf"} {
		if _, err := os.Lstat(filepath.Join(diff, p)); err == nil {
			t.Errorf("the new layer holds the mount point %s", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(diff, "new")); err != nil {
		t.Errorf("the new layer lacks /new: %v", err)
	}
	// Without a name the image is dangling; a bad --change is one line, 125.
	e.ok(nil, "container", "commit", "c1")
	if r := e.nook(nil, "commit", "-c", "RUN true", "c1"); r.code != 125 || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("commit with a bad --change: %s", r)
	}
	if r := e.nook(nil, "commit", "nosuch"); r.code != 125 || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("commit of a missing container: %s", r)
	}
}

// portableRootfs is busybox plus what a flat export must keep: a
// hardlink, a symlink, user xattrs, odd modes and another owner.
func portableRootfs(t *testing.T) []byte {
	var es []entry
	tr := tar.NewReader(bytes.NewReader(busyboxRootfs(t)))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		es = append(es, entry{name: hdr.Name, typ: hdr.Typeflag, mode: hdr.Mode, uid: hdr.Uid, gid: hdr.Gid, body: body, link: hdr.Linkname})
	}
	es = append(es,
		dir("data/", 0o750),
		entry{name: "data/tagged", typ: tar.TypeReg, mode: 0o4755, body: []byte("x"), xattrs: map[string]string{"user.test": "value", "user.other": "2"}},
		entry{name: "data/nobodys", typ: tar.TypeReg, mode: 0o600, uid: 65534, gid: 65534, body: []byte("n")},
		entry{name: "data/link", typ: tar.TypeLink, link: "data/nobodys"},
		symlink("data/sym", "../etc/passwd"),
		entry{name: "data/gone", typ: tar.TypeReg, mode: 0o644, body: []byte("deleted in the container")},
		entry{name: "data/dirx/", typ: tar.TypeDir, mode: 0o711, xattrs: map[string]string{"user.d": "dir"}},
	)
	return tarOf(t, es...)
}

// tarListing describes every entry of a tar on one line each: name, type,
// mode, owner, link, size, content hash and xattrs.
func tarListing(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the export: %v", err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, tr); err != nil {
			t.Fatal(err)
		}
		var xs []string
		for k, v := range hdr.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				xs = append(xs, k[13:]+"="+v)
			}
		}
		slices.Sort(xs)
		name := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		out[name] = fmt.Sprintf("%c %o %d:%d link=%s size=%d %x %v", hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Linkname, hdr.Size, h.Sum(nil)[:6], xs)
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	e := runEnv(t)
	e.ok(portableRootfs(t), "import", "-", "port")
	e.ok(nil, "run", "--name", "c1", "port", "sh", "-c", "busybox rm /data/gone; echo added > /data/added; echo more >> /etc/group")
	exported := []byte(e.ok(nil, "export", "c1"))
	first := tarListing(t, exported)
	for name, want := range map[string]string{
		"data/tagged": "0 4755 0:0 link= size=1",
		// Names in byte order: the link is written first, with the data.
		"data/link":    "0 600 65534:65534 link= size=1",
		"data/nobodys": "1 600 65534:65534 link=data/link size=0",
		"data/sym":     "2 777 0:0 link=../etc/passwd size=0",
		"data/dirx":    "5 711 0:0 link= size=0",
		"data/added":   "0 644 0:0 link= size=6",
	} {
		if !strings.HasPrefix(first[name], want) {
			t.Errorf("export: %s = %q, want %q...", name, first[name], want)
		}
	}
	if !strings.HasSuffix(first["data/tagged"], "[user.other=2 user.test=value]") || !strings.HasSuffix(first["data/dirx"], "[user.d=dir]") {
		t.Errorf("xattrs lost: %q, %q", first["data/tagged"], first["data/dirx"])
	}
	for name := range first {
		if name == "data/gone" || strings.Contains(name, ".wh.") {
			t.Errorf("export holds %s", name)
		}
	}
	if got := e.ok(nil, "run", "--rm", "port", "cat", "/etc/group"); strings.Contains(got, "more") {
		t.Errorf("the image changed: %q", got)
	}
	// Import the export, export that again: the same tree.
	e.ok(exported, "import", "-", "again")
	e.ok(nil, "create", "--name", "c2", "again", "true")
	file := filepath.Join(t.TempDir(), "second.tar")
	e.ok(nil, "export", "-o", file, "c2")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	second := tarListing(t, b)
	for name, v := range first {
		if name == "" {
			continue // the root's mtime is the container's
		}
		if second[name] != v {
			t.Errorf("round trip changed %s:\n %q\n %q", name, v, second[name])
		}
	}
	if len(second) != len(first) {
		t.Errorf("round trip: %d entries, then %d", len(first), len(second))
	}
	// A running container exports as it is now, and keeps running.
	e.ok(nil, "run", "-d", "--name", "live", "port", "sh", "-c", "echo live > /live; sleep 60")
	eventually(t, "the running container's file in its export", func() bool {
		return strings.HasPrefix(tarListing(t, []byte(e.ok(nil, "export", "live")))["live"], "0 644 0:0 link= size=5")
	})
	if st := e.state("live"); st != "running" {
		t.Errorf("after export the container is %s", st)
	}
	if out, code := e.runOnPty("", "export", "c1"); code != 125 || !strings.Contains(out, "refusing") {
		t.Errorf("export to a terminal: exit %d, %q", code, out)
	}
	if r := e.nook(nil, "export", "nosuch"); r.code != 125 || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("export of a missing container: %s", r)
	}
}

// cpLinks are the symbolic links a hostile container may plant.
const cpLinks = `busybox ln -s / /l_root; busybox ln -s ../../../../../../../../.. /l_up; ` +
	`busybox ln -s /etc/passwd /l_passwd; busybox ln -s /tmp /mid; echo inside > /tmp/x; busybox ln -s /tmp/x /l_file; ` +
	`busybox ln -s ../../../../../tmp/made /l_dangling; busybox ln -s /etc /l_etc`

func TestCp(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "--name", "c1", "bb", "sh", "-c", cpLinks)
	host := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(host, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sentinel := write("sentinel", "sentinel\n")
	evil := write("evil", "evil\n")
	containerPasswd := "root:x:0:0:root:/root:/bin/sh\n"
	read := func(args ...string) (string, result) {
		r := e.nook(nil, append([]string{"cp"}, args...)...)
		if r.code != 0 {
			return "", r
		}
		b := tarListingBodies(t, []byte(r.stdout))
		return b, r
	}

	// Reads: each resolves inside the container, or is refused.
	for _, tc := range []struct{ name, src, want string }{
		{"absolute link followed with -L", "c1:/l_passwd", containerPasswd},
		{"link to / in the middle", "c1:/l_root/etc/passwd", containerPasswd},
		{"../ link climbs no higher than the root", "c1:/l_up/etc/passwd", containerPasswd},
		{"link in the middle of the path", "c1:/mid/x", "inside\n"},
		{"host path through a link to /", "c1:/l_root" + sentinel, ""},
		{"host path through ../", "c1:/l_up" + sentinel, ""},
	} {
		t.Run("read/"+tc.name, func(t *testing.T) {
			got, r := read("-L", tc.src, "-")
			if tc.want == "" {
				if r.code != 125 || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("want a one-line refusal: %s", r)
				}
				return
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("read %q, want %q (%s)", got, tc.want, r)
			}
		})
	}
	// Without -L a link is copied as a link.
	if r := e.ok(nil, "cp", "c1:/l_passwd", filepath.Join(host, "copied-link")); r != "" {
		t.Errorf("cp printed %q", r)
	}
	if target, err := os.Readlink(filepath.Join(host, "copied-link")); err != nil || target != "/etc/passwd" {
		t.Errorf("copied link: %q, %v", target, err)
	}

	// Writes: into the container or refused; the host sentinel stays.
	// A running container (a process joining its namespaces unpacks the
	// copy) is held to the same rules as a stopped one, links planted
	// alike.
	e.ok(nil, "run", "-d", "--name", "live", "bb", "sh", "-c", cpLinks+"; echo live > /live; sleep 60")
	eventually(t, "the running container's links", func() bool {
		got, _ := read("live:/live", "-")
		return got == "live\n"
	})
	for _, ctr := range []string{"c1", "live"} {
		for _, tc := range []struct{ name, dst, inside string }{
			{"into a link to a directory", ":/l_etc/", "/etc/evil"},
			{"through a link to /", ":/l_root" + sentinel, ""},
			{"through ../ links", ":/l_up" + sentinel, ""},
			{"onto a link to a host path", ":/l_up" + host + "/", ""},
			{"into a link in the middle", ":/mid/evil", "/tmp/evil"},
			{"onto a link to a file", ":/l_file", "/tmp/x"},
			{"onto a dangling ../ link", ":/l_dangling", "/tmp/made"},
			{"into a missing directory", ":/nowhere/", ""},
		} {
			t.Run("write/"+ctr+"/"+tc.name, func(t *testing.T) {
				r := e.nook(nil, "cp", evil, ctr+tc.dst)
				if tc.inside == "" {
					if r.code != 125 || strings.Count(r.stderr, "\n") != 1 {
						t.Errorf("want a one-line refusal: %s", r)
					}
				} else if r.code != 0 {
					t.Errorf("cp: %s", r)
				} else if got, _ := read(ctr+":"+tc.inside, "-"); got != "evil\n" {
					t.Errorf("%s in the container holds %q", tc.inside, got)
				}
				if b, err := os.ReadFile(sentinel); err != nil || string(b) != "sentinel\n" {
					t.Fatalf("the host sentinel changed: %q, %v", b, err)
				}
			})
		}
		// A hostile tar on stdin is refused whole.
		for name, archive := range map[string][]byte{
			"dot-dot entry":        tarOf(t, file("../../escape", "x")),
			"through its own link": tarOf(t, symlink("up", "/"), file("up"+host+"/sentinel", "x")),
		} {
			if r := e.nook(archive, "cp", "-", ctr+":/tmp"); r.code != 125 || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("cp of a tar with a %s into %s: %s", name, ctr, r)
			}
		}
		if b, _ := os.ReadFile(sentinel); string(b) != "sentinel\n" {
			t.Fatalf("the host sentinel changed: %q", b)
		}
	}

	// The running container's processes see a copy at once, through its
	// live union, and it keeps running.
	e.ok(nil, "cp", evil, "live:/evil")
	if got := e.ok(nil, "exec", "live", "cat", "/evil", "/etc/evil", "/tmp/evil"); got != "evil\nevil\nevil\n" {
		t.Errorf("the running container reads %q", got)
	}
	// Zeros after the end marker (tar pads to its record size; this is
	// more than a pipe holds) are read, not refused.
	padded := append(tarOf(t, file("streamed/a", "a\n")), make([]byte, 1<<20)...)
	e.ok(padded, "cp", "-", "live:/tmp")
	if got := e.ok(nil, "exec", "live", "cat", "/tmp/streamed/a"); got != "a\n" {
		t.Errorf("a tar copied into the running container: %q", got)
	}
	if st := e.state("live"); st != "running" {
		t.Errorf("after cp the container is %s", st)
	}

	// Trees both ways, owners kept with -a, and the result in a container.
	e.ok(nil, "cp", "c1:/home", filepath.Join(host, "home"))
	if b, err := os.ReadFile(filepath.Join(host, "home/nobody/owned")); err != nil || string(b) != "nobody's\n" {
		t.Errorf("copied tree: %q, %v", b, err)
	}
	if got := tarListing(t, []byte(e.ok(nil, "cp", "-a", "c1:/home/nobody", "-")))["nobody/owned"]; !strings.HasPrefix(got, "0 640 65534:65534") {
		t.Errorf("cp -a to a tar: %q", got)
	}
	e.ok(nil, "cp", filepath.Join(host, "home"), "c1:/copied")
	e.ok(nil, "cp", filepath.Join(host, "home")+"/.", "c1:/tmp")
	if got := e.ok(nil, "start", "-a", "c1"); got != "" {
		t.Errorf("restart: %q", got)
	}
	if got := e.ok(nil, "diff", "c1"); !strings.Contains(got, "A /copied/nobody/owned\n") || !strings.Contains(got, "A /tmp/nobody/owned\n") {
		t.Errorf("diff after cp into the container:\n%s", got)
	}

	// Trees into the running container, owners kept with -a or given to
	// its root without.
	ownedDir, owned := dir("owned/", 0o755), file("owned/f", "x\n")
	ownedDir.uid, ownedDir.gid, owned.uid, owned.gid = 65534, 65534, 65534, 65534
	e.ok(tarOf(t, ownedDir, owned), "cp", "-a", "-", "live:/tmp")
	e.ok(tarOf(t, ownedDir, owned), "cp", "-", "live:/")
	if got := e.ok(nil, "exec", "live", "stat", "-c", "%u:%g %n", "/tmp/owned/f", "/owned/f"); got != "65534:65534 /tmp/owned/f\n0:0 /owned/f\n" {
		t.Errorf("owners of tars copied into the running container:\n%s", got)
	}
	e.ok(nil, "cp", filepath.Join(host, "home"), "live:/tree")
	e.ok(nil, "cp", filepath.Join(host, "home")+"/.", "live:/contents")
	if got := e.ok(nil, "exec", "live", "cat", "/tree/nobody/owned", "/contents/nobody/owned"); got != "nobody's\nnobody's\n" {
		t.Errorf("trees copied into the running container: %q", got)
	}
	if r := e.nook(nil, "cp", filepath.Join(host, "home"), "live:/etc/passwd"); r.code != 125 || !strings.Contains(r.stderr, "cannot copy a directory onto the file") {
		t.Errorf("a directory onto a file of the running container: %s", r)
	}
	if out, code := e.runOnPty("", "cp", "c1:/etc/passwd", "-"); code != 125 || !strings.Contains(out, "refusing") {
		t.Errorf("cp to a terminal: exit %d, %q", code, out)
	}
	for _, args := range [][]string{{"nosuch:/x", "-"}, {"a", "b"}, {"c1:/a", "c1:/b"}, {"c1:/nothing", "-"}} {
		if r := e.nook(nil, append([]string{"cp"}, args...)...); r.code != 125 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("cp %v: %s", args, r)
		}
	}
}

// tarListingBodies is the concatenated content of a tar's regular files.
func tarListingBodies(t *testing.T, b []byte) string {
	t.Helper()
	var out strings.Builder
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return out.String()
		}
		if hdr.Typeflag == tar.TypeReg {
			_, _ = io.Copy(&out, tr)
		}
	}
}
