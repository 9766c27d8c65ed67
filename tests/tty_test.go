package tests

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty returns a pseudo-terminal's master and slave, sized rows×cols.
func openPty(t *testing.T, rows, cols uint16) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// runOnPty runs nook on a terminal, typing input, and returns what the
// terminal showed and the exit code.
func (e *env) runOnPty(input string, args ...string) (string, int) {
	e.t.Helper()
	return e.driveOnPty(func(m, _ *os.File) {
		if input != "" {
			time.Sleep(300 * time.Millisecond)
			_, _ = m.WriteString(input)
		}
	}, args...)
}

// driveOnPty runs nook on a terminal that drive works on meanwhile.
func (e *env) driveOnPty(drive func(master, slave *os.File), args ...string) (string, int) {
	e.t.Helper()
	m, s := openPty(e.t, 33, 101)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nookBin, args...)
	cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&out, m); close(done) }()
	drive(m, s)
	s.Close()
	err := cmd.Wait()
	m.Close()
	<-done
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), code
}

func TestRunTty(t *testing.T) {
	e := runEnv(t)
	out, code := e.runOnPty("", "run", "-t", "--rm", "bb", "sh", "-c", "tty; stty size; echo $TERM")
	// Without -i the outer terminal stays cooked and adds a CR of its own.
	if code != 0 || !strings.Contains(strings.ReplaceAll(out, "\r", ""), "/dev/pts/0\n33 101\nxterm\n") {
		t.Errorf("run -t: exit %d, terminal showed %q", code, out)
	}
	out, code = e.runOnPty("echo typed-$((6*7))\nexit 3\n", "run", "-it", "--rm", "bb", "sh")
	if code != 3 || !strings.Contains(out, "typed-42") {
		t.Errorf("run -it: exit %d, terminal showed %q", code, out)
	}
}

func TestRunTtyResize(t *testing.T) {
	e := runEnv(t)
	out, code := e.driveOnPty(func(m, s *os.File) {
		time.Sleep(500 * time.Millisecond)
		// The kernel signals the terminal's foreground group, the CLI,
		// which passes SIGWINCH on; the shim resizes the container's pty.
		if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
			t.Error(err)
		}
		time.Sleep(300 * time.Millisecond)
		_, _ = m.WriteString("stty size; exit\n")
	}, "run", "-it", "--rm", "bb", "sh")
	if code != 0 || !strings.Contains(out, "40 120") {
		t.Errorf("after a resize: exit %d, terminal showed %q", code, out)
	}
}

func TestAttach(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "-i", "--name", "reader", "bb", "sh", "-c", "read a; echo got $a; echo err $a >&2; read b; echo got $b; exit 4")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nookBin, "attach", "reader")
	cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	_, _ = io.WriteString(in, "one\ntwo\n")
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	wantFields(t, "attach", field{"exit code", code, 4},
		field{"stdout", out.String(), "got one\ngot two\n"}, field{"stderr", errb.String(), "err one\n"})

	// On a terminal, ctrl-p ctrl-q detaches and the container runs on.
	e.ok(nil, "run", "-d", "-it", "--name", "shell", "bb", "sh")
	shown, code := e.driveOnPty(func(m, _ *os.File) {
		time.Sleep(500 * time.Millisecond)
		_, _ = m.WriteString("echo in-$((6*7))\n")
		time.Sleep(300 * time.Millisecond)
		_, _ = m.WriteString("\x10\x11")
	}, "attach", "shell")
	if code != 0 || !strings.Contains(shown, "in-42") {
		t.Errorf("attach -it: exit %d, terminal showed %q", code, shown)
	}
	if got := e.state("shell"); got != "running" {
		t.Errorf("after detaching the container is %q", got)
	}
	if r := e.nook(nil, "logs", "shell"); !strings.Contains(r.stdout, "in-42") {
		t.Errorf("logs of the tty container: %s", r)
	}
}
