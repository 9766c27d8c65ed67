// Package cgroups applies a container's resource limits (-m, --cpus,
// --pids-limit) through a cgroup v2 subtree delegated to the user, as
// crun's and Podman's cgroupfs managers do without systemd: a child of the
// user's own cgroup per container, the controllers enabled in the user's
// cgroup.subtree_control, the limits written, the container's processes
// moved in before the payload runs, the child removed when it ends.
//
// The tree's root is a parameter (Open), so that tests drive the logic
// against a directory tree they build. The real path (Host) was written
// from the kernel's cgroup v2 documentation and tested only against such
// trees: the machine nook was developed on has hybrid cgroups (every
// controller on v1), where no subtree can be delegated.
package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotDelegated is returned when the user's cgroup cannot hold the
// container's: not cgroup v2, not writable, or without a controller.
var ErrNotDelegated = errors.New("no delegated cgroup v2 subtree")

// Mount is where cgroup v2 is mounted on a pure (unified) v2 host.
const Mount = "/sys/fs/cgroup"

// leafName is the child the user's processes move to when the user's own
// cgroup holds processes: the kernel lets a non-root cgroup either hold
// processes or enable controllers for its children, not both.
const leafName = "nook-leaf"

// Limits are a container's resource limits, as Docker's HostConfig has
// them; zero is no limit.
type Limits struct {
	Memory     int64 `json:"memory,omitempty"`     // bytes: memory.max
	MemorySwap int64 `json:"memorySwap,omitempty"` // memory and swap together, in bytes
	NanoCPUs   int64 `json:"nanoCpus,omitempty"`   // CPUs × 10⁹: cpu.max
	Pids       int64 `json:"pids,omitempty"`       // pids.max
}

// WithMemory is l with memory bytes, and with Docker's default swap when
// --memory-swap is not given: as much swap again, twice the memory in all.
func (l Limits) WithMemory(bytes int64) Limits {
	l.Memory, l.MemorySwap = bytes, 2*bytes
	return l
}

// Set reports whether l limits anything.
func (l Limits) Set() bool { return l != Limits{} }

// Controllers are the controllers l needs.
func (l Limits) Controllers() []string {
	var c []string
	if l.NanoCPUs > 0 {
		c = append(c, "cpu")
	}
	if l.Memory > 0 {
		c = append(c, "memory")
	}
	if l.Pids > 0 {
		c = append(c, "pids")
	}
	return c
}

// cpuPeriod is cpu.max's period in µs, as Docker's --cpus uses.
const cpuPeriod = 100000

// files are the interface files l writes and their contents, in order.
func (l Limits) files(swap bool) [][2]string {
	var f [][2]string
	if l.Memory > 0 {
		f = append(f, [2]string{"memory.max", strconv.FormatInt(l.Memory, 10)})
		if swap && l.MemorySwap > l.Memory {
			// memory.swap.max counts swap alone; Docker's MemorySwap counts both.
			f = append(f, [2]string{"memory.swap.max", strconv.FormatInt(l.MemorySwap-l.Memory, 10)})
		}
	}
	if l.NanoCPUs > 0 {
		quota := max(l.NanoCPUs*cpuPeriod/1e9, 1000) // the kernel's least quota is 1 ms
		f = append(f, [2]string{"cpu.max", fmt.Sprintf("%d %d", quota, cpuPeriod)})
	}
	if l.Pids > 0 {
		f = append(f, [2]string{"pids.max", strconv.FormatInt(l.Pids, 10)})
	}
	return f
}

// Tree is a cgroup v2 hierarchy and the user's cgroup in it.
type Tree struct {
	Root string // where the hierarchy is mounted
	Path string // the user's cgroup, as /proc/self/cgroup's "0::" line names it
}

// Host is this process's cgroup on a pure cgroup v2 host.
func Host() (Tree, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(Mount, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return Tree{}, fmt.Errorf("%w: %s is not a cgroup v2 hierarchy", ErrNotDelegated, Mount)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return Tree{}, fmt.Errorf("reading /proc/self/cgroup: %w", err)
	}
	return Open(Mount, b)
}

// Open finds the user's cgroup in the hierarchy at root from procCgroup,
// the content of /proc/self/cgroup. A cgroup that is nook's leaf counts
// as its parent, so that runs from a moved shell nest no deeper.
func Open(root string, procCgroup []byte) (Tree, error) {
	for line := range bytes.Lines(procCgroup) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(string(line)), "0::"); ok {
			p = path.Clean("/" + p)
			if path.Base(p) == leafName {
				p = path.Dir(p)
			}
			return Tree{Root: root, Path: p}, nil
		}
	}
	return Tree{}, fmt.Errorf("%w: /proc/self/cgroup has no cgroup v2 entry", ErrNotDelegated)
}

// dir is the user's cgroup's directory.
func (t Tree) dir() string { return filepath.Join(t.Root, filepath.FromSlash(t.Path)) }

// Check says whether the user's cgroup can hold a child with ctrls.
func (t Tree) Check(ctrls []string) error {
	d := t.dir()
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control"} {
		if err := unix.Access(filepath.Join(d, f), unix.W_OK); err != nil {
			return fmt.Errorf("%w: %s is not writable", ErrNotDelegated, filepath.Join(d, f))
		}
	}
	have, err := readFields(filepath.Join(d, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotDelegated, err)
	}
	for _, c := range ctrls {
		if !slices.Contains(have, c) {
			return fmt.Errorf("%w: %s has no %s controller", ErrNotDelegated, t.Path, c)
		}
	}
	return nil
}

// Group is one container's cgroup.
type Group struct{ Dir string }

// Create makes the child name of the user's cgroup with limits l: the
// controllers l needs are enabled for the user's cgroup's children first
// (its processes moved to a leaf if the kernel refuses while it has some).
func (t Tree) Create(name string, l Limits) (Group, error) {
	ctrls := l.Controllers()
	if err := t.Check(ctrls); err != nil {
		return Group{}, err
	}
	if err := t.enable(ctrls); err != nil {
		return Group{}, err
	}
	g := Group{Dir: filepath.Join(t.dir(), name)}
	if err := os.Mkdir(g.Dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return Group{}, fmt.Errorf("creating cgroup %s: %w", g.Dir, err)
	}
	// Swap is limited only where the kernel accounts for it, which the
	// parent's own memory.swap.max file shows.
	_, err := os.Stat(filepath.Join(t.dir(), "memory.swap.max"))
	for _, f := range l.files(err == nil) {
		if err := writeFile(filepath.Join(g.Dir, f[0]), f[1]); err != nil {
			_ = g.Remove()
			return Group{}, err
		}
	}
	return g, nil
}

// enable turns ctrls on in the user's cgroup.subtree_control.
func (t Tree) enable(ctrls []string) error {
	sc := filepath.Join(t.dir(), "cgroup.subtree_control")
	on, err := readFields(sc)
	if err != nil {
		return err
	}
	var add []string
	for _, c := range ctrls {
		if !slices.Contains(on, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	err = writeFile(sc, strings.Join(add, " "))
	if errors.Is(err, unix.EBUSY) {
		// No internal processes: move them to a leaf, then try again.
		if err = t.moveToLeaf(); err == nil {
			err = writeFile(sc, strings.Join(add, " "))
		}
	}
	return err
}

// moveToLeaf moves every process of the user's cgroup to its leaf child.
func (t Tree) moveToLeaf() error {
	leaf := filepath.Join(t.dir(), leafName)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating cgroup %s: %w", leaf, err)
	}
	pids, err := readFields(filepath.Join(t.dir(), "cgroup.procs"))
	if err != nil {
		return err
	}
	for _, p := range pids {
		// One that ended meanwhile is gone.
		if err := appendFile(filepath.Join(leaf, "cgroup.procs"), p); err != nil && !errors.Is(err, unix.ESRCH) {
			return err
		}
	}
	return nil
}

// Add moves process pid, and the children it has yet to start, into g.
func (g Group) Add(pid int) error {
	return appendFile(filepath.Join(g.Dir, "cgroup.procs"), strconv.Itoa(pid))
}

// MemoryCurrent is g's memory.current: the memory its processes use.
func (g Group) MemoryCurrent() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, "memory.current"))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// removeWait bounds how long Remove waits for the kernel to let the last
// processes of the group go.
const removeWait = 2 * time.Second

// Remove removes g once its processes are gone: the kernel refuses
// (EBUSY) for a moment after the last one exits.
func (g Group) Remove() error {
	deadline := time.Now().Add(removeWait)
	for {
		err := unix.Rmdir(g.Dir)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			return nil
		case !errors.Is(err, unix.EBUSY) || time.Now().After(deadline):
			return fmt.Errorf("removing cgroup %s: %w", g.Dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readFields(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return strings.Fields(string(b)), nil
}

// writeFile writes s to the interface file p in one write, as the kernel
// wants; O_CREATE fails on cgroupfs for a file its controllers lack.
func writeFile(p, s string) error {
	return write(p, s, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
}

// appendFile writes s to p, which on cgroupfs is the same as writeFile;
// in a test's tree, cgroup.procs keeps every pid written.
func appendFile(p, s string) error {
	return write(p, s, os.O_WRONLY|os.O_CREATE|os.O_APPEND)
}

func write(p, s string, flag int) error {
	f, err := os.OpenFile(p, flag, 0o644)
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", s, p, err)
	}
	_, err = f.WriteString(s + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", s, p, err)
	}
	return nil
}
