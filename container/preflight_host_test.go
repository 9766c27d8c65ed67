package container

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name string
		in   string
		v2   string
		v1   map[string]string
	}{
		{"hybrid", "9:name=systemd:/\n4:memory:/process_api/bc\n2:cpu,cpuacct:/x\n0::/\n", "/",
			map[string]string{"name=systemd": "/", "memory": "/process_api/bc", "cpu": "/x", "cpuacct": "/x"}},
		{"unified", "0::/user.slice/user-1001.slice/session-3.scope\n",
			"/user.slice/user-1001.slice/session-3.scope", map[string]string{}},
		{"colon in path", "0::/a:b\n", "/a:b", map[string]string{}},
		{"no newline", "0::/x", "/x", map[string]string{}},
		{"legacy only", "3:pids:/p\n", "", map[string]string{"pids": "/p"}},
		{"garbage", "nonsense\n\n1:\n", "", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v2, v1 := parseProcCgroup([]byte(tt.in))
			if v2 != tt.v2 || !maps.Equal(v1, tt.v1) {
				t.Errorf("got %q %v, want %q %v", v2, v1, tt.v2, tt.v1)
			}
		})
	}
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte("9:name=systemd:/\n4:memory:/a\n0::/\n"))
	f.Add([]byte("0::/user.slice/x:y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v2, _ := parseProcCgroup(b)
		if v2 != "" && !strings.Contains(string(b), "0::"+v2) {
			t.Errorf("v2 path %q not in input", v2)
		}
	})
}

func TestCheckCgroupProcFixture(t *testing.T) {
	// The fixture has no cgroup mount: legacy, whatever the host has.
	h := fixtureHost(t, map[string]string{"/proc/self/cgroup": "0::/x\n"})
	if c := checkCgroup(h); c.Verdict != VerdictWarn || !strings.Contains(c.Detail, "v1 only") {
		t.Errorf("got %+v", c)
	}
}

func TestJudgeCgroup(t *testing.T) {
	all := []string{"cpuset", "cpu", "io", "memory", "pids"}
	tests := []struct {
		name    string
		f       cgroupFacts
		verdict Verdict
		want    string
	}{
		{"delegated", cgroupFacts{"unified", "/user.slice/u", true, all}, VerdictOK, "delegated: /user.slice/u is writable"},
		{"hybrid", cgroupFacts{"hybrid", "/", false, nil}, VerdictWarn, "hybrid cgroups"},
		{"legacy", cgroupFacts{"legacy", "", false, nil}, VerdictWarn, "cgroup v1 only"},
		{"not delegated", cgroupFacts{"unified", "/session.scope", false, all}, VerdictWarn, "not delegated"},
		{"no v2 line", cgroupFacts{"unified", "", false, nil}, VerdictWarn, "no v2 entry"},
		{"missing controllers", cgroupFacts{"unified", "/u", true, []string{"pids"}}, VerdictWarn, "without the cpu, memory controller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeCgroup(tt.f)
			if c.Verdict != tt.verdict || !strings.Contains(c.Detail, tt.want) {
				t.Errorf("got %+v, want %s with %q", c, tt.verdict, tt.want)
			}
			if c.Verdict == VerdictWarn && !strings.Contains(c.Action, "/proc") {
				t.Errorf("action %q does not say where stats come from", c.Action)
			}
		})
	}
	if c := judgeCgroup(cgroupFacts{mode: "hybrid"}); !strings.Contains(c.Action, "--memory, --cpus, --pids-limit") {
		t.Errorf("hybrid action %q does not name the unavailable limits", c.Action)
	}
}

// TestRuntimeDir: run and info resolve the runtime directory alike and
// name each problem with its remedy.
func TestRuntimeDir(t *testing.T) {
	euid := os.Geteuid()
	own := "nook-" + strconv.Itoa(euid)
	file := func(t *testing.T, p string) {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(t *testing.T, p string, mode os.FileMode) {
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		xdg     bool // XDG_RUNTIME_DIR is the fixture's x
		uid     int  // the caller, as resolveRuntimeDir sees it
		setup   func(t *testing.T, tmp, x string)
		dir     string // the runtime directory under the fixture
		problem string // "" when usable
		remedy  string
	}{
		{"xdg", true, euid, func(t *testing.T, _, x string) { mkdir(t, x, 0o700) }, "x/nook", "", ""},
		{"xdg made before", true, euid, func(t *testing.T, _, x string) { mkdir(t, x, 0o700); mkdir(t, x+"/nook", 0o700) }, "x/nook", "", ""},
		{"xdg missing, parent ours", true, euid, nil, "x/nook", "", ""},
		{"xdg is a file", true, euid, func(t *testing.T, _, x string) { file(t, x) }, "x/nook",
			"cannot create", "set XDG_RUNTIME_DIR to a directory of yours"},
		{"tmp fresh", false, euid, nil, own, "", ""},
		{"tmp ours", false, euid, func(t *testing.T, tmp, _ string) { mkdir(t, tmp+"/"+own, 0o700) }, own, "", ""},
		{"tmp open", false, euid, func(t *testing.T, tmp, _ string) { mkdir(t, tmp+"/"+own, 0o755) }, own,
			"is mode 0755, open to others", "chmod 0700"},
		{"tmp a file", false, euid, func(t *testing.T, tmp, _ string) { file(t, tmp+"/"+own) }, own,
			"is not a directory", "remove"},
		{"tmp a link", false, euid, func(t *testing.T, tmp, _ string) { _ = os.Symlink("/", tmp+"/"+own) }, own,
			"is not a directory", "remove"},
		{"tmp someone else's", false, euid + 1, func(t *testing.T, tmp, _ string) {
			mkdir(t, tmp+"/nook-"+strconv.Itoa(euid+1), 0o700)
		}, "nook-" + strconv.Itoa(euid+1), "belongs to uid " + strconv.Itoa(euid), "sudo rm -rf"},
	}
	for _, tt := range tests {
		for _, info := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/info=%v", tt.name, info), func(t *testing.T) {
				root := t.TempDir()
				x := filepath.Join(root, "x")
				if tt.setup != nil {
					tt.setup(t, root, x)
				}
				env := map[string]string{"TMPDIR": root}
				if tt.xdg {
					env["XDG_RUNTIME_DIR"] = x
				}
				getenv := func(k string) string { return env[k] }
				if info && tt.uid == euid {
					h := host{euid: tt.uid, getenv: getenv}
					c := checkRuntimeDir(h)
					if (c.Verdict == VerdictFail) != (tt.problem != "") || !strings.Contains(c.Detail, tt.problem) ||
						!strings.Contains(c.Remedy, tt.remedy) {
						t.Errorf("info's check %+v, want a problem %q with remedy %q", c, tt.problem, tt.remedy)
					}
				}
				dir, err := resolveRuntimeDir(getenv, tt.uid, tt.uid)
				if want := filepath.Join(root, tt.dir); dir != want {
					t.Errorf("dir = %s, want %s", dir, want)
				}
				var he *HostError
				switch {
				case tt.problem == "" && err != nil:
					t.Errorf("unexpected %v", err)
				case tt.problem != "" && (!errors.As(err, &he) || !strings.Contains(he.Problem, tt.problem) ||
					!strings.Contains(he.Remedy, tt.remedy) || !strings.Contains(err.Error(), "; remedy: "+he.Remedy)):
					t.Errorf("got %v, want a problem %q with remedy %q", err, tt.problem, tt.remedy)
				}
				if _, serr := os.Stat(dir); tt.problem == "" && serr != nil {
					t.Errorf("the runtime directory is not there: %v", serr)
				}
			})
		}
	}
}

func TestFsName(t *testing.T) {
	tests := []struct {
		magic int64
		want  string
	}{
		{0x6969, "nfs"}, {0x01021994, "tmpfs"}, {0x794c7630, "overlay"}, {0xef53, "ext4"},
		{0x58465342, "xfs"}, {0x9123683e, "btrfs"}, {0x2fc12fc1, "zfs"}, {0x1234, "file system 0x1234"},
	}
	for _, tt := range tests {
		if got := fsName(tt.magic); got != tt.want {
			t.Errorf("fsName(%#x) = %q, want %q", tt.magic, got, tt.want)
		}
	}
}

func TestJudgeStore(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name    string
		f       storeFacts
		verdict Verdict
		want    string
	}{
		{"ext4", storeFacts{root: "/s", checked: "/s", magic: unix.EXT4_SUPER_MAGIC, free: 80 * gib},
			VerdictOK, "/s on ext4, 80GiB free, user xattrs work"},
		{"absent", storeFacts{root: "/h/.local/share/nook", checked: "/h", magic: unix.XFS_SUPER_MAGIC, free: 9 * gib},
			VerdictOK, "not created yet; checked /h) on xfs"},
		{"nfs", storeFacts{root: "/s", checked: "/s", magic: unix.NFS_SUPER_MAGIC, free: 80 * gib},
			VerdictWarn, "nfs is a network file system"},
		{"no xattrs", storeFacts{root: "/s", checked: "/s", magic: 0x1234, free: 80 * gib, xattrErr: unix.EOPNOTSUPP},
			VerdictWarn, "user xattrs do not work"},
		{"full disk", storeFacts{root: "/s", checked: "/s", magic: unix.EXT4_SUPER_MAGIC, free: gib},
			VerdictWarn, "only 1GiB free"},
		{"statfs fails", storeFacts{root: "/s", checked: "/s", statErr: unix.EACCES}, VerdictWarn, "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeStore(tt.f)
			if c.Verdict != tt.verdict || !strings.Contains(c.Detail, tt.want) {
				t.Errorf("got %+v, want %s with %q", c, tt.verdict, tt.want)
			}
			if c.Verdict == VerdictWarn && !strings.Contains(c.Remedy, "--root") {
				t.Errorf("remedy %q does not suggest --root", c.Remedy)
			}
		})
	}
}

func TestCheckStoreCreatesNothing(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "share", "nook")
	if got := nearestExisting(root); got != base {
		t.Fatalf("nearestExisting = %q, want %q", got, base)
	}
	c := checkStore(root)
	if !strings.Contains(c.Detail, "checked "+base) {
		t.Errorf("detail %q does not name the ancestor checked", c.Detail)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Errorf("checkStore left %v in %s", ents, base)
	}
	if got := nearestExisting("/"); got != "/" {
		t.Errorf("nearestExisting(/) = %q", got)
	}
}

func TestParseFuseConf(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"user_allow_other\n", true},
		{"  user_allow_other  # yes\nmount_max = 1000\n", true},
		{"#user_allow_other\n", false},
		{"# user_allow_other - Using the allow_other mount option\n", false},
		{"user_allow_other_not\n", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := parseFuseConf([]byte(tt.in)); got != tt.want {
			t.Errorf("parseFuseConf(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseFuseConf(f *testing.F) {
	f.Add([]byte("user_allow_other\n#mount_max = 1000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if parseFuseConf(b) && !strings.Contains(string(b), "user_allow_other") {
			t.Error("allowed without the option")
		}
	})
}

func TestCheckFusermountFixture(t *testing.T) {
	h := fixtureHost(t, map[string]string{
		"/usr/bin/fusermount3": "#!",
		"/etc/fuse.conf":       "user_allow_other\n",
	})
	c := checkFusermount(h)
	if !strings.Contains(c.Detail, "user_allow_other is set") || !strings.Contains(c.Detail, h.path("/usr/bin/fusermount3")) {
		t.Errorf("got %+v", c)
	}
	// Not setuid root: info with a remedy.
	if c.Verdict != VerdictInfo || c.Remedy == "" {
		t.Errorf("non-setuid fusermount3: %+v", c)
	}
}

func TestJudgeFusermount(t *testing.T) {
	suid := os.FileMode(unix.S_ISUID | 0o755)
	tests := []struct {
		name       string
		path       string
		mode       os.FileMode
		allowOther bool
		confErr    error
		verdict    Verdict
		want       string
	}{
		{"good", "/usr/bin/fusermount3", suid, true, nil, VerdictOK, "setuid root"},
		{"no allow_other", "/usr/bin/fusermount3", suid, false, nil, VerdictOK, "visible to you only"},
		{"missing", "", 0, false, nil, VerdictInfo, "not installed"},
		{"conf unreadable", "/usr/bin/fusermount3", suid, false, errors.New("permission denied"), VerdictOK, "reading /etc/fuse.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeFusermount(tt.path, tt.mode, 0, tt.allowOther, tt.confErr)
			if c.Verdict != tt.verdict || !strings.Contains(c.Detail, tt.want) {
				t.Errorf("got %+v, want %s with %q", c, tt.verdict, tt.want)
			}
		})
	}
}

func TestKernelVersion(t *testing.T) {
	tests := []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"6.18.44-fc-v769", 6, 18, true},
		{"4.18.0-553.el8_10.x86_64", 4, 18, true},
		{"5.10", 5, 10, true},
		{"6.1-rc3", 6, 1, true},
		{"unknown", 0, 0, false},
		{"6", 6, 0, false},
	}
	for _, tt := range tests {
		ma, mi, ok := kernelVersion(tt.in)
		if ok != tt.ok || ok && (ma != tt.major || mi != tt.minor) {
			t.Errorf("kernelVersion(%q) = %d %d %v", tt.in, ma, mi, ok)
		}
	}
}

func TestJudgeKernel(t *testing.T) {
	tests := []struct {
		name    string
		release string
		euid    int
		inNS    bool
		verdict Verdict
		want    string
	}{
		{"user", "6.18.44", 1001, false, VerdictOK, "Linux 6.18.44, running as u (uid 1001)"},
		{"root", "6.18.44", 0, false, VerdictWarn, "real ids"},
		{"namespace root", "6.18.44", 0, true, VerdictInfo, "uid 0 of a user namespace, not the host's root"},
		{"old", "4.15.0", 1001, false, VerdictFail, "need Linux 4.18"},
		{"unparsable", "weird", 1001, false, VerdictOK, "Linux weird"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeKernel(tt.release, tt.euid, "u", tt.inNS)
			if c.Verdict != tt.verdict || !strings.Contains(c.Detail+c.Action, tt.want) {
				t.Errorf("got %+v, want %s with %q", c, tt.verdict, tt.want)
			}
		})
	}
}
