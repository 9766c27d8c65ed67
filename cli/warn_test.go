package cli

import (
	"slices"
	"testing"
)

// TestSkippedLines: one line per reason, whatever the names hold.
func TestSkippedLines(t *testing.T) {
	dev := "device node (cannot be created unprivileged)"
	got := skippedLines([]string{
		"dev/null: " + dev, "dev/zero: " + dev, "odd: name: xattr user.a, operation not permitted",
		"dev/full: " + dev, "dev/tty: " + dev, "far: owner 7:7 is not mapped",
	})
	want := []string{
		"skipped 4 entries, " + dev + ": dev/null, dev/zero, dev/full and 1 more",
		"skipped odd: name: xattr user.a, operation not permitted",
		"skipped far: owner 7:7 is not mapped",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
