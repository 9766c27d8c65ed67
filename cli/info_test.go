package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"nook/container"
	"nook/image"
	"nook/rootless"
)

// TestMain lets the test binary serve the re-exec stages of Stages, as
// main does for nook: `info` starts its probes that way.
func TestMain(m *testing.M) {
	if code, ok := rootless.Dispatch(Stages()); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// These tests run `info` for real. Run as root (the default under `go
// test`), the probes use real root's identity map; the unprivileged view is
// container's TestPreflightOnThisHost run as nook-ci.

func TestInfoJSONCreatesNoStore(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--root", root, "info", "--format", "json"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var r infoReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	for _, f := range []struct{ name, got, want string }{
		{"store", r.Store, root}, {"store state", r.StoreState, "absent"}, {"version", r.Version, Version},
	} {
		if f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
	byName := map[string]bool{}
	for _, c := range r.Checks {
		if c.Name == "" || c.Verdict == "" || c.Detail == "" {
			t.Errorf("incomplete check %+v", c)
		}
		byName[c.Name] = true
	}
	wantNames := []string{"/dev/fuse", "user namespaces", "newuidmap", "subordinate ids", "kernel overlayfs",
		"cgroups", "runtime dir", "store filesystem", "fusermount3", "kernel and user",
	}
	for _, name := range wantNames {
		if !byName[name] {
			t.Errorf("no check %q", name)
		}
	}
	for name := range byName {
		if !slices.Contains(wantNames, name) {
			t.Errorf("unexpected check %q", name)
		}
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("info created the store: %v", err)
	}
}

func TestInfoTableCountsImages(t *testing.T) {
	root := t.TempDir()
	if _, err := image.Open(root, image.Options{}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--root", root, "info"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"nook " + Version + "  (store " + root + ", 0 images)",
		"CHECK", "VERDICT", "DETAIL", "/dev/fuse", "user namespaces", "cgroups", "kernel and user",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestInfoRejectsUnknownFormat(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"info", "--format", "yaml"}, nil, &stdout, &stderr); code == 0 {
		t.Errorf("--format yaml accepted: %s", stdout.String())
	}
}

func TestWriteInfoTable(t *testing.T) {
	r := infoReport{Version: "1.2.3", Store: "/s", StoreState: "ok", Images: 2, Checks: []container.Check{
		{Name: "/dev/fuse", Verdict: container.VerdictOK, Detail: "/dev/fuse opens read-write"},
		{Name: "user namespaces", Verdict: container.VerdictFail,
			Detail: "user.max_user_namespaces is 0: user namespaces are disabled",
			Action: "nook cannot run containers", Remedy: "sudo sysctl -w user.max_user_namespaces=15000"},
		{Name: "cgroups", Verdict: container.VerdictWarn, Detail: "hybrid", Action: "stats read /proc"},
	}}
	var b bytes.Buffer
	if err := writeInfoTable(&b, r, 60); err != nil {
		t.Fatal(err)
	}
	want := `nook 1.2.3  (store /s, 2 images)

CHECK            VERDICT  DETAIL
/dev/fuse        ok       /dev/fuse opens read-write
user namespaces  FAIL     user.max_user_namespaces is 0:
                          user namespaces are disabled
                          → nook cannot run containers
                          → remedy: sudo sysctl -w
                                    user.max_user_namespaces=15000
cgroups          WARN     hybrid
                          → stats read /proc

1 ok, 0 info, 1 warning, 1 failure: nook cannot run containers here until the failures are fixed.
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestInfoStoreLine(t *testing.T) {
	tests := []struct {
		state  string
		images int
		want   string
	}{
		{"ok", 1, "(store /s, 1 image)"},
		{"absent", 0, "(store /s, not created yet)"},
		{"corrupt store: parsing index.json", 0, "(store /s, unreadable: corrupt store: parsing index.json)"},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeInfoTable(&b, infoReport{Version: "v", Store: "/s", StoreState: tt.state, Images: tt.images}, 80); err != nil {
				t.Fatal(err)
			}
			if first, _, _ := strings.Cut(b.String(), "\n"); first != "nook v  "+tt.want {
				t.Errorf("first line %q, want %q", first, "nook v  "+tt.want)
			}
		})
	}
}

func TestWriteWrapped(t *testing.T) {
	tests := []struct {
		name, prefix, text string
		width              int
		want               string
	}{
		{"fits", "", "a b c", 10, "a b c\n"},
		{"wraps", "", "aaa bbb ccc", 7, "aaa bbb\n..ccc\n"},
		{"prefix hangs", "→ ", "aaa bbb ccc", 7, "→ aaa\n..  bbb\n..  ccc\n"},
		{"long word stays whole", "", "abcdefghijkl x", 5, "abcdefghijkl\n..x\n"},
		{"empty", "", "", 5, "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			writeWrapped(&b, tt.prefix, tt.text, "..", tt.width)
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}
