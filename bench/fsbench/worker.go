package fsbench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"nook/bench/fixture"
)

// Result is what one worker operation reports on stdout, as JSON. The
// worker times itself, so process start-up, nsenter and the driver's
// bookkeeping never count.
type Result struct {
	NS    int64  `json:"ns"`
	Count int64  `json:"count,omitempty"` // entries or files touched
	Bytes int64  `json:"bytes,omitempty"` // bytes read or written
	Dev   uint64 `json:"dev,omitempty"`   // waitmount: the mount's device number
}

// Millis is the operation's duration.
func (r Result) Millis() float64 { return float64(r.NS) / 1e6 }

// Worker runs one operation named by args[0], in the worker process the
// driver starts as the bench user (inside nook's namespace if it needs
// one), and writes its Result to w.
func Worker(args []string, w io.Writer) error {
	if len(args) == 0 {
		return errors.New("worker: no operation")
	}
	op, args := args[0], args[1:]
	need := map[string]int{"noop": 0, "sync": 0, "fixture": 2, "mkdir": -1, "seqread": 1, "statwalk": 1,
		"readdirwalk": 1, "readall": 1, "lslr": 1, "append": 1, "cpappend": 2, "write": 3,
		"untar": 2, "rmrf": 1, "clean": 1, "cpa": 2, "waitmount": 2}
	n, ok := need[op]
	if !ok {
		return fmt.Errorf("worker: unknown operation %q", op)
	}
	if n >= 0 && len(args) != n {
		return fmt.Errorf("worker %s: %d arguments, want %d", op, len(args), n)
	}
	var (
		r   Result
		err error
	)
	start := time.Now()
	switch op {
	case "noop":
	case "sync":
		unix.Sync()
	case "fixture":
		err = buildFixture(args[0], args[1])
	case "mkdir":
		for _, d := range args {
			if err = os.MkdirAll(d, 0o755); err != nil {
				break
			}
		}
	case "seqread":
		r.Bytes, err = readFile(args[0], make([]byte, 1<<20))
	case "statwalk":
		r.Count, err = statWalk(args[0])
	case "readdirwalk":
		r.Count, r.Bytes, err = walk(args[0], false)
	case "readall":
		r.Count, r.Bytes, err = walk(args[0], true)
	case "lslr":
		err = run("", "ls", "-lR", args[0])
	case "append":
		err = appendByte(args[0])
	case "cpappend":
		if err = run("", "cp", args[0], args[1]); err == nil {
			err = appendByte(args[1])
		}
	case "write":
		r.Bytes, err = writeFiles(args[0], args[1], args[2])
	case "untar":
		if err = os.MkdirAll(args[1], 0o755); err == nil {
			err = run("", "tar", "-xf", args[0], "-C", args[1])
		}
	case "rmrf":
		err = run("", "rm", "-rf", args[0])
	case "clean": // scratch trees: never cross into a mount left behind
		err = run("", "rm", "-rf", "--one-file-system", args[0])
	case "cpa":
		err = run("", "cp", "-a", args[0], args[1])
	case "waitmount":
		r.Dev, err = waitMount(args[0], args[1])
	}
	r.NS = time.Since(start).Nanoseconds()
	if err == nil {
		err = check(op, args, &r)
	}
	if err != nil {
		return fmt.Errorf("worker %s: %w", op, err)
	}
	return json.NewEncoder(w).Encode(r)
}

// check looks, untimed, at what a writing operation left, so a union that
// skips work cannot pass for a fast one.
func check(op string, args []string, r *Result) error {
	switch op {
	case "rmrf":
		if _, err := os.Lstat(args[0]); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s still there after rm -rf: %v", args[0], err)
		}
	case "untar":
		n, _, err := walk(args[1], false)
		r.Count = n
		return err
	case "append", "cpappend":
		fi, err := os.Stat(args[len(args)-1])
		if err != nil {
			return err
		}
		r.Bytes = fi.Size()
	}
	return nil
}

// buildFixture builds the fixture a JSON fixture.Spec describes.
func buildFixture(dir, specJSON string) error {
	var spec fixture.Spec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("decoding fixture spec %q: %w", specJSON, err)
	}
	_, err := fixture.Build(dir, spec)
	return err
}

// run runs a tool with stdout to /dev/null (ls -lR's output is not what is
// measured) and its stderr kept for the error.
func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w: %s", name, args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

func readFile(path string, buf []byte) (n int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for {
		k, err := f.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("reading %s: %w", path, err)
		}
	}
}

// statWalk lists every directory and lstats every entry, relative to the
// directory's descriptor as find(1) does.
func statWalk(dir string) (int64, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", dir, err)
	}
	n := int64(len(names))
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return n, fmt.Errorf("stat %s: %w", filepath.Join(dir, name), err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			k, err := statWalk(filepath.Join(dir, name))
			n += k
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// walk lists every directory, going by the type readdir reports, and with
// read set also reads every regular file whole. It counts entries (without
// read) or files read, and bytes read.
func walk(dir string, read bool) (count, bytes int64, err error) {
	buf := make([]byte, 128<<10)
	var visit func(string) error
	visit = func(d string) error {
		ents, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("listing %s: %w", d, err)
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			switch {
			case e.IsDir():
				if !read {
					count++
				}
				if err := visit(p); err != nil {
					return err
				}
			case !read:
				count++
			case e.Type().IsRegular():
				k, err := readFile(p, buf)
				if err != nil {
					return err
				}
				count++
				bytes += k
			}
		}
		return nil
	}
	err = visit(dir)
	return count, bytes, err
}

// appendByte is the copy-up workload: the first write to a lower file.
func appendByte(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		f.Close()
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	return f.Close()
}

// writeFiles writes total bytes as files equal new files in 1 MiB writes.
// The data is random so no layer can shortcut zeros.
func writeFiles(dir, totalS, filesS string) (int64, error) {
	total, err1 := strconv.ParseInt(totalS, 10, 64)
	files, err2 := strconv.ParseInt(filesS, 10, 64)
	if err := errors.Join(err1, err2); err != nil || files < 1 {
		return 0, fmt.Errorf("write %s bytes in %s files: %v", totalS, filesS, err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>9)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	var n int64
	for i := range files {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("new-%02d", i)))
		if err != nil {
			return n, err
		}
		for left := total / files; left > 0; {
			k, err := f.Write(buf[:min(left, int64(len(buf)))])
			n += int64(k)
			left -= int64(k)
			if err != nil {
				f.Close()
				return n, fmt.Errorf("writing %s: %w", f.Name(), err)
			}
		}
		if err := f.Close(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// waitMount polls until a FUSE filesystem is mounted on mnt and returns
// its device number, which names its connection under fusectl.
func waitMount(mnt, timeout string) (uint64, error) {
	d, err := time.ParseDuration(timeout)
	if err != nil {
		return 0, err
	}
	var parent unix.Stat_t
	if err := unix.Stat(filepath.Dir(mnt), &parent); err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(d); ; time.Sleep(2 * time.Millisecond) {
		var fs unix.Statfs_t
		var st unix.Stat_t
		if unix.Statfs(mnt, &fs) == nil && fs.Type == unix.FUSE_SUPER_MAGIC &&
			unix.Stat(mnt, &st) == nil && st.Dev != parent.Dev {
			return st.Dev, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no FUSE mount on %s after %s", mnt, d)
		}
	}
}
