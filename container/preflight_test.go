package container

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nook/internal/testutil"
	"nook/rootless"
)

// TestMain lets the test binary serve the probe stages it re-executes.
func TestMain(m *testing.M) {
	if code, ok := rootless.Dispatch(map[string]func() int{StageProbeUserNS: ProbeUserNS}); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// fixtureHost returns a host rooted at a temp dir holding files.
func fixtureHost(t *testing.T, files map[string]string) host {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return host{root: root, euid: 1001, egid: 1001, getenv: func(string) string { return "" }}
}

func TestPreflightOnThisHost(t *testing.T) {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	testutil.Require(t, err == nil, fmt.Sprintf("/dev/fuse: %v", err))
	f.Close()
	maps, err := rootless.CurrentIDMaps()
	testutil.Require(t, err == nil && maps.Full, fmt.Sprintf("subordinate ids: %v %s", err, maps.Why))
	store := filepath.Join(t.TempDir(), "not", "yet")
	start := time.Now()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	checks := Preflight(context.Background(), PreflightOptions{StoreRoot: store, Logger: log})
	t.Logf("preflight took %v", time.Since(start))
	byName := map[string]Check{}
	for _, c := range checks {
		t.Logf("%-17s %-5s %s | %s | %s", c.Name, c.Verdict, c.Detail, c.Action, c.Remedy)
		if c.Name == "" || c.Detail == "" {
			t.Errorf("check without name or detail: %+v", c)
		}
		if !slices.Contains([]Verdict{VerdictOK, VerdictInfo, VerdictWarn, VerdictFail}, c.Verdict) {
			t.Errorf("%s: verdict %q", c.Name, c.Verdict)
		}
		if (c.Verdict == VerdictWarn || c.Verdict == VerdictFail) && c.Action == "" {
			t.Errorf("%s: %s without saying what nook does", c.Name, c.Verdict)
		}
		if _, dup := byName[c.Name]; dup {
			t.Errorf("check %q made twice", c.Name)
		}
		byName[c.Name] = c
	}
	wantNames := []string{"/dev/fuse", "user namespaces", "newuidmap", "subordinate ids", "kernel overlayfs",
		"cgroups", "runtime dir", "store filesystem", "fusermount3", "kernel and user",
	}
	for _, name := range wantNames {
		if _, ok := byName[name]; !ok {
			t.Errorf("no check %q", name)
		}
	}
	for name := range byName {
		if !slices.Contains(wantNames, name) {
			t.Errorf("unexpected check %q", name)
		}
	}
	want := map[string]Verdict{
		"/dev/fuse":        VerdictOK,
		"user namespaces":  VerdictOK,
		"kernel overlayfs": VerdictOK, // Linux 6.6+: tmpfs has user xattrs
		"subordinate ids":  VerdictOK,
		"newuidmap":        VerdictOK,
	}
	if os.Geteuid() == 0 {
		// Real root maps real ids and needs no helpers.
		want["subordinate ids"], want["newuidmap"] = VerdictInfo, VerdictInfo
	}
	for name, v := range want {
		if got := byName[name].Verdict; got != v {
			t.Errorf("%s: verdict %q, want %q (%s)", name, got, v, byName[name].Detail)
		}
	}
	// All the user's uids: its own and every subordinate range (a user
	// may have more than one).
	mapped := 0
	for _, m := range maps.UIDs {
		mapped += m.Size
	}
	if os.Geteuid() != 0 && !strings.Contains(byName["user namespaces"].Detail, fmt.Sprintf("%d uids", mapped)) {
		t.Errorf("userns probe did not map the %d uids of the full map: %s", mapped, byName["user namespaces"].Detail)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(store))); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(filepath.Dir(store))); len(ents) != 0 {
		t.Errorf("preflight left %d entries beside the absent store", len(ents))
	}
}

func TestJudgeFUSE(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		mode    fs.FileMode
		verdict Verdict
		remedy  string
	}{
		{"opens", nil, 0o666, VerdictOK, ""},
		{"missing", &fs.PathError{Op: "open", Path: "/dev/fuse", Err: unix.ENOENT}, 0, VerdictFail, "modprobe fuse"},
		{"0600", &fs.PathError{Op: "open", Path: "/dev/fuse", Err: unix.EACCES}, 0o600, VerdictFail, "chmod 0666 /dev/fuse"},
		{"other", &fs.PathError{Op: "open", Path: "/dev/fuse", Err: unix.ENXIO}, 0o666, VerdictFail, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeFUSE(tt.err, tt.mode, 1001)
			if c.Verdict != tt.verdict || !strings.Contains(c.Remedy, tt.remedy) {
				t.Errorf("got %+v, want verdict %s and remedy with %q", c, tt.verdict, tt.remedy)
			}
			if tt.err != nil && c.Action == "" {
				t.Error("a failure must say what nook cannot do")
			}
		})
	}
	t.Run("mode shown", func(t *testing.T) {
		c := judgeFUSE(&fs.PathError{Err: unix.EACCES}, 0o600, 1001)
		if !strings.Contains(c.Detail, "0600") {
			t.Errorf("detail %q does not name the mode", c.Detail)
		}
	})
}

func TestCheckFUSEFixture(t *testing.T) {
	if c := checkFUSE(fixtureHost(t, map[string]string{"/dev/fuse": ""})); c.Verdict != VerdictOK {
		t.Errorf("openable /dev/fuse: %+v", c)
	}
	if c := checkFUSE(fixtureHost(t, nil)); c.Verdict != VerdictFail || !strings.Contains(c.Remedy, "modprobe") {
		t.Errorf("missing /dev/fuse: %+v", c)
	}
}

func TestReadUserNSSysctls(t *testing.T) {
	h := fixtureHost(t, map[string]string{
		"/proc/sys/user/max_user_namespaces":                     "0\n",
		"/proc/sys/kernel/unprivileged_userns_clone":             "1\n",
		"/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "garbage",
	})
	got := readUserNSSysctls(h)
	want := userNSSysctls{max: 0, clone: 1, apparmor: -1}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := readSysctlInt(h, "kernel.no_such_knob"); got != -1 {
		t.Errorf("missing sysctl reads as %d, want -1", got)
	}
}

func TestJudgeUserNS(t *testing.T) {
	full := rootless.IDMaps{Full: true}
	failed := probeResult{err: errors.New("operation not permitted")}
	ok := probeResult{out: "ids 65537\noverlay ok\n"}
	none := userNSSysctls{max: 1000, clone: -1, apparmor: -1}
	tests := []struct {
		name    string
		s       userNSSysctls
		euid    int
		p       nsProbes
		verdict Verdict
		want    string // in the detail or remedy
	}{
		{"full map works", none, 1001, nsProbes{main: ok}, VerdictOK, "65537 uids mapped (full map"},
		{"root", none, 0, nsProbes{main: ok}, VerdictOK, "identity map"},
		{"max zero", userNSSysctls{0, -1, -1}, 1001, nsProbes{main: failed}, VerdictFail, "max_user_namespaces=15000"},
		{"debian clone off", userNSSysctls{100, 0, -1}, 1001, nsProbes{main: failed}, VerdictFail, "unprivileged_userns_clone=1"},
		{"ubuntu apparmor", userNSSysctls{100, -1, 1}, 1001, nsProbes{main: failed}, VerdictFail, "AppArmor profile"},
		{"apparmor but works", userNSSysctls{100, -1, 1}, 1001, nsProbes{main: ok}, VerdictOK, "uids mapped"},
		{"only single map", none, 1001, nsProbes{main: failed, single: &probeResult{out: "ids 1\n"}}, VerdictWarn, "not with the full id map"},
		{"nothing works", none, 1001, nsProbes{main: failed, single: &failed}, VerdictFail, "operation not permitted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeUserNS(tt.s, tt.euid, full, tt.p)
			if c.Verdict != tt.verdict || !strings.Contains(c.Detail+c.Remedy, tt.want) {
				t.Errorf("got %+v, want %s with %q", c, tt.verdict, tt.want)
			}
		})
	}
}

// vfsCaps builds a security.capability xattr of revision rev.
func vfsCaps(rev uint32, permitted uint64) []byte {
	n := map[uint32]int{1: 12, 2: 20, 3: 24}[rev]
	b := make([]byte, n)
	binary.LittleEndian.PutUint32(b, rev<<24)
	binary.LittleEndian.PutUint32(b[4:], uint32(permitted))
	if n > 12 {
		binary.LittleEndian.PutUint32(b[12:], uint32(permitted>>32))
	}
	return b
}

func TestParseFileCaps(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		want    uint64
		wantErr bool
	}{
		{"v2 setuid", vfsCaps(2, 1<<capSetuid), 1 << capSetuid, false},
		{"v3 high bits", vfsCaps(3, 1<<40|1<<capSetgid), 1<<40 | 1<<capSetgid, false},
		{"v1", vfsCaps(1, 1<<capSetuid), 1 << capSetuid, false},
		{"empty", nil, 0, true},
		{"short", vfsCaps(2, 1)[:10], 0, true},
		{"unknown revision", append([]byte{0, 0, 0, 4}, make([]byte, 16)...), 0, true},
		{"v2 length of v1", vfsCaps(2, 1)[:12], 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFileCaps(tt.b)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %#x, %v; want %#x, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseFileCaps(f *testing.F) {
	for _, rev := range []uint32{1, 2, 3} {
		f.Add(vfsCaps(rev, 1<<capSetuid))
	}
	f.Add([]byte{0, 0, 0, 4, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseFileCaps(b); err == nil && len(b) != 12 && len(b) != 20 && len(b) != 24 {
			t.Errorf("accepted %d bytes", len(b))
		}
	})
}

func TestJudgeIDMappers(t *testing.T) {
	suid := fs.FileMode(unix.S_ISUID | 0o755)
	uidOK := mapperFacts{tool: "newuidmap", path: "/usr/bin/newuidmap", mode: suid, cap: capSetuid}
	gidOK := mapperFacts{tool: "newgidmap", path: "/usr/bin/newgidmap", mode: suid, cap: capSetgid}
	gidCaps := mapperFacts{tool: "newgidmap", path: "/usr/bin/newgidmap", mode: 0o755,
		caps: vfsCaps(2, 1<<capSetgid), cap: capSetgid}
	gidWrongCap := gidCaps
	gidWrongCap.caps = vfsCaps(2, 1<<capSetuid)
	uidUserOwned := uidOK
	uidUserOwned.owner = 1001
	tests := []struct {
		name    string
		euid    int
		tools   []mapperFacts
		verdict Verdict
		want    string
	}{
		{"setuid root", 1001, []mapperFacts{uidOK, gidOK}, VerdictOK, "setuid root"},
		{"file caps", 1001, []mapperFacts{uidOK, gidCaps}, VerdictOK, "cap_setgid"},
		{"wrong cap", 1001, []mapperFacts{uidOK, gidWrongCap}, VerdictWarn, "neither setuid root nor has cap_setgid"},
		{"setuid to a user", 1001, []mapperFacts{uidUserOwned, gidOK}, VerdictWarn, "newuidmap is neither"},
		{"missing", 1001, []mapperFacts{{tool: "newuidmap", cap: capSetuid}, gidOK}, VerdictWarn, "apt-get install uidmap"},
		{"root", 0, []mapperFacts{{tool: "newuidmap"}, {tool: "newgidmap"}}, VerdictInfo, "as root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeIDMappers(tt.euid, tt.tools)
			if c.Verdict != tt.verdict || !strings.Contains(c.Detail+c.Remedy, tt.want) {
				t.Errorf("got %+v, want %s with %q", c, tt.verdict, tt.want)
			}
		})
	}
}

func TestReadMapperFixture(t *testing.T) {
	h := fixtureHost(t, map[string]string{"/usr/sbin/newuidmap": "#!"})
	if err := os.Chmod(h.path("/usr/sbin/newuidmap"), os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	m := readMapper(h, "newuidmap", capSetuid)
	if m.path != h.path("/usr/sbin/newuidmap") || m.mode&fs.FileMode(unix.S_ISUID) == 0 || m.owner != os.Geteuid() {
		t.Errorf("got %+v", m)
	}
	if m := readMapper(h, "newgidmap", capSetgid); m.path != "" {
		t.Errorf("found a missing tool at %q", m.path)
	}
}

func TestJudgeSubIDs(t *testing.T) {
	own := rootless.IDMap{ContainerID: 0, HostID: 1001, Size: 1}
	maps := func(sizes ...int) rootless.IDMaps {
		m := rootless.IDMaps{Full: true, UIDs: []rootless.IDMap{own}}
		next, host := 1, 100000
		for _, s := range sizes {
			m.UIDs = append(m.UIDs, rootless.IDMap{ContainerID: next, HostID: host, Size: s})
			next, host = next+s, host+s+1000
		}
		m.GIDs = m.UIDs
		return m
	}
	tests := []struct {
		name    string
		maps    rootless.IDMaps
		err     error
		euid    int
		verdict Verdict
		want    string
	}{
		{"full 65536", maps(65536), nil, 1001, VerdictOK, "65536 subordinate uids (100000-165535)"},
		{"two ranges", maps(40000, 30000), nil, 1001, VerdictOK, "70000 subordinate uids (100000-139999, 141000-170999)"},
		{"too few", maps(1000), nil, 1001, VerdictWarn, "ids 0 to 1000"},
		{"none", rootless.IDMaps{UIDs: []rootless.IDMap{own}, Why: "no entry for user u in /etc/subuid"},
			nil, 1001, VerdictWarn, "no entry for user u"},
		{"error", rootless.IDMaps{}, errors.New("reading /etc/subuid: permission denied"), 1001, VerdictWarn, "permission denied"},
		{"root", rootless.IDMaps{Full: true}, nil, 0, VerdictInfo, "real ids"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeSubIDs(tt.maps, tt.err, tt.euid, "usermod --add-subuids 165536-231071 u")
			if c.Verdict != tt.verdict || !strings.Contains(c.Detail+c.Action, tt.want) {
				t.Errorf("got %+v, want %s with %q", c, tt.verdict, tt.want)
			}
			if c.Verdict == VerdictWarn && c.Remedy != "usermod --add-subuids 165536-231071 u" {
				t.Errorf("remedy %q", c.Remedy)
			}
		})
	}
	if c := judgeSubIDs(rootless.IDMaps{Why: "x"}, nil, 1001, "r"); !strings.Contains(c.Action, "every file inside containers belongs to root") || !strings.Contains(c.Action, "single-id mode") {
		t.Errorf("single-map action %q does not say what nook does", c.Action)
	}
}

func TestMappedIDs(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"         0       1001          1\n         1     100000      65536\n", 65537},
		{"0 0 4294967295\n", 4294967295},
		{"", 0},
		{"0 1001\nx y z\n", 0},
	}
	for _, tt := range tests {
		if got := mappedIDs([]byte(tt.in)); got != tt.want {
			t.Errorf("mappedIDs(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestProbeFacts(t *testing.T) {
	tests := []struct {
		name, out, ids, overlayErr string
	}{
		{"all good", "ids 65537\noverlay ok\n", "65537", ""},
		{"overlay fails", "ids 1\noverlay mount -t overlay: invalid argument\n", "1", "mount -t overlay: invalid argument"},
		{"no overlay line", "ids 4294967295\n", "4294967295", "did not report"},
		{"empty", "", "", "did not report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, err := probeFacts(tt.out)
			if ids != tt.ids || (err == nil) != (tt.overlayErr == "") ||
				err != nil && !strings.Contains(err.Error(), tt.overlayErr) {
				t.Errorf("got %q, %v; want %q, %q", ids, err, tt.ids, tt.overlayErr)
			}
		})
	}
}

func TestJudgeOverlay(t *testing.T) {
	nsFailed := probeResult{err: errors.New("operation not permitted")}
	tests := []struct {
		name    string
		p       nsProbes
		verdict Verdict
		want    string
	}{
		{"works", nsProbes{main: probeResult{out: "ids 1\noverlay ok\n"}}, VerdictOK, "whiteouts and opaque"},
		{"fails", nsProbes{main: probeResult{out: "overlay mount: invalid argument\n"}}, VerdictInfo, "invalid argument"},
		{"single map works", nsProbes{main: nsFailed, single: &probeResult{out: "overlay ok\n"}}, VerdictOK, "userxattr"},
		{"no namespace", nsProbes{main: nsFailed, single: &nsFailed}, VerdictInfo, "not tried"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeOverlay(tt.p)
			if c.Verdict != tt.verdict || !strings.Contains(c.Detail, tt.want) {
				t.Errorf("got %+v, want %s with %q", c, tt.verdict, tt.want)
			}
			if c.Verdict != VerdictOK && !strings.Contains(c.Action, "FUSE") {
				t.Errorf("a failing overlay must say nook's union is FUSE: %q", c.Action)
			}
		})
	}
}
