package rootless

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// relocated is blob as the entry point sees it at address base: every
// slot the relocations name holds base plus its offset.
func relocated(t *testing.T, blob []byte, base uint64) []byte {
	t.Helper()
	out := append([]byte(nil), blob...)
	le := binary.LittleEndian
	n := le.Uint64(out)
	for i := range n {
		slot := le.Uint64(out[16+8*i:])
		if slot+8 > uint64(len(out)) || slot%8 != 0 {
			t.Fatalf("relocation %d: slot %d outside the blob of %d bytes or unaligned", i, slot, len(out))
		}
		le.PutUint64(out[slot:], le.Uint64(out[slot:])+base)
	}
	return out
}

// at reads a NUL-terminated string at address addr of blob at base.
func cstringAt(t *testing.T, blob []byte, base, addr uint64) string {
	t.Helper()
	if addr < base || addr >= base+uint64(len(blob)) {
		t.Fatalf("address %#x outside the blob at %#x", addr, base)
	}
	s := blob[addr-base:]
	return string(s[:bytes.IndexByte(s, 0)])
}

// TestProgramEncoding: ops are 64-byte records of number, flags and six
// arguments after the relocations; an argument that points into the data
// and the pointers inside the data (argv, envp, sock_fprog) are
// relocated, values are not.
func TestProgramEncoding(t *testing.T) {
	const base = 0x7f0000000000
	le := binary.LittleEndian
	var b program
	b.call(ProgramOp{What: "plain"}, opIgnore, unix.SYS_SETSID)
	b.call(ProgramOp{What: "values"}, 0, unix.SYS_SETRESUID, intArg(-1), val(7), val(8))
	b.call(ProgramOp{What: "exec", Exec: true}, 0, unix.SYS_EXECVE,
		ptr(b.cstring("/bin/sh")), ptr(b.strv([]string{"sh", "-c", "x"})), ptr(b.strv(nil)))
	prog := b.encode()
	if len(prog.Ops) != 3 || prog.Ops[2].What != "exec" {
		t.Fatalf("ops %v", prog.Ops)
	}
	blob := relocated(t, prog.Blob, base)
	if n := le.Uint64(blob[8:]); n != 3 {
		t.Fatalf("nops %d", n)
	}
	// 3 argument pointers, 3 argv pointers: 6 relocations.
	if n := le.Uint64(blob); n != 6 {
		t.Errorf("%d relocations, want 6", n)
	}
	opsAt := 16 + 8*le.Uint64(blob)
	op := func(i int) []uint64 {
		r := make([]uint64, 8)
		for j := range r {
			r[j] = le.Uint64(blob[opsAt+uint64(opSize*i)+uint64(8*j):])
		}
		return r
	}
	for i, tc := range []struct{ nr, flags, a0, a1, a2 uint64 }{
		{unix.SYS_SETSID, opIgnore, 0, 0, 0},
		{unix.SYS_SETRESUID, 0, ^uint64(0), 7, 8},
	} {
		if got := op(i); got[0] != tc.nr || got[1] != tc.flags || got[2] != tc.a0 || got[3] != tc.a1 || got[4] != tc.a2 {
			t.Errorf("op %d = %v, want %+v", i, got, tc)
		}
	}
	exec := op(2)
	if got := cstringAt(t, blob, base, exec[2]); got != "/bin/sh" {
		t.Errorf("execve path %q", got)
	}
	var argv []string
	for a := exec[3]; ; a += 8 {
		p := le.Uint64(blob[a-base:])
		if p == 0 {
			break
		}
		argv = append(argv, cstringAt(t, blob, base, p))
	}
	if len(argv) != 3 || argv[0] != "sh" || argv[2] != "x" {
		t.Errorf("argv %q", argv)
	}
	if envp := le.Uint64(blob[exec[4]-base:]); envp != 0 {
		t.Errorf("empty envp holds %#x", envp)
	}
}

// TestExecOps: the ops follow execPayload: the socket closed on exec,
// setsid (its failure ignored), the mask, the bounding set, ambient and
// inheritable sets, the filter, groups, gid, uid, directory, execve; the
// groups call left out where setgroups is denied; failures map to
// Docker's statuses.
func TestExecOps(t *testing.T) {
	filter := structBytes(&unix.SockFilter{Code: 6, K: 0x7fff0000})
	pr := payload{user: &user.ExecUser{Uid: 5, Gid: 6, Sgids: []int{7, 8}}, env: []string{"A=b"}, path: "/bin/true"}
	p := InitProcess{Args: []string{"true"}, Cwd: "/tmp", Caps: dockerCaps()}
	nrs := func(prog *ExecProgram) []uint64 {
		blob := prog.Blob
		le := binary.LittleEndian
		opsAt := 16 + 8*le.Uint64(blob)
		var out []uint64
		for i := range le.Uint64(blob[8:]) {
			out = append(out, le.Uint64(blob[opsAt+opSize*i:]))
		}
		return out
	}
	drops := len(capDrops(dockerCaps()))
	for _, tc := range []struct {
		name        string
		noSetgroups bool
		filter      []byte
		want        []uint64
	}{
		{"all", false, filter, []uint64{unix.SYS_SETGROUPS, unix.SYS_SETRESGID, unix.SYS_SETRESUID, unix.SYS_CHDIR, unix.SYS_EXECVE}},
		{"setgroups denied, no filter", true, nil, []uint64{unix.SYS_SETRESGID, unix.SYS_SETRESUID, unix.SYS_CHDIR, unix.SYS_EXECVE}},
	} {
		prog := execOps(p, pr, tc.filter, execFacts{noSetgroups: tc.noSetgroups, lastCap: lastCap()})
		got := nrs(prog)
		head := []uint64{unix.SYS_FCNTL, unix.SYS_SETSID, unix.SYS_RT_SIGPROCMASK}
		if !equal(got[:3], head) {
			t.Errorf("%s: ops start %v, want %v", tc.name, got[:3], head)
		}
		i := 3 + drops
		for _, nr := range got[3:i] {
			if nr != unix.SYS_PRCTL {
				t.Errorf("%s: %d capability drops expected, found %v", tc.name, drops, got)
				break
			}
		}
		if got[i] != unix.SYS_PRCTL || got[i+1] != unix.SYS_CAPSET {
			t.Errorf("%s: ambient and inheritable not cleared after the drops: %v", tc.name, got)
		}
		i += 2
		if tc.filter != nil {
			if got[i] != unix.SYS_SECCOMP {
				t.Errorf("%s: no seccomp before the ids: %v", tc.name, got)
			}
			i++
		}
		if !equal(got[i:], tc.want) {
			t.Errorf("%s: ops end %v, want %v", tc.name, got[i:], tc.want)
		}
		n := len(prog.Ops)
		for _, f := range []struct {
			op    int
			errno unix.Errno
			code  int
			msg   string
		}{
			{n - 1, unix.ENOENT, ExitNotFound, "starting true: no such file or directory"},
			{n - 1, unix.EACCES, ExitCannotExec, "starting true: permission denied"},
			{n - 2, unix.EACCES, ExitCannotExec, "working directory /tmp: permission denied"},
			{n - 3, unix.EPERM, ExitSetupFailed, "setting uid 5: operation not permitted"},
		} {
			err := prog.failure(f.op, f.errno)
			ie, ok := err.(*InitError)
			if !ok || ie.Code != f.code || ie.Msg != f.msg {
				t.Errorf("%s: op %d failing with %v: %v, want %d %q", tc.name, f.op, f.errno, err, f.code, f.msg)
			}
		}
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRootAt: names resolve in the container's root as in a chroot, the
// exec stage's view: absolute symbolic links and ".." stay inside; a
// missing file is no file, a lookup that fails otherwise is kept, for the
// Go stage to do it.
func TestRootAt(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"usr/bin", "etc", "outside"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "root")
	for _, l := range []struct{ name, target string }{
		{"root/bin", "/usr/bin"}, {"root/up", "../../.."}, {"root/etc", "/etc2"}, {"root/loop", "/loop"},
	} {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(dir, l.name)), 0o755)
		if err := os.Symlink(l.target, filepath.Join(dir, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"root/usr/bin/tool", "root/etc2/passwd", "usr/bin/hosttool"} {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name      string
		found     bool
		uncertain bool
	}{
		{"/bin/tool", true, false},
		{"bin/tool", true, false},
		{"/up/usr/bin/tool", true, false},      // .. stops at the root
		{"/up/usr/bin/hosttool", false, false}, // the host's is not seen
		{"/etc/passwd", true, false},           // an absolute link, inside
		{"/nosuch", false, false},
		{"/loop/x", false, true}, // a loop: the stage decides
	} {
		r, err := openRootAt(root)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Stat(tc.name)
		if (err == nil) != tc.found || (r.err != nil) != tc.uncertain {
			t.Errorf("Stat(%q): %v, kept %v; want found %v, kept %v", tc.name, err, r.err, tc.found, tc.uncertain)
		}
		r.Close()
	}
}
