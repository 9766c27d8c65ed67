package tests

import (
	"strings"
	"testing"
)

// execTrace is the line NOOK_TRACE=1 prints when an exec program, not the
// Go exec stage, started the process (rootless.Join.Start).
const execTrace = "joined exec program"

// TestExecProgram: exec starts its process by the exec program the shim
// builds (no Go stage in the container) and the process is confined as
// the container's command is: the same seccomp filter and bounding set,
// its user, groups and directory; a command that cannot start exits 126
// or 127 with the reason, by the same path.
func TestExecProgram(t *testing.T) {
	e := runEnv(t)
	const status = "grep -E '^(Seccomp|CapBnd|CapInh|CapAmb|NoNewPrivs):' /proc/self/status"
	want := e.ok(nil, "run", "--rm", "bb", "sh", "-c", status)
	if !strings.Contains(want, "Seccomp:\t2") {
		t.Fatalf("the container's command has no seccomp filter:\n%s", want)
	}
	e.ok(nil, "run", "-d", "--name", "box", "--group-add", "50", "bb", "sleep", "1000")
	e.extraEnv = append(e.extraEnv, "NOOK_TRACE=1")
	defer func() { e.extraEnv = e.extraEnv[:len(e.extraEnv)-1] }()
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"confined as the command", []string{"box", "sh", "-c", status}, 0, want, ""},
		{"user, groups, directory, env", []string{"-u", "nobody", "-w", "/tmp", "-e", "FOO=bar", "box",
			"sh", "-c", "echo $(id -u):$(id -g):$(id -G) $(pwd) $FOO $HOME"}, 0, "65534:65534:65534 50 /tmp bar /home/nobody\n", ""},
		{"uid:gid", []string{"-u", "7:8", "box", "sh", "-c", "echo $(id -u):$(id -g) $HOME"}, 0, "7:8 /\n", ""},
		{"status", []string{"box", "sh", "-c", "exit 9"}, 9, "", ""},
		{"not found", []string{"box", "/nosuch"}, 127, "", "starting /nosuch: no such file or directory"},
		{"cannot execute", []string{"box", "/etc/passwd"}, 126, "", "starting /etc/passwd: permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.nook(nil, append([]string{"exec"}, tc.args...)...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exec %s: %s\nwant exit %d, stdout %q, stderr with %q", strings.Join(tc.args, " "), r, tc.code, tc.stdout, tc.stderr)
			}
			if !strings.Contains(r.stderr, execTrace) {
				t.Errorf("exec %s did not run an exec program:\n%s", strings.Join(tc.args, " "), r.stderr)
			}
		})
	}
	// What the program cannot do goes to the Go stage, which says why.
	if r := e.nook(nil, "exec", "-u", "nosuchuser", "box", "true"); r.code != 125 || !strings.Contains(r.stderr, `finding user "nosuchuser"`) || strings.Contains(r.stderr, execTrace) {
		t.Errorf("exec -u nosuchuser: %s\nwant 125 from the exec stage", r)
	}
	if r := e.nook(nil, "exec", "box", "nosuch"); r.code != 127 || !strings.Contains(r.stderr, "not found") || strings.Contains(r.stderr, execTrace) {
		t.Errorf("exec nosuch: %s\nwant 127 from the exec stage", r)
	}
}
