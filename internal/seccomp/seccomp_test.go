package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// call is one syscall as the kernel hands it to the filter.
type call struct {
	name string
	arch uint32 // 0: native
	bit  uint32 // or'ed into the number (x32)
	args []uint64
}

// run evaluates filter on c with x/net/bpf's interpreter. The VM loads
// words big-endian where the kernel loads them in native (little-endian)
// order, so each word of seccomp_data is written big-endian at its
// native place.
func run(t *testing.T, filter []unix.SockFilter, c call) Action {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(filter))
	for i, f := range filter {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("loading filter: %v", err)
	}
	nr, ok := Number(c.name)
	if !ok {
		t.Fatalf("no syscall %s", c.name)
	}
	arch := c.arch
	if arch == 0 {
		arch = auditArch
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[offNr:], nr|c.bit)
	binary.BigEndian.PutUint32(data[offArch:], arch)
	for i, v := range c.args {
		binary.BigEndian.PutUint32(data[offArgs+8*i:], uint32(v))
		binary.BigEndian.PutUint32(data[offArgs+8*i+4:], uint32(v>>32))
	}
	out, err := vm.Run(data)
	if err != nil {
		t.Fatalf("running filter: %v", err)
	}
	return Action(uint32(out))
}

func TestDefaultProfile(t *testing.T) {
	plain, err := Compile(Default(), dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := Compile(Default(), append(dockerCaps, "CAP_SYS_ADMIN"))
	if err != nil {
		t.Fatal(err)
	}
	eperm, enosys := Errno(unix.EPERM), Errno(unix.ENOSYS)
	tests := []struct {
		what   string
		filter []unix.SockFilter
		c      call
		want   Action
	}{
		{"read is allowed", plain, call{name: "read"}, Allow},
		{"keyctl is blocked", plain, call{name: "keyctl"}, eperm},
		{"add_key is blocked", plain, call{name: "add_key"}, eperm},
		{"x32 calls fail", plain, call{name: "read", bit: 0x40000000}, enosys},
		{"foreign arch fails", plain, call{name: "read", arch: unix.AUDIT_ARCH_I386}, enosys},
		{"personality(PER_LINUX)", plain, call{name: "personality", args: []uint64{0}}, Allow},
		{"personality(UNAME26|PER_LINUX32)", plain, call{name: "personality", args: []uint64{0x20008}}, Allow},
		{"personality(other)", plain, call{name: "personality", args: []uint64{5}}, eperm},
		{"personality(query)", plain, call{name: "personality", args: []uint64{0xffffffff}}, Allow},
		{"personality(0 in the high word)", plain, call{name: "personality", args: []uint64{1 << 32}}, eperm},
		{"clone of a thread", plain, call{name: "clone", args: []uint64{unix.CLONE_VM | unix.CLONE_THREAD}}, Allow},
		{"clone of a user ns", plain, call{name: "clone", args: []uint64{unix.CLONE_NEWUSER}}, eperm},
		{"clone of a user ns, CAP_SYS_ADMIN", admin, call{name: "clone", args: []uint64{unix.CLONE_NEWUSER}}, Allow},
		{"clone3 says ENOSYS", plain, call{name: "clone3"}, enosys},
		{"clone3, CAP_SYS_ADMIN", admin, call{name: "clone3"}, Allow},
		{"mount", plain, call{name: "mount"}, eperm},
		{"mount, CAP_SYS_ADMIN", admin, call{name: "mount"}, Allow},
		{"socket(AF_INET)", plain, call{name: "socket", args: []uint64{unix.AF_INET}}, Allow},
		{"socket(AF_UNIX)", plain, call{name: "socket", args: []uint64{unix.AF_UNIX}}, Allow},
		{"socket(AF_AX25) is gone", plain, call{name: "socket", args: []uint64{unix.AF_AX25}}, eperm},
		{"socket(AF_INET, high word set)", plain, call{name: "socket", args: []uint64{1<<32 | unix.AF_INET}}, eperm},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			if got := run(t, tt.filter, tt.c); got != tt.want {
				t.Errorf("%s%v = %#x, want %#x", tt.c.name, tt.c.args, got, tt.want)
			}
		})
	}
}

// TestOperators checks each comparison on both halves of the argument.
func TestOperators(t *testing.T) {
	const v = 0x0000_0005_0000_0010
	ops := map[string][]struct {
		arg  uint64
		hits bool
	}{
		"SCMP_CMP_EQ": {{v, true}, {v + 1, false}, {0x10, false}, {0x6_0000_0010, false}},
		"SCMP_CMP_NE": {{v, false}, {v + 1, true}, {0x10, true}},
		"SCMP_CMP_GT": {{v, false}, {v + 1, true}, {0x6_0000_0000, true}, {0x4_ffff_ffff, false}, {v - 1, false}},
		"SCMP_CMP_GE": {{v, true}, {v + 1, true}, {0x4_ffff_ffff, false}, {v - 1, false}, {0x6_0000_0000, true}},
		"SCMP_CMP_LT": {{v, false}, {v - 1, true}, {0x4_ffff_ffff, true}, {0x5_ffff_ffff, false}, {0x6_0000_0000, false}},
		"SCMP_CMP_LE": {{v, true}, {v - 1, true}, {v + 1, false}, {0x6_0000_0000, false}, {0x4_ffff_ffff, true}},
		// value is the mask, valueTwo what the masked bits must equal.
		"SCMP_CMP_MASKED_EQ": {{0x1_0000_0002, true}, {0x1_0000_0003, true}, {0x1_0000_0000, false}, {0x2, false}},
	}
	for op, cases := range ops {
		value, two := uint64(v), uint64(0)
		if op == "SCMP_CMP_MASKED_EQ" {
			value, two = 0x1_0000_0002, 0x1_0000_0002
		}
		js := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":7,
			"args":[{"index":2,"value":` + itoa(value) + `,"valueTwo":` + itoa(two) + `,"op":"` + op + `"}]}]}`
		p, err := Parse([]byte(js), op)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Compile(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			want := Allow
			if c.hits {
				want = Errno(7)
			}
			if got := run(t, f, call{name: "getpid", args: []uint64{0, 0, c.arg}}); got != want {
				t.Errorf("%s %#x against %#x = %#x, want %#x", op, c.arg, value, got, want)
			}
		}
	}
}

func itoa(v uint64) string { b, _ := json.Marshal(v); return string(b) }

func TestRules(t *testing.T) {
	// Two conditions on one index are alternatives; two indexes are both
	// required; a name this arch lacks is skipped; caller rules win.
	p, err := Parse([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
		{"names":["getpid","chown32","chown"],"action":"SCMP_ACT_ALLOW"},
		{"names":["dup"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
		{"names":["dup2"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
		{"names":["kill"],"action":"SCMP_ACT_KILL_PROCESS","excludes":{"caps":["CAP_KILL"]}},
		{"names":["kill"],"action":"SCMP_ACT_LOG","includes":{"caps":["CAP_KILL"],"minKernel":"3.0","arches":["`+"amd64\",\"arm64"+`"]}}]}`), "rules")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Compile(p, []string{"CAP_KILL"},
		Rule{Names: []string{"chown", "fchown", "lchown32"}, Action: UserNotif},
		Rule{Names: []string{"setuid"}, Action: Errno(0)})
	if err != nil {
		t.Fatal(err)
	}
	eperm := Errno(unix.EPERM)
	tests := []struct {
		c    call
		want Action
	}{
		{call{name: "getpid"}, Allow},
		{call{name: "getppid"}, eperm},
		{call{name: "dup", args: []uint64{1}}, Allow},
		{call{name: "dup", args: []uint64{2}}, Allow},
		{call{name: "dup", args: []uint64{3}}, eperm},
		{call{name: "dup2", args: []uint64{1, 2}}, Allow},
		{call{name: "dup2", args: []uint64{1, 3}}, eperm},
		{call{name: "kill"}, Log},
		{call{name: "chown"}, UserNotif},
		{call{name: "fchown"}, UserNotif},
		{call{name: "setuid"}, Errno(0)},
	}
	for _, tt := range tests {
		if got := run(t, f, tt.c); got != tt.want {
			t.Errorf("%s%v = %#x, want %#x", tt.c.name, tt.c.args, got, tt.want)
		}
	}
}

func TestBadProfiles(t *testing.T) {
	tests := []struct{ what, js, want string }{
		{"syntax", "{\n\"defaultAction\": \"SCMP_ACT_ALLOW\",,\n}", "line 2"},
		{"no default", `{"syscalls":[]}`, "no defaultAction"},
		{"trailing", `{"defaultAction":"SCMP_ACT_ALLOW"} {}`, "data after"},
		{"bad action", `{"defaultAction":"SCMP_ACT_MAYBE"}`, "unknown action"},
		{"bad op", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"op":"SCMP_CMP_ISH"}]}]}`, "unknown operator"},
		{"bad index", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"op":"SCMP_CMP_EQ"}]}]}`, "index 6"},
		{"name and names", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ERRNO"}]}`, "both name and names"},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "profile.json")
			if err := os.WriteFile(path, []byte(tt.js), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := Load(path)
			if err == nil {
				_, err = Compile(p, nil)
			}
			if err == nil || !errors.Is(err, ErrProfile) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an ErrProfile saying %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error is more than one line: %q", err)
			}
			if tt.what == "syntax" && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	def, _ := json.Marshal(Default())
	f.Add(def)
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":3,"valueTwo":1,"op":"SCMP_CMP_MASKED_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[{"name":"kill","action":"SCMP_ACT_ALLOW","includes":{"minKernel":"5.4"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		filter, err := Compile(p, dockerCaps)
		if err != nil {
			return
		}
		if len(filter) == 0 || len(filter) > unix.BPF_MAXINSNS {
			t.Fatalf("filter of %d instructions", len(filter))
		}
		run(t, filter, call{name: "read"})
	})
}

// BenchmarkDefault is what init spends on the filter of every container:
// Docker's profile built, compiled and checked (Install is one syscall).
func BenchmarkDefault(b *testing.B) {
	for b.Loop() {
		if _, err := Compile(Default(), dockerCaps); err != nil {
			b.Fatal(err)
		}
	}
}
