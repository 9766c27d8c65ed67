package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nook/internal/testutil"
)

// runEnv is an env with the busybox image imported as "bb" (CMD echo
// from-cmd) and a cleanup that removes every container before the store
// goes: writable layers hold files of subordinate ids.
func runEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequireUnprivileged(t)
	testutil.Require(t, fuseUsable(), "/dev/fuse is not usable")
	e := newEnv(t)
	e.ok(busyboxRootfs(t), "import", "-c", `CMD ["echo", "from-cmd"]`, "-c", "ENV FROM_IMAGE=yes", "-", "bb")
	t.Cleanup(func() { e.removeContainers() })
	return e
}

func fuseUsable() bool {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	return err == nil
}

// removeContainers removes every container of the env's store, then
// checks that nothing of it is mounted or running.
func (e *env) removeContainers() {
	if ids := strings.Fields(e.nook(nil, "ps", "-aq", "--no-trunc").stdout); len(ids) > 0 {
		e.nook(nil, append([]string{"rm", "-f"}, ids...)...)
	}
	e.assertNothingLeft()
}

// assertNothingLeft fails the test when a mount of the store is visible
// on the host or a process of the user still runs from the test's store.
func (e *env) assertNothingLeft() {
	e.t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		e.t.Fatal(err)
	}
	if strings.Contains(string(mi), e.store) {
		e.t.Errorf("a mount of the store is left on the host:\n%s", mi)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "NOOK_ROOT="+e.store+"\x00") {
			cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
			e.t.Errorf("process %s of this test still runs: %q", p, cmd)
		}
	}
}

// TestRunStagesProgram: nook as build.sh builds it writes the program of
// its stages (container/stagebin) to the store, and a container's shim and
// init (pid 1 with --init) run from that file; a copy there that cannot be executed (a
// store on a noexec mount, a damaged file) leaves nook's own binary to run
// both.
func TestRunStagesProgram(t *testing.T) {
	e := runEnv(t)
	id := strings.TrimSpace(e.ok(nil, "run", "-d", "--init", "bb", "sleep", "1000"))
	progs, _ := filepath.Glob(filepath.Join(e.store, "bin", "nook-stages-*"))
	testutil.Require(t, len(progs) == 1, "nook embeds no stages (built without build.sh)")
	e.assertStagesRun(id, progs[0])
	e.ok(nil, "rm", "-f", id)
	// The shim from the store's copy unshares its namespaces at its entry
	// point (rootless/unshare.go): the CLI traces its report.
	t.Setenv("NOOK_TRACE", "1")
	const unshared = " child unshared\n"
	if r := e.nook(nil, "run", "--rm", "bb", "true"); r.code != 0 || !strings.Contains(r.stderr, unshared) {
		t.Errorf("run from the stages' program: %s; want the trace to hold %q", r, unshared)
	}
	t.Setenv("NOOK_TRACE", "")

	// Same size, not a program: found as it is, its exec fails (ENOEXEC).
	st, err := os.Stat(progs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(progs[0], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(progs[0], make([]byte, st.Size()), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOOK_TRACE", "1")
	if r := e.nook(nil, "run", "--rm", "bb", "echo", "served"); r.code != 0 || r.stdout != "served\n" || strings.Contains(r.stderr, unshared) {
		t.Errorf("run with a damaged program: %s; want served, from nook's binary, forked into its namespaces", r)
	}
	t.Setenv("NOOK_TRACE", "")
	id = strings.TrimSpace(e.ok(nil, "run", "-d", "--init", "bb", "sleep", "1000"))
	e.assertStagesRun(id, nookBin)
}

// assertStagesRun checks that the init of container id, and its parent
// the shim, run the program prog.
func (e *env) assertStagesRun(id, prog string) {
	e.t.Helper()
	pid := strings.TrimSpace(e.ok(nil, "inspect", "-f", "{{.State.Pid}}", id))
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		e.t.Fatal(err)
	}
	// pid (comm) state ppid ...: comm may hold spaces, not a ')'.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	for _, p := range []string{pid, f[1]} {
		if exe, err := os.Readlink("/proc/" + p + "/exe"); err != nil || exe != prog {
			e.t.Errorf("process %s (init %s, or its shim) runs %q (%v), want %s", p, pid, exe, err, prog)
		}
	}
}

// containerDirs counts the containers' directories (nook's own
// bookkeeping, such as .layers, starts with a dot).
func (e *env) containerDirs() int {
	ents, _ := os.ReadDir(filepath.Join(e.store, "containers"))
	n := 0
	for _, d := range ents {
		if d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
	}
	return n
}

func TestRunForeground(t *testing.T) {
	e := runEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROM_FILE=file value\n\nOVER=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Setenv("NOOK_TEST_PASSED", "through")
	defer os.Unsetenv("NOOK_TEST_PASSED")
	tests := []struct {
		name           string
		stdin          string
		args           []string
		code           int
		stdout, stderr string // stdout exact; stderr a substring
	}{
		{name: "image cmd", args: []string{"bb"}, stdout: "from-cmd\n"},
		{name: "streams and status", args: []string{"bb", "sh", "-c", "echo out; echo err >&2; exit 3"}, code: 3, stdout: "out\n", stderr: "err"},
		{name: "stdin", stdin: "piped\n", args: []string{"-i", "bb", "cat"}, stdout: "piped\n"},
		{name: "no stdin without -i", stdin: "piped\n", args: []string{"bb", "cat"}, stdout: ""},
		{name: "missing file", args: []string{"bb", "/nonexistent"}, code: 127, stderr: "no such file"},
		{name: "not in PATH", args: []string{"bb", "nosuchcmd"}, code: 127, stderr: "not found in $PATH"},
		{name: "not executable", args: []string{"bb", "/etc/passwd"}, code: 126, stderr: "permission denied"},
		// A pid 1 ignores even its own SIGKILL, as under Docker: under
		// nook's init the command is an ordinary process.
		{name: "killed by signal", args: []string{"--init", "bb", "sh", "-c", "kill -9 $$"}, code: 137},
		{name: "pid 1 survives its own SIGKILL", args: []string{"bb", "sh", "-c", "kill -9 $$; echo alive"}, stdout: "alive\n"},
		{name: "env", args: []string{"-e", "A=1", "-e", "NOOK_TEST_PASSED", "-e", "UNSET_HERE", "--env-file", envFile, "-e", "OVER=flag",
			"bb", "sh", "-c", `echo "$A $NOOK_TEST_PASSED $FROM_FILE $OVER $FROM_IMAGE ${UNSET_HERE-unset}"`},
			stdout: "1 through file value flag yes unset\n"},
		{name: "workdir created", args: []string{"-w", "/work/dir", "bb", "pwd"}, stdout: "/work/dir\n"},
		{name: "user by name", args: []string{"-u", "nobody", "bb", "id"}, stdout: "uid=65534(nobody) gid=65534(nobody)\n"},
		{name: "user and group", args: []string{"-u", "nobody:root", "bb", "id", "-g"}, stdout: "0\n"},
		{name: "numeric user", args: []string{"-u", "1234:5678", "bb", "id"}, stdout: "uid=1234 gid=5678\n"},
		{name: "unknown user", args: []string{"-u", "nosuchuser", "bb", "true"}, code: 125, stderr: "nosuchuser"},
		{name: "nobody cannot read root's secret", args: []string{"-u", "nobody", "bb", "cat", "/etc/secret"}, code: 1, stderr: "Permission denied"},
		{name: "nobody reads its own file", args: []string{"-u", "nobody", "bb", "cat", "/home/nobody/owned"}, stdout: "nobody's\n"},
		{name: "entrypoint", args: []string{"--entrypoint", "echo", "bb", "a", "b"}, stdout: "a b\n"},
		{name: "entrypoint drops image cmd", args: []string{"--entrypoint", "echo", "bb"}, stdout: "\n"},
		{name: "hostname", args: []string{"--hostname", "box", "bb", "hostname"}, stdout: "box\n"},
		{name: "hostname in hosts", args: []string{"--hostname", "box", "bb", "grep", "-c", "box", "/etc/hosts"}, stdout: "1\n"},
		{name: "network none", args: []string{"--network", "none", "bb", "ls", "/sys/class/net"}, stdout: "lo\n"},
		{name: "volume", args: []string{"-v", host + ":/mnt/host", "bb", "sh", "-c", "cat /mnt/host/in; echo back > /mnt/host/out"}, stdout: "from host\n"},
		{name: "read-only volume", args: []string{"-v", host + ":/mnt/host:ro", "bb", "touch", "/mnt/host/x"}, code: 1, stderr: "Read-only"},
		{name: "read-only root", args: []string{"--read-only", "bb", "touch", "/x"}, code: 1, stderr: "Read-only"},
		{name: "tmpfs on read-only root", args: []string{"--read-only", "--tmpfs", "/scratch", "bb", "sh", "-c", "echo ok > /scratch/f && cat /scratch/f"}, stdout: "ok\n"},
		{name: "mount flag", args: []string{"--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "bb", "grep", "-c", " /t ", "/proc/mounts"}, stdout: "1\n"},
		{name: "own pid namespace", args: []string{"bb", "sh", "-c", "ls -d /proc/[0-9]* | wc -l | grep -c '^ *[0-9]$'"}, stdout: "1\n"},
		{name: "proc and dev", args: []string{"bb", "sh", "-c", "test -c /dev/null && test -e /proc/self/status && test -d /dev/pts && test -d /dev/shm && echo ok"}, stdout: "ok\n"},
		{name: "docker's capabilities", args: []string{"bb", "grep", "CapBnd", "/proc/self/status"}, stdout: "CapBnd:\t00000000a80425fb\n"},
		{name: "no mounting", args: []string{"bb", "sh", "-c", "mkdir /m && busybox mount -t tmpfs none /m"}, code: 1, stderr: "permission denied"},
		{name: "bad volume", args: []string{"-v", "v$x:/x", "bb", "true"}, code: 125, stderr: "are allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdin []byte
			if tc.stdin != "" {
				stdin = []byte(tc.stdin)
			}
			r := e.nook(stdin, append([]string{"run", "--rm"}, tc.args...)...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("nook run --rm %s:\n%s\nwant exit %d, stdout %q, stderr containing %q",
					strings.Join(tc.args, " "), r, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(host, "out")); err != nil || string(b) != "back\n" {
		t.Errorf("the volume's write did not reach the host: %q, %v", b, err)
	}
	if n := e.containerDirs(); n != 0 {
		t.Errorf("%d container directories left after run --rm", n)
	}
	if out := e.ok(nil, "ps", "-aq"); out != "" {
		t.Errorf("ps -a after run --rm: %q", out)
	}
	e.assertNothingLeft()
}

func TestRunKeepsWritableLayer(t *testing.T) {
	e := runEnv(t)
	r := e.nook(nil, "run", "--name", "keep", "bb", "sh", "-c", "cat /data 2>/dev/null; echo more >> /data; exit 4")
	if r.code != 4 || r.stdout != "" {
		t.Fatalf("first run: %s", r)
	}
	if r := e.nook(nil, "run", "--name", "keep", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "already in use") {
		t.Errorf("a second container of the same name: %s", r)
	}
	if got := e.ok(nil, "ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"); !strings.HasPrefix(got, "keep exited Exited (4)") {
		t.Errorf("ps -a after the run: %q", got)
	}
	// start -a runs the same command again over the same writable layer.
	r = e.nook(nil, "start", "-a", "keep")
	if r.code != 4 || r.stdout != "more\n" {
		t.Errorf("start -a keep: %s", r)
	}
	e.ok(nil, "rm", "keep")
	if n := e.containerDirs(); n != 0 {
		t.Errorf("rm left %d container directories", n)
	}
}

func TestRunImageConfig(t *testing.T) {
	e := runEnv(t)
	e.ok(busyboxRootfs(t), "import", "-c", "USER nobody", "-c", "WORKDIR /home/nobody", "-c", "ENV A=from-image",
		"-c", `ENTRYPOINT ["sh", "-c"]`, "-c", `CMD ["echo default"]`, "-c", "STOPSIGNAL SIGUSR1", "-", "cfg")
	if got := e.ok(nil, "run", "--rm", "cfg"); got != "default\n" {
		t.Errorf("entrypoint + cmd = %q", got)
	}
	if got := e.ok(nil, "run", "--rm", "cfg", "echo $(id -u) $(pwd) $A"); got != "65534 /home/nobody from-image\n" {
		t.Errorf("image user, workdir, env = %q", got)
	}
	if got := e.ok(nil, "run", "--rm", "-u", "0", "-w", "/", "cfg", "echo $(id -u) $(pwd)"); got != "0 /\n" {
		t.Errorf("-u and -w over the image's = %q", got)
	}
	// The image's stop signal is what stop sends.
	e.ok(nil, "run", "-d", "--name", "sig", "cfg", "trap 'exit 9' USR1; echo ready; while true; do sleep 0.05; done")
	eventually(t, "the trap to be set", func() bool { return e.nook(nil, "logs", "sig").stdout == "ready\n" })
	e.ok(nil, "stop", "sig")
	if got := e.ok(nil, "wait", "sig"); got != "9\n" {
		t.Errorf("exit after stop with the image's STOPSIGNAL = %q, want 9", got)
	}
}
