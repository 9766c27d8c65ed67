package fusefs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSpeed compares the union with the same tree on the native disk, in
// one run, and checks the server's memory per file touched. It is a
// measurement, not a unit test: it runs only with NOOK_BENCH=1 (the
// numbers of a loaded machine say little) and fails only on the memory
// bar and on wrong results. NOOK_BENCH_FILES sets the number of small
// files (default 20000), NOOK_BENCH_RUNS the timed runs (default 5; the
// minimum counts), NOOK_BENCH_CPUPROFILE a file for the server's CPU
// profile during the union's runs. bench/run.sh is the full comparison,
// with fuse-overlayfs, across processes.
func TestSpeed(t *testing.T) {
	if os.Getenv("NOOK_BENCH") == "" {
		t.Skip("a measurement: set NOOK_BENCH=1")
	}
	files := envInt("NOOK_BENCH_FILES", 20000)
	runs := envInt("NOOK_BENCH_RUNS", 5)
	// NOOK_BENCH_ONLY=op,op... keeps only those workloads.
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	fx := buildSpeedFixture(t, root, files)
	l := &layout{lowers: fx.lowers, upper: root + "/upper", work: root + "/work", mnt: root + "/mnt"}
	for _, d := range []string{l.upper, l.work, l.mnt} {
		must(t, os.Mkdir(d, 0o755))
	}
	srv := startSpeedServer(t, l)
	rss0 := procStatus(t, srv, "VmRSS")

	type wl struct {
		name  string
		op    string
		path  string
		count int64 // expected count (files or entries), 0: unchecked
		write bool
	}
	wls := []wl{
		{"stat walk, warm", "statwalk", "", fx.entries, false},
		{"readdir walk, warm", "readdirwalk", "", fx.entries, false},
		{"read all small files, warm", "readall", "", fx.files, false},
		{"sequential read big file, warm", "seqread", "big.bin", 0, false},
		{"write 256 MiB as 8 new files", "write", "", 0, true},
	}
	if only := os.Getenv("NOOK_BENCH_ONLY"); only != "" {
		var keep []wl
		for _, w := range wls {
			if strings.Contains(only, w.op) {
				keep = append(keep, w)
			}
		}
		wls = keep
	}
	// NOOK_BENCH_COLD=1 drops the caches before every read run (root).
	cold := os.Getenv("NOOK_BENCH_COLD") != ""
	var report []string
	for _, w := range wls {
		if w.write {
			continue
		}
		best := map[string]time.Duration{}
		for i := -1; i < runs; i++ { // run -1 warms the caches
			for _, c := range []struct{ name, dir string }{{"native", fx.native}, {"nook", l.mnt}} {
				if cold {
					dropCaches(t)
				}
				d, n := speedWorker(t, w.op, filepath.Join(c.dir, w.path))
				if w.count != 0 && n != w.count {
					t.Fatalf("%s on %s: count %d, want %d", w.name, c.name, n, w.count)
				}
				if i >= 0 && (best[c.name] == 0 || d < best[c.name]) {
					best[c.name] = d
				}
			}
		}
		report = append(report, fmt.Sprintf("%-34s native %8.1f ms  nook %8.1f ms  ratio %.2f", w.name,
			ms(best["native"]), ms(best["nook"]), float64(best["nook"])/float64(best["native"])))
	}
	hwm := procStatus(t, srv, "VmHWM")
	perFile := float64(hwm-rss0) / float64(fx.entries)
	report = append(report, fmt.Sprintf("server RSS after mount %d KiB, peak %d KiB after the reads: %.0f B per entry (%d entries)",
		rss0>>10, hwm>>10, perFile, fx.entries))
	for _, w := range wls {
		if !w.write {
			continue
		}
		best := map[string]time.Duration{}
		for i := 0; i < runs; i++ {
			for _, c := range []struct{ name, dir string }{{"native", fx.native}, {"nook", l.mnt}} {
				dir := filepath.Join(c.dir, fmt.Sprintf("new%d", i))
				d, _ := speedWorker(t, w.op, dir)
				if best[c.name] == 0 || d < best[c.name] {
					best[c.name] = d
				}
				must(t, os.RemoveAll(dir))
			}
		}
		report = append(report, fmt.Sprintf("%-34s native %8.1f ms  nook %8.1f ms  ratio %.2f", w.name,
			ms(best["native"]), ms(best["nook"]), float64(best["nook"])/float64(best["native"])))
	}
	t.Logf("%d small files, minimum of %d runs:\n%s", files, runs, strings.Join(report, "\n"))
	if perFile >= 1024 {
		t.Errorf("server RSS grew %.0f B per entry touched, want < 1024", perFile)
	}
}

func dropCaches(t *testing.T) {
	syscall.Sync()
	must(t, os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// procStatus reads a size field of the status of process cmd, in bytes.
func procStatus(t *testing.T, cmd *exec.Cmd, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	must(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			must(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

type speedFixture struct {
	lowers         []string
	native         string
	files, entries int64
}

// buildSpeedFixture makes two layers, as the benchmark's: a bottom one
// with a 64 MiB file and n files of 1-8 KiB in n/100 directories, a top
// one hiding a few of them; and the merged tree as a native directory.
func buildSpeedFixture(t *testing.T, root string, n int) speedFixture {
	fx := speedFixture{lowers: []string{root + "/l1", root + "/l0"}, native: root + "/native"}
	r := rand.New(rand.NewSource(1))
	buf := make([]byte, 8<<10)
	r.Read(buf)
	var top []ent
	for _, base := range []string{root + "/l0", fx.native} {
		must(t, os.MkdirAll(base, 0o755))
		big := bytes.Repeat(buf, (64<<20)/len(buf))
		must(t, os.WriteFile(base+"/big.bin", big, 0o644))
	}
	fx.files, fx.entries = 1, 1
	dirs := max(n/100, 1)
	for d := 0; d < dirs; d++ {
		dir := fmt.Sprintf("small/d%03d", d)
		for _, base := range []string{root + "/l0", fx.native} {
			must(t, os.MkdirAll(filepath.Join(base, dir), 0o755))
		}
		fx.entries++
		for f := 0; f < n/dirs; f++ {
			name := fmt.Sprintf("%s/f%04d", dir, f)
			data := buf[:1<<10+r.Intn(7<<10)]
			must(t, os.WriteFile(filepath.Join(root, "l0", name), data, 0o644))
			if f%500 == 7 {
				top = append(top, W(name)) // hidden by the top layer
				continue
			}
			must(t, os.WriteFile(filepath.Join(fx.native, name), data, 0o644))
			fx.files++
			fx.entries++
		}
	}
	fx.entries++ // small
	buildLayer(t, root+"/l1", top)
	return fx
}

// startSpeedServer mounts l in a child process (the test binary again),
// so that its memory is the server's alone, and unmounts it in cleanup.
func startSpeedServer(t *testing.T, l *layout) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpeedServer$", "-test.v")
	cmd.Env = append(os.Environ(), "NOOK_SPEED_SERVER="+strings.Join(append([]string{l.upper, l.work, l.mnt}, l.lowers...), ":"))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close() // the server unmounts when its stdin closes
		if err := cmd.Wait(); err != nil {
			t.Errorf("speed server: %v", err)
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if sc.Text() == "READY" {
			go io.Copy(io.Discard, stdout)
			watchdog(t, l.mnt, 20*time.Minute)
			return cmd
		}
		t.Log(sc.Text())
	}
	t.Fatal("speed server exited before mounting")
	return nil
}

// TestSpeedServer is the child side of startSpeedServer: it serves until
// its stdin closes, with a CPU profile if NOOK_BENCH_CPUPROFILE is set.
func TestSpeedServer(t *testing.T) {
	spec := os.Getenv("NOOK_SPEED_SERVER")
	if spec == "" {
		t.Skip("run by TestSpeed")
	}
	f := strings.Split(spec, ":")
	opts := Options{}
	if os.Getenv("NOOK_DEBUG") != "" {
		opts.Debug = true
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := Mount(f[3:], f[0], f[1], f[2], opts)
	must(t, err)
	if p := os.Getenv("NOOK_BENCH_CPUPROFILE"); p != "" {
		pf, err := os.Create(p)
		must(t, err)
		must(t, pprof.StartCPUProfile(pf))
		defer pf.Close()
		defer pprof.StopCPUProfile()
	}
	fmt.Println("READY")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if os.Getenv("NOOK_BENCH_MEMSTATS") != "" {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "heap in use %d KiB, heap sys %d KiB, released %d KiB, stacks %d KiB, other sys %d KiB, GCs %d, next GC at %d KiB\n",
			ms.HeapInuse>>10, ms.HeapSys>>10, ms.HeapReleased>>10, ms.StackSys>>10, (ms.Sys-ms.HeapSys-ms.StackSys)>>10, ms.NumGC, ms.NextGC>>10)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "after GC: live %d KiB, heap in use %d KiB\n", ms.HeapAlloc>>10, ms.HeapInuse>>10)
	}
	if p := os.Getenv("NOOK_BENCH_HEAPPROFILE"); p != "" {
		pf, err := os.Create(p)
		must(t, err)
		must(t, pprof.WriteHeapProfile(pf))
		pf.Close()
	}
	must(t, srv.Unmount())
	srv.Wait()
}

// speedWorker runs op on path in a child process (the test binary again)
// and returns the time the child measured and its count.
func speedWorker(t *testing.T, op, path string) (time.Duration, int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpeedWorker$", "-test.v")
	cmd.Env = append(os.Environ(), "NOOK_SPEED_WORKER="+op, "NOOK_SPEED_PATH="+path)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("worker %s %s: %v\n%s", op, path, err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var ns, n int64
		if _, err := fmt.Sscanf(sc.Text(), "RESULT %d %d", &ns, &n); err == nil {
			return time.Duration(ns), n
		}
	}
	t.Fatalf("worker %s %s printed no result:\n%s", op, path, out)
	return 0, 0
}

// TestSpeedWorker is the child side of speedWorker.
func TestSpeedWorker(t *testing.T) {
	op := os.Getenv("NOOK_SPEED_WORKER")
	if op == "" {
		t.Skip("run by TestSpeed")
	}
	p := os.Getenv("NOOK_SPEED_PATH")
	start := time.Now()
	var n int64
	var err error
	switch op {
	case "statwalk":
		n, err = walk(p, true, false)
	case "readdirwalk":
		n, err = walk(p, false, false)
	case "readall":
		n, err = walk(p, false, true)
	case "seqread":
		n, err = readFile(p, make([]byte, 1<<20))
	case "write":
		n, err = writeFiles(p, 256<<20, 8)
	default:
		err = fmt.Errorf("unknown op %s", op)
	}
	d := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("RESULT %d %d\n", d.Nanoseconds(), n)
}

// walk counts the entries under dir (stat: lstat each; read: count and
// read the regular files instead).
func walk(dir string, stat, read bool) (int64, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return 0, err
	}
	var n int64
	buf := make([]byte, 64<<10)
	for _, e := range ents {
		p := dir + "/" + e.Name()
		if stat {
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); err != nil {
				return 0, err
			}
		}
		if !read || e.Type().IsRegular() {
			n++
		}
		if e.IsDir() {
			c, err := walk(p, stat, read)
			if err != nil {
				return 0, err
			}
			n += c
		} else if read && e.Type().IsRegular() {
			if _, err := readFile(p, buf); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func readFile(p string, buf []byte) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	for {
		c, err := f.Read(buf)
		n += int64(c)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func writeFiles(dir string, total int64, files int) (int64, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, err
	}
	buf := bytes.Repeat([]byte("nook"), (1<<20)/4)
	for i := 0; i < files; i++ {
		f, err := os.Create(fmt.Sprintf("%s/f%d", dir, i))
		if err != nil {
			return 0, err
		}
		for w := int64(0); w < total/int64(files); w += int64(len(buf)) {
			if _, err := f.Write(buf); err != nil {
				f.Close()
				return 0, err
			}
		}
		if err := f.Close(); err != nil {
			return 0, err
		}
	}
	return total, nil
}
