// Package testutil holds what nook's tests share: the rule that a test
// which cannot run for a missing capability fails under CI=true instead of
// skipping, and the two-pass split of the suite between root and an
// unprivileged user.
package testutil

import (
	"os"
	"testing"
)

// InCI reports whether the suite runs under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Require stops the test when ok is false: a skip for a developer, a
// failure under CI, where every capability must be present.
func Require(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("missing capability under CI: %s", why)
	}
	t.Skip(why)
}

// The suite runs in two passes, named by NOOK_TEST_PASS: "root" (unit
// tests that need real root, such as mounting kernel overlayfs) and "user"
// (everything rootless). A test for the other pass is skipped there because
// it runs in its own pass, which is not a missing capability.
const passEnv = "NOOK_TEST_PASS"

// RequireUnprivileged runs the test only as a non-root user.
func RequireUnprivileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	if os.Getenv(passEnv) == "root" {
		t.Skip("runs in the unprivileged pass")
	}
	Require(t, false, "needs an unprivileged user; run as a non-root user")
}

// RequireRoot runs the test only as real root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(passEnv) == "user" {
		t.Skip("runs in the root pass")
	}
	Require(t, false, "needs root")
}
