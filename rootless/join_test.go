package rootless_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nook/rootless"
)

// TestJoin enters the namespaces of a running process from outside, as
// exec does: the exec'd process lands in the holder's user, mount, pid,
// UTS and IPC namespaces, as the caller's own child, and one that cannot
// start reports Docker's status.
func TestJoin(t *testing.T) {
	maps := needFullMap(t)
	prog := stagesProgram(t)
	holderOut, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	holder, err := (&rootless.Cmd{Stage: "sleep", IDMaps: maps, Stdout: w, Pdeathsig: unix.SIGKILL,
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC}).Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Signal(unix.SIGKILL); _, _ = holder.Wait() })
	if line, _ := bufio.NewReader(holderOut).ReadString('\n'); line != "ready\n" {
		t.Fatalf("holder printed %q", line)
	}
	// run starts p by the exec program when fast and it can, else by
	// the exec stage; ran says which.
	run := func(p rootless.InitProcess, fast bool) (code int, out string, ran bool, err error) {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var program func() (*rootless.ExecProgram, error)
		if fast {
			program = func() (*rootless.ExecProgram, error) { return rootless.BuildExecProgram(holder.Pid(), p) }
		}
		s, err := rootless.Exec(prog, holder.Pid(), p, [3]*os.File{os.Stdin, w, os.Stderr}, program)
		w.Close()
		if err != nil {
			return 0, "", false, err
		}
		b, _ := io.ReadAll(r)
		code, err = s.Wait()
		return code, string(b), s.RanProgram(), err
	}
	exec := func(args ...string) (int, string, error) {
		t.Helper()
		code, out, _, err := run(rootless.InitProcess{Args: args}, false)
		return code, out, err
	}
	var want []string
	for _, ns := range []string{"user", "mnt", "pid", "uts", "ipc"} {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", holder.Pid(), ns))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, l)
	}
	code, out, err := exec("/bin/sh", "-c", "for n in user mnt pid uts ipc; do readlink /proc/self/ns/$n; done; exit 7")
	if err != nil || code != 7 {
		t.Fatalf("exec: status %d, %v", code, err)
	}
	if got := strings.Fields(out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the exec'd process's namespaces:\n%v\nwant the holder's\n%v", got, want)
	}
	for _, tc := range []struct {
		args []string
		code int
		ran  bool // by the exec program
	}{
		{[]string{"nosuch-command"}, rootless.ExitNotFound, false},
		{[]string{"/etc/passwd"}, rootless.ExitCannotExec, true},
		{[]string{"/nosuch/command"}, rootless.ExitNotFound, true},
	} {
		for _, fast := range []bool{false, true} {
			_, _, _, err := run(rootless.InitProcess{Args: tc.args}, fast)
			var ie *rootless.InitError
			if !errors.As(err, &ie) || ie.Code != tc.code {
				t.Errorf("exec %v (fast %v): %v, want an InitError with status %d", tc.args, fast, err, tc.code)
			}
			if fast && tc.ran && ie != nil && !strings.HasPrefix(ie.Msg, "starting "+tc.args[0]+": ") {
				t.Errorf("exec %v (fast): %q, want it to name the command", tc.args, ie.Msg)
			}
		}
		if _, err := rootless.BuildExecProgram(holder.Pid(), rootless.InitProcess{Args: tc.args}); (err == nil) != tc.ran {
			t.Errorf("exec %v: the exec program: %v, want one: %v", tc.args, err, tc.ran)
		}
	}
}

// TestExecProgram: a process the exec program starts is the one the exec
// stage starts: user, groups, directory, environment, capabilities,
// seccomp filter, signal mask, session, non-dumpable until its exec.
func TestExecProgram(t *testing.T) {
	maps := needFullMap(t)
	prog := stagesProgram(t)
	holderOut, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	holder, err := (&rootless.Cmd{Stage: "sleep", IDMaps: maps, Stdout: w, Pdeathsig: unix.SIGKILL,
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID}).Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Signal(unix.SIGKILL); _, _ = holder.Wait() })
	if line, _ := bufio.NewReader(holderOut).ReadString('\n'); line != "ready\n" {
		t.Fatalf("holder printed %q", line)
	}
	// The holder has no /proc of its own: /proc/self/stat read by the
	// shell itself says, in the host's pids, whether it leads its session.
	const report = `id -u; id -g; id -G; pwd; env | sort; read -r pid comm state ppid pgrp sid rest </proc/self/stat; ` +
		`[ "$pid" = "$sid" ] && echo leader; ` +
		`grep -E '^(Seccomp|Cap(Inh|Prm|Eff|Bnd|Amb)|SigBlk|NoNewPrivs):' /proc/self/status; exit 3`
	sh := func(p rootless.InitProcess) rootless.InitProcess {
		p.Args = []string{"/bin/sh", "-c", report}
		return p
	}
	for _, tc := range []struct {
		name string
		p    rootless.InitProcess
	}{
		{"defaults", sh(rootless.InitProcess{})},
		{"user, groups, directory, env", sh(rootless.InitProcess{User: "65534:65534", Groups: []string{"0", "7"},
			Cwd: "/tmp", Env: []string{"FOO=bar", "PATH=/usr/bin:/bin"}})},
		{"named user", sh(rootless.InitProcess{User: "nobody", Env: []string{"HOME=/x"}})},
		{"caps and profile", sh(rootless.InitProcess{Caps: []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}, Seccomp: "unconfined"})},
		{"no caps", sh(rootless.InitProcess{Caps: []string{}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := map[bool]string{}
			for _, fast := range []bool{false, true} {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				var program func() (*rootless.ExecProgram, error)
				if fast {
					program = func() (*rootless.ExecProgram, error) { return rootless.BuildExecProgram(holder.Pid(), tc.p) }
				}
				s, err := rootless.Exec(prog, holder.Pid(), tc.p, [3]*os.File{os.Stdin, w, w}, program)
				w.Close()
				if err != nil {
					r.Close()
					t.Fatalf("fast %v: %v", fast, err)
				}
				out, _ := io.ReadAll(r)
				r.Close()
				code, err := s.Wait()
				if err != nil || code != 3 || s.RanProgram() != fast {
					t.Errorf("fast %v: status %d, %v, by the program %v\n%s", fast, code, err, s.RanProgram(), out)
				}
				results[fast] = string(out)
			}
			if results[true] != results[false] {
				t.Errorf("the exec program's process:\n%s\nthe exec stage's:\n%s", results[true], results[false])
			}
			if !strings.Contains(results[true], "\nleader\n") {
				t.Errorf("the process does not lead a session of its own:\n%s", results[true])
			}
			if tc.p.Seccomp == "" && !strings.Contains(results[true], "Seccomp:\t2") {
				t.Errorf("no seccomp filter:\n%s", results[true])
			}
		})
	}
}
