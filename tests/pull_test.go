package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"nook/internal/testutil"
)

// pushBlob puts one blob (a layer, a config or a manifest) into repo of
// the plain test registry through oras-go; a manifest is tagged when tag
// is set.
func pushBlob(t *testing.T, reg *testRegistry, repo, mediaType string, b []byte, tag string) ocispec.Descriptor {
	t.Helper()
	r, err := remote.NewRepository(reg.Host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	ctx := context.Background()
	if tag != "" {
		err = r.PushReference(ctx, desc, bytes.NewReader(b), tag)
	} else {
		err = r.Push(ctx, desc, bytes.NewReader(b))
	}
	if err != nil {
		t.Fatalf("pushing %s to %s/%s: %v", mediaType, reg.Host, repo, err)
	}
	return desc
}

// pushImage pushes an OCI image of the given layer tars (gzipped here)
// for linux/arch and returns its manifest's descriptor (with platform).
func pushImage(t *testing.T, reg *testRegistry, repo, tag, arch string, tars ...[]byte) ocispec.Descriptor {
	t.Helper()
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for _, tb := range tars {
		layers = append(layers, pushBlob(t, reg, repo, ocispec.MediaTypeImageLayerGzip, gz(t, tb), ""))
		diffIDs = append(diffIDs, digest.FromBytes(tb))
	}
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		Config: ocispec.ImageConfig{Cmd: []string{"echo", "from-" + arch}},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: pushBlob(t, reg, repo, ocispec.MediaTypeImageConfig, cfg, ""), Layers: layers})
	desc := pushBlob(t, reg, repo, ocispec.MediaTypeImageManifest, m, tag)
	desc.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
	return desc
}

// registryBlob is where the registry keeps a blob on its disk.
func registryBlob(reg *testRegistry, d digest.Digest) string {
	return filepath.Join(reg.Dir, "docker", "registry", "v2", "blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data")
}

func hostArch() string { return runtime.GOARCH }

// TestPullRunSkopeoPushed: an image skopeo copied from a nook store into
// a real registry is pulled by tag and by digest, runs, shows its
// registry digest, is up to date on a second pull without a blob fetched
// again, and `run` pulls it when absent unless --pull never.
func TestPullRunSkopeoPushed(t *testing.T) {
	src := runEnv(t)
	reg := startRegistry(t, false)
	ref := reg.Host + "/team/bb:1"
	if out, err := exec.Command("skopeo", "copy", "--dest-tls-verify=false",
		"oci:"+src.store+":docker.io/library/bb:latest", "docker://"+ref).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	dgst := strings.TrimSpace(string(out))

	e := runEnv(t)
	r := e.nook(nil, "pull", ref)
	if r.code != 0 || r.stdout != ref+"\n" || !strings.Contains(r.stderr, "Digest: "+dgst) ||
		!strings.Contains(r.stderr, "Status: Downloaded newer image for "+ref) || !strings.Contains(r.stderr, "Pull complete") {
		t.Fatalf("pull: %s", r)
	}
	if got := e.ok(nil, "run", "--rm", ref, "cat", "/etc/group"); !strings.Contains(got, "nobody") {
		t.Errorf("run of the pulled image printed %q", got)
	}
	if got := e.ok(nil, "images", "--digests", "--format", "{{.Repository}} {{.Digest}}"); !strings.Contains(got, reg.Host+"/team/bb "+dgst) {
		t.Errorf("images --digests = %q, want the registry's digest %s", got, dgst)
	}
	if rd := e.inspectImage(ref)["RepoDigests"]; len(rd.([]any)) != 1 || rd.([]any)[0] != reg.Host+"/team/bb@"+dgst {
		t.Errorf("RepoDigests = %v", rd)
	}
	blobGets := countRequests(t, reg, "GET", "/blobs/")
	r = e.nook(nil, "pull", ref)
	if r.code != 0 || !strings.Contains(r.stderr, "Status: Image is up to date for "+ref) {
		t.Errorf("second pull: %s", r)
	}
	if n := countRequests(t, reg, "GET", "/blobs/"); n != blobGets+1 { // the config alone
		t.Errorf("second pull fetched %d blobs, want only the config", n-blobGets)
	}

	t.Run("all tags", func(t *testing.T) {
		if out, err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
			"docker://"+ref, "docker://"+reg.Host+"/team/bb:2").CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy: %v\n%s", err, out)
		}
		e := newEnv(t)
		if got := e.ok(nil, "pull", "-q", "-a", reg.Host+"/team/bb"); got != ref+"\n"+reg.Host+"/team/bb:2\n" {
			t.Errorf("pull -a printed %q", got)
		}
		if got := e.ok(nil, "images", "--format", "{{.Tag}}"); got != "1\n2\n" && got != "2\n1\n" {
			t.Errorf("images after pull -a: %q", got)
		}
	})
	t.Run("by digest", func(t *testing.T) {
		e := runEnv(t)
		byDigest := reg.Host + "/team/bb@" + dgst
		if r := e.nook(nil, "pull", "-q", byDigest); r.code != 0 || r.stdout != byDigest+"\n" || r.stderr != "" {
			t.Fatalf("pull -q by digest: %s", r)
		}
		if got := e.ok(nil, "run", "--rm", byDigest, "echo", "ok"); got != "ok\n" {
			t.Errorf("run by digest printed %q", got)
		}
	})
	t.Run("run pulls", func(t *testing.T) {
		e := runEnv(t)
		r := e.nook(nil, "run", "--rm", ref, "echo", "pulled")
		if r.code != 0 || r.stdout != "pulled\n" || !strings.Contains(r.stderr, "Unable to find image") {
			t.Fatalf("run of an absent image: %s", r)
		}
		r = e.nook(nil, "run", "--pull", "always", "--rm", ref, "echo", "again")
		if r.code != 0 || r.stdout != "again\n" || !strings.Contains(r.stderr, "Image is up to date") {
			t.Errorf("run --pull always: %s", r)
		}
		oneLine(t, e.nook(nil, "run", "--pull", "never", "--rm", reg.Host+"/team/bb:3", "true"), reg.Host+"/team/bb:3", "--pull never")
	})
}

// TestPullMultiPlatform: an index made here resolves to this machine's
// image, --platform picks another, and an absent platform is one line
// listing those present.
func TestPullMultiPlatform(t *testing.T) {
	reg := startRegistry(t, false)
	other := "s390x"
	if hostArch() == other {
		other = "ppc64le"
	}
	host := pushImage(t, reg, "multi", "", hostArch(), busyboxRootfs(t))
	foreign := pushImage(t, reg, "multi", "", other, tarOf(t, file("arch", other)))
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{foreign, host}})
	index := pushBlob(t, reg, "multi", ocispec.MediaTypeImageIndex, idx, "1")
	ref := reg.Host + "/multi:1"

	e := runEnv(t)
	e.ok(nil, "pull", "-q", ref)
	if got := e.ok(nil, "run", "--rm", ref); got != "from-"+hostArch()+"\n" {
		t.Errorf("the host's image printed %q", got)
	}
	insp := e.inspectImage(ref)
	if insp["Architecture"] != hostArch() || insp["RepoDigests"].([]any)[0] != reg.Host+"/multi@"+index.Digest.String() {
		t.Errorf("inspect: Architecture %v, RepoDigests %v; want %s and the index's digest %s", insp["Architecture"], insp["RepoDigests"], hostArch(), index.Digest)
	}

	e2 := newEnv(t)
	e2.ok(nil, "pull", "-q", "--platform", "linux/"+other, ref)
	if got := e2.inspectImage(ref)["Architecture"]; got != other {
		t.Errorf("--platform linux/%s pulled %v", other, got)
	}
	oneLine(t, e2.nook(nil, "pull", "-q", "--platform", "linux/mips64le", ref),
		"linux/mips64le", "linux/"+hostArch(), "linux/"+other)
	// An image outside an index says its platform in its config alone.
	pushImage(t, reg, "single", "1", other, tarOf(t, file("x", "y")))
	oneLine(t, e2.nook(nil, "pull", "-q", "--platform", "linux/"+hostArch(), reg.Host+"/single:1"), "linux/"+other)
}

// TestPullErrors: what a user gets wrong is one line naming the reference
// or registry, with the remedy.
func TestPullErrors(t *testing.T) {
	plain := startRegistry(t, false)
	secure := startRegistry(t, true)
	e := newEnv(t)
	e.trust(secure)
	oneLine(t, e.nook(nil, "pull", secure.Host+"/private:1"), secure.Host+"/private:1", "nook login "+secure.Host)
	oneLine(t, e.nook(nil, "pull", plain.Host+"/absent:1"), plain.Host+"/absent:1", "manifest unknown")
	oneLine(t, e.nook(nil, "pull", "--max-concurrent-downloads", "0", plain.Host+"/absent:1"), "--max-concurrent-downloads")
	oneLine(t, e.nook(nil, "pull", "-a", plain.Host+"/absent:1"), "--all-tags")
	oneLine(t, e.nook(nil, "pull", plain.Host+"/Bad:1"), "invalid reference format")
	oneLine(t, e.nook(nil, "pull", "127.0.0.1:1/nothing:1"), "127.0.0.1:1", "connection refused")
}

// TestPullCorruptBlob: a blob corrupted on the registry's disk fails the
// pull in one line and leaves the store byte-identical.
func TestPullCorruptBlob(t *testing.T) {
	testutil.RequireUnprivileged(t)
	reg := startRegistry(t, false)
	pushImage(t, reg, "good", "1", hostArch(), tarOf(t, file("a", "good")))
	bad := pushImage(t, reg, "bad", "1", hostArch(), tarOf(t, file("b", strings.Repeat("bad data ", 10000))))
	e := newEnv(t)
	e.ok(nil, "pull", "-q", reg.Host+"/good:1")

	var m ocispec.Manifest
	mb, err := os.ReadFile(registryBlob(reg, bad.Digest))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(mb, &m)
	p := registryBlob(reg, m.Layers[0].Digest)
	blob, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)/2] ^= 0xff
	if err := os.WriteFile(p, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, e.store)
	oneLine(t, e.nook(nil, "pull", "-q", reg.Host+"/bad:1"), "bad:1", m.Layers[0].Digest.String(), "verification failed")
	if after := snapshot(t, e.store); after != before {
		t.Errorf("a failed pull changed the store:\n--- before\n%s\n--- after\n%s", before, after)
	}
	// A layer whose digests are right but whose tar is hostile.
	pushImage(t, reg, "hostile", "1", hostArch(), tarOf(t, file("../escaped", "x")))
	oneLine(t, e.nook(nil, "pull", "-q", reg.Host+"/hostile:1"), "hostile:1", "unsafe layer entry")
	if after := snapshot(t, e.store); after != before {
		t.Errorf("a hostile layer changed the store:\n--- before\n%s\n--- after\n%s", before, after)
	}
}

// TestPullResumesAfterKill: a pull killed with SIGKILL mid-transfer leaves
// no image; the next pull completes without fetching again the blobs that
// were complete, and resumes the partial one with a Range request.
func TestPullResumesAfterKill(t *testing.T) {
	testutil.RequireUnprivileged(t)
	reg := startRegistry(t, false)
	bigTar, err := os.ReadFile(bigRootfs(t, 96<<20))
	if err != nil {
		t.Fatal(err)
	}
	small1, small2 := tarOf(t, file("s1", "one")), tarOf(t, file("s2", "two"))
	desc := pushImage(t, reg, "big", "1", hostArch(), small1, small2, bigTar)
	var m ocispec.Manifest
	mb, _ := os.ReadFile(registryBlob(reg, desc.Digest))
	json.Unmarshal(mb, &m)
	ref := reg.Host + "/big:1"

	e := newEnv(t)
	cmd := exec.Command(nookBin, "pull", "-q", "--max-concurrent-downloads", "3", ref)
	cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store, "XDG_DATA_HOME="+filepath.Join(e.home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(e.home, "config"), "DOCKER_CONFIG="+filepath.Join(e.home, "docker"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	staged := func(d digest.Digest) string { return filepath.Join(e.store, "pulls", "blobs", "sha256", d.Encoded()) }
	deadline := time.Now().Add(time.Minute)
	for {
		_, err1 := os.Stat(staged(m.Layers[0].Digest))
		_, err2 := os.Stat(staged(m.Layers[1].Digest))
		fi, err3 := os.Stat(staged(m.Layers[2].Digest) + ".partial")
		if err1 == nil && err2 == nil && err3 == nil && fi.Size() > 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the pull never got half-way")
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := e.ok(nil, "images", "-q"); got != "" {
		t.Fatalf("a killed pull left an image: %q", got)
	}
	if _, err := os.Stat(staged(m.Layers[2].Digest)); err == nil {
		t.Fatal("the big blob completed before the kill: nothing to resume")
	}
	e.ok(nil, "pull", "-q", ref)
	for _, l := range m.Layers[:2] {
		if n := countRequests(t, reg, "GET", "/blobs/"+l.Digest.String()); n != 1 {
			t.Errorf("blob %s complete before the kill was fetched %d times, want 1", l.Digest, n)
		}
	}
	ranged := 0
	for _, rq := range reg.requests(t) {
		if strings.Contains(rq.Path, m.Layers[2].Digest.String()) && rq.Status == 206 {
			ranged++
		}
	}
	if ranged != 1 {
		t.Errorf("the partial blob was resumed by %d Range requests, want 1", ranged)
	}
	if got := e.ok(nil, "images", "--format", "{{.Repository}}:{{.Tag}}"); got != ref+"\n" {
		t.Errorf("images after the resumed pull: %q", got)
	}
}

// TestPullOnTerminal: on a terminal a pull draws one line per layer, in
// Docker's words, and with -q only the reference.
func TestPullOnTerminal(t *testing.T) {
	testutil.RequireUnprivileged(t)
	reg := startRegistry(t, false)
	pushImage(t, reg, "tty", "1", hostArch(), tarOf(t, file("a", strings.Repeat("a", 1<<20))), tarOf(t, file("b", "b")))
	ref := reg.Host + "/tty:1"
	e := newEnv(t)
	// (The terminal's last lines may be cut off: the harness closes it
	// as the process ends. The status lines are checked off a terminal.)
	out, code := e.runOnPty("", "pull", ref)
	if code != 0 || !strings.Contains(out, "1: Pulling from tty") || strings.Count(out, "Pull complete") < 2 {
		t.Errorf("pull on a terminal: exit %d, %q", code, out)
	}
	out, code = e.runOnPty("", "pull", "-q", ref)
	if code != 0 || strings.Contains(out, "Pull") || strings.Contains(out, "Digest") {
		t.Errorf("pull -q on a terminal: exit %d, %q", code, out)
	}
}

// cuttingProxy forwards loopback TCP to target and, once, drops the
// connection that has carried more than after bytes back to the client:
// a lost connection in the middle of a blob.
func cuttingProxy(t *testing.T, target string, after int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var cut atomic.Bool
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c); s.Close() }()
				var n int64
				buf := make([]byte, 32<<10)
				for {
					k, err := s.Read(buf)
					if k > 0 {
						if _, werr := c.Write(buf[:k]); werr != nil {
							return
						}
						n += int64(k)
						if n > after && cut.CompareAndSwap(false, true) {
							return // the deferred closes drop both sides
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestPullResumesLostConnection: a connection lost in the middle of a
// blob is picked up where it stopped, with a Range request, and the pull
// completes.
func TestPullResumesLostConnection(t *testing.T) {
	testutil.RequireUnprivileged(t)
	reg := startRegistry(t, false)
	big := tarOf(t, file("big", strings.Repeat("0123456789abcdef", 1<<18))) // 4 MiB
	desc := pushImage(t, reg, "flaky", "1", hostArch(), big)
	var m ocispec.Manifest
	mb, _ := os.ReadFile(registryBlob(reg, desc.Digest))
	json.Unmarshal(mb, &m)
	proxy := cuttingProxy(t, reg.Host, 64<<10)
	// The layer gzips to ~20 KB: store it uncompressed so it is big on the wire.
	raw := pushBlob(t, reg, "flaky", ocispec.MediaTypeImageLayer, big, "")
	m.Layers[0] = raw
	mb, _ = json.Marshal(m)
	pushBlob(t, reg, "flaky", ocispec.MediaTypeImageManifest, mb, "2")

	e := newEnv(t)
	ref := proxy + "/flaky:2"
	if r := e.nook(nil, "pull", "-q", ref); r.code != 0 || r.stdout != ref+"\n" {
		t.Fatalf("pull over a connection lost mid-blob: %s", r)
	}
	ranged := 0
	for _, rq := range reg.requests(t) {
		if strings.Contains(rq.Path, raw.Digest.String()) && rq.Status == 206 {
			ranged++
		}
	}
	if ranged != 1 {
		t.Errorf("the blob was resumed by %d Range requests, want 1", ranged)
	}
}
