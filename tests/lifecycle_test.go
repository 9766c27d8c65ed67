package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// state is a container's State column through ps.
func (e *env) state(name string) string {
	e.t.Helper()
	return strings.TrimSpace(e.ok(nil, "ps", "-a", "--filter", "name="+name, "--format", "{{.State}}"))
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const trapScript = `trap 'echo got-term; exit 7' TERM; echo started; echo warn >&2; while true; do sleep 0.05; done`

func TestDetachedLifecycle(t *testing.T) {
	e := runEnv(t)
	id := strings.TrimSpace(e.ok(nil, "run", "-d", "--name", "web", "-l", "team=lab", "bb", "sh", "-c", trapScript))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a container id", id)
	}
	if got := e.state("web"); got != "running" {
		t.Fatalf("state after run -d = %q", got)
	}
	if got := strings.TrimSpace(e.ok(nil, "ps", "-q")); got != id[:12] {
		t.Errorf("ps -q = %q, want %s", got, id[:12])
	}
	if got := strings.TrimSpace(e.ok(nil, "ps", "-q", "--no-trunc", "--filter", "label=team=lab")); got != id {
		t.Errorf("ps --filter label = %q", got)
	}
	var row map[string]string
	if err := json.Unmarshal([]byte(e.ok(nil, "ps", "--format", "json")), &row); err != nil {
		t.Errorf("ps --format json: %v", err)
	}
	wantFields(t, "ps --format json", field{"Names", row["Names"], "web"}, field{"State", row["State"], "running"})
	eventually(t, "the log to hold both lines", func() bool {
		r := e.nook(nil, "logs", "web")
		return r.stdout == "started\n" && r.stderr == "warn\n"
	})
	// The two streams are pumped apart, so either line may be the last.
	r := e.nook(nil, "logs", "--tail", "1", "-t", "web")
	ts, line, _ := strings.Cut(r.stdout+r.stderr, " ")
	stream := map[bool]string{true: "stdout", false: "stderr"}[r.stdout != ""]
	wantStream := map[string]string{"started\n": "stdout", "warn\n": "stderr"}[line]
	wantFields(t, "logs --tail 1 -t",
		field{"lines", strings.Count(r.stdout+r.stderr, "\n"), 1},
		field{"timestamp is RFC 3339 UTC", strings.HasPrefix(ts, "20") && strings.HasSuffix(ts, "Z"), true},
		field{"line is the last started or warn", wantStream != "", true},
		field{"stream of " + line, stream, wantStream})
	if got := e.ok(nil, "stop", "web"); got != "web\n" {
		t.Errorf("stop printed %q", got)
	}
	if got := e.state("web"); got != "exited" {
		t.Errorf("state after stop = %q", got)
	}
	if got := e.ok(nil, "wait", "web"); got != "7\n" {
		t.Errorf("wait after stop = %q, want the trap's 7", got)
	}
	if got := e.ok(nil, "logs", "web"); got != "started\ngot-term\n" {
		t.Errorf("logs after stop = %q", got)
	}
	if r := e.nook(nil, "kill", "web"); r.code == 0 {
		t.Errorf("kill of a stopped container succeeded: %s", r)
	}

	// start again, kill with a signal of choice, wait for it.
	e.ok(nil, "start", "web")
	if got := e.state("web"); got != "running" {
		t.Fatalf("state after start = %q", got)
	}
	if r := e.nook(nil, "rm", "web"); r.code == 0 {
		t.Errorf("rm of a running container succeeded: %s", r)
	}
	// The log goes on across starts, as Docker's does.
	eventually(t, "the second run's trap", func() bool {
		return strings.Count(e.nook(nil, "logs", "web").stdout, "started") == 2
	})
	e.ok(nil, "kill", "-s", "TERM", "web")
	if got := e.ok(nil, "wait", "web"); got != "7\n" {
		t.Errorf("wait after kill -s TERM = %q", got)
	}

	// rm -f of a running container.
	e.ok(nil, "start", "web")
	e.ok(nil, "rm", "-f", "web")
	if out := e.ok(nil, "ps", "-aq"); out != "" || e.containerDirs() != 0 {
		t.Errorf("after rm -f: ps -aq %q, %d directories", out, e.containerDirs())
	}
	e.assertNothingLeft()
}

func TestStopTimeoutKills(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "--name", "stubborn", "bb", "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.05; done")
	eventually(t, "the trap to be set", func() bool { return e.nook(nil, "logs", "stubborn").stdout == "ready\n" })
	start := time.Now()
	e.ok(nil, "stop", "-t", "1", "stubborn")
	if d := time.Since(start); d < time.Second || d > 8*time.Second {
		t.Errorf("stop -t 1 took %v", d)
	}
	if got := e.ok(nil, "wait", "stubborn"); got != "137\n" {
		t.Errorf("exit code after SIGKILL = %q, want 137", got)
	}
}

func TestCreateStart(t *testing.T) {
	e := runEnv(t)
	id := strings.TrimSpace(e.ok(nil, "create", "--name", "later", "bb", "sh", "-c", "echo ran; exit 2"))
	if got := e.state("later"); got != "created" {
		t.Fatalf("state after create = %q", got)
	}
	if got := e.ok(nil, "ps", "-a", "--format", "{{.Status}}"); got != "Created\n" {
		t.Errorf("ps status = %q", got)
	}
	if got := e.ok(nil, "start", id[:8]); got != id[:8]+"\n" {
		t.Errorf("start printed %q", got)
	}
	if got := e.ok(nil, "wait", "later"); got != "2\n" {
		t.Errorf("wait = %q", got)
	}
	if got := e.ok(nil, "logs", "later"); got != "ran\n" {
		t.Errorf("logs = %q", got)
	}
}

// shimPid finds the container's shim through its state file.
func shimPid(t *testing.T, e *env, name string) int {
	t.Helper()
	id := strings.TrimSpace(e.ok(nil, "ps", "-q", "--no-trunc", "--filter", "name="+name))
	b, err := os.ReadFile(filepath.Join(e.store, "containers", id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ ShimPid int }
	if err := json.Unmarshal(b, &st); err != nil || st.ShimPid == 0 {
		t.Fatalf("state.json %s: %v", b, err)
	}
	return st.ShimPid
}

func TestShimKilled(t *testing.T) {
	e := runEnv(t)
	// A duration no other run uses, so pgrep finds this payload only.
	secs := strconv.Itoa(100000 + rand.IntN(800000))
	e.ok(nil, "run", "-d", "--name", "victim", "bb", "sleep", secs)
	pid := shimPid(t, e, "victim")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the shim to die", func() bool { return syscall.Kill(pid, 0) != nil })
	if got := e.state("victim"); got != "exited" {
		t.Errorf("a container whose shim died shows as %q", got)
	}
	eventually(t, "the container's processes to go", func() bool {
		out, _ := exec.Command("pgrep", "-u", strconv.Itoa(os.Getuid()), "-f", "sleep "+secs).Output()
		return len(bytes.TrimSpace(out)) == 0
	})
	e.assertNothingLeft()
	e.ok(nil, "rm", "victim")
}

func TestExec(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "--name", "box", "-e", "FOO=bar", "-w", "/tmp", "bb", "sleep", "1000")
	tests := []struct {
		name           string
		stdin          string
		args           []string
		code           int
		stdout, stderr string
	}{
		{name: "container's env and dir", args: []string{"box", "sh", "-c", "echo $FOO $(pwd); echo err >&2; exit 5"}, code: 5, stdout: "bar /tmp\n", stderr: "err"},
		{name: "options", args: []string{"-e", "FOO=baz", "-w", "/", "-u", "nobody", "box", "sh", "-c", "echo $FOO $(pwd) $(id -u)"}, stdout: "baz / 65534\n"},
		{name: "stdin", stdin: "typed\n", args: []string{"-i", "box", "cat"}, stdout: "typed\n"},
		{name: "same pid namespace", args: []string{"box", "sh", "-c", "cat /proc/1/cmdline >/dev/null && ls /proc | grep -c '^[0-9]*$' | grep -q '^[0-9]$' && echo ok"}, stdout: "ok\n"},
		{name: "not found", args: []string{"box", "nosuch"}, code: 127, stderr: "not found"},
		{name: "no container", args: []string{"nobox", "true"}, code: 125, stderr: "no such container"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdin []byte
			if tc.stdin != "" {
				stdin = []byte(tc.stdin)
			}
			r := e.nook(stdin, append([]string{"exec"}, tc.args...)...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("nook exec %s:\n%s\nwant exit %d, stdout %q, stderr containing %q",
					strings.Join(tc.args, " "), r, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	// A detached exec runs on after the CLI returns; the container lives on.
	e.ok(nil, "exec", "-d", "box", "sh", "-c", "sleep 0.2; echo done > /tmp/flag")
	eventually(t, "the detached exec to write its flag", func() bool {
		return e.nook(nil, "exec", "box", "cat", "/tmp/flag").stdout == "done\n"
	})
	if got := e.state("box"); got != "running" {
		t.Errorf("after exec sessions the container is %q", got)
	}
	e.ok(nil, "stop", "-t", "0", "box")
	if r := e.nook(nil, "exec", "box", "true"); r.code != 125 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("exec in a stopped container: %s", r)
	}
}

func TestInspectRestartPrune(t *testing.T) {
	e := runEnv(t)
	host := t.TempDir()
	id := strings.TrimSpace(e.ok(nil, "run", "-d", "--name", "svc", "-v", host+":/h:ro", "--tmpfs", "/t", "-l", "a=b",
		"bb", "sh", "-c", "echo up; sleep 1000"))
	var got []map[string]any
	if err := json.Unmarshal([]byte(e.ok(nil, "container", "inspect", "svc")), &got); err != nil || len(got) != 1 {
		t.Fatalf("container inspect: %v", err)
	}
	in := got[0]
	state := in["State"].(map[string]any)
	pid, _ := state["Pid"].(float64)
	wantFields(t, "inspect", field{"Id", in["Id"], id}, field{"Name", in["Name"], "/svc"},
		field{"State.Status", state["Status"], "running"}, field{"State.Running", state["Running"], true},
		field{"State.Pid > 0", pid > 0, true})
	if gd := in["GraphDriver"].(map[string]any)["Data"].(map[string]any); !strings.HasSuffix(gd["UpperDir"].(string), id+"/upper") {
		t.Errorf("inspect GraphDriver = %v", gd)
	}
	mounts := in["Mounts"].([]any)
	if len(mounts) != 2 {
		t.Fatalf("inspect Mounts = %v, want the volume and the tmpfs", mounts)
	}
	m := mounts[0].(map[string]any)
	wantFields(t, "inspect Mounts[0]", field{"Destination", m["Destination"], "/h"},
		field{"Source", m["Source"], host}, field{"RW", m["RW"], false})
	if f := e.ok(nil, "container", "inspect", "-f", "{{.Config.Labels.a}} {{.Path}} {{index .Args 0}}", "svc"); f != "b sh -c\n" {
		t.Errorf("inspect -f = %q", f)
	}
	e.ok(nil, "restart", "-t", "0", "svc")
	if got := e.state("svc"); got != "running" {
		t.Errorf("state after restart = %q", got)
	}
	eventually(t, "the log to hold both runs", func() bool { return e.nook(nil, "logs", "svc").stdout == "up\nup\n" })
	e.ok(nil, "run", "--name", "done", "bb", "true")
	out := e.ok(nil, "container", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:") || strings.Contains(out, id) {
		t.Errorf("prune printed %q", out)
	}
	if names := e.ok(nil, "ps", "-a", "--format", "{{.Names}}"); names != "svc\n" {
		t.Errorf("after prune: %q, want only the running svc", names)
	}
}

func TestLogs(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "--name", "slow", "bb", "sh", "-c", "echo a; sleep 0.5; echo b >&2; sleep 0.3; echo c")
	// -f follows until the container stops, each stream to its own.
	r := e.nook(nil, "logs", "-f", "slow")
	wantFields(t, "logs -f", field{"exit code", r.code, 0}, field{"stdout", r.stdout, "a\nc\n"}, field{"stderr", r.stderr, "b\n"})
	if got := e.state("slow"); got != "exited" {
		t.Errorf("logs -f returned while the container is %q", got)
	}
	// A foreground container without --rm is logged as well as shown.
	r = e.nook([]byte("in\n"), "run", "-i", "--name", "fg", "bb", "sh", "-c", "cat; echo e >&2")
	wantFields(t, "foreground run", field{"stdout", r.stdout, "in\n"}, field{"stderr", r.stderr, "e\n"})
	r = e.nook(nil, "logs", "fg")
	wantFields(t, "logs of a foreground container", field{"stdout", r.stdout, "in\n"}, field{"stderr", r.stderr, "e\n"})
	if got := e.ok(nil, "logs", "--since", "1h", "fg"); got != "in\n" {
		t.Errorf("logs --since 1h = %q", got)
	}
}

func TestTopStats(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "--name", "busy", "-u", "nobody", "bb", "sh", "-c", "sleep 1000 & while true; do :; done")
	out := e.ok(nil, "top", "busy")
	wantFields(t, "top printed\n"+out, field{"header starts with UID", strings.HasPrefix(out, "UID"), true},
		field{"holds the user 65534", strings.Contains(out, "65534"), true},
		field{"holds the command", strings.Contains(out, "sleep 1000"), true})
	var row map[string]string
	if err := json.Unmarshal([]byte(e.ok(nil, "stats", "--no-stream", "--format", "json", "busy")), &row); err != nil {
		t.Fatal(err)
	}
	cpu, _ := strconv.ParseFloat(strings.TrimSuffix(row["CPUPerc"], "%"), 64)
	wantFields(t, "stats of a spinning container", field{"Name", row["Name"], "busy"}, field{"PIDs", row["PIDs"], "2"},
		field{"CPUPerc > 0 (" + row["CPUPerc"] + ")", cpu > 0, true},
		field{"MemUsage holds used / limit (" + row["MemUsage"] + ")", strings.Contains(row["MemUsage"], "/"), true})
	if r := e.nook(nil, "top", "nosuch"); r.code == 0 {
		t.Errorf("top of no container: %s", r)
	}
}

// TestBrokenPipeEndsPayload: a payload writing to a closed pipe dies of
// SIGPIPE (`nook run img yes | head -1` ends), with --init: a command that
// is pid 1 itself ignores SIGPIPE, as every signal it has no handler for,
// under Docker too.
func TestBrokenPipeEndsPayload(t *testing.T) {
	e := runEnv(t)
	for _, args := range [][]string{{"--init", "--rm"}, {"--init", "--name", "logged"}} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, nookBin, append(append([]string{"run"}, args...), "bb", "sh", "-c", "while true; do echo y; done")...)
		cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "y\ny\n" {
			t.Errorf("%v: read %q, %v", args, buf, err)
		}
		out.Close()
		err = cmd.Wait()
		cancel()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 141 {
			t.Errorf("%v: a payload writing to a closed pipe ended with %v, want exit 141 (SIGPIPE)", args, err)
		}
	}
}
