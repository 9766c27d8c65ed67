package layer

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"nook/internal/testutil"
)

// TestKernelOverlay cross-checks the on-disk format with the kernel: two
// applied layers mounted as overlayfs lower layers with -o userxattr, in a
// user and mount namespace of their own (so the mount dies with the
// process and nothing is left behind), must hide what the upper layer
// whites out or makes opaque.
func TestKernelOverlay(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	testutil.Require(t, err == nil, "unshare (util-linux) not installed")
	lower := applyT(t, mkTar(t,
		dirEnt("a/", 0o755), reg("a/keep", "k", 0o644), reg("a/gone", "g", 0o644),
		dirEnt("b/", 0o755), reg("b/old", "o", 0o644), reg("top-gone", "x", 0o644)))
	upper := applyT(t, mkTar(t,
		dirEnt("a/", 0o755), reg("a/.wh.gone", "", 0o644),
		dirEnt("b/", 0o755), reg("b/.wh..wh..opq", "", 0o644), reg("b/new", "n", 0o644),
		reg(".wh.top-gone", "", 0o644)))

	list := func(opts string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		mnt := t.TempDir()
		script := `mount -t overlay overlay -o "$1" "$2" && cd "$2" && find . | sort | tr '\n' ' '`
		cmd := exec.CommandContext(ctx, unshare, "--user", "--map-root-user", "--mount",
			"sh", "-c", script, "sh", opts+",lowerdir="+upper+":"+lower, mnt)
		out, err := cmd.CombinedOutput()
		testutil.Require(t, err == nil, "cannot mount overlayfs in a user namespace here: "+strings.TrimSpace(string(out)))
		return strings.TrimSpace(string(out))
	}

	want := ". ./a ./a/keep ./b ./b/new"
	if got := list("userxattr"); got != want {
		t.Errorf("overlay with userxattr shows %q, want %q", got, want)
	}
	// Without userxattr the kernel ignores user.overlay.opaque (whiteouts
	// still work): proof the xattr, not something else, hid b/old above.
	if got := list("ro"); !strings.Contains(got, "./b/old") || strings.Contains(got, "./a/gone") {
		t.Errorf("overlay without userxattr shows %q: expected b/old visible, a/gone hidden", got)
	}
}
