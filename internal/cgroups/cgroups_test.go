package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree builds a cgroup v2 hierarchy's user cgroup as a directory tree:
// files named as cgroupfs names them, with the given contents.
func tree(t *testing.T, files map[string]string) Tree {
	t.Helper()
	root := t.TempDir()
	user := filepath.Join(root, "user.slice", "user-1000.slice", "session-1.scope")
	if err := os.MkdirAll(user, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(user, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := Open(root, []byte("0::/user.slice/user-1000.slice/session-1.scope\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCreate: the controllers the limits need are enabled for the user's
// children, the container's cgroup gets Docker's values (swap as much
// again as memory, --cpus as a quota of a 100 ms period), the payload's
// pid lands in its cgroup.procs, and Remove takes the cgroup away.
func TestCreate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		l       Limits
		swap    bool
		enabled string
		want    map[string]string
		absent  []string
	}{
		{"all", Limits{NanoCPUs: 1.5e9, Pids: 10}.WithMemory(64 << 20), true, "+cpu +memory +pids\n",
			map[string]string{"memory.max": "67108864\n", "memory.swap.max": "67108864\n",
				"cpu.max": "150000 100000\n", "pids.max": "10\n"}, nil},
		{"memory without swap accounting", Limits{}.WithMemory(1 << 30), false, "+memory\n",
			map[string]string{"memory.max": "1073741824\n"}, []string{"memory.swap.max", "cpu.max", "pids.max"}},
		{"a sliver of a CPU", Limits{NanoCPUs: 1e6}, false, "+cpu\n",
			map[string]string{"cpu.max": "1000 100000\n"}, []string{"memory.max", "pids.max"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"cgroup.controllers": "cpuset cpu io memory pids\n",
				"cgroup.subtree_control": "", "cgroup.procs": ""}
			if tc.swap {
				files["memory.swap.max"] = "max\n"
			}
			tr := tree(t, files)
			g, err := tr.Create("nook-abc", tc.l)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(tr.dir(), "nook-abc"); g.Dir != want {
				t.Errorf("group %s, want %s", g.Dir, want)
			}
			if got := read(t, filepath.Join(tr.dir(), "cgroup.subtree_control")); got != tc.enabled {
				t.Errorf("subtree_control %q, want %q", got, tc.enabled)
			}
			for f, want := range tc.want {
				if got := read(t, filepath.Join(g.Dir, f)); got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
			for _, f := range tc.absent {
				if _, err := os.Stat(filepath.Join(g.Dir, f)); err == nil {
					t.Errorf("%s written for limits %+v", f, tc.l)
				}
			}
			if err := g.Add(42); err != nil {
				t.Fatal(err)
			}
			if err := g.Add(43); err != nil { // a restarted payload
				t.Fatal(err)
			}
			if got := read(t, filepath.Join(g.Dir, "cgroup.procs")); got != "42\n43\n" {
				t.Errorf("cgroup.procs %q", got)
			}
			// cgroupfs's interface files go with the directory; a test
			// tree's must go first.
			ents, _ := os.ReadDir(g.Dir)
			for _, e := range ents {
				os.Remove(filepath.Join(g.Dir, e.Name()))
			}
			if err := g.Remove(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(g.Dir); !os.IsNotExist(err) {
				t.Errorf("cgroup %s left after Remove: %v", g.Dir, err)
			}
		})
	}
}

// TestEnabledAlready: controllers on already are not written again.
func TestEnabledAlready(t *testing.T) {
	tr := tree(t, map[string]string{"cgroup.controllers": "cpu memory pids\n",
		"cgroup.subtree_control": "cpu memory pids\n", "cgroup.procs": ""})
	if _, err := tr.Create("c", Limits{Pids: 5}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(tr.dir(), "cgroup.subtree_control")); got != "cpu memory pids\n" {
		t.Errorf("subtree_control rewritten: %q", got)
	}
}

// TestNotDelegated: a cgroup without a needed controller, or not
// writable, is refused as not delegated, and nothing is created.
func TestNotDelegated(t *testing.T) {
	tr := tree(t, map[string]string{"cgroup.controllers": "cpu memory\n",
		"cgroup.subtree_control": "", "cgroup.procs": ""})
	_, err := tr.Create("c", Limits{Pids: 5})
	if !errors.Is(err, ErrNotDelegated) || !strings.Contains(err.Error(), "pids") {
		t.Errorf("no pids controller: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tr.dir(), "c")); err == nil {
		t.Error("cgroup created without its controller")
	}
	if os.Geteuid() != 0 { // root writes whatever the mode says
		os.Chmod(filepath.Join(tr.dir(), "cgroup.procs"), 0o444)
		if err := tr.Check(nil); !errors.Is(err, ErrNotDelegated) || !strings.Contains(err.Error(), "cgroup.procs") {
			t.Errorf("read-only cgroup.procs: %v", err)
		}
	}
	if _, err := Open(t.TempDir(), []byte("12:pids:/user.slice\n")); !errors.Is(err, ErrNotDelegated) {
		t.Errorf("v1 only: %v", err)
	}
}

// TestMoveToLeaf: the user's processes move to the leaf, so that the
// controllers can be enabled; a shell moved there counts as its parent.
func TestMoveToLeaf(t *testing.T) {
	tr := tree(t, map[string]string{"cgroup.procs": "100\n200\n"})
	if err := tr.moveToLeaf(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(tr.dir(), leafName, "cgroup.procs")); got != "100\n200\n" {
		t.Errorf("leaf's cgroup.procs %q", got)
	}
	again, err := Open(tr.Root, []byte("0::"+tr.Path+"/"+leafName+"\n"))
	if err != nil || again.Path != tr.Path {
		t.Errorf("the leaf's tree is %+v, %v; want %s", again, err, tr.Path)
	}
}
