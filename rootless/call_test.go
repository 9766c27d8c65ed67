package rootless

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCall serves exec sessions as init does and makes calls: a handler's
// output and status reach the caller, and a missing or panicking handler
// fails the call, not the server.
func TestCall(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "exec.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	f, err := l.File()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	h := Handlers{
		"upper": func(arg json.RawMessage, stdin, stdout, _ *os.File) int {
			b, _ := io.ReadAll(stdin)
			fmt.Fprintf(stdout, "%s %s", arg, strings.ToUpper(string(b)))
			return 3
		},
		"panic": func(json.RawMessage, *os.File, *os.File, *os.File) int { panic("boom") },
	}
	r := &reaper{waiters: map[int]chan int{}, early: map[int]int{}}
	go serveExec(f, r, h)
	call := func(name, arg, in string) (code int, out, errOut string, err error) {
		t.Helper()
		inR, inW, _ := os.Pipe()
		outR, outW, _ := os.Pipe()
		errR, errW, _ := os.Pipe()
		defer outR.Close()
		defer errR.Close()
		s, err := Exec(sock, ExecRequest{Call: &Call{Name: name, Arg: json.RawMessage(arg)}}, [3]*os.File{inR, outW, errW})
		inR.Close()
		outW.Close()
		errW.Close()
		if err != nil {
			inW.Close()
			return 0, "", "", err
		}
		_, _ = io.WriteString(inW, in)
		inW.Close()
		o, _ := io.ReadAll(outR)
		e, _ := io.ReadAll(errR)
		code, err = s.Wait()
		return code, string(o), string(e), err
	}
	for _, tc := range []struct {
		name, arg, in   string
		code            int
		stdout, stderr  string
		wantInitFailure bool
	}{
		{name: "upper", arg: `"x"`, in: "abc", code: 3, stdout: `"x" ABC`},
		{name: "panic", code: ExitSetupFailed, stderr: "call panic failed: boom\n"},
		{name: "nosuch", wantInitFailure: true},
		{name: "upper", arg: `1`, in: "again", code: 3, stdout: `1 AGAIN`}, // the server lives on
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut, err := call(tc.name, tc.arg, tc.in)
			var ie *InitError
			if tc.wantInitFailure {
				if !errors.As(err, &ie) || ie.Code != ExitSetupFailed || !strings.Contains(ie.Msg, "no call") {
					t.Fatalf("want an init error, got %v", err)
				}
				return
			}
			if err != nil || code != tc.code || out != tc.stdout || errOut != tc.stderr {
				t.Errorf("got code %d, stdout %q, stderr %q, err %v", code, out, errOut, err)
			}
		})
	}
}
