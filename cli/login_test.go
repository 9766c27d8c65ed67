package cli

import (
	"bytes"
	"strings"
	"testing"

	"nook/rootless"
)

// TestLoginFlags: the flag combinations Docker refuses are refused in one
// line before any registry is asked, and an empty stdin is no password.
func TestLoginFlags(t *testing.T) {
	for _, c := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"login", "-u", "me", "-p", "pw", "--password-stdin", "r.io"}, "", "mutually exclusive"},
		{[]string{"login", "--password-stdin", "r.io"}, "pw", "must provide --username"},
		{[]string{"login", "-u", "me", "--password-stdin", "r.io"}, "\n", "no password on stdin"},
		{[]string{"login", "-u", "me", "r.io"}, "", "without a terminal"},
		{[]string{"login"}, "", "cannot prompt for the credentials of docker.io"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, strings.NewReader(c.stdin), &out, &errb)
		msg := strings.TrimSpace(errb.String())
		if code != rootless.ExitSetupFailed || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || out.Len() != 0 {
			t.Errorf("nook %s: exit %d, stderr %q, stdout %q; want 125 and one line with %q", strings.Join(c.args, " "), code, msg, out.String(), c.want)
		}
	}
}
