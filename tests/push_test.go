package tests

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"nook/internal/testutil"
)

// digestLine is what push prints per tag, as Docker does.
var digestLine = regexp.MustCompile(`^(\S+): digest: (sha256:[0-9a-f]{64}) size: ([0-9]+)$`)

// push runs a push that must succeed and returns the digest it printed.
func (e *env) push(args ...string) (digest string, stderr string) {
	e.t.Helper()
	r := e.nook(nil, append([]string{"push"}, args...)...)
	if r.code != 0 {
		e.t.Fatalf("nook push %s: %s", strings.Join(args, " "), r)
	}
	m := digestLine.FindStringSubmatch(strings.TrimSpace(r.stdout))
	if m == nil {
		e.t.Fatalf("nook push %s printed %q, want TAG: digest: sha256:… size: N", strings.Join(args, " "), r.stdout)
	}
	return m[2], r.stderr
}

// remoteManifest is a manifest as skopeo reads it from the registry.
type remoteManifest struct {
	MediaType string
	Config    struct{ MediaType, Digest string }
	Layers    []struct {
		MediaType, Digest string
		Size              int64
	}
}

func skopeoManifest(t *testing.T, ref string) (remoteManifest, string) {
	t.Helper()
	_, err := exec.LookPath("skopeo")
	testutil.Require(t, err == nil, "skopeo not installed (apt-get install skopeo)")
	raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v", ref, err)
	}
	var m remoteManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest of %s: %v\n%s", ref, err, raw)
	}
	return m, "sha256:" + sha256Hex(raw)
}

// registryBytes reads a blob from the registry's own storage.
func registryBytes(t *testing.T, reg *testRegistry, d string) []byte {
	t.Helper()
	b, err := os.ReadFile(registryBlob(reg, digest.Digest(d)))
	if err != nil {
		t.Fatalf("blob %s in the registry: %v", d, err)
	}
	return b
}

// uploads counts blob uploads the registry saw for repository repo.
func uploads(t *testing.T, reg *testRegistry, repo string) int {
	t.Helper()
	n := 0
	for _, m := range []string{"POST", "PUT", "PATCH"} {
		n += countRequests(t, reg, m, "/v2/"+repo+"/blobs/uploads/")
	}
	return n
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// TestPushPeersRead: an imported image (its layer kept uncompressed) is
// pushed with its layer compressed: skopeo reads the manifest nook
// printed the digest of, the layer is gzip, and Podman pulls and runs it.
// With --compression-format zstd the layer is zstd.
func TestPushPeersRead(t *testing.T) {
	reg := startRegistry(t, false)
	e := newEnv(t)
	ref := reg.Host + "/lab/bb:1"
	e.ok(busyboxRootfs(t), "import", "-c", `CMD ["/bin/sh"]`, "-", ref)
	dg, stderr := e.push(ref)
	if !strings.Contains(stderr, "Pushed") {
		t.Errorf("push progress lacks Pushed:\n%s", stderr)
	}
	m, remote := skopeoManifest(t, ref)
	if remote != dg {
		t.Errorf("registry's manifest is %s, push printed %s", remote, dg)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("pushed manifest %+v, want one gzip layer", m)
	}
	if b := registryBytes(t, reg, m.Layers[0].Digest); !bytes.HasPrefix(b, gzipMagic) || int64(len(b)) != m.Layers[0].Size {
		t.Errorf("layer blob of %d bytes starts % x: not the gzip the manifest says", len(b), b[:min(4, len(b))])
	}
	if rd := e.inspectImage(ref)["RepoDigests"]; !strings.Contains(jsonString(t, rd), "@"+dg) {
		t.Errorf("RepoDigests %v lack the pushed digest %s", rd, dg)
	}

	podman := podmanEnv(t)
	if out, err := podman("pull", "--tls-verify=false", ref); err != nil {
		t.Fatalf("podman pull of nook's push: %v\n%s", err, out)
	}
	if out, err := podman("run", "--rm", "--network=none", ref, "cat", "/etc/passwd"); err != nil || !strings.Contains(out, "nobody") {
		t.Errorf("podman run of nook's push: %v\n%s", err, out)
	}

	zref := reg.Host + "/lab/bbz:1"
	e.ok(nil, "tag", ref, zref)
	if _, stderr := e.push("--compression-format", "zstd", zref); strings.Contains(stderr, "already exists") {
		t.Errorf("a zstd layer was found in a registry that has only gzip:\n%s", stderr)
	}
	zm, _ := skopeoManifest(t, zref)
	if len(zm.Layers) != 1 || zm.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" {
		t.Fatalf("zstd push gave %+v", zm)
	}
	if b := registryBytes(t, reg, zm.Layers[0].Digest); !bytes.HasPrefix(b, zstdMagic) {
		t.Errorf("zstd layer starts % x", b[:min(4, len(b))])
	}
}

// TestPushTwice: a second push sends no blob (HEAD finds them), a push to
// another repository of the registry mounts the layer instead of sending
// it, and a push to an empty registry reuses the compressed layer the
// store remembered (the plain layer is made unreadable to prove it).
func TestPushTwice(t *testing.T) {
	reg := startRegistry(t, false)
	e := newEnv(t)
	ref := reg.Host + "/lab/bb:1"
	e.ok(busyboxRootfs(t), "import", "-", ref)
	first, _ := e.push(ref)
	sent := uploads(t, reg, "lab/bb")
	if sent == 0 {
		t.Fatal("the registry logged no upload for the first push")
	}
	again, stderr := e.push(ref)
	if n := uploads(t, reg, "lab/bb"); n != sent {
		t.Errorf("second push: %d blob upload requests, want none", n-sent)
	}
	if again != first || !strings.Contains(stderr, "Layer already exists") {
		t.Errorf("second push: digest %s (first %s), progress:\n%s", again, first, stderr)
	}

	other := reg.Host + "/lab/other:1"
	e.ok(nil, "tag", ref, other)
	_, stderr = e.push(other)
	if !strings.Contains(stderr, "Mounted from lab/bb") {
		t.Errorf("push to another repository did not mount:\n%s", stderr)
	}
	if n := countRequests(t, reg, "PUT", "/v2/lab/other/blobs/uploads/"); n != 0 {
		t.Errorf("push to another repository sent %d blobs, want 0 (all mounted or present)", n)
	}

	// An imported layer's blob is its plain tar: its digest is the diff id
	// that names the unpacked layer.
	plain := filepath.Base(filepath.Dir(onlyLayer(t, e)))
	blob := filepath.Join(e.store, "blobs", "sha256", plain)
	if err := os.Chmod(blob, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(blob, 0o644) })
	fresh := startRegistry(t, false)
	fref := fresh.Host + "/lab/bb:1"
	e.ok(nil, "tag", ref, fref)
	if dg, _ := e.push(fref); dg != first {
		t.Errorf("push to an empty registry gave %s, want the first push's %s", dg, first)
	}
}

// TestPushAllTags: -a pushes every tag of the repository, one digest line
// each; a tag with -a is refused.
func TestPushAllTags(t *testing.T) {
	reg := startRegistry(t, false)
	e := newEnv(t)
	repo := reg.Host + "/lab/bb"
	e.ok(busyboxRootfs(t), "import", "-", repo+":1")
	e.ok(busyboxRootfs(t), "import", "-c", "ENV A=2", "-", repo+":2")
	out := e.ok(nil, "push", "-a", repo)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "1: digest: ") || !strings.HasPrefix(lines[1], "2: digest: ") {
		t.Errorf("push -a printed %q", out)
	}
	for _, tag := range []string{"1", "2"} {
		skopeoManifest(t, repo+":"+tag)
	}
	if q := strings.TrimSpace(e.ok(nil, "push", "-q", repo+":1")); q != repo+":1" {
		t.Errorf("push -q printed %q, want the reference", q)
	}
	oneLine(t, e.nook(nil, "push", "-a", repo+":1"), "--all-tags")
}

// TestPushErrors: an absent image and a registry that wants a login each
// give one line naming the remedy.
func TestPushErrors(t *testing.T) {
	e := newEnv(t)
	plain := startRegistry(t, false)
	oneLine(t, e.nook(nil, "push", plain.Host+"/lab/none:1"), plain.Host+"/lab/none:1", "nook tag")
	if n := countRequests(t, plain, "", "/v2/lab/"); n != 0 {
		t.Errorf("push of an absent image sent %d requests", n)
	}

	secure := startRegistry(t, true)
	e.trust(secure)
	ref := secure.Host + "/lab/bb:1"
	e.ok(busyboxRootfs(t), "import", "-", ref)
	oneLine(t, e.nook(nil, "push", ref), ref, "nook login "+secure.Host)
	e.ok([]byte(secure.Password+"\n"), "login", "-u", secure.User, "--password-stdin", secure.Host)
	e.push(ref)
}

// TestPushPullRoundTrip: import → push → rmi → pull → run.
func TestPushPullRoundTrip(t *testing.T) {
	reg := startRegistry(t, false)
	e := newEnv(t)
	ref := reg.Host + "/lab/bb:1"
	e.ok(busyboxRootfs(t), "import", "-c", "ENV ROUND=trip", "-", ref)
	dg, _ := e.push(ref)
	e.ok(nil, "rmi", ref)
	if out := e.ok(nil, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("store not empty after rmi: %q", out)
	}
	e.ok(nil, "pull", ref)
	if rd := e.inspectImage(ref)["RepoDigests"]; !strings.Contains(jsonString(t, rd), "@"+dg) {
		t.Errorf("pulled image's RepoDigests %v lack %s", rd, dg)
	}
	if out := e.ok(nil, "run", "--rm", ref, "sh", "-c", "echo $ROUND; cat /home/nobody/owned"); out != "trip\nnobody's\n" {
		t.Errorf("run of the pulled image printed %q", out)
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPushMountsPulledBlobs: the store remembers where a pull found each
// blob, so pushing the image to another repository of that registry
// mounts them all instead of sending them.
func TestPushMountsPulledBlobs(t *testing.T) {
	reg := startRegistry(t, false)
	src := reg.Host + "/lab/src:1"
	a := newEnv(t)
	a.ok(busyboxRootfs(t), "import", "-", src)
	a.push(src)

	b := newEnv(t)
	b.ok(nil, "pull", "-q", src)
	dst := reg.Host + "/team/dst:1"
	b.ok(nil, "tag", src, dst)
	_, stderr := b.push(dst)
	if !strings.Contains(stderr, "Mounted from lab/src") {
		t.Errorf("push of a pulled image to another repository did not mount:\n%s", stderr)
	}
	if n := countRequests(t, reg, "PUT", "/v2/team/dst/blobs/uploads/"); n != 0 {
		t.Errorf("push sent %d blobs, want 0: all mounted", n)
	}
	skopeoManifest(t, dst)
}

// TestPushCommittedLayer: an image committed on top of a pushed one sends
// only its new layer (the base's compressed form is remembered and the
// registry has it), and another store pulls and runs the two layers.
func TestPushCommittedLayer(t *testing.T) {
	reg := startRegistry(t, false)
	e := runEnv(t)
	base, child := reg.Host+"/lab/base:1", reg.Host+"/lab/child:1"
	e.ok(busyboxRootfs(t), "import", "-c", `CMD ["/bin/sh"]`, "-", base)
	e.push(base)
	e.ok(nil, "run", "--name", "c1", base, "sh", "-c", "echo committed > /new")
	e.ok(nil, "commit", "c1", child)
	e.ok(nil, "rm", "c1")
	_, stderr := e.push(child)
	if strings.Count(stderr, "Pushed") != 1 || !strings.Contains(stderr, "Mounted from lab/base") {
		t.Errorf("child push: want the new layer pushed and the base mounted:\n%s", stderr)
	}
	m, _ := skopeoManifest(t, child)
	if len(m.Layers) != 2 {
		t.Fatalf("child manifest has %d layers", len(m.Layers))
	}
	for _, l := range m.Layers {
		if !bytes.HasPrefix(registryBytes(t, reg, l.Digest), gzipMagic) {
			t.Errorf("layer %s is not gzip", l.Digest)
		}
	}
	other := newEnv(t)
	other.ok(nil, "pull", "-q", child)
	if out := other.ok(nil, "run", "--rm", child, "cat", "/new"); out != "committed\n" {
		t.Errorf("run of the pulled child printed %q", out)
	}
}
