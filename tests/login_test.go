package tests

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// oneLine fails the test unless r failed with exit 125 and one line on
// stderr containing every want.
func oneLine(t *testing.T, r result, want ...string) {
	t.Helper()
	msg := strings.TrimSpace(r.stderr)
	if r.code != 125 || msg == "" || strings.Contains(msg, "\n") {
		t.Fatalf("want exit 125 and one line on stderr, got %s", r)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("stderr %q lacks %q", msg, w)
		}
	}
}

// readAuthFile returns the auth file's keys and its auths entries,
// failing unless it is mode 0600.
func readAuthFile(t *testing.T, path string) (map[string]json.RawMessage, map[string]struct{ Auth string }) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, data)
	}
	var auths map[string]struct{ Auth string }
	if err := json.Unmarshal(top["auths"], &auths); err != nil {
		t.Fatalf("%s auths: %v", path, err)
	}
	return top, auths
}

// TestLoginLogout: login checks the password against a TLS registry with
// htpasswd, saves it in Docker's config.json (0600, every other key kept)
// where a wrong password changes nothing, and logout removes only it.
func TestLoginLogout(t *testing.T) {
	reg := startRegistry(t, true)
	e := newEnv(t)
	e.trust(reg)
	cfg := filepath.Join(e.home, "docker", "config.json")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	other := base64.StdEncoding.EncodeToString([]byte("someone:else"))
	writeFile(t, cfg, `{"auths":{"other.example":{"auth":"`+other+`"}},"psFormat":"table {{.ID}}","HttpHeaders":{"X-Test":"1"}}`)

	out := e.ok([]byte(reg.Password+"\n"), "login", "-u", reg.User, "--password-stdin", reg.Host)
	if strings.TrimSpace(out) != "Login Succeeded" {
		t.Errorf("login printed %q", out)
	}
	top, auths := readAuthFile(t, cfg)
	if got, want := auths[reg.Host].Auth, base64.StdEncoding.EncodeToString([]byte(reg.User+":"+reg.Password)); got != want {
		t.Errorf("auths[%s] = %q, want %q", reg.Host, got, want)
	}
	if auths["other.example"].Auth != other || string(top["psFormat"]) != `"table {{.ID}}"` || string(top["HttpHeaders"]) == "" {
		t.Errorf("login lost keys it does not own: %v", top)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(e.home, "docker", "*")); len(leftovers) != 1 {
		t.Errorf("temporary files left beside config.json: %v", leftovers)
	}

	r := e.nook([]byte("wrong\n"), "login", "-u", reg.User, "--password-stdin", reg.Host)
	oneLine(t, r, reg.Host, "incorrect username or password")
	if _, auths := readAuthFile(t, cfg); auths[reg.Host].Auth == "" {
		t.Error("a refused login removed the saved credentials")
	}

	out = e.ok(nil, "logout", reg.Host)
	if strings.TrimSpace(out) != "Removing login credentials for "+reg.Host {
		t.Errorf("logout printed %q", out)
	}
	top, auths = readAuthFile(t, cfg)
	if _, ok := auths[reg.Host]; ok {
		t.Errorf("logout kept %s's credentials", reg.Host)
	}
	if auths["other.example"].Auth != other || string(top["psFormat"]) != `"table {{.ID}}"` {
		t.Errorf("logout lost keys it does not own: %v", top)
	}
	if out := e.ok(nil, "logout", reg.Host); strings.TrimSpace(out) != "Not logged in to "+reg.Host {
		t.Errorf("second logout printed %q", out)
	}
}

// TestLoginAuthFile: --authfile is where login writes and logout removes;
// Docker's config is left alone. -p works, with Docker's warning.
func TestLoginAuthFile(t *testing.T) {
	reg := startRegistry(t, true)
	e := newEnv(t)
	e.trust(reg)
	file := filepath.Join(e.home, "auth.json")
	r := e.nook(nil, "login", "-u", reg.User, "-p", reg.Password, "--authfile", file, reg.Host)
	if r.code != 0 || !strings.Contains(r.stderr, "--password-stdin") {
		t.Fatalf("login -p: %s", r)
	}
	if _, auths := readAuthFile(t, file); auths[reg.Host].Auth == "" {
		t.Errorf("--authfile %s holds no credentials for %s", file, reg.Host)
	}
	if _, err := os.Stat(filepath.Join(e.home, "docker", "config.json")); err == nil {
		t.Error("login --authfile wrote Docker's config.json too")
	}
	e.ok(nil, "logout", "--authfile", file, reg.Host)
	if _, auths := readAuthFile(t, file); auths[reg.Host].Auth != "" {
		t.Errorf("logout --authfile kept the credentials")
	}
}

// TestLoginUnknownAuthority: a registry whose CA nook does not hold is one
// line naming the certs.d file where the CA goes; --tls-verify=false gets
// through; the CA put there gets through too.
func TestLoginUnknownAuthority(t *testing.T) {
	reg := startRegistry(t, true)
	e := newEnv(t)
	stdin := []byte(reg.Password)
	r := e.nook(stdin, "login", "-u", reg.User, "--password-stdin", reg.Host)
	oneLine(t, r, "unknown authority", filepath.Join(e.certsDir(reg), "ca.crt"))
	e.ok(stdin, "login", "-u", reg.User, "--password-stdin", "--tls-verify=false", reg.Host)
	e.trust(reg)
	e.ok(stdin, "login", "-u", reg.User, "--password-stdin", reg.Host)
}

// TestLoginUnreachable: nothing listening is one line naming the host.
func TestLoginUnreachable(t *testing.T) {
	e := newEnv(t)
	host := freeLoopbackPort(t)
	r := e.nook([]byte("x"), "login", "-u", "x", "--password-stdin", host)
	oneLine(t, r, "cannot reach "+host)
}

// TestLoginPrompts: on a terminal login asks for the username, then the
// password without echoing it, as Docker does.
func TestLoginPrompts(t *testing.T) {
	reg := startRegistry(t, true)
	e := newEnv(t)
	file := filepath.Join(e.home, "auth.json")
	m, s := openPty(t, 24, 80)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nookBin, "login", "--tls-verify=false", "--authfile", file, reg.Host)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var shown bytes.Buffer
	waitFor := func(prompt string) {
		t.Helper()
		buf := make([]byte, 256)
		for !strings.HasSuffix(shown.String(), prompt) {
			n, err := m.Read(buf)
			shown.Write(buf[:n])
			if err != nil {
				t.Fatalf("waiting for %q: %v; the terminal showed %q", prompt, err, shown.String())
			}
		}
	}
	waitFor("Username: ")
	_, _ = m.WriteString(reg.User + "\n")
	waitFor("Password: ")
	// As Docker, nook prints the prompt, then turns echo off: type once
	// the terminal says it is off (a master shows its slave's settings).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		tio, err := unix.IoctlGetTermios(int(m.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("echo stayed on for the password")
		}
	}
	_, _ = m.WriteString(reg.Password + "\n")
	rest, _ := io.ReadAll(m) // EIO once nook exits
	shown.Write(rest)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("login on a terminal: %v; it showed %q", err, shown.String())
	}
	if !strings.Contains(shown.String(), "Login Succeeded") || strings.Contains(shown.String(), reg.Password) {
		t.Errorf("the terminal showed %q: want Login Succeeded and no password", shown.String())
	}
	if _, auths := readAuthFile(t, file); auths[reg.Host].Auth == "" {
		t.Errorf("no credentials saved for %s", reg.Host)
	}
}
