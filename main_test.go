package main

import (
	"os/exec"
	"strings"
	"testing"

	"nook/internal/testutil"
)

// TestNoCostlyInit keeps out of the binary packages whose package-level
// initialization every nook process pays before main: a `nook run` starts
// three of them (CLI, shim, init) one after another, so each millisecond
// here counts thrice in its start-up. Adding one back is a trade to make
// knowingly, with bench/runbench.sh's numbers.
func TestNoCostlyInit(t *testing.T) {
	testutil.RequireRoot(t) // the user pass cannot read the module cache
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	linked := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		linked[p] = true
	}
	if !linked["nook/rootless"] {
		t.Fatalf("go list -deps printed no nook packages: %q", out)
	}
	// net/http came back with the registry verbs, knowingly: only the CLI
	// links it now (the shim and init run from nook-stages, which
	// TestStagesLinkLittle keeps free of it), and measured on a `nook run`
	// it costs ~0.7 ms of package init (half of it oras-go's reference
	// patterns) within the noise of the whole start (see the README).
	for pkg, why := range map[string]string{
		"github.com/distribution/reference":  "compiles its grammar at init: ~2.5 ms per start (image/ref.go uses ociref)",
		"github.com/cheggaaa/pb/v3/termutil": "opens /dev/tty at init, in container init too",
		"github.com/BurntSushi/toml":         "reads the local time zone (/etc/localtime) at init: ~0.07 ms per start (registry/hosts uses go-toml)",
	} {
		if linked[pkg] {
			t.Errorf("%s is linked: %s", pkg, why)
		}
	}
}

// TestStagesLinkLittle keeps the program of the stages that run a
// container (cmd/nook-stages, embedded by container/stagebin: the shim and
// init) to the standard library and the modules their code needs: both
// start on every `nook run`'s critical path, and each linked package adds
// to their start.
func TestStagesLinkLittle(t *testing.T) {
	testutil.RequireRoot(t) // the user pass cannot read the module cache
	out, err := exec.Command("go", "list", "-deps", "./cmd/nook-stages").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := []string{"nook/", "golang.org/x/sys/", "golang.org/x/term", "github.com/hanwen/go-fuse/v2/",
		"github.com/cyphar/filepath-securejoin", "github.com/moby/sys/user",
		// init's seccomp filter: moby's profile types and default, BPF's assembler.
		"github.com/moby/profiles/seccomp", "github.com/opencontainers/runtime-spec/specs-go", "golang.org/x/net/bpf",
		// the shim's record of single-id chowns (internal/ownerxattr); its
		// detrand samples the binary at init: an open and 8 reads.
		"google.golang.org/protobuf/encoding/protowire", "google.golang.org/protobuf/internal/detrand",
		"google.golang.org/protobuf/internal/errors"}
	linked := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		linked[p] = true
		first, _, _ := strings.Cut(p, "/")
		if !strings.Contains(first, ".") && first != "nook" {
			continue // the standard library
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(p, a)
		}
		if !ok {
			t.Errorf("nook-stages links %s", p)
		}
	}
	if !linked["nook/container/shim"] || !linked["nook/rootless"] {
		t.Fatalf("go list -deps printed neither stage: %q", out)
	}
	for _, p := range []string{"nook/container", "nook/image", "nook/cli", "nook/registry", "net/http"} {
		if linked[p] {
			t.Errorf("nook-stages links %s", p)
		}
	}
}
