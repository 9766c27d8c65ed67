package cli

import (
	"fmt"
	"strings"
)

// warnSkipped reports the entries an import or a load left out, one line
// per reason however many entries share it (a Debian root holds dozens
// of device nodes): "nook: warning: skipped 9 entries, device node
// (…why): dev/null, dev/zero, dev/full and 6 more".
func warnSkipped(g *Globals, skipped []string) {
	for _, l := range skippedLines(skipped) {
		fmt.Fprintf(g.Stderr, "nook: warning: %s\n", l)
	}
}

// skippedLines groups "NAME: reason" lines by reason, in first-seen order.
// The reason follows the last ": " (image/layer keeps ": " out of it).
func skippedLines(skipped []string) []string {
	const shown = 3
	var reasons []string
	names := map[string][]string{}
	for _, s := range skipped {
		name, reason := s, ""
		if i := strings.LastIndex(s, ": "); i >= 0 {
			name, reason = s[:i], s[i+2:]
		}
		if _, seen := names[reason]; !seen {
			reasons = append(reasons, reason)
		}
		names[reason] = append(names[reason], name)
	}
	var out []string
	for _, r := range reasons {
		n := names[r]
		if len(n) == 1 {
			out = append(out, fmt.Sprintf("skipped %s: %s", n[0], r))
			continue
		}
		list := strings.Join(n[:min(len(n), shown)], ", ")
		if len(n) > shown {
			list += fmt.Sprintf(" and %d more", len(n)-shown)
		}
		out = append(out, fmt.Sprintf("skipped %d entries, %s: %s", len(n), r, list))
	}
	return out
}
