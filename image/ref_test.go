package image

import (
	"errors"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

var hex64 = strings.Repeat("ab", 32)

func TestParseRef(t *testing.T) {
	cases := []struct {
		in, full, familiar string // full "" when refused
	}{
		{"busybox", "docker.io/library/busybox", "busybox"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox", "busybox"},
		{"docker.io/busybox", "docker.io/library/busybox", "busybox"},
		{"index.docker.io/team/app", "docker.io/team/app", "team/app"},
		{"team/app:v1", "docker.io/team/app:v1", "team/app:v1"},
		{"library/a/b", "docker.io/library/a/b", "library/a/b"},
		{"localhost/app", "localhost/app", "localhost/app"},
		{"localhost:5000/app:v1", "localhost:5000/app:v1", "localhost:5000/app:v1"},
		{"Registry/app", "Registry/app", "Registry/app"},
		{"[::1]:5000/app", "[::1]:5000/app", "[::1]:5000/app"},
		{"registry.lab:5000/a.b/c__d/e---f", "registry.lab:5000/a.b/c__d/e---f", "registry.lab:5000/a.b/c__d/e---f"},
		{"a_b.c/d", "a_b.c/d", "a_b.c/d"}, // Docker's quirk: no domain
		{"app@sha256:" + hex64, "docker.io/library/app@sha256:" + hex64, "app@sha256:" + hex64},
		{"app:v1@sha256:" + hex64, "docker.io/library/app:v1@sha256:" + hex64, "app:v1@sha256:" + hex64},
		{"", "", ""},
		{hex64, "", ""},
		{"Upper/Case", "", ""},
		{"team/App", "", ""},
		{"a..b", "", ""},
		{"a/-b", "", ""},
		{"a::b", "", ""},
		{"a:.tag", "", ""},
		{"a:" + strings.Repeat("t", 129), "", ""},
		{"app@sha256:abc", "", ""},
		{"host:port/app", "", ""},
		{"a/b/", "", ""},
		{strings.Repeat("a", 250), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseRef(tc.in)
			if tc.full == "" {
				if !errors.Is(err, ErrInvalidReference) {
					t.Fatalf("ParseRef(%q) = %v, %v; want ErrInvalidReference", tc.in, r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.String() != tc.full || r.Familiar() != tc.familiar {
				t.Errorf("got %s (%s), want %s (%s)", r, r.Familiar(), tc.full, tc.familiar)
			}
		})
	}
}

func TestParseNameAddsLatest(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                       "docker.io/library/busybox:latest",
		"busybox:1":                     "docker.io/library/busybox:1",
		"busybox@sha256:" + hex64:       "docker.io/library/busybox@sha256:" + hex64,
		"localhost:5000/x/y":            "localhost:5000/x/y:latest",
		"docker.io/library/busybox:foo": "docker.io/library/busybox:foo",
	} {
		r, err := ParseName(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseName(%q) = %s, %v; want %s", in, r, err, want)
		}
	}
}

// FuzzParseRef holds ParseRef to Docker's own parser: the same inputs
// accepted, the same normal and familiar forms.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"busybox", "a/b:c@sha256:" + hex64, "localhost:5000/x", "ABC/x", "[::1]/a",
		"index.docker.io/x", "docker.io/library/a/b", "a__b/c--d", "Foo", "a_b.c/d", hex64} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		named, derr := reference.ParseNormalizedNamed(s)
		if (err == nil) != (derr == nil) {
			t.Fatalf("%q: ours %v, Docker's %v", s, err, derr)
		}
		if err != nil {
			return
		}
		if r.String() != named.String() || r.Name() != named.Name() || r.Familiar() != reference.FamiliarString(named) {
			t.Fatalf("%q: ours %s (%s), Docker's %s (%s)", s, r, r.Familiar(), named, reference.FamiliarString(named))
		}
	})
}
