package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCommandIsPid1: the command is the container's pid 1, as Docker runs
// it; --init puts nook's init there, the command its child.
func TestCommandIsPid1(t *testing.T) {
	e := runEnv(t)
	if got := e.ok(nil, "run", "--rm", "bb", "sh", "-c", "echo $$"); got != "1\n" {
		t.Errorf("run sh -c 'echo $$' printed %q, want 1", got)
	}
	// An entrypoint that insists on being pid 1 (s6-overlay's /init,
	// systemd) starts.
	if r := e.nook(nil, "run", "--rm", "bb", "sh", "-c", `[ $$ = 1 ] || { echo "not pid 1" >&2; exit 100; }; echo started`); r.code != 0 || r.stdout != "started\n" {
		t.Errorf("a pid-1-only entrypoint: %s", r)
	}
	if got := e.ok(nil, "run", "--rm", "bb", "busybox", "ps", "-o", "pid,args"); !strings.Contains(got, "\n    1 busybox ps -o pid,args\n") {
		t.Errorf("ps in the container:\n%s\nwant ps itself as pid 1", got)
	}
	if got := e.ok(nil, "run", "--rm", "--init", "bb", "sh", "-c", "echo $$"); got == "1\n" {
		t.Errorf("with --init the command is pid 1")
	}
	got := e.ok(nil, "run", "--rm", "--init", "bb", "busybox", "ps", "-o", "pid,args")
	if !strings.Contains(got, "\n    1 ") || !strings.Contains(strings.SplitN(got, "\n", 3)[1], "--init") {
		t.Errorf("ps with --init:\n%s\nwant nook's init as pid 1", got)
	}
	// Exit statuses of a command that cannot start, without an init to
	// report them.
	if r := e.nook(nil, "run", "--rm", "bb", "nosuch"); r.code != 127 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("run nosuch: %s; want 127", r)
	}
	if r := e.nook(nil, "run", "--rm", "bb", "/etc/passwd"); r.code != 126 {
		t.Errorf("run /etc/passwd: %s; want 126", r)
	}
	e.ok(nil, "create", "--name", "plain", "bb", "true")
	e.ok(nil, "create", "--init", "--name", "reaped", "bb", "true")
	for name, want := range map[string]string{"plain": "false\n", "reaped": "true\n"} {
		if got := e.ok(nil, "inspect", "-f", "{{.HostConfig.Init}}", name); got != want {
			t.Errorf("inspect %s: HostConfig.Init = %q, want %q", name, got, want)
		}
	}
}

// TestStopPid1: a command as pid 1 that installs no handler ignores
// SIGTERM, as under Docker: stop waits its timeout and kills, 137. With
// --init, init passes SIGTERM on to its child, which dies of it: 143.
func TestStopPid1(t *testing.T) {
	e := runEnv(t)
	for _, tc := range []struct {
		name  string
		flags []string
		code  string
		slow  bool
	}{
		{"pid 1", nil, "137\n", true},
		{"--init", []string{"--init"}, "143\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.TrimSpace(e.ok(nil, append(append([]string{"run", "-d"}, tc.flags...), "bb", "sleep", "1000")...))
			start := time.Now()
			e.ok(nil, "stop", "-t", "1", id)
			if waited := time.Since(start) >= time.Second; waited != tc.slow {
				t.Errorf("stop -t 1 waited for the timeout: %v, want %v", waited, tc.slow)
			}
			if got := e.ok(nil, "wait", id); got != tc.code {
				t.Errorf("exit code after stop = %q, want %q", got, tc.code)
			}
		})
	}
}

// TestExecJoins: exec enters a pid-1 container's namespaces from outside:
// its process is in the container's pid namespace, nothing of nook is
// visible there, and streams, terminal, statuses and signals work.
func TestExecJoins(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "--name", "box", "bb", "sleep", "1000")
	got := e.ok(nil, "exec", "box", "busybox", "ps", "-o", "pid,args")
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[1], " 1 sleep 1000") || !strings.HasSuffix(lines[2], " busybox ps -o pid,args") {
		t.Errorf("ps in an exec:\n%s\nwant the command as pid 1 and ps alone", got)
	}
	// Whatever the container can see: no nook process, no nook binary.
	r := e.nook(nil, "exec", "box", "sh", "-c", "cat /proc/[0-9]*/cmdline | busybox tr '\\0' ' '; ls -l /proc/[0-9]*/exe 2>&1")
	if r.code != 0 || strings.Contains(r.stdout, "nook") {
		t.Errorf("the container sees a nook process:\n%s", r)
	}
	if got := e.ok(nil, "exec", "box", "sh", "-c", "echo $$"); got == "1\n" || got == "\n" {
		t.Errorf("exec's own pid: %q", got)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
	}{
		{[]string{"-u", "nobody", "-w", "/tmp", "-e", "FOO=bar", "box", "sh", "-c", "echo $(id -u) $(pwd) $FOO"}, 0, "65534 /tmp bar\n"},
		{[]string{"box", "sh", "-c", "exit 9"}, 9, ""},
		{[]string{"box", "nosuch"}, 127, ""},
		{[]string{"box", "/etc/passwd"}, 126, ""},
		{[]string{"-w", "/nowhere", "box", "true"}, 126, ""},
	} {
		if r := e.nook(nil, append([]string{"exec"}, tc.args...)...); r.code != tc.code || r.stdout != tc.stdout {
			t.Errorf("exec %s: %s; want exit %d, stdout %q", strings.Join(tc.args, " "), r, tc.code, tc.stdout)
		}
	}
	out, code := e.runOnPty("", "exec", "-it", "box", "sh", "-c", "tty; exit 4")
	if code != 4 || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("exec -it: exit %d, terminal showed %q", code, out)
	}
	// A signal to exec reaches the process inside.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nookBin, "exec", "box", "sh", "-c", "trap 'exit 3' TERM; echo trapped; while :; do sleep 0.05; done")
	cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, _ := stdout.Read(buf); string(buf[:n]) != "trapped\n" {
		t.Fatalf("exec printed %q before the signal", buf[:n])
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("exec after SIGTERM: %v, want exit 3 from the trap", err)
	}
	// cp into the running container, which has no nook init to ask.
	src := filepath.Join(t.TempDir(), "note")
	if err := os.WriteFile(src, []byte("copied\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok(nil, "cp", src, "box:/tmp/")
	if got := e.ok(nil, "exec", "box", "cat", "/tmp/note"); got != "copied\n" {
		t.Errorf("after cp into the running container: %q", got)
	}
}
