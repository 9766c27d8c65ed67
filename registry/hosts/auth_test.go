package hosts

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

func TestServerName(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "docker.io",
		"docker.io":                   "docker.io",
		"index.docker.io":             "docker.io",
		"registry-1.docker.io":        "docker.io",
		"https://index.docker.io/v1/": "docker.io",
		"https://r.example:5000/v2/":  "r.example:5000",
		"r.example:5000":              "r.example:5000",
		" quay.io ":                   "quay.io",
	} {
		if got := ServerName(in); got != want {
			t.Errorf("ServerName(%q) = %q, want %q", in, got, want)
		}
	}
}

func authEntry(user, pass string) string {
	return `{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + `"}`
}

// TestReadStore: Docker's config first, then $REGISTRY_AUTH_FILE, then
// Podman's auth.json files; Docker Hub under Docker's key or Podman's;
// --authfile alone when given.
func TestReadStore(t *testing.T) {
	root := t.TempDir()
	t.Setenv("DOCKER_CONFIG", filepath.Join(root, "docker"))
	t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(root, "registry-auth.json"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(root, "run"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(root, "config"))
	writeFiles(t, filepath.Join(root, "docker"), map[string][]byte{"config.json": []byte(`{"auths":{"a.io":` + authEntry("docker", "1") + `}}`)})
	writeFiles(t, root, map[string][]byte{"registry-auth.json": []byte(`{"auths":{"a.io":` + authEntry("shadowed", "x") + `,"b.io":` + authEntry("env", "2") + `,"docker.io":` + authEntry("hub", "3") + `}}`)})
	writeFiles(t, filepath.Join(root, "run", "containers"), map[string][]byte{"auth.json": []byte(`{"auths":{"c.io":` + authEntry("podman", "4") + `}}`)})
	writeFiles(t, filepath.Join(root, "config", "containers"), map[string][]byte{"auth.json": []byte(`{"auths":{"d.io":` + authEntry("podman-config", "5") + `}}`)})
	writeFiles(t, root, map[string][]byte{"only.json": []byte(`{"auths":{"e.io":` + authEntry("only", "6") + `}}`)})

	ctx := context.Background()
	store, err := readStore(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a.io": "docker", "b.io": "env", hubKey: "hub", "c.io": "podman", "d.io": "podman-config", "e.io": ""} {
		cred, err := store.Get(ctx, key)
		if err != nil || cred.Username != want {
			t.Errorf("Get(%q) = %q, %v; want %q", key, cred.Username, err, want)
		}
	}
	only, err := readStore(Options{AuthFile: filepath.Join(root, "only.json")})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a.io": "", "e.io": "only"} {
		if cred, _ := only.Get(ctx, key); cred.Username != want {
			t.Errorf("--authfile: Get(%q) = %q, want %q", key, cred.Username, want)
		}
	}
	writeFiles(t, root, map[string][]byte{"registry-auth.json": []byte(`{"auths": [`)})
	if _, err := readStore(Options{}); err == nil || !strings.Contains(err.Error(), "registry-auth.json") {
		t.Errorf("a broken auth file: %v, want an error naming it", err)
	}
}

// basicAuthRegistry answers /v2/ as a registry with basic auth does.
func basicAuthRegistry(user, pass string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		_, _ = w.Write([]byte("{}"))
	}))
}

// TestLoginSaves: login saves only credentials the registry accepted,
// in the auth file, keeping what else is there; logout removes them.
func TestLoginSaves(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("CONTAINERS_REGISTRIES_CONF", filepath.Join(t.TempDir(), "none.conf"))
	srv := basicAuthRegistry("me", "pw")
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	file := filepath.Join(t.TempDir(), "auth.json")
	writeFiles(t, filepath.Dir(file), map[string][]byte{"auth.json": []byte(`{"auths":{"x.io":` + authEntry("x", "y") + `},"credHelpers":{"gcr.io":"gcloud"},"detachKeys":"ctrl-q"}`)})
	opts := Options{AuthFile: file}
	ctx := context.Background()

	if err := Login(ctx, host, "me", "wrong", opts); !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), host) {
		t.Errorf("wrong password: %v, want ErrBadCredentials naming %s", err, host)
	}
	if err := Login(ctx, host, "me", "pw", opts); err != nil {
		t.Fatal(err)
	}
	var saved struct {
		Auths       map[string]json.RawMessage
		CredHelpers map[string]string
		DetachKeys  string
	}
	data, _ := os.ReadFile(file)
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	if string(saved.Auths[host]) == "" || string(saved.Auths["x.io"]) == "" || saved.CredHelpers["gcr.io"] != "gcloud" || saved.DetachKeys != "ctrl-q" {
		t.Errorf("after login the file holds %s", data)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	store, _ := readStore(opts)
	if cred, _ := store.Get(ctx, host); cred != (auth.Credential{Username: "me", Password: "pw"}) {
		t.Errorf("read back %+v", cred)
	}
	if err := Logout(ctx, host, opts); err != nil {
		t.Fatal(err)
	}
	if err := Logout(ctx, host, opts); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("second logout: %v, want ErrNotLoggedIn", err)
	}
	data, _ = os.ReadFile(file)
	if strings.Contains(string(data), host) || !strings.Contains(string(data), "x.io") || !strings.Contains(string(data), "detachKeys") {
		t.Errorf("after logout the file holds %s", data)
	}

	// Keys older Docker versions wrote go too; other hosts' stay.
	writeFiles(t, filepath.Dir(file), map[string][]byte{"auth.json": []byte(`{"auths":{"https://` + host + `":` + authEntry("old", "1") +
		`,"http://` + host + `":` + authEntry("older", "2") + `,"https://x.io/":` + authEntry("x", "y") + `}}`)})
	if err := Logout(ctx, host, opts); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(file)
	if strings.Contains(string(data), host) || !strings.Contains(string(data), "https://x.io/") {
		t.Errorf("after logout from legacy keys the file holds %s", data)
	}

	writeFiles(t, filepath.Dir(os.Getenv("CONTAINERS_REGISTRIES_CONF")), map[string][]byte{"none.conf": []byte("[[registry]]\nlocation = \"" + host + "\"\nblocked = true\n")})
	if err := Login(ctx, host, "me", "pw", opts); !errors.Is(err, ErrBlocked) {
		t.Errorf("login to a blocked registry: %v, want ErrBlocked", err)
	}
}

// TestResolveEndpoints: Resolve hands out repositories for the mirrors
// then the registry, sharing one client that carries the credentials.
func TestResolveEndpoints(t *testing.T) {
	root := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(root, "config"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(root, "docker"))
	t.Setenv("CONTAINERS_REGISTRIES_CONF", filepath.Join(root, "r.conf"))
	srv := basicAuthRegistry("me", "pw")
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	writeFiles(t, root, map[string][]byte{"r.conf": []byte("[[registry]]\nprefix = \"docker.io/library\"\nlocation = \"docker.io/library\"\n[[registry.mirror]]\nlocation = \"" + host + "/hub\"\n")})
	writeFiles(t, filepath.Join(root, "docker"), map[string][]byte{"config.json": []byte(`{"auths":{"` + host + `":` + authEntry("me", "pw") + `}}`)})

	eps, err := Resolve("docker.io/library/busybox:1", false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 || !eps[0].Mirror || eps[0].Host != host || eps[0].Repo.Reference.Repository != "hub/busybox" ||
		eps[1].Mirror || eps[1].Host != "docker.io" || eps[1].Repo.Reference.String() != "docker.io/library/busybox:1" {
		t.Fatalf("endpoints %+v", eps)
	}
	// The mirror is on loopback in plain HTTP, with credentials: the
	// client gets through both.
	if err := eps[0].Repo.Tags(context.Background(), "", func([]string) error { return nil }); err != nil {
		t.Errorf("the mirror's credentials were not used: %v", err)
	}
	push, err := Resolve("docker.io/library/busybox:1", true, Options{})
	if err != nil || len(push) != 1 || push[0].Mirror {
		t.Errorf("push endpoints %+v, %v", push, err)
	}
}

// TestDockerHubKey: Docker Hub's credentials are found for the host
// pulls contact (registry-1.docker.io) under Docker's key, and logout
// from the default registry removes that key.
func TestDockerHubKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.json")
	writeFiles(t, filepath.Dir(file), map[string][]byte{"config.json": []byte(`{"auths":{"` + hubKey + `":` + authEntry("hub", "pw") + `,"quay.io":` + authEntry("q", "pw") + `}}`)})
	ctx := context.Background()
	store, err := readStore(Options{AuthFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if cred, err := credentials.Credential(store)(ctx, "registry-1.docker.io"); err != nil || cred.Username != "hub" {
		t.Errorf("credentials for registry-1.docker.io: %+v, %v", cred, err)
	}
	if err := Logout(ctx, "", Options{AuthFile: file}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), hubKey) || !strings.Contains(string(data), "quay.io") {
		t.Errorf("after logout from docker.io the file holds %s", data)
	}
}
