package cli

import (
	"testing"

	"github.com/alecthomas/kong"
)

// TestPushTLSVerify: --tls-verify left out leaves the choice to
// registries.conf (nil); given, with or without =false, it decides.
func TestPushTLSVerify(t *testing.T) {
	f, tr := false, true
	for _, tc := range []struct {
		args []string
		want *bool
	}{
		{[]string{"push", "reg.lab/a"}, nil},
		{[]string{"push", "--tls-verify=false", "reg.lab/a"}, &f},
		{[]string{"push", "--tls-verify", "reg.lab/a"}, &tr},
	} {
		var c CLI
		p, err := kong.New(&c, kong.Exit(func(int) { t.Fatalf("%v: exited", tc.args) }))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got := c.Push.TLSVerify
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("%v: TLSVerify %v, want %v", tc.args, got, tc.want)
		}
	}
}
