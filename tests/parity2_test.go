package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// More of Docker's behaviour where a Docker user's hands already go
// (issue 15, continued): one test per item, each failing on the behaviour
// it replaced.

// TestFailedStartStaysCreated: a container whose start fails is left
// Created, with the failure's status and reason, as Docker leaves it, not
// Exited (127); a later start tries again.
func TestFailedStartStaysCreated(t *testing.T) {
	e := runEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"detached", []string{"run", "-d", "--name", "nocmd-d", "bb", "nosuchcmd"}, 127},
		{"foreground", []string{"run", "--name", "nocmd-fg", "bb", "nosuchcmd"}, 127},
		{"bad workdir", []string{"run", "-d", "--name", "nodir", "-w", "/etc/passwd", "bb", "true"}, 0},
	} {
		r := e.nook(nil, tc.args...)
		if r.code == 0 || tc.code != 0 && r.code != tc.code {
			t.Errorf("%s: nook %s:\n%s\nwant a failure (%d)", tc.name, strings.Join(tc.args, " "), r, tc.code)
		}
		name := tc.args[slices.Index(tc.args, "--name")+1]
		if got := e.state(name); got != "created" {
			t.Errorf("%s: state after a failed start = %q, want created", tc.name, got)
		}
		st := e.ok(nil, "ps", "-a", "--filter", "name="+name, "--format", "{{.Status}}")
		if st != "Created\n" {
			t.Errorf("%s: ps status = %q, want Created", tc.name, st)
		}
		if got := e.ok(nil, "inspect", "-f", "{{.State.Status}}|{{.State.Error}}", name); !strings.HasPrefix(got, "created|") || len(got) < len("created|x\n") {
			t.Errorf("%s: inspect State = %q (run: %s)", tc.name, got, r)
		}
	}
}

// tickScript prints a numbered line every 50 ms, forever.
const tickScript = `i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.05; done`

// startOnPty starts nook with a new terminal as its controlling one and
// collects what the terminal shows; closing the master hangs it up.
func (e *env) startOnPty(args ...string) (*exec.Cmd, *os.File, *syncBuffer) {
	e.t.Helper()
	m, s := openPty(e.t, 24, 80)
	cmd := exec.Command(nookBin, args...)
	cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	s.Close()
	out := &syncBuffer{}
	go func() { _, _ = io.Copy(out, m) }()
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); m.Close() })
	return cmd, m, out
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// attachSeesTicks attaches to name without a terminal and waits for a
// line the payload prints after the attach, then lets go of it.
func (e *env) attachSeesTicks(name string) {
	e.t.Helper()
	cmd := exec.Command(nookBin, "attach", "--no-stdin", name)
	cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	eventually(e.t, "attach to "+name+" to show the payload's ticks", func() bool {
		return strings.Contains(out.String(), "tick-")
	})
}

// TestForegroundOutlivesClient: a container started in the foreground
// lives on when its client dies (kill -9, with or without a terminal) or
// its terminal is closed, as Docker's and Podman's do; attach then shows
// it, and the --rm container goes once it is removed.
func TestForegroundOutlivesClient(t *testing.T) {
	e := runEnv(t)
	for _, tc := range []struct {
		name string
		tty  bool
		hang bool // close the terminal instead of killing the client
		args []string
	}{
		{"kill -9 of run", false, false, []string{"run", "--rm", "--name", "fg0", "bb", "sh", "-c", tickScript}},
		{"kill -9 of run -it", true, false, []string{"run", "-it", "--rm", "--name", "fg1", "bb", "sh", "-c", tickScript}},
		{"terminal of run -t closed", true, true, []string{"run", "-t", "--name", "fg2", "bb", "sh", "-c", tickScript}},
		{"terminal of run closed", true, true, []string{"run", "--name", "fg3", "bb", "sh", "-c", tickScript}},
	} {
		name := tc.args[slices.Index(tc.args, "--name")+1]
		var cmd *exec.Cmd
		var master *os.File
		if tc.tty {
			cmd, master, _ = e.startOnPty(tc.args...)
		} else {
			cmd = exec.Command(nookBin, tc.args...)
			cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, tc.name+": the container to run", func() bool { return e.state(name) == "running" })
		if tc.hang {
			master.Close()
		} else {
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		// A line printed after the client is gone proves the payload runs.
		e.attachSeesTicks(name)
		if got := e.state(name); got != "running" {
			t.Errorf("%s: the container is %q once its client is gone, want running", tc.name, got)
		}
		e.ok(nil, "rm", "-f", name)
	}
	eventually(t, "the containers to be removed", func() bool { return e.containerDirs() == 0 })
	e.assertNothingLeft()
}

// TestDetachKeysInForeground: ctrl-p ctrl-q detaches from run -it and
// start -ai as from attach, and --detach-keys chooses other keys; the
// container runs on and attach reaches it.
func TestDetachKeysInForeground(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "create", "-it", "--name", "later", "bb", "sh")
	for _, args := range [][]string{
		{"run", "-it", "--rm", "--name", "now", "bb", "sh"},
		{"start", "-ai", "later"},
		{"run", "-it", "--detach-keys", "ctrl-a,x", "--name", "other", "bb", "sh"},
	} {
		name := args[len(args)-1]
		if args[0] == "run" {
			name = args[slices.Index(args, "--name")+1]
		}
		keys := "\x10\x11"
		if slices.Contains(args, "--detach-keys") {
			keys = "\x10\x11\x01x" // ctrl-p ctrl-q is no detach then
		}
		shown, code := e.driveOnPty(func(m, _ *os.File) {
			time.Sleep(500 * time.Millisecond)
			_, _ = m.WriteString("echo in-$((6*7))\n")
			time.Sleep(300 * time.Millisecond)
			_, _ = m.WriteString(keys)
		}, args...)
		if code != 0 || !strings.Contains(shown, "in-42") || !strings.Contains(shown, "read escape sequence") {
			t.Errorf("nook %s, ctrl-p ctrl-q: exit %d, terminal showed %q", strings.Join(args, " "), code, shown)
		}
		if got := e.state(name); got != "running" {
			t.Errorf("nook %s: after detaching the container is %q", strings.Join(args, " "), got)
		}
		shown, code = e.runOnPty("echo again-$((6*7)); exit 5\n", "attach", name)
		if code != 5 || !strings.Contains(shown, "again-42") {
			t.Errorf("attach after detaching from %s: exit %d, terminal showed %q", args[0], code, shown)
		}
	}
}

// TestAttachNotATerminal: attach to a -t -i container from an input that
// is no terminal refuses at once, as start -ai does.
func TestAttachNotATerminal(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "-it", "--name", "t1", "bb", "sh")
	r := e.nook([]byte("echo typed; exit 3\n"), "attach", "t1")
	if r.code != 125 || r.stdout != "" || !strings.Contains(r.stderr, "the input device is not a TTY") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("attach to a -t container from a pipe: want one line, the input device is not a TTY, exit 125:\n%s", r)
	}
	if got := e.state("t1"); got != "running" {
		t.Errorf("after the refused attach the container is %q", got)
	}
	if r := e.nook([]byte("x"), "run", "-it", "--rm", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "not a TTY") {
		t.Errorf("run -it from a pipe: want the input device is not a TTY, exit 125:\n%s", r)
	}
}

// TestRuntimeDirRemedy: info tells the truth about the runtime directory,
// an XDG_RUNTIME_DIR that cannot be made or a $TMPDIR/nook-UID open to
// others, with the remedy that run's one-line error carries too.
func TestRuntimeDirRemedy(t *testing.T) {
	e := runEnv(t)
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(filepath.Join(open, "nook-"+strconv.Itoa(os.Getuid())), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     []string
		problem string
	}{
		{"XDG_RUNTIME_DIR not makable", []string{"XDG_RUNTIME_DIR=" + notDir}, "cannot create " + notDir + "/nook"},
		{"tmp dir open to others", []string{"XDG_RUNTIME_DIR=", "TMPDIR=" + open}, "is mode 0755, open to others"},
	} {
		e.extraEnv = tc.env
		var info struct {
			Checks []struct{ Name, Verdict, Detail, Remedy string }
		}
		if err := json.Unmarshal([]byte(e.ok(nil, "info", "--format", "json")), &info); err != nil {
			t.Fatal(err)
		}
		var remedy string
		for _, c := range info.Checks {
			if c.Name == "runtime dir" {
				if c.Verdict != "fail" || !strings.Contains(c.Detail, tc.problem) || c.Remedy == "" {
					t.Errorf("%s: info says %+v, want a failure %q with a remedy", tc.name, c, tc.problem)
				}
				remedy = c.Remedy
			}
		}
		r := e.nook(nil, "run", "--rm", "bb", "true")
		if r.code != 125 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tc.problem) ||
			remedy == "" || !strings.Contains(r.stderr, "remedy: "+remedy) {
			t.Errorf("%s: run:\n%s\nwant exit 125, one line with %q and info's remedy %q", tc.name, r, tc.problem, remedy)
		}
	}
	e.extraEnv = nil
}

// TestHostOptions: --add-host, --shm-size, --ulimit and --security-opt
// no-new-privileges do what Docker's do, and inspect shows them.
func TestHostOptions(t *testing.T) {
	e := runEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--add-host", "db:10.0.0.5", "--add-host", "gw=host-gateway", "bb", "cat", "/etc/hosts"}, "10.0.0.5\tdb\n127.0.0.1\tgw\n"},
		{[]string{"--shm-size", "3m", "bb", "sh", "-c", "df -k /dev/shm | tail -1 | awk '{print $2}'"}, "3072\n"},
		{[]string{"bb", "sh", "-c", "df -k /dev/shm | tail -1 | awk '{print $2}'"}, "65536\n"},
		{[]string{"--ulimit", "nofile=100:200", "--ulimit", "core=0", "bb", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"}, "100\n200\n0\n"},
		{[]string{"--security-opt", "no-new-privileges", "bb", "grep", "NoNewPrivs", "/proc/self/status"}, "NoNewPrivs:\t1\n"},
		{[]string{"--security-opt", "no-new-privileges:true", "--security-opt", "seccomp=unconfined", "bb", "grep", "NoNewPrivs", "/proc/self/status"}, "NoNewPrivs:\t1\n"},
		{[]string{"bb", "grep", "NoNewPrivs", "/proc/self/status"}, "NoNewPrivs:\t0\n"},
	} {
		args := append([]string{"run", "--rm"}, tc.args...)
		if got := e.ok(nil, args...); !strings.HasSuffix(got, tc.want) {
			t.Errorf("nook %s printed %q, want it to end with %q", strings.Join(args, " "), got, tc.want)
		}
	}
	r := e.nook(nil, "run", "--rm", "--ulimit", "nofile=100:99999999999", "bb", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "--ulimit nofile") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("a hard limit above the host's: want one line naming --ulimit nofile, exit 125:\n%s", r)
	}
	for _, bad := range [][]string{{"--add-host", "db"}, {"--shm-size", "lots"}, {"--ulimit", "nofile=2:1"}, {"--security-opt", "apparmor=strict"}} {
		if r := e.nook(nil, append(append([]string{"create"}, bad...), "bb")...); r.code != 125 || !strings.Contains(r.stderr, bad[0]) {
			t.Errorf("create %s: want exit 125 naming the flag:\n%s", strings.Join(bad, " "), r)
		}
	}
	// An exec'd process gets no_new_privs from its container too, as
	// Docker's exec does (it had none: nothing it ran came from the shim).
	e.ok(nil, "run", "-d", "--name", "nnp", "--security-opt", "no-new-privileges", "bb", "sleep", "1000")
	if got := e.ok(nil, "exec", "nnp", "grep", "NoNewPrivs", "/proc/self/status"); got != "NoNewPrivs:\t1\n" {
		t.Errorf("exec in a no-new-privileges container printed %q", got)
	}
	e.ok(nil, "create", "--name", "opts", "--add-host", "db:10.0.0.5", "--shm-size", "1g", "--ulimit", "nproc=10:20",
		"--security-opt", "no-new-privileges", "bb")
	got := e.ok(nil, "inspect", "-f", "{{json .HostConfig.ExtraHosts}} {{.HostConfig.ShmSize}} {{json .HostConfig.Ulimits}} {{json .HostConfig.SecurityOpt}}", "opts")
	if want := `["db:10.0.0.5"] 1073741824 [{"Hard":20,"Name":"nproc","Soft":10}] ["no-new-privileges"]` + "\n"; got != want {
		t.Errorf("inspect HostConfig = %q, want %q", got, want)
	}
}

// TestPsLastAndSize: ps -n N lists the N latest containers in any state,
// and ps -s the size of each one's writable layer and its virtual size.
func TestPsLastAndSize(t *testing.T) {
	e := runEnv(t)
	for _, n := range []string{"first", "second", "third"} {
		e.ok(nil, "create", "--name", n, "bb")
	}
	if got := e.ok(nil, "ps", "-n", "2", "--format", "{{.Names}}"); got != "third\nsecond\n" {
		t.Errorf("ps -n 2 = %q, want the two latest, newest first", got)
	}
	if got := e.ok(nil, "ps", "-n", "5", "-q"); strings.Count(got, "\n") != 3 {
		t.Errorf("ps -n 5 -q = %q, want all three", got)
	}
	e.ok(nil, "run", "--name", "big", "bb", "sh", "-c", "head -c 100000 /dev/zero > /f")
	got := e.ok(nil, "ps", "-a", "-s", "--filter", "name=big", "--format", "{{.Size}}")
	if !strings.HasPrefix(got, "100kB (virtual ") || got == "100kB (virtual 100kB)\n" {
		t.Errorf("ps -s size = %q, want 100kB (virtual <more>)", got)
	}
	if table := e.ok(nil, "ps", "-a", "-s"); !strings.Contains(strings.SplitN(table, "\n", 2)[0], "SIZE") {
		t.Errorf("ps -s table without a SIZE column:\n%s", table)
	}
}

// TestLimitsRefused: -m, --cpus and --pids-limit are refused at once, in
// one line that says why (no delegated cgroup v2 subtree here), never
// silently ignored; bad values are refused as such.
func TestLimitsRefused(t *testing.T) {
	e := runEnv(t)
	for _, tc := range []struct{ flags []string }{
		{[]string{"-m", "64m"}}, {[]string{"--memory", "1g"}}, {[]string{"--cpus", "0.5"}},
		{[]string{"--pids-limit", "10"}}, {[]string{"-m", "64m", "--pids-limit", "10"}},
	} {
		for _, verb := range []string{"run", "create"} {
			args := append(append([]string{verb, "--rm"}, tc.flags...), "bb", "true")
			r := e.nook(nil, args...)
			if r.code != 125 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 ||
				!strings.Contains(r.stderr, "cgroup v2") || !strings.Contains(r.stderr, strings.TrimLeft(tc.flags[0], "-m")) {
				t.Errorf("nook %s: want one line saying why, exit 125:\n%s", strings.Join(args, " "), r)
			}
		}
	}
	if r := e.nook(nil, "run", "--rm", "-m", "lots", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, `--memory "lots"`) {
		t.Errorf("-m lots: %s", r)
	}
	// More CPUs than the host has, or less than a hundredth, as Docker says.
	for _, cpus := range []string{"1000", "0.001"} {
		if r := e.nook(nil, "run", "--rm", "--cpus", cpus, "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "range of CPUs is from 0.01 to") {
			t.Errorf("--cpus %s: %s", cpus, r)
		}
	}
	if got := e.ok(nil, "ps", "-aq"); got != "" {
		t.Errorf("refused runs left containers: %q", got)
	}
}

// TestStartAttachRunning: start -a of a container that runs already
// attaches to it, as Docker's does, and ends with its status.
func TestStartAttachRunning(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "--name", "late", "bb", "sh", "-c",
		"until [ -e /go ]; do echo tick; sleep 0.05; done; echo done-late; exit 6")
	cmd := exec.Command(nookBin, "start", "-a", "late")
	cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
	out := &syncBuffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "start -a to show the running container's output", func() bool {
		return strings.Contains(out.String(), "tick")
	})
	e.ok(nil, "exec", "late", "touch", "/go")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 6 || !strings.HasSuffix(out.String(), "tick\ndone-late\n") {
		t.Errorf("start -a of a running container: %v, printed %q; want its output and exit 6", err, out.String())
	}
}

// TestForegroundSignalsProxied: a signal to a foreground run without a
// terminal reaches the container's command (Docker's --sig-proxy), which
// the client then exits with.
func TestForegroundSignalsProxied(t *testing.T) {
	e := runEnv(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(nookBin, "run", "--rm", "bb", "sh", "-c",
			"trap 'echo got-sig; exit 7' TERM INT; echo started; while true; do sleep 0.05; done")
		cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
		out := &syncBuffer{}
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the container to start", func() bool { return strings.Contains(out.String(), "started") })
		_ = cmd.Process.Signal(sig)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 || out.String() != "started\ngot-sig\n" {
			t.Errorf("%v to run: %v, printed %q; want the trap's output and exit 7", sig, err, out.String())
		}
	}
}
