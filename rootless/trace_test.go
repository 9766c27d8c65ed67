package rootless_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"nook/rootless"
)

// TestTrace checks that NOOK_TRACE=1 makes a stage print its timeline and
// that it is silent by default.
func TestTrace(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(strconv.FormatBool(on), func(t *testing.T) {
			var errb bytes.Buffer
			c := &rootless.Cmd{Stage: "nop", Stderr: &errb}
			if on {
				c.Env = []string{rootless.TraceEnv + "=1"}
			}
			if code, err := c.Run(); code != 0 || err != nil {
				t.Fatalf("nop: %d, %v", code, err)
			}
			got := strings.Contains(errb.String(), "nook-trace ") &&
				strings.Contains(errb.String(), " stage nop ready\n")
			if got != on {
				t.Errorf("trace %v: stderr %q", on, errb.String())
			}
		})
	}
}
