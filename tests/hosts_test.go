package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// skopeoPush copies the image bb of e's store (an OCI layout) to ref on
// reg, with reg's credentials when it has them.
func skopeoPush(t *testing.T, e *env, reg *testRegistry, ref string) {
	t.Helper()
	args := []string{"copy", "--dest-tls-verify=false"}
	if reg.User != "" {
		args = append(args, "--dest-creds", reg.User+":"+reg.Password)
	}
	args = append(args, "oci:"+e.store+":docker.io/library/bb:latest", "docker://"+ref)
	if out, err := exec.Command("skopeo", args...).CombinedOutput(); err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// registriesConf writes the env's $XDG_CONFIG_HOME/containers/registries.conf.
func (e *env) registriesConf(text string) {
	e.t.Helper()
	dir := filepath.Join(e.home, "config", "containers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	writeFile(e.t, filepath.Join(dir, "registries.conf"), text)
}

// TestPullThroughMirror: a registries.conf mirror on loopback serves
// docker.io/library/NAME, with no network beyond it; a blocked prefix is
// one line.
func TestPullThroughMirror(t *testing.T) {
	src := runEnv(t)
	reg := startRegistry(t, false)
	skopeoPush(t, src, reg, reg.Host+"/library/busybox:latest")

	e := runEnv(t)
	e.registriesConf(`unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "` + reg.Host + `"
`)
	manifests := countRequests(t, reg, "GET", "/v2/library/busybox/manifests/latest")
	r := e.nook(nil, "pull", "busybox")
	if r.code != 0 || !strings.Contains(r.stderr, "Status: Downloaded newer image for busybox:latest") {
		t.Fatalf("pull busybox through the mirror: %s", r)
	}
	if n := countRequests(t, reg, "GET", "/v2/library/busybox/manifests/latest"); n <= manifests {
		t.Errorf("the mirror served no manifest (%d GETs before, %d after)", manifests, n)
	}
	if got := e.ok(nil, "run", "--rm", "busybox", "echo", "mirrored"); got != "mirrored\n" {
		t.Errorf("run of the mirrored image printed %q", got)
	}

	e.registriesConf(`[[registry]]
prefix = "docker.io/library/busybox"
blocked = true
`)
	oneLine(t, e.nook(nil, "pull", "busybox:1"), "docker.io/library/busybox", "blocked by registries.conf")
}

// TestPullSecureRegistry: a TLS registry with htpasswd: its CA unknown is
// one line naming the certs.d path; with the CA in certs.d but no login,
// one line with the `nook login HOST` remedy; after login the pull works.
func TestPullSecureRegistry(t *testing.T) {
	src := runEnv(t)
	reg := startRegistry(t, true)
	ref := reg.Host + "/team/bb:1"
	skopeoPush(t, src, reg, ref)

	e := runEnv(t)
	oneLine(t, e.nook(nil, "pull", ref), "unknown authority", filepath.Join(e.certsDir(reg), "ca.crt"))
	e.trust(reg)
	oneLine(t, e.nook(nil, "pull", ref), ref, "nook login "+reg.Host)
	e.ok([]byte(reg.Password), "login", "-u", reg.User, "--password-stdin", reg.Host)
	if r := e.nook(nil, "pull", ref); r.code != 0 || !strings.Contains(r.stderr, "Pull complete") {
		t.Fatalf("pull after login: %s", r)
	}
	if got := e.ok(nil, "run", "--rm", ref, "echo", "secure"); got != "secure\n" {
		t.Errorf("run of the pulled image printed %q", got)
	}
}

// TestCredentialsSharedWithSkopeo: what skopeo's login saves in
// $REGISTRY_AUTH_FILE nook pulls with, and what nook's login saves in
// Docker's config.json skopeo reads.
func TestCredentialsSharedWithSkopeo(t *testing.T) {
	src := runEnv(t)
	reg := startRegistry(t, true)
	ref := reg.Host + "/team/bb:1"
	skopeoPush(t, src, reg, ref)

	e := runEnv(t)
	e.trust(reg)
	authFile := filepath.Join(e.home, "skopeo-auth.json")
	login := exec.Command("skopeo", "login", "--tls-verify=false", "--authfile", authFile, "-u", reg.User, "--password-stdin", reg.Host)
	login.Stdin = strings.NewReader(reg.Password)
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("skopeo login: %v\n%s", err, out)
	}
	e.extraEnv = []string{"REGISTRY_AUTH_FILE=" + authFile}
	if r := e.nook(nil, "pull", ref); r.code != 0 {
		t.Fatalf("pull with skopeo's credentials in $REGISTRY_AUTH_FILE: %s", r)
	}

	e.extraEnv = nil
	e.ok([]byte(reg.Password), "login", "-u", reg.User, "--password-stdin", reg.Host)
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--authfile", filepath.Join(e.home, "docker", "config.json"),
		"--format", "{{.Name}}", "docker://"+ref).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != reg.Host+"/team/bb" {
		t.Errorf("skopeo inspect with nook's config.json: %v\n%s", err, out)
	}
}
