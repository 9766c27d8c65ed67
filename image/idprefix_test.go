package image

import (
	"regexp"
	"strings"
	"testing"
)

// idPrefixRegexp is the pattern isIDPrefix replaced; the tests hold the
// plain code to it.
var idPrefixRegexp = regexp.MustCompile(`^(sha256:)?[a-f0-9]{1,64}$`)

func TestIsIDPrefix(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	cases := []struct {
		ref  string
		want bool
	}{
		{"a", true},
		{"dead", true},
		{"0123456789abcdef", true},
		{hex64, true},
		{"sha256:" + hex64, true},
		{"sha256:d", true},
		{"", false},
		{"sha256:", false},
		{hex64 + "a", false}, // 65 digits
		{"sha256:" + hex64 + "0", false},
		{"DEAD", false}, // ids are lowercase
		{"deag", false},
		{"sha512:dead", false},
		{"sha256:sha256:dead", false}, // the prefix once only
		{"busybox", false},
		{"dead:beef", false},
		{" dead", false},
	}
	for _, tc := range cases {
		t.Run(tc.ref, func(t *testing.T) {
			if got := isIDPrefix(tc.ref); got != tc.want {
				t.Errorf("isIDPrefix(%q) = %v, want %v", tc.ref, got, tc.want)
			}
		})
	}
}

// FuzzIsIDPrefix: the plain code accepts exactly what the regexp did.
func FuzzIsIDPrefix(f *testing.F) {
	for _, s := range []string{"dead", "sha256:dead", "sha256:", strings.Repeat("f", 65), "DEAD", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		if got, want := isIDPrefix(ref), idPrefixRegexp.MatchString(ref); got != want {
			t.Fatalf("isIDPrefix(%q) = %v, regexp says %v", ref, got, want)
		}
	})
}
