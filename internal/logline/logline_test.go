package logline

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestWarningsReadAsNooks: warnings and errors come out as nook's own
// lines, a repeated message once; debug records keep slog's text form and
// show every repeat.
func TestWarningsReadAsNooks(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelWarn, "nook: warning: leaving out a socket (path=run/s)\n" +
			"nook: error: no luck (ctr=c1, op.path=/x)\n"},
		{slog.LevelDebug, "level=DEBUG msg=detail\n" +
			"nook: warning: leaving out a socket (path=run/s)\n" +
			"nook: warning: leaving out a socket (path=run/t)\n" +
			"nook: error: no luck (ctr=c1, op.path=/x)\n"},
	} {
		var b bytes.Buffer
		log := New(&b, tc.level)
		log.Debug("detail")
		log.Warn("leaving out a socket", "path", "run/s")
		log.Warn("leaving out a socket", "path", "run/t")
		log.With("ctr", "c1").WithGroup("op").Error("no luck", "path", "/x")
		got := b.String()
		// slog's text form starts with the time: drop it.
		var lines []string
		for _, l := range strings.SplitAfter(got, "\n") {
			if i := strings.Index(l, "level="); strings.HasPrefix(l, "time=") && i > 0 {
				l = l[i:]
			}
			lines = append(lines, l)
		}
		if got := strings.Join(lines, ""); got != tc.want {
			t.Errorf("at %v:\n%s\nwant\n%s", tc.level, got, tc.want)
		}
	}
}
