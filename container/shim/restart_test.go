package shim

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRestartAgain(t *testing.T) {
	for _, tt := range []struct {
		r              Restart
		code, restarts int
		want           bool
	}{
		{Restart{}, 1, 0, false},
		{Restart{Name: "no"}, 1, 0, false},
		{Restart{Name: "on-failure"}, 0, 0, false},
		{Restart{Name: "on-failure"}, 3, 100, true},
		{Restart{Name: "on-failure", MaxRetries: 2}, 3, 1, true},
		{Restart{Name: "on-failure", MaxRetries: 2}, 3, 2, false},
		{Restart{Name: "always"}, 0, 5, true},
		{Restart{Name: "unless-stopped"}, 0, 5, true},
	} {
		if got := tt.r.again(tt.code, tt.restarts); got != tt.want {
			t.Errorf("%+v.again(%d, %d) = %v", tt.r, tt.code, tt.restarts, got)
		}
	}
}

func TestRestartDelay(t *testing.T) {
	d := time.Duration(0)
	for _, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		if d = restartDelay(d, time.Second); d != want {
			t.Fatalf("delay %v, want %v", d, want)
		}
	}
	if d = restartDelay(40*time.Second, time.Second); d != time.Minute {
		t.Errorf("capped: %v", d)
	}
	if d = restartDelay(time.Minute, 11*time.Second); d != 100*time.Millisecond {
		t.Errorf("after a long run: %v", d)
	}
}

// TestSleepUnlessStopped: the restart's delay ends early, reporting so,
// once `nook stop` leaves its mark; without the mark it runs out.
func TestSleepUnlessStopped(t *testing.T) {
	s := &shim{cfg: Config{Dir: t.TempDir()}}
	if s.sleepUnlessStopped(10 * time.Millisecond) {
		t.Error("stopped without a mark")
	}
	if err := os.WriteFile(filepath.Join(s.cfg.Dir, StopFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A minute's delay: the mark ends it at the first look.
	if !s.sleepUnlessStopped(time.Minute) {
		t.Error("the stop mark did not end the delay")
	}
}
