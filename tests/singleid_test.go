package tests

// Single-id mode: a user with no subordinate ids (tests/run.sh runs these
// tests a second time as such a user, with NOOK_TEST_SINGLE_ID=1). The
// package manager works under faked identity calls, and an image made
// from the container keeps the owners it meant to give.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"nook/internal/testutil"
)

// singleIDPass says this is the pass as the user without subordinate ids.
func singleIDPass() bool { return os.Getenv("NOOK_TEST_SINGLE_ID") != "" }

// debianImage imports the Debian 12 root tests/run.sh makes with
// mmdebstrap as deb:12.
func debianImage(t *testing.T, e *env) {
	t.Helper()
	deb := os.Getenv("NOOK_TEST_DEBIAN")
	testutil.Require(t, deb != "", "NOOK_TEST_DEBIAN names no Debian root tar (tests/run.sh makes one with mmdebstrap)")
	e.ok(nil, "import", deb, "deb:12")
}

// packageSteps is what a Dockerfile's RUN steps would do: install a
// package whose maintainer scripts give files other owners (cron's
// crontab is root:crontab 2755, set by dpkg-statoverride), add a user
// and give it a tree.
const packageSteps = `set -e
apt-get update -qq
apt-get install -y -qq --no-install-recommends cron >/dev/null
useradd app
mkdir -p /srv/app/sub && echo hi >/srv/app/sub/f
chown -R app /srv/app
touch /srv/app/suid && chown app:app /srv/app/suid && chmod u+s /srv/app/suid
`

// ownedEntry is one layer entry's owner and mode.
type ownedEntry struct {
	Uid, Gid int
	Mode     int64
	Type     byte
}

// TestSingleIDPackages: apt-get, useradd and chown work, and commit then
// save give a layer whose owners and modes are those the same steps give
// a user with subordinate ids (the earlier pass records its listing in
// NOOK_TEST_OWNERS_LISTING; this pass compares with it).
func TestSingleIDPackages(t *testing.T) {
	testutil.RequireUnprivileged(t)
	e := newEnv(t)
	info := e.ok(nil, "info")
	if got := strings.Contains(info, "single-id"); got != singleIDPass() {
		t.Fatalf("nook info mentions single-id mode: %v, want %v:\n%s", got, singleIDPass(), info)
	}
	debianImage(t, e)
	// Its upper layer holds files of subordinate ids: removed by nook.
	t.Cleanup(func() { e.nook(nil, "rm", "-f", "pk") })
	e.ok(nil, "run", "--name", "pk", "deb:12", "sh", "-c", packageSteps)
	e.ok(nil, "commit", "pk", "pk:1")
	archive := filepath.Join(e.home, "pk.tar")
	e.ok(nil, "save", "-o", archive, "pk:1")
	layer := topLayer(t, archive)

	passwd := e.ok(nil, "run", "--rm", "pk:1", "id", "-u", "app")
	appUID := strings.TrimSpace(passwd)
	crontabGID := strings.TrimSpace(e.ok(nil, "run", "--rm", "pk:1", "getent", "group", "crontab"))
	crontabGID = strings.Split(crontabGID, ":")[2]
	for _, c := range []struct {
		name, uid, gid string
		mode           int64
	}{
		{"srv/app/", appUID, "0", 0o755},
		{"srv/app/sub/f", appUID, "0", 0o644},
		{"srv/app/suid", appUID, appUID, 0o4644},
		{"usr/bin/crontab", "0", crontabGID, 0o2755},
	} {
		got, ok := layer[c.name]
		if !ok {
			t.Errorf("%s is not in the committed layer", c.name)
			continue
		}
		if fmt.Sprint(got.Uid) != c.uid || fmt.Sprint(got.Gid) != c.gid || got.Mode != c.mode {
			t.Errorf("%s: %d:%d %o, want %s:%s %o", c.name, got.Uid, got.Gid, got.Mode, c.uid, c.gid, c.mode)
		}
	}
	compareWithFullMap(t, layer, "")
}

// TestSingleIDBuild: a Dockerfile whose RUN step does the same gives a
// layer with the same owners and modes, here and in the full-map pass
// (the step's container gets the listener, and its layer is written from
// the upper directory's records as commit's is).
func TestSingleIDBuild(t *testing.T) {
	testutil.RequireUnprivileged(t)
	e := newEnv(t)
	debianImage(t, e)
	run := strings.Join(strings.Split(strings.TrimSpace(packageSteps), "\n"), "; ")
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM deb:12\nRUN " + run + "\n"})
	e.ok(nil, "build", "-q", "-t", "pkb:1", ctx)
	archive := filepath.Join(e.home, "pkb.tar")
	e.ok(nil, "save", "-o", archive, "pkb:1")
	layer := topLayer(t, archive)
	appUID := strings.TrimSpace(e.ok(nil, "run", "--rm", "pkb:1", "id", "-u", "app"))
	for _, c := range []struct {
		name, uid string
		mode      int64
	}{{"srv/app/", appUID, 0o755}, {"srv/app/suid", appUID, 0o4644}} {
		if got := layer[c.name]; fmt.Sprint(got.Uid) != c.uid || got.Mode != c.mode {
			t.Errorf("%s: %d:%d %o, want uid %s %o", c.name, got.Uid, got.Gid, got.Mode, c.uid, c.mode)
		}
	}
	compareWithFullMap(t, layer, ".build")
}

// copiesStatOwner are the files a step makes by copying the owner that
// stat shows of another file, which inside a single-id container is root
// whatever owner was recorded: useradd's backups (a replacing rename
// keeps the record, fusefs.keepRecordedOwner, so the files themselves
// agree).
var copiesStatOwner = map[string]bool{"etc/shadow-": true, "etc/gshadow-": true}

// compareWithFullMap writes the listing in the full-map pass and compares
// with it in the single-id pass: every entry both layers hold has the
// same owner, mode and type. Each test's listing is the file named by
// NOOK_TEST_OWNERS_LISTING with suffix after it.
func compareWithFullMap(t *testing.T, layer map[string]ownedEntry, suffix string) {
	file := os.Getenv("NOOK_TEST_OWNERS_LISTING")
	if file != "" {
		file += suffix
	}
	if !singleIDPass() {
		if file != "" {
			b, _ := json.Marshal(layer)
			if err := os.WriteFile(file, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	b, err := os.ReadFile(file)
	testutil.Require(t, err == nil, fmt.Sprintf("no listing from the full-map pass (NOOK_TEST_OWNERS_LISTING=%q): %v", file, err))
	var full map[string]ownedEntry
	if err := json.Unmarshal(b, &full); err != nil {
		t.Fatal(err)
	}
	var names []string
	for name, want := range full {
		if got, ok := layer[name]; ok && got != want && !copiesStatOwner[name] {
			names = append(names, fmt.Sprintf("%s: %+v, with subordinate ids %+v", name, got, want))
		}
	}
	slices.Sort(names)
	if len(names) > 0 {
		t.Errorf("%d entries differ from the full-map pass:\n%s", len(names), strings.Join(names, "\n"))
	}
	for _, name := range []string{"srv/app/", "usr/bin/crontab", "etc/passwd", "etc/shadow", "var/lib/apt/lists/auxfiles/"} {
		if _, ok := full[name]; !ok {
			t.Errorf("the full-map listing lacks %s", name)
		}
	}
}

// topLayer lists the last layer of the one image in a docker-archive.
func topLayer(t *testing.T, archive string) map[string]ownedEntry {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", archive, err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 || len(manifest[0].Layers) == 0 {
		t.Fatalf("manifest.json of %s: %v %+v", archive, err, manifest)
	}
	layers := manifest[0].Layers
	out := map[string]ownedEntry{}
	lr := tar.NewReader(bytes.NewReader(files[layers[len(layers)-1]]))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the top layer: %v", err)
		}
		if _, ok := h.PAXRecords["SCHILY.xattr.user.rootlesscontainers"]; ok {
			t.Errorf("%s carries the owner record into the tar", h.Name)
		}
		out[h.Name] = ownedEntry{Uid: h.Uid, Gid: h.Gid, Mode: h.Mode, Type: h.Typeflag}
	}
}

// TestSingleIDFaking: with a full id map nothing is faked (a chown to an
// id outside the map fails with EINVAL, mknod of a device with EPERM);
// in single-id mode both succeed, and --force=none lets them fail again.
func TestSingleIDFaking(t *testing.T) {
	testutil.RequireUnprivileged(t)
	e := newEnv(t)
	e.ok(busyboxRootfs(t), "import", "-", "bb")
	const script = `busybox touch /f; busybox chown 70000:70000 /f 2>&1 && echo chown-ok
busybox mknod /tmp/null c 1 3 2>&1 && echo mknod-ok; true`
	run := func(flags ...string) string {
		args := append(append([]string{"run", "--rm"}, flags...), "bb", "sh", "-c", script)
		return e.ok(nil, args...)
	}
	faked, off := run(), run("--force=none")
	for _, c := range []struct {
		name, out string
		want      bool
	}{{"default", faked, singleIDPass()}, {"--force=none", off, false}} {
		for _, call := range []string{"chown", "mknod"} {
			if got := strings.Contains(c.out, call+"-ok"); got != c.want {
				t.Errorf("%s: %s succeeded: %v, want %v:\n%s", c.name, call, got, c.want, c.out)
			}
		}
		if !c.want && !strings.Contains(c.out, "Invalid argument") {
			t.Errorf("%s: the chown did not fail with EINVAL:\n%s", c.name, c.out)
		}
	}
}

// TestSingleIDOwnersKept: the owners of a loaded layer (nobody's files of
// the busybox fixture, imported, saved and loaded into another store)
// survive a container: export gives them back, and so does an image
// committed from a container that changed the file's mode, run and
// exported again — with or without subordinate ids.
func TestSingleIDOwnersKept(t *testing.T) {
	testutil.RequireUnprivileged(t)
	first := newEnv(t)
	first.ok(busyboxRootfs(t), "import", "-", "bb")
	saved := filepath.Join(first.home, "bb.tar")
	first.ok(nil, "save", "-o", saved, "bb")
	e := newEnv(t)
	e.ok(nil, "load", "-i", saved)
	t.Cleanup(func() { e.nook(nil, "rm", "-f", "c1", "c2") })
	e.ok(nil, "create", "--name", "c1", "bb", "sh", "-c", "busybox chmod g+s /home/nobody/owned")
	e.ok(nil, "start", "-a", "c1")
	e.ok(nil, "commit", "c1", "bb:2")
	e.ok(nil, "create", "--name", "c2", "bb:2", "true")
	for _, c := range []struct {
		ctr  string
		mode int64
	}{{"c1", 0o2640}, {"c2", 0o2640}} {
		file := filepath.Join(e.home, c.ctr+".tar")
		e.ok(nil, "export", "-o", file, c.ctr)
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if strings.TrimPrefix(h.Name, "./") == "home/nobody/owned" {
				found = true
				if h.Uid != 65534 || h.Gid != 65534 || h.Mode != c.mode {
					t.Errorf("%s: home/nobody/owned is %d:%d %o, want 65534:65534 %o", c.ctr, h.Uid, h.Gid, h.Mode, c.mode)
				}
			}
		}
		f.Close()
		if !found {
			t.Errorf("%s: home/nobody/owned is not in the export", c.ctr)
		}
	}
}

// TestSingleIDExecChown: a chown in an exec'd process is recorded as the
// payload's are (its seccomp listener reaches the shim), so a commit
// keeps the owner; with a full map the chown is real.
func TestSingleIDExecChown(t *testing.T) {
	testutil.RequireUnprivileged(t)
	e := newEnv(t)
	e.ok(busyboxRootfs(t), "import", "-", "bb")
	t.Cleanup(func() { e.nook(nil, "rm", "-f", "ex") })
	// A payload that writes all along: the shim fans its output out to
	// every connection, the one bringing the listener too.
	e.ok(nil, "run", "-d", "--name", "ex", "bb", "busybox", "sh", "-c", "while :; do echo out; busybox usleep 2000; done")
	e.ok(nil, "exec", "ex", "busybox", "sh", "-c", "busybox touch /f /g && busybox chown 1234:2345 /f")
	e.ok(nil, "exec", "ex", "busybox", "chown", "4321", "/g")
	e.ok(nil, "commit", "ex", "ex:1")
	archive := filepath.Join(e.home, "ex.tar")
	e.ok(nil, "save", "-o", archive, "ex:1")
	layer := topLayer(t, archive)
	for _, c := range []struct {
		name     string
		uid, gid int
	}{{"f", 1234, 2345}, {"g", 4321, 0}} {
		if got, ok := layer[c.name]; !ok || got.Uid != c.uid || got.Gid != c.gid {
			t.Errorf("%s in the committed layer: %+v (present %v), want %d:%d", c.name, got, ok, c.uid, c.gid)
		}
	}
}
