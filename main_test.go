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
	for pkg, why := range map[string]string{
		"net/http":                           "with crypto/tls and x509: ~3 ms of init and page faults per start, 5 MB",
		"github.com/distribution/reference":  "compiles its grammar at init: ~2.5 ms per start (image/ref.go uses ociref)",
		"github.com/cheggaaa/pb/v3/termutil": "opens /dev/tty at init, in container init too",
	} {
		if linked[pkg] {
			t.Errorf("%s is linked: %s", pkg, why)
		}
	}
}

// TestInitLinksLittle keeps the container's init program (cmd/nook-init,
// embedded by container/initbin) to the standard library and the three
// modules its code needs: it starts on every `nook run`'s critical path,
// and each linked package adds to its start.
func TestInitLinksLittle(t *testing.T) {
	testutil.RequireRoot(t) // the user pass cannot read the module cache
	out, err := exec.Command("go", "list", "-deps", "./cmd/nook-init").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := []string{"nook/", "golang.org/x/sys/", "github.com/cyphar/filepath-securejoin", "github.com/moby/sys/user"}
	for _, p := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(p, "/")
		if !strings.Contains(first, ".") && first != "nook" {
			continue // the standard library
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(p, a)
		}
		if !ok {
			t.Errorf("nook-init links %s", p)
		}
	}
	for _, p := range []string{"nook/container", "nook/image", "nook/fusefs", "nook/cli"} {
		if strings.Contains("\n"+string(out), "\n"+p+"\n") {
			t.Errorf("nook-init links %s", p)
		}
	}
}
