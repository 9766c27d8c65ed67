package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// capLine is /proc/self/status's line for one capability set.
func capLine(status, set string) string {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, set+":\t"); ok {
			return v
		}
	}
	return ""
}

// allCapsMask is every capability this kernel knows, as /proc shows sets.
func allCapsMask(t *testing.T) string {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%016x", uint64(1)<<(last+1)-1)
}

// TestCapAddDrop: --cap-add, --cap-drop and --privileged set the
// payload's capabilities and exec's as Docker does (its default set is
// a80425fb); --privileged also lifts the seccomp filter.
func TestCapAddDrop(t *testing.T) {
	e := runEnv(t)
	all := allCapsMask(t)
	for _, tc := range []struct {
		flags        []string
		bnd, seccomp string
	}{
		{nil, "00000000a80425fb", "2"},
		{[]string{"--cap-add", "SYS_ADMIN"}, "00000000a82425fb", "2"},
		{[]string{"--cap-add", "cap_sys_ptrace", "--cap-drop", "NET_RAW"}, "00000000a80c05fb", "2"},
		{[]string{"--cap-drop", "ALL", "--cap-add", "CHOWN"}, "0000000000000001", "2"},
		{[]string{"--cap-drop", "ALL"}, "0000000000000000", "2"},
		{[]string{"--cap-add", "ALL", "--cap-drop", "SYS_ADMIN"}, fmt.Sprintf("%016x", mustHex(t, all)&^(1<<21)), "2"},
		{[]string{"--privileged"}, all, "0"},
	} {
		args := append(append([]string{"run", "--rm"}, tc.flags...), "bb", "cat", "/proc/self/status")
		st := e.ok(nil, args...)
		if bnd, eff := capLine(st, "CapBnd"), capLine(st, "CapEff"); bnd != tc.bnd || eff != tc.bnd {
			t.Errorf("%v: CapBnd %s CapEff %s, want %s", tc.flags, bnd, eff, tc.bnd)
		}
		if s := capLine(st, "Seccomp"); s != tc.seccomp {
			t.Errorf("%v: Seccomp %s, want %s", tc.flags, s, tc.seccomp)
		}
	}
	// With SYS_ADMIN the profile lets unshare(2) through, as Docker's does.
	e.ok(nil, "run", "--rm", "--cap-add", "SYS_ADMIN", "bb", "sh", "-c", "busybox unshare -m true")

	if r := e.nook(nil, "run", "--rm", "--cap-add", "NOT_A_CAP", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "NOT_A_CAP") {
		t.Errorf("--cap-add NOT_A_CAP: %s", r)
	}

	e.ok(nil, "run", "-d", "--name", "capped", "--cap-drop", "ALL", "--cap-add", "KILL", "bb", "sleep", "1000")
	if got := capLine(e.ok(nil, "exec", "capped", "cat", "/proc/self/status"), "CapEff"); got != "0000000000000020" {
		t.Errorf("exec in a --cap-drop ALL --cap-add KILL container: CapEff %s", got)
	}
	if got := capLine(e.ok(nil, "exec", "--privileged", "capped", "cat", "/proc/self/status"), "CapEff"); got != all {
		t.Errorf("exec --privileged: CapEff %s, want %s", got, all)
	}
	in := e.ok(nil, "inspect", "-f", "{{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}} {{.HostConfig.Privileged}}", "capped")
	if strings.TrimSpace(in) != "[KILL] [ALL] false" {
		t.Errorf("inspect: %q", in)
	}
}

func mustHex(t *testing.T, s string) uint64 {
	n, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGroupAdd: --group-add adds supplementary groups by name (from the
// container's /etc/group) and by number, to the payload and to exec.
func TestGroupAdd(t *testing.T) {
	e := runEnv(t)
	got := strings.Fields(e.ok(nil, "run", "--rm", "--group-add", "nobody", "--group-add", "1234", "bb", "id", "-G"))
	for _, want := range []string{"65534", "1234"} {
		if !contains(got, want) {
			t.Errorf("id -G %v lacks %s", got, want)
		}
	}
	e.ok(nil, "run", "-d", "--name", "grouped", "--group-add", "4321", "-u", "nobody", "bb", "sleep", "1000")
	if got := strings.Fields(e.ok(nil, "exec", "grouped", "id", "-G")); !contains(got, "4321") {
		t.Errorf("exec: id -G %v lacks 4321", got)
	}
	if r := e.nook(nil, "run", "--rm", "--group-add", "nosuchgroup", "bb", "true"); r.code == 0 {
		t.Errorf("--group-add nosuchgroup: %s", r)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestDevice: --device binds a host device the user can open at the
// path asked; a file that is no device, or permissions nook cannot
// enforce, are refused.
func TestDevice(t *testing.T) {
	e := runEnv(t)
	if got := strings.TrimSpace(e.ok(nil, "run", "--rm", "--device", "/dev/zero:/dev/myzero", "bb",
		"sh", "-c", "head -c 5 /dev/myzero | wc -c")); got != "5" {
		t.Errorf("reading /dev/myzero: %q", got)
	}
	if got := strings.TrimSpace(e.ok(nil, "run", "--rm", "--device", "/dev/urandom:/dev/rnd:rw", "bb",
		"sh", "-c", "head -c 7 /dev/rnd | wc -c")); got != "7" {
		t.Errorf("reading /dev/rnd: %q", got)
	}
	// A read-only mount does not stop writes to a device: refused, not
	// pretended.
	if r := e.nook(nil, "run", "--rm", "--device", "/dev/urandom:/dev/rnd:r", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "device cgroup") {
		t.Errorf("--device ...:r: %s", r)
	}
	if r := e.nook(nil, "run", "--rm", "--device", "/etc/passwd", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "not a device") {
		t.Errorf("--device /etc/passwd: %s", r)
	}
	in := e.ok(nil, "create", "--device", "/dev/zero:/dev/z", "bb")
	got := e.ok(nil, "inspect", "-f", "{{range .HostConfig.Devices}}{{.PathOnHost}}:{{.PathInContainer}}:{{.CgroupPermissions}}{{end}}", strings.TrimSpace(in))
	if strings.TrimSpace(got) != "/dev/zero:/dev/z:rwm" {
		t.Errorf("inspect Devices: %q", got)
	}
}

// TestRestartPolicy: the shim restarts the payload as --restart says,
// inspect shows the policy and the count, and stop and kill end an
// always container without restarting it until the next start.
func TestRestartPolicy(t *testing.T) {
	e := runEnv(t)
	out := t.TempDir()
	log := filepath.Join(out, "log")
	id := strings.TrimSpace(e.ok(nil, "run", "-d", "-v", out+":/out", "--restart", "on-failure:2", "bb",
		"sh", "-c", "echo x >> /out/log; exit 3"))
	if code := strings.TrimSpace(e.ok(nil, "wait", id)); code != "3" {
		t.Errorf("wait: %q", code)
	}
	if b, _ := os.ReadFile(log); string(b) != "x\nx\nx\n" {
		t.Errorf("on-failure:2 ran %d times, want 3", strings.Count(string(b), "x"))
	}
	got := e.ok(nil, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.RestartCount}} {{.State.Status}}", id)
	if strings.TrimSpace(got) != "on-failure 2 2 exited" {
		t.Errorf("inspect: %q", got)
	}

	// A terminal and open stdin are the restarted payload's too.
	id = strings.TrimSpace(e.ok(nil, "run", "-d", "-t", "-i", "--restart", "on-failure:1", "bb", "sh", "-c", "tty; exit 2"))
	if code := strings.TrimSpace(e.ok(nil, "wait", id)); code != "2" {
		t.Errorf("wait -t: %q", code)
	}
	if logs := e.ok(nil, "logs", id); strings.Count(logs, "/dev/pts/") != 2 {
		t.Errorf("logs of a -t container run twice: %q", logs)
	}

	// on-failure does not restart a success.
	id = strings.TrimSpace(e.ok(nil, "run", "-d", "-v", out+":/out", "--restart", "on-failure", "bb",
		"sh", "-c", "echo y >> /out/ok"))
	e.ok(nil, "wait", id)
	if b, _ := os.ReadFile(filepath.Join(out, "ok")); string(b) != "y\n" {
		t.Errorf("on-failure after exit 0: %q", b)
	}

	// always restarts until stop, which ends it for good.
	id = strings.TrimSpace(e.ok(nil, "run", "-d", "-v", out+":/out", "--restart", "always", "bb",
		"sh", "-c", "echo z >> /out/always"))
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(out, "always"))
		if strings.Count(string(b), "z") >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("always: ran %d times in a minute", strings.Count(string(b), "z"))
		}
	}
	e.ok(nil, "stop", id)
	if got := strings.TrimSpace(e.ok(nil, "inspect", "-f", "{{.State.Status}}", id)); got != "exited" {
		t.Errorf("after stop: %s", got)
	}

	// kill too turns the policy off, as Docker's does.
	id = strings.TrimSpace(e.ok(nil, "run", "-d", "--restart", "unless-stopped", "bb",
		"sh", "-c", "trap 'exit 5' USR1; while true; do sleep 0.1; done"))
	e.ok(nil, "kill", id)
	if code := strings.TrimSpace(e.ok(nil, "wait", id)); code != "137" {
		t.Errorf("wait after kill: %s", code)
	}
	// and start turns it on again.
	e.ok(nil, "start", id)
	e.ok(nil, "kill", "-s", "USR1", id) // not a stop: the payload exits of it, and restarts
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		got := strings.Fields(e.ok(nil, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", id))
		if len(got) == 2 && got[0] == "1" && got[1] == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after kill -s USR1: %v, want a restart", got)
		}
	}
	e.ok(nil, "stop", "-t", "1", id)

	if r := e.nook(nil, "run", "--rm", "--restart", "always", "bb", "true"); r.code != 125 {
		t.Errorf("--restart with --rm: %s", r)
	}
	if r := e.nook(nil, "run", "-d", "--restart", "sometimes", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "sometimes") {
		t.Errorf("--restart sometimes: %s", r)
	}
}

// TestRestartingState: between a payload's exit and its restart, ps and
// inspect show what Docker shows: "Restarting (CODE) … ago", status
// restarting, State.Restarting and Running true, no pid; the count
// grows with each restart, and stop ends a restarting container.
func TestRestartingState(t *testing.T) {
	e := runEnv(t)
	id := strings.TrimSpace(e.ok(nil, "run", "-d", "--restart", "always", "bb", "sh", "-c", "exit 3"))
	var counts []int
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no two restarts seen while restarting; counts %v", counts)
		}
		ps := e.ok(nil, "ps", "-a", "--filter", "id="+id, "--format", "{{.Status}}|{{.State}}")
		status, state, _ := strings.Cut(strings.TrimSpace(ps), "|")
		if !strings.HasPrefix(status, "Restarting (3) ") || !strings.HasSuffix(status, " ago") {
			continue
		}
		if state != "restarting" {
			t.Errorf("ps STATE while %q: %q", status, state)
		}
		got := strings.Fields(e.ok(nil, "inspect", "-f",
			"{{.State.Status}} {{.State.Restarting}} {{.State.Running}} {{.State.Pid}} {{.State.ExitCode}} {{.RestartCount}}", id))
		if len(got) != 6 || got[0] != "restarting" {
			continue // restarted meanwhile
		}
		if got[1] != "true" || got[2] != "true" || got[3] != "0" || got[4] != "3" {
			t.Errorf("inspect while restarting: %v, want restarting true true 0 3 N", got)
		}
		n, _ := strconv.Atoi(got[5])
		if len(counts) == 0 || n > counts[len(counts)-1] {
			counts = append(counts, n)
		}
		if len(counts) >= 2 {
			break
		}
	}
	if counts[0] < 1 {
		t.Errorf("RestartCount while restarting the first time: %d, want ≥ 1", counts[0])
	}
	e.ok(nil, "stop", id)
	if got := strings.TrimSpace(e.ok(nil, "inspect", "-f", "{{.State.Status}} {{.State.Restarting}}", id)); got != "exited false" {
		t.Errorf("after stop: %q", got)
	}
}

// TestPrivilegedUnmasked: a container's /proc and /sys hide the host's
// kernel secrets (/proc/keys covered by /dev/null, /sys/firmware by an
// empty directory) and keep /proc/sys read-only, as Docker's MaskedPaths
// and ReadonlyPaths do, in exec'd processes too; --privileged leaves them
// whole, as Docker's does.
func TestPrivilegedUnmasked(t *testing.T) {
	e := runEnv(t)
	probe := `stat -c %F /proc/keys; ls -A /sys/firmware | wc -l; grep -c ' /proc/sys proc ro,' /proc/mounts || true`
	if got := e.ok(nil, "run", "--rm", "bb", "sh", "-c", probe); got != "character special file\n0\n1\n" {
		t.Errorf("unprivileged: %q, want /proc/keys masked, /sys/firmware empty, /proc/sys read-only", got)
	}
	ents, _ := os.ReadDir("/sys/firmware")
	want := fmt.Sprintf("regular empty file\n%d\n0\n", len(ents))
	if got := e.ok(nil, "run", "--rm", "--privileged", "bb", "sh", "-c", probe); got != want {
		t.Errorf("--privileged: %q, want %q: /proc/keys, /sys/firmware and /proc/sys as the kernel has them", got, want)
	}
	id := strings.TrimSpace(e.ok(nil, "run", "-d", "bb", "sleep", "100"))
	if got := e.ok(nil, "exec", id, "stat", "-c", "%F", "/proc/keys"); got != "character special file\n" {
		t.Errorf("exec sees /proc/keys as %q, want it masked", got)
	}
	e.ok(nil, "rm", "-f", id)
}
