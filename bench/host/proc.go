package host

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Memory is a process tree's resident memory in bytes.
type Memory struct {
	RSS   int64 // now (VmRSS)
	Peak  int64 // high-water mark (VmHWM)
	Procs int   // processes summed
}

// TreeMemory sums VmRSS and VmHWM over pid and its descendants: a FUSE
// server may re-execute itself into a child that does the serving.
func TreeMemory(pid int) (Memory, error) {
	var m Memory
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		rss, err := statusKB(p, "VmRSS")
		if err != nil {
			if p == pid {
				return m, err
			}
			continue // a child that just exited
		}
		peak, err := statusKB(p, "VmHWM")
		if err != nil {
			continue
		}
		m.RSS += rss << 10
		m.Peak += peak << 10
		m.Procs++
		queue = append(queue, children(p)...)
	}
	return m, nil
}

// statusKB reads one "Key:   N kB" line of /proc/PID/status.
func statusKB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("pid %d %s %q: %w", pid, key, v, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("pid %d has no %s (a kernel thread or a zombie)", pid, key)
}

func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// Machine describes the host for the report header: kernel, CPU model,
// cores, memory, the filesystem holding dir, and the date.
func Machine(dir string) string {
	var uts unix.Utsname
	kernel := "unknown kernel"
	if unix.Uname(&uts) == nil {
		kernel = unix.ByteSliceToString(uts.Sysname[:]) + " " + unix.ByteSliceToString(uts.Release[:])
	}
	mem := "? GiB"
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		mem = fmt.Sprintf("%.1f GiB RAM", float64(si.Totalram)*float64(si.Unit)/(1<<30))
	}
	return fmt.Sprintf("%s · %s · %d cores · %s · %s at %s · %s", kernel, cpuModel(), runtime.NumCPU(), mem,
		FSType(dir), dir, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}

// LoadAverage is the one-minute load average, to show how busy the
// (shared) machine was around a run.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown CPU"
}

// FSType names the filesystem holding path (or, before path exists, its
// nearest existing parent), from its statfs magic number.
func FSType(path string) string {
	var st unix.Statfs_t
	for unix.Statfs(path, &st) != nil {
		if parent := filepath.Dir(path); parent != path {
			path = parent
			continue
		}
		return "unknown filesystem"
	}
	names := map[int64]string{
		unix.EXT4_SUPER_MAGIC: "ext4", unix.XFS_SUPER_MAGIC: "xfs", unix.BTRFS_SUPER_MAGIC: "btrfs",
		unix.TMPFS_MAGIC: "tmpfs", unix.OVERLAYFS_SUPER_MAGIC: "overlayfs", unix.FUSE_SUPER_MAGIC: "fuse",
		unix.F2FS_SUPER_MAGIC: "f2fs",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("fs magic %#x", st.Type)
}
