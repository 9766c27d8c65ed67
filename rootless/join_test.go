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
	exec := func(args ...string) (int, string, error) {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		s, err := rootless.Exec(prog, holder.Pid(), rootless.InitProcess{Args: args}, [3]*os.File{os.Stdin, w, os.Stderr})
		w.Close()
		if err != nil {
			return 0, "", err
		}
		out, _ := io.ReadAll(r)
		code, err := s.Wait()
		return code, string(out), err
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
	}{
		{[]string{"nosuch-command"}, rootless.ExitNotFound},
		{[]string{"/etc/passwd"}, rootless.ExitCannotExec},
	} {
		_, _, err := exec(tc.args...)
		var ie *rootless.InitError
		if !errors.As(err, &ie) || ie.Code != tc.code {
			t.Errorf("exec %v: %v, want an InitError with status %d", tc.args, err, tc.code)
		}
	}
}
