package container

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestParseVolume(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want MountSpec
		err  string
	}{
		{in: "/h:/c", want: MountSpec{Type: "bind", Source: "/h", Target: "/c"}},
		{in: "/h:/c:ro", want: MountSpec{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true}},
		{in: "/h:/c:rw,z", want: MountSpec{Type: "bind", Source: "/h", Target: "/c"}},
		{in: "name:/c", want: MountSpec{Type: "volume", Source: "name", Target: "/c"}},
		{in: "data.1:/c:ro,nocopy", want: MountSpec{Type: "volume", Source: "data.1", Target: "/c", ReadOnly: true, NoCopy: true}},
		{in: "a:/c", err: "two characters"},
		{in: "v$x:/c", err: "are allowed"},
		{in: "./src:/c", want: MountSpec{Type: "bind", Source: wd + "/src", Target: "/c"}},
		{in: ".:/c:ro", want: MountSpec{Type: "bind", Source: wd, Target: "/c", ReadOnly: true}},
		{in: "../x/:/c", want: MountSpec{Type: "bind", Source: filepath.Dir(wd) + "/x", Target: "/c"}},
		{in: "/h:c", err: "not absolute"},
		{in: "/h:/", err: "over /"},
		{in: "/h", want: MountSpec{Type: "volume", Target: "/h", Anonymous: true}},
		{in: "h", err: "want HOST-PATH"},
		{in: "/proc/x", err: "inside /proc"},
		{in: "/h:/c:bogus", err: "unknown option"},
		{in: "/a:/b:ro:x", err: "want HOST-PATH"},
		// Over the container's own proc and sys, or inside proc, as runc's
		// checkProcMount refuses; lxcfs's files are allowed.
		{in: "/h:/proc", err: "/proc is the container's own"},
		{in: "/h:/proc/", err: "/proc is the container's own"},
		{in: "/h:/sys:ro", err: "/sys is the container's own"},
		{in: "/h:/proc/sys", err: "/proc/sys is inside /proc"},
		{in: "/h:/proc/self/../1/root", err: "inside /proc"},
		{in: "/h:/proc/meminfo", want: MountSpec{Type: "bind", Source: "/h", Target: "/proc/meminfo"}},
		{in: "/h:/sys/fs/cgroup", want: MountSpec{Type: "bind", Source: "/h", Target: "/sys/fs/cgroup"}},
		{in: "/h:/procfs", want: MountSpec{Type: "bind", Source: "/h", Target: "/procfs"}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseVolume(tc.in)
			checkSpec(t, got, err, tc.want, tc.err)
		})
	}
}

func TestParseMount(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want MountSpec
		err  string
	}{
		{in: "type=bind,source=/h,target=/c,readonly", want: MountSpec{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true}},
		{in: "type=bind,src=/h,dst=/c,ro=false", want: MountSpec{Type: "bind", Source: "/h", Target: "/c"}},
		{in: "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777", want: MountSpec{Type: "tmpfs", Target: "/t", Options: []string{"nosuid", "nodev", "size=1m", "mode=1777"}}},
		{in: `type=bind,"source=/a,b",target=/c`, want: MountSpec{Type: "bind", Source: "/a,b", Target: "/c"}},
		{in: "type=volume,source=vol,target=/c", want: MountSpec{Type: "volume", Source: "vol", Target: "/c"}},
		{in: "type=volume,src=vol,dst=/c,volume-nocopy,ro", want: MountSpec{Type: "volume", Source: "vol", Target: "/c", ReadOnly: true, NoCopy: true}},
		{in: "type=volume,target=/c", want: MountSpec{Type: "volume", Target: "/c", Anonymous: true}},
		{in: "type=volume,source=../x,target=/c", err: "are allowed"},
		{in: "type=npipe,source=x,target=/c", err: "not supported"},
		{in: "source=/h,target=/c", err: "are allowed"}, // type defaults to volume
		{in: "src=vol,target=/c", want: MountSpec{Type: "volume", Source: "vol", Target: "/c"}},
		{in: "type=tmpfs,source=/x,target=/t", err: "no source"},
		{in: "type=tmpfs,target=/t,tmpfs-mode=abc", err: "not octal"},
		{in: "type=bind,source=rel,target=/c", want: MountSpec{Type: "bind", Source: wd + "/rel", Target: "/c"}},
		{in: "type=bind,target=/c", err: "needs a source"},
		{in: "type=bind,source=/h,target=/c,foo=bar", err: "unknown key"},
		{in: "type=bind,source=/h,target=/proc", err: "/proc is the container's own"},
		{in: "type=tmpfs,target=/sys", err: "/sys is the container's own"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMount(tc.in)
			checkSpec(t, got, err, tc.want, tc.err)
		})
	}
}

func TestParseTmpfs(t *testing.T) {
	got, err := ParseTmpfs("/run:size=1m,noexec,ro")
	checkSpec(t, got, err, MountSpec{Type: "tmpfs", Target: "/run", ReadOnly: true,
		Options: []string{"nosuid", "nodev", "size=1m", "noexec"}}, "")
	_, err = ParseTmpfs("run")
	checkSpec(t, MountSpec{}, err, MountSpec{}, "not absolute")
}

func checkSpec(t *testing.T, got MountSpec, err error, want MountSpec, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseEnvFile(t *testing.T) {
	in := "# comment\n\nA=1\n  B=two words  \nC\nD=\nE=x=y\n"
	got, err := ParseEnvFile(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "B=two words  ", "C", "D=", "E=x=y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"=x\n", "A B=1\n"} {
		if _, err := ParseEnvFile(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseEnvFile(%q) accepted a bad line", bad)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"KILL": syscall.SIGKILL, "sigterm": syscall.SIGTERM,
		"SIGUSR1": syscall.SIGUSR1, "9": syscall.SIGKILL, "hup": syscall.SIGHUP} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65", "NOPE", "-1"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) succeeded", bad)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	t.Setenv("NOOK_FROM_CALLER", "c")
	got := mergeEnv([]string{"PATH=/bin", "A=img"}, []string{"A=flag", "B=2", "NOOK_FROM_CALLER", "NOOK_UNSET_X"})
	want := []string{"PATH=/bin", "A=flag", "B=2", "NOOK_FROM_CALLER=c"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzParseVolume(f *testing.F) {
	for _, s := range []string{"/h:/c", "/h:/c:ro", "a:b:c:d", ":", "/:/:rw,z", "vol:/c:nocopy", "..:/c", "v/x:/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseVolume(s)
		if err == nil && (!strings.HasPrefix(m.Target, "/") || !validMountSource(m)) {
			t.Errorf("ParseVolume(%q) accepted a relative path or a volume name that is a path: %+v", s, m)
		}
	})
}

func FuzzParseMount(f *testing.F) {
	for _, s := range []string{"type=bind,source=/h,target=/c", "type=tmpfs,target=/t,tmpfs-size=1m", `"a`, ",,,", "src=v1,dst=/d,volume-nocopy", "type=volume,src=..,dst=/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMount(s)
		if err == nil && (m.Type != "bind" && m.Type != "tmpfs" && m.Type != "volume" || !strings.HasPrefix(m.Target, "/") || !validMountSource(m)) {
			t.Errorf("ParseMount(%q) = %+v", s, m)
		}
	})
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add("A=1\n# c\nB\n")
	f.Add("  =x\n")
	f.Fuzz(func(t *testing.T, s string) {
		env, err := ParseEnvFile(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			if k == "" || strings.ContainsAny(k, " \t\n") {
				t.Errorf("ParseEnvFile(%q) gave variable %q", s, kv)
			}
		}
	})
}

// validMountSource: a bind's source is absolute; a volume's is a name that
// stays one directory of the store's volumes.
func validMountSource(m MountSpec) bool {
	switch m.Type {
	case "bind":
		return strings.HasPrefix(m.Source, "/")
	case "volume":
		return m.Source != "" && m.Source != "." && m.Source != ".." && !strings.ContainsAny(m.Source, "/\x00")
	}
	return true
}
