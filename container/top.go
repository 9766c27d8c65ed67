package container

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"nook/internal/cgroups"
)

// Proc is one process of a running container, read from /proc.
type Proc struct {
	Pid, PPid int    // in the host's pid namespace
	UID       int    // in the container
	Threads   int    // tasks
	CPU       uint64 // user+system clock ticks
	RSS       uint64 // bytes
	ReadBytes uint64
	Written   uint64
	Cmd       string
}

// Processes lists the container's processes: those in its pid namespace,
// found through /proc (cgroups may not be delegated to the user, so they
// cannot be asked), nook's init left out (--init). Exec'd processes are
// no descendants of pid 1: they enter the namespace from outside.
func (m *Manager) Processes(c *Container) ([]Proc, error) {
	pids, err := c.pids()
	if err != nil {
		return nil, err
	}
	uidMap := readUIDMap(c.State.Pid)
	var out []Proc
	for _, pid := range pids {
		if pid == c.State.Pid && c.Init {
			continue
		}
		p, err := readProc(pid, uidMap)
		if err != nil {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// allPids lists the processes of /proc, in order.
func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// idRange is one line of a uid_map.
type idRange struct{ inside, outside, size int }

func readUIDMap(pid int) []idRange {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil {
		return nil
	}
	var out []idRange
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r idRange
		if _, err := fmt.Sscan(l, &r.inside, &r.outside, &r.size); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// inside maps a host uid into the container; -1 when unmapped.
func inside(m []idRange, host int) int {
	for _, r := range m {
		if host >= r.outside && host < r.outside+r.size {
			return r.inside + host - r.outside
		}
	}
	return -1
}

func readProc(pid int, uidMap []idRange) (Proc, error) {
	p := Proc{Pid: pid}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	// The command name is in parentheses and may hold spaces.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return p, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 22 {
		return p, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	p.PPid, _ = strconv.Atoi(f[1])
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	p.CPU = utime + stime
	p.Threads, _ = strconv.Atoi(f[17])
	rss, _ := strconv.ParseUint(f[21], 10, 64)
	p.RSS = rss * uint64(os.Getpagesize())
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		p.Cmd = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	if p.Cmd == "" {
		p.Cmd = "[" + strings.TrimSpace(s[strings.IndexByte(s, '(')+1:i]) + "]"
	}
	p.UID = -1
	if st, err := os.Open(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		sc := bufio.NewScanner(st)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					host, _ := strconv.Atoi(fs[0])
					p.UID = inside(uidMap, host)
				}
			}
		}
		st.Close()
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ": ")
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			switch k {
			case "read_bytes":
				p.ReadBytes = n
			case "write_bytes":
				p.Written = n
			}
		}
	}
	return p, nil
}

// Stats is a container's resource use, summed over its processes.
type Stats struct {
	CPUPercent     float64 // of one CPU, over the sampling interval
	Memory         uint64  // resident bytes
	MemoryLimit    uint64  // -m's, else the host's memory
	Pids           int
	BlockRead      uint64
	BlockWritten   uint64
	SampleInterval time.Duration
}

// clockTicks is USER_HZ, 100 on every Linux architecture nook runs on.
const clockTicks = 100

// Stats samples the container's processes twice, interval apart.
func (m *Manager) Stats(c *Container, interval time.Duration) (Stats, error) {
	first, err := m.Processes(c)
	if err != nil {
		return Stats{}, err
	}
	start := time.Now()
	time.Sleep(interval)
	second, err := m.Processes(c)
	if err != nil {
		return Stats{}, err
	}
	elapsed := time.Since(start)
	before := map[int]uint64{}
	for _, p := range first {
		before[p.Pid] = p.CPU
	}
	st := Stats{SampleInterval: elapsed, MemoryLimit: memTotal()}
	var ticks uint64
	for _, p := range second {
		ticks += p.CPU - min(before[p.Pid], p.CPU)
		st.Memory += p.RSS
		st.Pids += p.Threads
		st.BlockRead += p.ReadBytes
		st.BlockWritten += p.Written
	}
	st.CPUPercent = float64(ticks) / clockTicks / elapsed.Seconds() * 100
	if c.State.Cgroup != "" {
		// The container's cgroup counts its page cache too, as Docker's does.
		if n, err := (cgroups.Group{Dir: c.State.Cgroup}).MemoryCurrent(); err == nil {
			st.Memory = n
		}
		if c.Limits.Memory > 0 {
			st.MemoryLimit = uint64(c.Limits.Memory)
		}
	}
	return st, nil
}

// memTotal is the host's memory in bytes.
func memTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
