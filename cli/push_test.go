package cli

import (
	"testing"

	"github.com/alecthomas/kong"
)

// TestPushFlags: Docker's and Podman's spellings parse to what Push is given.
func TestPushFlags(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		tlsVerify   bool
		all         bool
		compression string
	}{
		{[]string{"push", "reg.lab/a"}, true, false, "gzip"},
		{[]string{"push", "--tls-verify=false", "-a", "reg.lab/a"}, false, true, "gzip"},
		{[]string{"push", "--no-tls-verify", "--compression-format", "zstd", "reg.lab/a"}, false, false, "zstd"},
	} {
		var c CLI
		p, err := kong.New(&c, kong.Exit(func(int) { t.Fatalf("%v: exited", tc.args) }))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := c.Push; got.TLSVerify != tc.tlsVerify || got.AllTags != tc.all || got.Compression != tc.compression {
			t.Errorf("%v: parsed %+v", tc.args, got)
		}
	}
}
