package image

import (
	"strings"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Platform
		ok   bool
	}{
		{"linux/amd64", Platform{OS: "linux", Architecture: "amd64"}, true},
		{"Linux/ARM/v7", Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, true},
		{"linux", Platform{}, false},
		{"linux/", Platform{}, false},
		{"/amd64", Platform{}, false},
		{"linux/arm/v7/x", Platform{}, false},
	} {
		got, err := ParsePlatform(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParsePlatform(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestPlatformMatches(t *testing.T) {
	arm64 := Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	if !arm64.Matches("linux", "arm64", "") {
		t.Error("arm64/v8 must take an arm64 image without a variant")
	}
	if (Platform{OS: "linux", Architecture: "arm", Variant: "v7"}).Matches("linux", "arm", "v6") {
		t.Error("arm/v7 must not take arm/v6")
	}
	if !(Platform{OS: "linux", Architecture: "arm"}).Matches("linux", "arm", "v6") {
		t.Error("a platform without a variant takes any")
	}
}

// FuzzParsePlatform: any string either fails or round-trips through String.
func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "windows/amd64", "a//b", "///", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlatform(s)
		if err != nil {
			return
		}
		if p.OS == "" || p.Architecture == "" || strings.ContainsRune(p.OS+p.Architecture+p.Variant, '/') {
			t.Fatalf("ParsePlatform(%q) = %+v", s, p)
		}
		if q, err := ParsePlatform(p.String()); err != nil || q != p {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, p, p.String(), q, err)
		}
	})
}
