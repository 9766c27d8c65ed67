package rootless

import (
	"testing"

	"nook/internal/seccomp"
)

// TestFakeIDRulesCompile: the single-id rules compile ahead of Docker's
// default profile and of an allow-all one (unconfined), and add to the
// program what they fake: every call they name.
func TestFakeIDRulesCompile(t *testing.T) {
	plain, err := seccomp.Compile(seccomp.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, notify := range []bool{false, true} {
		rules := fakeIDRules(notify)
		names := 0
		for _, r := range rules {
			names += len(r.Names)
		}
		if names != 4+9+4 {
			t.Errorf("notify=%v: %d calls named, want 17 (chown family, id setters, mknod twice)", notify, names)
		}
		f, err := seccomp.Compile(seccomp.Default(), nil, rules...)
		if err != nil {
			t.Fatalf("notify=%v: %v", notify, err)
		}
		if len(f) <= len(plain) {
			t.Errorf("notify=%v: %d instructions with the rules, %d without", notify, len(f), len(plain))
		}
		p, err := SeccompProfile(seccomp.Unconfined)
		if err != nil || p != nil {
			t.Fatalf("unconfined: %v %v", p, err)
		}
	}
}
