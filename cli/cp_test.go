package cli

import (
	"strings"
	"testing"
)

func TestSplitCpArg(t *testing.T) {
	tests := []struct{ arg, ctr, path string }{
		{"c1:/etc/passwd", "c1", "/etc/passwd"},
		{"c1:", "c1", ""},
		{"c1:rel/x", "c1", "rel/x"},
		{"c1:/a:b", "c1", "/a:b"},
		{"/abs/with:colon", "", "/abs/with:colon"},
		{"./file:name", "", "./file:name"},
		{"../x:y", "", "../x:y"},
		{"plain", "", "plain"},
		{":x", "", ":x"},
		{"-", "", "-"},
	}
	for _, tc := range tests {
		t.Run(tc.arg, func(t *testing.T) {
			ctr, p := splitCpArg(tc.arg)
			if ctr != tc.ctr || p != tc.path {
				t.Errorf("splitCpArg(%q) = %q, %q; want %q, %q", tc.arg, ctr, p, tc.ctr, tc.path)
			}
		})
	}
}

// FuzzSplitCpArg: whatever the argument, a container part is never empty,
// never starts with "." or "/", and with the path rebuilds the argument.
func FuzzSplitCpArg(f *testing.F) {
	for _, s := range []string{"c1:/etc", "/abs", "./x:y", "a:b:c", ":", "", "-", "c:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		ctr, p := splitCpArg(arg)
		if ctr == "" {
			if p != arg {
				t.Fatalf("host path %q from %q", p, arg)
			}
			return
		}
		if strings.HasPrefix(ctr, ".") || strings.HasPrefix(arg, "/") || strings.Contains(ctr, ":") {
			t.Fatalf("container %q from %q", ctr, arg)
		}
		if ctr+":"+p != arg {
			t.Fatalf("%q + %q does not rebuild %q", ctr, p, arg)
		}
	})
}
