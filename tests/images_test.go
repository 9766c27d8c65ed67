package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// inspectImage runs `nook inspect` on one image and decodes it.
func (e *env) inspectImage(ref string) map[string]any {
	e.t.Helper()
	var out []map[string]any
	// --type image: a short name such as "bb" is also a prefix that a
	// container's random id may start with, and inspect looks at
	// containers first, as Docker does.
	if err := json.Unmarshal([]byte(e.ok(nil, "inspect", "--type", "image", ref)), &out); err != nil || len(out) != 1 {
		e.t.Fatalf("inspect %s: %v (%d objects)", ref, err, len(out))
	}
	return out[0]
}

func TestImportListInspect(t *testing.T) {
	e := newEnv(t)
	id := strings.TrimSpace(e.ok(busyboxRootfs(t), "import",
		"-c", `CMD ["/bin/sh", "-c", "echo hi"]`, "-c", "ENV GREETING=hello", "-c", "WORKDIR /tmp",
		"-c", "USER nobody", "-c", "LABEL team=lab", "-c", "EXPOSE 8080", "-m", "first import",
		"-", "lab/busybox:1"))
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("import printed %q, want an image id", id)
	}

	out := e.ok(nil, "images")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "REPOSITORY") {
		t.Fatalf("images printed:\n%s", out)
	}
	f := strings.Fields(lines[1])
	if f[0] != "lab/busybox" || f[1] != "1" || f[2] != id[7:19] {
		t.Errorf("images row = %q, want lab/busybox 1 %s", lines[1], id[7:19])
	}
	if q := strings.TrimSpace(e.ok(nil, "images", "-q")); q != id[7:19] {
		t.Errorf("images -q = %q, want %s", q, id[7:19])
	}
	var row map[string]string
	if err := json.Unmarshal([]byte(e.ok(nil, "images", "--format", "json")), &row); err != nil {
		t.Fatalf("images --format json: %v", err)
	}
	if row["Repository"] != "lab/busybox" || row["Tag"] != "1" || row["ID"] != id[7:19] {
		t.Errorf("images --format json = %v", row)
	}
	if got := e.ok(nil, "inspect", "-f", "{{.Size}}", id); got != fmt.Sprintf("%.0f\n", e.inspectImage(id)["Size"].(float64)) {
		t.Errorf("inspect -f {{.Size}} = %q, want a plain integer", got)
	}
	if got := e.ok(nil, "images", "--format", "{{.Repository}}:{{.Tag}}"); got != "lab/busybox:1\n" {
		t.Errorf("images --format template = %q", got)
	}
	if got := e.ok(nil, "images", "--digests"); !strings.Contains(got, "DIGEST") || !strings.Contains(got, "sha256:") {
		t.Errorf("images --digests lacks the digest column:\n%s", got)
	}

	img := e.inspectImage("lab/busybox:1")
	if img["Id"] != id {
		t.Errorf("inspect Id = %v, want %s", img["Id"], id)
	}
	if tags := img["RepoTags"].([]any); len(tags) != 1 || tags[0] != "lab/busybox:1" {
		t.Errorf("inspect RepoTags = %v", tags)
	}
	cfg := img["Config"].(map[string]any)
	want := map[string]string{
		"Cmd": `["/bin/sh","-c","echo hi"]`, "Env": `["GREETING=hello"]`, "WorkingDir": `"/tmp"`,
		"User": `"nobody"`, "Labels": `{"team":"lab"}`, "ExposedPorts": `{"8080/tcp":{}}`,
	}
	for k, v := range want {
		if got, _ := json.Marshal(cfg[k]); string(got) != v {
			t.Errorf("inspect Config.%s = %s, want %s", k, got, v)
		}
	}
	if img["Comment"] != "first import" {
		t.Errorf("inspect Comment = %v", img["Comment"])
	}
	// Every way of naming the image finds the same one.
	for _, ref := range []string{id, id[7:], id[7:19], id[7:11], "docker.io/lab/busybox:1"} {
		if got := strings.TrimSpace(e.ok(nil, "inspect", "-f", "{{.Id}}", ref)); got != id {
			t.Errorf("inspect %s = %s, want %s", ref, got, id)
		}
	}
}

func TestTagAndRmi(t *testing.T) {
	e := newEnv(t)
	id := strings.TrimSpace(e.ok(busyboxRootfs(t), "import", "-", "one"))
	e.ok(nil, "tag", "one", "two:v2")
	e.ok(nil, "image", "tag", id[7:19], "three")
	if got := e.ok(nil, "images", "--format", "{{.Repository}}:{{.Tag}}"); got != "one:latest\nthree:latest\ntwo:v2\n" {
		t.Fatalf("after tagging, images = %q", got)
	}
	// By id, an image with several names is only removed by force.
	r := e.nook(nil, "rmi", id[7:19])
	if r.code != 125 || !strings.Contains(r.stderr, "must be forced") {
		t.Errorf("rmi of a multi-named image by id: %s", r)
	}
	if got := e.ok(nil, "rmi", "two:v2"); got != "Untagged: two:v2\n" {
		t.Errorf("rmi two:v2 = %q, want only an untag", got)
	}
	layers := filepath.Join(e.store, "layers")
	if n := countEntries(t, layers); n != 1 {
		t.Fatalf("store holds %d unpacked layers, want 1", n)
	}
	got := e.ok(nil, "rmi", "-f", id[7:19])
	if !strings.Contains(got, "Untagged: one:latest") || !strings.Contains(got, "Deleted: "+id) {
		t.Errorf("rmi -f printed %q", got)
	}
	if out := e.ok(nil, "images", "-q"); out != "" {
		t.Errorf("images after rmi: %q", out)
	}
	if n := countEntries(t, layers); n != 0 {
		t.Errorf("store still holds %d unpacked layers after the last image went", n)
	}
	if n := countEntries(t, filepath.Join(e.store, "blobs", "sha256")); n != 0 {
		t.Errorf("store still holds %d blobs after the last image went", n)
	}
}

func TestDanglingAndPrune(t *testing.T) {
	e := newEnv(t)
	first := strings.TrimSpace(e.ok(busyboxRootfs(t), "import", "-m", "one", "-", "app"))
	second := strings.TrimSpace(e.ok(tarOf(t, file("hello", "world")), "import", "-", "app"))
	if first == second {
		t.Fatal("two different imports gave one id")
	}
	got := e.ok(nil, "images", "--format", "{{.Repository}}:{{.Tag}}:{{.ID}}")
	if !strings.Contains(got, "<none>:<none>:"+first[7:19]) || !strings.Contains(got, "app:latest:"+second[7:19]) {
		t.Fatalf("the retagged image is not dangling:\n%s", got)
	}
	if got := e.ok(nil, "images", "-q", "--filter", "dangling=true"); got != first[7:19]+"\n" {
		t.Errorf("dangling filter = %q", got)
	}
	out := e.ok(nil, "image", "prune", "-f")
	if !strings.Contains(out, "Deleted: "+first) || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("prune printed %q", out)
	}
	if got := e.ok(nil, "images", "-q"); got != second[7:19]+"\n" {
		t.Errorf("after prune, images = %q", got)
	}
}

// TestImportKeepsOwners checks the unpacked layer on disk: with subordinate
// ids, root's files belong to the user and nobody's to subordinate id
// 65533 (container id 65534 - 1 above the range start).
func TestImportKeepsOwners(t *testing.T) {
	e := newEnv(t)
	e.ok(busyboxRootfs(t), "import", "-", "owners")
	diff := onlyLayer(t, e)
	rootUID := ownerOf(t, filepath.Join(diff, "etc", "passwd"))
	nobodyUID := ownerOf(t, filepath.Join(diff, "home", "nobody", "owned"))
	if os.Geteuid() == 0 {
		if rootUID != 0 || nobodyUID != 65534 {
			t.Errorf("as root: owners %d and %d, want 0 and 65534", rootUID, nobodyUID)
		}
		return
	}
	start, count := subordinateRange(t)
	if count < 65535 {
		t.Fatalf("need 65536 subordinate ids, have %d", count)
	}
	if rootUID != os.Getuid() {
		t.Errorf("root's file is owned by %d on the host, want %d", rootUID, os.Getuid())
	}
	if want := start + 65534 - 1; nobodyUID != want {
		t.Errorf("nobody's file is owned by %d on the host, want %d", nobodyUID, want)
	}
	// The setuid-root-only file stayed private.
	fi, err := os.Lstat(filepath.Join(diff, "etc", "secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("etc/secret mode = %v, %v; want 0600", fi.Mode(), err)
	}
}

func TestImportLarge(t *testing.T) {
	e := newEnv(t)
	tarPath := bigRootfs(t, 100<<20)
	id := strings.TrimSpace(e.ok(nil, "import", "-q", tarPath, "big"))
	size := e.inspectImage("big")["Size"].(float64)
	if size < 100<<20 || size > 101<<20 {
		t.Errorf("image size = %.0f, want about 100 MiB", size)
	}
	diff := onlyLayer(t, e)
	fi, err := os.Stat(filepath.Join(diff, "data", "large.bin"))
	if err != nil || fi.Size() != 100<<20-2000*4096 {
		t.Fatalf("large.bin: %v, %v", fi, err)
	}
	if n := countEntries(t, filepath.Join(diff, "data", "d7")); n != 100 {
		t.Errorf("data/d7 holds %d files, want 100", n)
	}
	if got := e.ok(nil, "images", "-q"); got != id[7:19]+"\n" {
		t.Errorf("images -q = %q", got)
	}
}

func onlyLayer(t *testing.T, e *env) string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.store, "layers"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("want one unpacked layer, have %d (%v)", len(ents), err)
	}
	return filepath.Join(e.store, "layers", ents[0].Name(), "diff")
}

func ownerOf(t *testing.T, p string) int {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

func countEntries(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(ents)
}

// subordinateRange reads the user's first range from /etc/subuid.
func subordinateRange(t *testing.T) (start, count int) {
	t.Helper()
	f, err := os.Open("/etc/subuid")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	name := os.Getenv("USER")
	uid := strconv.Itoa(os.Getuid())
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ":")
		if len(parts) == 3 && (parts[0] == uid || (name != "" && parts[0] == name) || lookupName(parts[0])) {
			start, _ = strconv.Atoi(parts[1])
			count, _ = strconv.Atoi(parts[2])
			return start, count
		}
	}
	t.Fatalf("no subordinate ids for uid %s in /etc/subuid", uid)
	return 0, 0
}

// TestRmiRefusesImageInUse: an image a container uses is not deleted from
// under it; -f only untags it, and the container still starts.
func TestRmiRefusesImageInUse(t *testing.T) {
	e := newEnv(t)
	id := strings.TrimSpace(e.ok(busyboxRootfs(t), "import", "-", "used"))
	e.ok(nil, "create", "--name", "user1", "used", "true")
	t.Cleanup(func() { e.nook(nil, "rm", "-f", "user1") })

	r := e.nook(nil, "rmi", "used")
	if r.code != 125 || !strings.Contains(r.stderr, "is using its referenced image") {
		t.Fatalf("rmi of an image in use: %s", r)
	}
	if r := e.nook(nil, "rmi", id[7:19]); r.code != 125 || !strings.Contains(r.stderr, "being used by container") {
		t.Fatalf("rmi by id of an image in use: %s", r)
	}
	if out := e.ok(nil, "image", "prune", "-a", "-f"); strings.Contains(out, "Deleted") {
		t.Fatalf("prune -a deleted an image in use: %q", out)
	}
	if got := e.ok(nil, "rmi", "-f", "used"); got != "Untagged: used:latest\n" {
		t.Errorf("rmi -f of an image in use printed %q, want only the untag", got)
	}
	if got := e.ok(nil, "images", "-q"); got != id[7:19]+"\n" {
		t.Errorf("the untagged image is gone: images -q = %q", got)
	}
	if r := e.nook(nil, "start", "-a", "user1"); r.code != 0 {
		t.Errorf("the container no longer starts: %s", r)
	}
}

// TestInspectBothKinds: `inspect` finds containers first, then images, as
// Docker's does; --type narrows the search.
func TestInspectBothKinds(t *testing.T) {
	e := newEnv(t)
	id := strings.TrimSpace(e.ok(busyboxRootfs(t), "import", "-", "both"))
	e.ok(nil, "create", "--name", "both", "both", "true")
	t.Cleanup(func() { e.nook(nil, "rm", "-f", "both") })
	if got := strings.TrimSpace(e.ok(nil, "inspect", "-f", "{{.State.Status}} {{.Image}}", "both")); got != "created "+id {
		t.Errorf("inspect of a name both kinds have = %q, want the container", got)
	}
	if got := strings.TrimSpace(e.ok(nil, "inspect", "--type", "image", "-f", "{{.Id}}", "both")); got != id {
		t.Errorf("inspect --type image = %q, want %s", got, id)
	}
	if got := strings.TrimSpace(e.ok(nil, "image", "inspect", "-f", "{{.Id}}", "both")); got != id {
		t.Errorf("image inspect = %q, want %s", got, id)
	}
	r := e.nook(nil, "inspect", "--type", "container", id[7:19])
	if r.code != 1 || !strings.Contains(r.stderr, "no such container: "+id[7:19]) {
		t.Errorf("inspect --type container of an image id: %s", r)
	}
	r = e.nook(nil, "inspect", "nothing-here")
	if r.code != 1 || !strings.Contains(r.stderr, "no such object: nothing-here") || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("inspect of nothing: %s", r)
	}
}
