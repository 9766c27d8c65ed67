package tests

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"nook/internal/testutil"
)

// TestSkopeoReadsStore proves the store is a plain OCI layout: Debian's
// skopeo reads an imported image by its full name.
func TestSkopeoReadsStore(t *testing.T) {
	_, err := exec.LookPath("skopeo")
	testutil.Require(t, err == nil, "skopeo not installed (apt-get install skopeo)")
	e := newEnv(t)
	id := strings.TrimSpace(e.ok(busyboxRootfs(t), "import", "-c", "ENV A=1", "-", "lab/tool:2"))
	digest := strings.TrimSpace(e.ok(nil, "images", "--format", "{{.Digest}}"))
	out, err := exec.Command("skopeo", "inspect", "oci:"+e.store+":docker.io/lab/tool:2").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	var got struct {
		Digest string
		Layers []string
		Env    []string
		Os     string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("skopeo output: %v\n%s", err, out)
	}
	wantFields(t, "skopeo inspect", field{"Digest", got.Digest, digest}, field{"layers", len(got.Layers), 1},
		field{"Os", got.Os, "linux"}, field{"Env", got.Env, []string{"A=1"}})
	cfg, err := exec.Command("skopeo", "inspect", "--config", "--raw", "oci:"+e.store+":docker.io/lab/tool:2").Output()
	if err != nil {
		t.Fatalf("skopeo inspect --config: %v", err)
	}
	if sum := "sha256:" + sha256Hex(cfg); sum != id {
		t.Errorf("skopeo's config hashes to %s, want the image id %s", sum, id)
	}
}

func TestHelpAndVersion(t *testing.T) {
	e := newEnv(t)
	if out := e.ok(nil, "--version"); !strings.Contains(out, ".") {
		t.Errorf("--version printed %q", out)
	}
	for _, verb := range []string{"import", "images", "inspect", "rmi", "tag", "prune", "image ls", "image prune"} {
		args := append(strings.Fields(verb), "--help")
		if out := e.ok(nil, args...); !strings.Contains(out, "Usage: nook "+verb) {
			t.Errorf("nook %s --help printed %q", verb, out)
		}
	}
	r := e.nook(nil, "no-such-verb")
	if r.code == 0 || !strings.Contains(r.stderr, "no-such-verb") {
		t.Errorf("unknown verb: %s", r)
	}
}
