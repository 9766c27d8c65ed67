package rootless_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nook/rootless"
)

// TestLaunchThenConfig: a launched stage's setup runs while the caller
// has not decided the config yet; the config sent later arrives whole,
// and Abort ends a stage that is never started, also one whose id maps
// could not be written.
func TestLaunchThenConfig(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name+"/late-config", func(t *testing.T) {
			var out, errb bytes.Buffer
			c := &rootless.Cmd{Stage: "config", Cloneflags: m.flags, IDMaps: m.maps(t), Stdout: &out, Stderr: &errb}
			l, err := c.Launch()
			if err != nil {
				t.Fatal(err)
			}
			// Long enough for the child to be waiting on its config.
			time.Sleep(50 * time.Millisecond)
			cfg := map[string]any{"decided": "late", "n": 2.0}
			p, err := l.Start(cfg)
			if err != nil {
				t.Fatalf("start: %v, stderr %q", err, errb.String())
			}
			code, err := p.Wait()
			if err != nil || code != 0 {
				t.Fatalf("code %d, err %v, stderr %q", code, err, errb.String())
			}
			want, _ := json.Marshal(cfg)
			if got := strings.TrimSpace(out.String()); got != string(want) {
				t.Errorf("config came back as %s, want %s", got, want)
			}
		})
		t.Run(m.name+"/abort", func(t *testing.T) {
			var errb bytes.Buffer
			c := &rootless.Cmd{Stage: "config", Cloneflags: m.flags, IDMaps: m.maps(t), Stderr: &errb}
			l, err := c.Launch()
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { l.Abort(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Abort hung")
			}
		})
	}
	t.Run("mapper-error", func(t *testing.T) {
		maps := needFullMap(t)
		maps.UIDs = append(maps.UIDs[:1:1], rootless.IDMap{ContainerID: 1, HostID: 7_000_000, Size: 10})
		for _, abort := range []bool{false, true} {
			l, err := (&rootless.Cmd{Stage: "nop", Cloneflags: unix.CLONE_NEWUSER, IDMaps: maps}).Launch()
			if err != nil {
				t.Fatal(err)
			}
			if abort {
				l.Abort()
				continue
			}
			if _, err := l.Start(nil); !errors.Is(err, rootless.ErrSetup) || !strings.Contains(err.Error(), "newuidmap") {
				t.Fatalf("Start = %v; want ErrSetup naming newuidmap", err)
			}
		}
	})
}
