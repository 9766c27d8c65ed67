package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nook/internal/testutil"
)

// saveFixture imports the busybox rootfs as bb:1 and saves it to a file.
func saveFixture(t *testing.T, e *env) string {
	t.Helper()
	e.ok(busyboxRootfs(t), "import", "-", "bb:1")
	out := filepath.Join(e.home, "bb.tar")
	e.ok(nil, "save", "-o", out, "bb:1")
	return out
}

// hasBusybox checks that the store's one image has the fixture's files
// unpacked, owners included.
func hasBusybox(t *testing.T, e *env, ref string) {
	t.Helper()
	var imgs []struct{ RootFS struct{ Layers []string } }
	if err := json.Unmarshal([]byte(e.ok(nil, "inspect", ref)), &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	layers := imgs[0].RootFS.Layers
	diff := filepath.Join(e.store, "layers", strings.TrimPrefix(layers[len(layers)-1], "sha256:"), "diff")
	for _, p := range []string{"bin/busybox", "etc/passwd", "home/nobody/owned"} {
		if _, err := os.Lstat(filepath.Join(diff, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if start, _ := subordinateRange(t); ownerOf(t, filepath.Join(diff, "home/nobody/owned")) != start+65533 {
		t.Errorf("home/nobody/owned lost its owner (uid %d)", ownerOf(t, filepath.Join(diff, "home/nobody/owned")))
	}
}

// TestSaveLoadSave: nook's archive loads into an empty store and saves
// again to the same bytes, to a file or to a pipe.
func TestSaveLoadSave(t *testing.T) {
	a := newEnv(t)
	first, err := os.ReadFile(saveFixture(t, a))
	if err != nil {
		t.Fatal(err)
	}
	if piped := a.ok(nil, "save", "bb:1"); piped != string(first) {
		t.Error("save to stdout differs from save -o")
	}
	b := newEnv(t)
	if out := b.ok(first, "load"); out != "Loaded image: bb:1\n" {
		t.Errorf("load printed %q", out)
	}
	hasBusybox(t, b, "bb:1")
	if second := b.ok(nil, "save", "bb:1"); second != string(first) {
		t.Error("save → load → save changed the archive")
	}
	// Piped into the same store, load waits for no lock save holds.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pipe := exec.CommandContext(ctx, "sh", "-c", nookBin+" save bb:1 | "+nookBin+" load")
	pipe.Env = append(os.Environ(), "NOOK_ROOT="+a.store)
	if out, err := pipe.CombinedOutput(); err != nil || string(out) != "Loaded image: bb:1\n" {
		t.Errorf("nook save | nook load on one store: %v, %q", err, out)
	}
	// Compressed as a whole by nook, it loads the same.
	for _, c := range []string{"gzip", "zstd"} {
		z := newEnv(t)
		compressed := a.ok(nil, "save", "--compress", c, "bb:1")
		if out := z.ok([]byte(compressed), "load", "-q"); out != "Loaded image: bb:1\n" {
			t.Errorf("%s: load printed %q", c, out)
		}
	}
	// An id saves the image without a name.
	u := newEnv(t)
	id := strings.TrimSpace(a.ok(nil, "images", "-q"))
	if out := u.ok([]byte(a.ok(nil, "save", id)), "load"); !strings.HasPrefix(out, "Loaded image ID: sha256:"+id) {
		t.Errorf("loading an untagged image printed %q", out)
	}
}

// podmanEnv is a private rootless Podman world: its own config, storage
// (vfs, the simplest driver) and runtime directory.
func podmanEnv(t *testing.T) func(args ...string) (string, error) {
	_, err := exec.LookPath("podman")
	testutil.Require(t, err == nil, "podman not installed (apt-get install podman)")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config", "containers")
	run := filepath.Join(dir, "run")
	for _, d := range []string{cfg, run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(cfg, "storage.conf"), []byte("[storage]\ndriver = \"vfs\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// crun refuses this kind of host's hybrid cgroups; runc runs (PEERS.md).
	if err := os.WriteFile(filepath.Join(cfg, "containers.conf"), []byte("[engine]\nruntime = \"runc\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_RUNTIME_DIR="+run)
	t.Cleanup(func() {
		// Podman's vfs layers hold files of subordinate ids: remove them as Podman.
		cmd := exec.Command("podman", "system", "reset", "-f")
		cmd.Env = env
		_ = cmd.Run()
	})
	return func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "podman", args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// TestPodmanInterop: Podman loads nook's archive, and nook loads both
// formats `podman save` writes.
func TestPodmanInterop(t *testing.T) {
	podman := podmanEnv(t)
	e := newEnv(t)
	archive := saveFixture(t, e)
	if out, err := podman("load", "-i", archive); err != nil || !strings.Contains(out, "bb:1") {
		t.Fatalf("podman load of nook's archive: %v\n%s", err, out)
	}
	if out, err := podman("run", "--rm", "--network=none", "docker.io/library/bb:1", "cat", "/etc/passwd"); err == nil && !strings.Contains(out, "nobody") {
		t.Errorf("podman run printed %q", out)
	}
	for _, format := range []string{"docker-archive", "oci-archive"} {
		t.Run(format, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "podman.tar")
			if out, err := podman("save", "--format", format, "-o", p, "docker.io/library/bb:1"); err != nil {
				t.Fatalf("podman save: %v\n%s", err, out)
			}
			n := newEnv(t)
			if out := n.ok(nil, "load", "-i", p); out != "Loaded image: bb:1\n" {
				t.Errorf("load printed %q", out)
			}
			hasBusybox(t, n, "bb:1")
		})
	}
}

// TestSkopeoInterop: skopeo reads nook's archive as docker-archive: and
// oci-archive:, and nook loads what skopeo writes as docker-archive: and
// oci: (a directory).
func TestSkopeoInterop(t *testing.T) {
	_, err := exec.LookPath("skopeo")
	testutil.Require(t, err == nil, "skopeo not installed (apt-get install skopeo)")
	e := newEnv(t)
	archive := saveFixture(t, e)
	skopeo := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("skopeo", args...).CombinedOutput(); err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := exec.Command("skopeo", "inspect", "docker-archive:"+archive).Output()
	if err != nil || !strings.Contains(string(out), `"Os": "linux"`) {
		t.Fatalf("skopeo inspect docker-archive: %v\n%s", err, out)
	}
	// --format oci-archive names the image by its full name, as OCI tools look it up.
	ociArchive := filepath.Join(e.home, "bb-oci.tar")
	e.ok(nil, "save", "--format", "oci-archive", "-o", ociArchive, "bb:1")
	skopeo("inspect", "oci-archive:"+ociArchive+":docker.io/library/bb:1")
	dir := filepath.Join(t.TempDir(), "oci")
	skopeo("copy", "docker-archive:"+archive, "oci:"+dir+":from-docker")
	skopeo("copy", "oci-archive:"+archive, "oci:"+dir+":docker.io/library/bb:oci")
	back := filepath.Join(t.TempDir(), "back.tar")
	skopeo("copy", "oci:"+dir+":from-docker", "docker-archive:"+back+":skopeo/bb:2")

	n := newEnv(t)
	if got := n.ok(nil, "load", "-i", back); got != "Loaded image: skopeo/bb:2\n" {
		t.Errorf("loading skopeo's docker-archive printed %q", got)
	}
	hasBusybox(t, n, "skopeo/bb:2")
	d := newEnv(t)
	// Both copies made the same manifest: its entries merge, and the bare
	// tag "from-docker" names no repository.
	if got := d.ok(nil, "load", "-i", dir); got != "Loaded image: bb:oci\n" {
		t.Errorf("loading skopeo's layout printed %q", got)
	}
	hasBusybox(t, d, "bb:oci")
}

// rewrite copies a tar, letting edit change or drop (nil) each member and
// append more at the end.
func rewrite(t *testing.T, archive []byte, edit func(hdr *tar.Header, body []byte) []byte, extra ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if hdr.Typeflag == tar.TypeReg {
			if body = edit(hdr, body); body == nil {
				continue
			}
			hdr.Size = int64(len(body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	for _, e := range extra {
		tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.body))})
		tw.Write(e.body)
	}
	tw.Close()
	return buf.Bytes()
}

// TestHostileLoads: broken archives are refused with one line naming the
// problem, and the store is unchanged. (tarball's unit tests cover many
// more; these prove the command line reports them and leaves no trace.)
func TestHostileLoads(t *testing.T) {
	// The archive comes from another store: this one must not hold its
	// layer already, or the load rightly skips reading it.
	good, err := os.ReadFile(saveFixture(t, newEnv(t)))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.ok(tarOf(t, file("base", "b")), "import", "-", "base:1")
	var layerKey string
	rewrite(t, good, func(h *tar.Header, b []byte) []byte {
		if len(b) > 1<<20 {
			layerKey = h.Name
		}
		return b
	})
	cases := []struct {
		name  string
		input []byte
		want  string
	}{
		{"bad digest", rewrite(t, good, func(h *tar.Header, b []byte) []byte {
			if h.Name == layerKey {
				b = bytes.Clone(b)
				b[len(b)/2] ^= 1
			}
			return b
		}), strings.TrimPrefix(layerKey, "blobs/sha256/")},
		{"missing blob", rewrite(t, good, func(h *tar.Header, b []byte) []byte {
			if h.Name == layerKey {
				return nil
			}
			return b
		}), strings.TrimPrefix(layerKey, "blobs/sha256/")},
		{"duplicate member", rewrite(t, good, func(_ *tar.Header, b []byte) []byte { return b }, entry{name: "index.json", body: []byte("{}")}), "duplicate"},
		{"truncated archive", good[:len(good)/2], "truncated"},
		{"not a tar", []byte(strings.Repeat("plain text\n", 300)), "invalid image archive"},
		{"path traversal in a layer", legacyWithLayer(t, tarOf(t, file("../escape", "x"))), "../escape"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.refused(t, tc.input, []string{"load"}, "nook: loading stdin: ", tc.want)
		})
	}
}

// legacyWithLayer is a pre-Docker-25 archive of one image with this layer.
func legacyWithLayer(t *testing.T, layer []byte) []byte {
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:` + sha256Hex(layer) + `"]}}`)
	manifest := `[{"Config":"` + sha256Hex(cfg) + `.json","RepoTags":["evil:1"],"Layers":["l/layer.tar"]}]`
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range []struct {
		name string
		body []byte
	}{{"l/layer.tar", layer}, {sha256Hex(cfg) + ".json", cfg}, {"manifest.json", []byte(manifest)}} {
		tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(m.body))})
		tw.Write(m.body)
	}
	tw.Close()
	return buf.Bytes()
}

// TestMultiImageArchive: one archive of several images (sharing none,
// one of them by two names) loads them all.
func TestMultiImageArchive(t *testing.T) {
	a := newEnv(t)
	a.ok(busyboxRootfs(t), "import", "-", "bb:1")
	a.ok(tarOf(t, file("other", "o")), "import", "-", "example.com/other:2")
	a.ok(nil, "tag", "bb:1", "bb:also")
	archive := a.ok(nil, "save", "bb", "example.com/other:2") // a bare name saves every tag
	b := newEnv(t)
	got := b.ok([]byte(archive), "load")
	for _, want := range []string{"Loaded image: bb:1\n", "Loaded image: bb:also\n", "Loaded image: example.com/other:2\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("load printed %q, want %q in it", got, want)
		}
	}
	hasBusybox(t, b, "bb:also")
	if again := b.ok(nil, "save", "bb", "example.com/other:2"); again != archive {
		t.Error("the multi-image archive changed through load and save")
	}
}

// TestSaveLoadRefusals: save will not write to a terminal, load will not
// read one, and a missing input is named.
func TestSaveLoadRefusals(t *testing.T) {
	e := newEnv(t)
	e.ok(tarOf(t, file("f", "x")), "import", "-", "img:1")
	if r := e.nook(nil, "load", "-i", "/nonexistent/archive.tar"); r.code != 125 || !strings.Contains(r.stderr, "/nonexistent/archive.tar") {
		t.Errorf("load of a missing file: %s", r)
	}
	if r := e.nook(nil, "save", "absent:1"); r.code != 125 || !strings.Contains(r.stderr, "absent") {
		t.Errorf("save of an absent image: %s", r)
	}
	_, err := exec.LookPath("script")
	testutil.Require(t, err == nil, "script(1) not installed (util-linux): needed for a terminal")
	for _, args := range []string{"save img:1", "load"} {
		cmd := exec.Command("script", "-qec", nookBin+" "+args, "/dev/null")
		cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "terminal") {
			t.Errorf("nook %s on a terminal: %v, %q; want a refusal naming the terminal", args, err, out)
		}
	}
}
