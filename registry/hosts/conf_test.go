package hosts

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestMatchLen(t *testing.T) {
	for _, c := range []struct {
		ref, prefix string
		want        int
	}{
		{"example.com/foo/bar", "example.com", 11},
		{"example.com", "example.com", 11},
		{"example.com/foo/bar", "example.com/foo", 15},
		{"example.com/foo:tag", "example.com/foo", 15},
		{"example.com/foo@sha256:ab", "example.com/foo", 15},
		{"example.com/foobar", "example.com/foo", -1},    // not at a separator
		{"example.com:5000/foo", "example.com", -1},      // a port is another registry
		{"example.com:5000/foo", "example.com:5000", 16}, // with its port
		{"example.comx/foo", "example.com", -1},
		{"other.com/foo", "example.com", -1},
		{"a.example.com/foo", "*.example.com", 13},
		{"a.b.example.com:5000/foo", "*.example.com", 15},
		{"example.com/foo", "*.example.com", -1}, // the wildcard needs a subdomain
		{"evil.com/a.example.com", "*.example.com", -1},
		{"docker.io/library/busybox:latest", "docker.io/library/busybox", 25},
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:latest", 32},
		{"docker.io/library/busybox", "docker.io/library/busybox:latest", -1},
	} {
		if got := matchLen(c.ref, c.prefix); got != c.want {
			t.Errorf("matchLen(%q, %q) = %d, want %d", c.ref, c.prefix, got, c.want)
		}
	}
}

const testConf = `
unqualified-search-registries = ["example.com"]

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "mirror-a.local:5000"
[[registry.mirror]]
location = "mirror-b.local/hub"
insecure = true

[[registry]]
prefix = "docker.io/library/busybox"
location = "internal.local/bb"

[[registry]]
location = "insecure.local:5000"
insecure = true

[[registry]]
prefix = "quay.io/evil"
blocked = true

[[registry]]
prefix = "*.corp.example"
[[registry.mirror]]
location = "cache.corp.example"

[[registry]]
prefix = "digests.example"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m1.local"

[[registry]]
prefix = "split.example"
[[registry.mirror]]
location = "d.local"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "t.local"
pull-from-mirror = "tag-only"
`

func TestRoutes(t *testing.T) {
	regs, err := parseConf([]byte(testConf))
	if err != nil {
		t.Fatal(err)
	}
	c := &conf{registries: regs}
	for _, tc := range []struct {
		ref     string
		forPush bool
		want    []route
		err     error
	}{
		{ref: "docker.io/library/alpine:3", want: []route{
			{ref: "mirror-a.local:5000/library/alpine:3", mirror: true},
			{ref: "mirror-b.local/hub/library/alpine:3", mirror: true, insecure: true},
			{ref: "docker.io/library/alpine:3"},
		}},
		// the longer prefix wins, and it has no mirrors
		{ref: "docker.io/library/busybox:latest", want: []route{{ref: "internal.local/bb:latest"}}},
		{ref: "docker.io/library/busybox", want: []route{{ref: "internal.local/bb"}}},
		// pushes go where the name says, with the table's insecure flag
		{ref: "docker.io/library/busybox:latest", forPush: true, want: []route{{ref: "docker.io/library/busybox:latest"}}},
		{ref: "insecure.local:5000/x", forPush: true, want: []route{{ref: "insecure.local:5000/x", insecure: true}}},
		{ref: "insecure.local:5000/x", want: []route{{ref: "insecure.local:5000/x", insecure: true}}},
		{ref: "quay.io/evil/thing", err: ErrBlocked},
		{ref: "quay.io/evil/thing", forPush: true, err: ErrBlocked},
		{ref: "quay.io/evilish/thing", want: []route{{ref: "quay.io/evilish/thing"}}},
		{ref: "git.corp.example/team/app:1", want: []route{
			{ref: "cache.corp.example/team/app:1", mirror: true},
			{ref: "git.corp.example/team/app:1"},
		}},
		{ref: "digests.example/a:tag", want: []route{{ref: "digests.example/a:tag"}}},
		{ref: "digests.example/a@sha256:00", want: []route{
			{ref: "m1.local/a@sha256:00", mirror: true},
			{ref: "digests.example/a@sha256:00"},
		}},
		{ref: "split.example/a:tag", want: []route{
			{ref: "t.local/a:tag", mirror: true},
			{ref: "split.example/a:tag"},
		}},
		{ref: "split.example/a@sha256:00", want: []route{
			{ref: "d.local/a@sha256:00", mirror: true},
			{ref: "split.example/a@sha256:00"},
		}},
		{ref: "elsewhere.io/a", want: []route{{ref: "elsewhere.io/a"}}},
	} {
		got, err := c.routes(tc.ref, tc.forPush)
		if !errors.Is(err, tc.err) {
			t.Errorf("routes(%q, push=%v): error %v, want %v", tc.ref, tc.forPush, err, tc.err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("routes(%q, push=%v) =\n  %+v\nwant\n  %+v", tc.ref, tc.forPush, got, tc.want)
		}
	}
	for host, want := range map[string]bool{
		"insecure.local:5000": true, "mirror-b.local": true, "mirror-a.local:5000": false,
		"docker.io": false, "insecure.local": false,
	} {
		if got := c.insecureHost(host); got != want {
			t.Errorf("insecureHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestParseConfErrors(t *testing.T) {
	for name, text := range map[string]string{
		"toml":             `[[registry]`,
		"no prefix":        "[[registry]]\ninsecure = true",
		"scheme":           "[[registry]]\nlocation = \"https://x.io\"",
		"wildcard moved":   "[[registry]]\nprefix = \"*.x.io\"\nlocation = \"y.io\"",
		"inner wildcard":   "[[registry]]\nprefix = \"a.*.x.io\"",
		"twice":            "[[registry]]\nlocation = \"x.io\"\n[[registry]]\nprefix = \"x.io\"",
		"mirror location":  "[[registry]]\nlocation = \"x.io\"\n[[registry.mirror]]\ninsecure = true",
		"pull-from-mirror": "[[registry]]\nlocation = \"x.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"some\"",
		"v1 and v2":        "[registries.insecure]\nregistries = [\"a.io\"]\n[[registry]]\nlocation = \"x.io\"",
		"wrong type":       "[[registry]]\nlocation = \"x.io\"\ninsecure = \"yes\"",
	} {
		if _, err := parseConf([]byte(text)); !errors.Is(err, ErrConf) {
			t.Errorf("%s: error %v, want ErrConf", name, err)
		}
	}
}

func TestParseConfV1(t *testing.T) {
	regs, err := parseConf([]byte("[registries.search]\nregistries = ['a.io']\n[registries.insecure]\nregistries = ['b.io:5000']\n[registries.block]\nregistries = ['c.io', 'b.io:5000']\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []confRegistry{
		{Prefix: "b.io:5000", Location: "b.io:5000", Insecure: true, Blocked: true},
		{Prefix: "c.io", Location: "c.io", Blocked: true},
	}
	if !reflect.DeepEqual(regs, want) {
		t.Errorf("v1 tables %+v, want %+v", regs, want)
	}
}

// TestConfPrecedence: the user's registries.conf replaces the system's
// (and its drop-ins); without it the system file, the system drop-ins,
// then the user's drop-ins, each later one replacing a prefix's table.
func TestConfPrecedence(t *testing.T) {
	put := func(path, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	user, system := filepath.Join(root, "user"), filepath.Join(root, "system")
	put(filepath.Join(system, "registries.conf"), "[[registry]]\nlocation = \"a.io\"\ninsecure = true\n[[registry]]\nlocation = \"b.io\"\n")
	put(filepath.Join(system, "registries.conf.d", "20-b.conf"), "[[registry]]\nlocation = \"b.io\"\nblocked = true\n")
	put(filepath.Join(system, "registries.conf.d", "10-c.conf"), "[[registry]]\nlocation = \"c.io\"\nblocked = true\n")
	put(filepath.Join(system, "registries.conf.d", "ignored.txt"), "not toml")
	put(filepath.Join(user, "registries.conf.d", "05-c.conf"), "[[registry]]\nlocation = \"c.io\"\ninsecure = true\n")

	paths := confPathsIn("", user, system)
	wantFiles := []string{
		filepath.Join(system, "registries.conf"),
		filepath.Join(system, "registries.conf.d", "10-c.conf"),
		filepath.Join(system, "registries.conf.d", "20-b.conf"),
		filepath.Join(user, "registries.conf.d", "05-c.conf"),
	}
	if !reflect.DeepEqual(paths.files, wantFiles) {
		t.Fatalf("files %v, want %v", paths.files, wantFiles)
	}
	c, err := loadConf(paths)
	if err != nil {
		t.Fatal(err)
	}
	want := []confRegistry{
		{Prefix: "a.io", Location: "a.io", Insecure: true},
		{Prefix: "b.io", Location: "b.io", Blocked: true},  // the drop-in's table replaced the file's
		{Prefix: "c.io", Location: "c.io", Insecure: true}, // the user's drop-in comes last
	}
	if !reflect.DeepEqual(c.registries, want) {
		t.Errorf("merged %+v, want %+v", c.registries, want)
	}

	put(filepath.Join(user, "registries.conf"), "[[registry]]\nlocation = \"d.io\"\n")
	paths = confPathsIn("", user, system)
	wantFiles = []string{filepath.Join(user, "registries.conf"), filepath.Join(user, "registries.conf.d", "05-c.conf")}
	if !reflect.DeepEqual(paths.files, wantFiles) {
		t.Errorf("with the user's file: files %v, want %v", paths.files, wantFiles)
	}
	env := filepath.Join(root, "env.conf")
	if paths := confPathsIn(env, user, system); paths.files[0] != env || len(paths.files) != 4 {
		t.Errorf("with $CONTAINERS_REGISTRIES_CONF: files %v", paths.files)
	}

	put(filepath.Join(user, "registries.conf.d", "99-bad.conf"), "[[registry]]\nlocation = \"https://x\"\n")
	if _, err := loadConf(confPathsIn("", user, system)); !errors.Is(err, ErrConf) {
		t.Errorf("a bad drop-in: error %v, want ErrConf", err)
	}
}
