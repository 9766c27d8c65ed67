package rootless_test

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nook/rootless"
)

// stageEarly reports status os.Args[1], then lingers os.Args[2] and exits 0,
// as a shim whose namespaces take long to tear down.
func stageEarly() int {
	code, _ := strconv.Atoi(os.Args[1])
	linger, _ := time.ParseDuration(os.Args[2])
	rootless.ReportExit(code)
	time.Sleep(linger)
	return 0
}

func TestEarlyExit(t *testing.T) {
	for _, m := range modes() {
		for _, tc := range []struct {
			name     string
			early    bool
			buffered bool // Stdout is a bytes.Buffer: os/exec copies it
			linger   string
			want     int
			fast     bool // Wait must return before the child ends
		}{
			{"reported", true, false, "20s", 7, true},
			{"not asked", false, false, "300ms", 0, false},
			{"copied stdout", true, true, "300ms", 0, false},
		} {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				c := &rootless.Cmd{Stage: "early", Args: []string{"7", tc.linger}, Cloneflags: m.flags,
					IDMaps: m.maps(t), EarlyExit: tc.early}
				var out bytes.Buffer
				if tc.buffered {
					c.Stdout = &out
				}
				p, err := c.Start()
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				code, err := p.Wait()
				took := time.Since(start)
				_ = p.Signal(unix.SIGKILL) // the "reported" child still lingers
				if err != nil || code != tc.want {
					t.Errorf("Wait = %d, %v; want %d", code, err, tc.want)
				}
				if tc.fast && took > 10*time.Second {
					t.Errorf("Wait took %v: it waited for the process, not its report", took)
				}
				if !tc.fast && took < 250*time.Millisecond {
					t.Errorf("Wait took %v: it returned before the process ended", took)
				}
			})
		}
	}
}

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
