package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// keysSource calls add_key and keyctl, which Docker's seccomp profile
// blocks, and prints what each returned; busybox has no keyctl.
const keysSource = `package main

import (
	"fmt"
	"syscall"
	"unsafe"
)

func str(s string) uintptr {
	b, _ := syscall.BytePtrFromString(s)
	return uintptr(unsafe.Pointer(b))
}

func result(name string, e syscall.Errno) {
	if e == 0 {
		fmt.Println(name + ": ok")
		return
	}
	fmt.Println(name + ": " + e.Error())
}

func main() {
	payload := []byte("x")
	const processKeyring = ^uintptr(1) // KEY_SPEC_PROCESS_KEYRING, -2
	_, _, e := syscall.Syscall6(syscall.SYS_ADD_KEY, str("user"), str("nook"), uintptr(unsafe.Pointer(&payload[0])), 1, processKeyring, 0)
	result("add_key", e)
	_, _, e = syscall.Syscall(syscall.SYS_KEYCTL, 0, processKeyring, 1) // KEYCTL_GET_KEYRING_ID, create
	result("keyctl", e)
}
`

// buildKeys builds keysSource statically into a directory of its own.
func buildKeys(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "keys.go")
	if err := os.WriteFile(src, []byte(keysSource), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "keys"), src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building keys: %v\n%s", err, out)
	}
	return dir
}

// TestSeccomp: every container runs under Docker's default profile (its
// payload and its exec sessions), which blocks add_key and keyctl;
// unconfined lifts it; a profile file applies its own rules and shows in
// inspect; a broken one is one line naming the file.
func TestSeccomp(t *testing.T) {
	e := runEnv(t)
	status := func(args ...string) string {
		return strings.TrimSpace(e.ok(nil, append(append([]string{"run", "--rm"}, args...), "bb", "grep", "^Seccomp:", "/proc/self/status")...))
	}
	if got := status(); got != "Seccomp:\t2" {
		t.Errorf("default: %q, want a filter (Seccomp: 2)", got)
	}
	if got := status("-u", "1000"); got != "Seccomp:\t2" {
		t.Errorf("as uid 1000: %q, want a filter (Seccomp: 2)", got)
	}
	if got := status("--security-opt", "seccomp=unconfined"); got != "Seccomp:\t0" {
		t.Errorf("unconfined: %q, want no filter (Seccomp: 0)", got)
	}
	e.ok(nil, "run", "-d", "--name", "sc", "bb", "sleep", "1000")
	if got := strings.TrimSpace(e.ok(nil, "exec", "sc", "grep", "^Seccomp:", "/proc/self/status")); got != "Seccomp:\t2" {
		t.Errorf("exec: %q, want a filter (Seccomp: 2)", got)
	}
	if got := strings.TrimSpace(e.ok(nil, "inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "sc")); got != "null" {
		t.Errorf("inspect of the default profile: SecurityOpt %s, want null as Docker", got)
	}

	keys := buildKeys(t) + ":/keys:ro"
	if got, want := e.ok(nil, "run", "--rm", "-v", keys, "bb", "/keys/keys"), "add_key: operation not permitted\nkeyctl: operation not permitted\n"; got != want {
		t.Errorf("keys under the default profile:\n%s\nwant\n%s", got, want)
	}
	if got, want := e.ok(nil, "run", "--rm", "--security-opt", "seccomp=unconfined", "-v", keys, "bb", "/keys/keys"), "add_key: ok\nkeyctl: ok\n"; got != want {
		t.Errorf("keys unconfined:\n%s\nwant\n%s", got, want)
	}

	dir := t.TempDir()
	profile := filepath.Join(dir, "nomkdir.json")
	js := `{"defaultAction": "SCMP_ACT_ALLOW",
	  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}`
	if err := os.WriteFile(profile, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.nook(nil, "run", "--name", "own", "--security-opt", "seccomp="+profile, "bb", "mkdir", "/made")
	if r.code != 1 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("mkdir under a profile failing it with EACCES: %s", r)
	}
	if got := e.ok(nil, "inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "own"); !strings.Contains(got, `seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"`) ||
		!strings.Contains(got, `\"errnoRet\":13`) {
		t.Errorf("inspect of a profile file: SecurityOpt %s, want the profile", got)
	}
	if got := strings.TrimSpace(e.ok(nil, "run", "--rm", "--security-opt", "seccomp="+profile, "bb", "grep", "^Seccomp:", "/proc/self/status")); got != "Seccomp:\t2" {
		t.Errorf("profile file: %q, want a filter", got)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",,\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.nook(nil, "run", "--rm", "--security-opt", "seccomp="+bad, "bb", "true")
	if r.code != 125 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, bad) || !strings.Contains(r.stderr, "line 2") {
		t.Errorf("a profile with a syntax error: %s\nwant exit 125 and one line naming %s and its line", r, bad)
	}
	if strings.Contains(e.ok(nil, "ps", "-a"), "bad") {
		t.Error("a broken profile left a container")
	}
}
