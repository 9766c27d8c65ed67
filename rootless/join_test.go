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
	holder := startHolder(t, maps, unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_NEWPID|unix.CLONE_NEWUTS|unix.CLONE_NEWIPC)
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
		s, err := rootless.Exec(prog, rootless.Target{Pid: holder.Pid()}, p, [3]*os.File{os.Stdin, w, os.Stderr}, program)
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
	holder := startHolder(t, maps, unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_NEWPID)
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
		{"no new privileges", sh(rootless.InitProcess{NoNewPrivileges: true})},
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
				s, err := rootless.Exec(prog, rootless.Target{Pid: holder.Pid()}, tc.p, [3]*os.File{os.Stdin, w, w}, program)
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
			if want := fmt.Sprintf("NoNewPrivs:\t%d\n", map[bool]int{false: 0, true: 1}[tc.p.NoNewPrivileges]); !strings.Contains(results[true], want) {
				t.Errorf("want %q:\n%s", want, results[true])
			}
		})
	}
}

// TestJoinKernels: the namespaces are joined by one setns of a pidfd
// where the kernel has it (≥ 5.8), else one namespace's fd at a time:
// without pidfd_open, and when setns refuses a pidfd (EINVAL, as before
// 5.8) after pidfd_open worked, when the start is tried again. Each way
// the exec'd process is in the holder's namespaces and not in the ones
// it shares with the caller (net, cgroup), and the exec program is asked
// for once. Namespaces the caller names (Target.Namespaces) are joined
// without comparing; a wrong name is refused and then compared.
func TestJoinKernels(t *testing.T) {
	maps := needFullMap(t)
	prog := stagesProgram(t)
	holder := startHolder(t, maps, unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_NEWPID|unix.CLONE_NEWUTS|unix.CLONE_NEWIPC)
	names := []string{"user", "mnt", "pid", "uts", "ipc", "net"}
	var want []string
	for i, ns := range names {
		pid := holder.Pid()
		if i == len(names)-1 {
			pid = os.Getpid() // net is the caller's
		}
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, l)
	}
	// The namespaces the holder made, as a container's caller knows them.
	const made = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC
	for _, tc := range []struct {
		name  string
		known int // Target.Namespaces
		open  func(pid, flags int) (int, error)
	}{
		{"pidfd", 0, unix.PidfdOpen},
		{"pidfd, namespaces known", made, unix.PidfdOpen},
		// The net namespace is the caller's: joining it is refused, and
		// the start is tried again with each namespace compared.
		{"pidfd, namespaces known wrongly", made | unix.CLONE_NEWNET, unix.PidfdOpen},
		{"no pidfd_open", 0, func(int, int) (int, error) { return -1, unix.ENOSYS }},
		{"setns refuses a pidfd", made, func(int, int) (int, error) {
			// Not a namespace: setns says EINVAL, as before 5.8.
			return unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		}},
	} {
		for _, fast := range []bool{false, true} {
			p := rootless.InitProcess{Args: []string{"/bin/sh", "-c",
				"for n in " + strings.Join(names, " ") + "; do readlink /proc/self/ns/$n; done; exit 5"}}
			opened, asked := 0, 0
			open := func(pid, flags int) (int, error) { opened++; return tc.open(pid, flags) }
			var run func() (*rootless.ExecProgram, error)
			if fast {
				run = func() (*rootless.ExecProgram, error) { asked++; return rootless.BuildExecProgram(holder.Pid(), p) }
			}
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			s, err := rootless.ExecOpeningPidfd(open, prog, rootless.Target{Pid: holder.Pid(), Namespaces: tc.known}, p, [3]*os.File{os.Stdin, w, os.Stderr}, run)
			w.Close()
			if err != nil {
				r.Close()
				t.Fatalf("%s (fast %v): %v", tc.name, fast, err)
			}
			b, _ := io.ReadAll(r)
			r.Close()
			code, err := s.Wait()
			if err != nil || code != 5 {
				t.Errorf("%s (fast %v): status %d, %v, want 5", tc.name, fast, code, err)
			}
			if got := strings.Fields(string(b)); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s (fast %v): the exec'd process's namespaces:\n%v\nwant\n%v", tc.name, fast, got, want)
			}
			if tc.known&unix.CLONE_NEWNET != 0 {
				opened-- // the second try opens another pidfd
			}
			if opened != 1 || fast && (asked != 1 || !s.RanProgram()) {
				t.Errorf("%s (fast %v): pidfd_open called %d times, the program asked for %d times (ran it: %v), want once each",
					tc.name, fast, opened, asked, s.RanProgram())
			}
		}
	}
}

// startHolder starts a process that sleeps in new namespaces (flags), as a
// running container's pid 1 does, and kills it when the test ends.
func startHolder(t *testing.T, maps rootless.IDMaps, flags uintptr) *rootless.Process {
	t.Helper()
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	holder, err := (&rootless.Cmd{Stage: "sleep", IDMaps: maps, Stdout: w, Pdeathsig: unix.SIGKILL, Cloneflags: flags}).Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Signal(unix.SIGKILL); _, _ = holder.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("holder printed %q", line)
	}
	return holder
}
