package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// debrisPattern matches the named temporary files of Write for base.
func debrisPattern(base string) string { return "." + base + ".tmp-*" }

// createTemp opens an unnamed file in dir, or where the filesystem has
// none, a named one (returned as named), locked so that clearDebris
// leaves it alone while this process lives.
func createTemp(dir, base string) (f *os.File, named string, err error) {
	f, err = os.OpenFile(dir, unix.O_TMPFILE|os.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return f, "", nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, "", err
	}
	f, err = os.CreateTemp(dir, debrisPattern(base))
	if err != nil {
		return nil, "", err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, "", fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return f, f.Name(), nil
}

// linkIn gives the unnamed file f a temporary name in dir, under the
// same lock as a named temporary file.
func linkIn(f *os.File, dir, base string) (string, error) {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return "", fmt.Errorf("locking the new file: %w", err)
	}
	tmp := filepath.Join(dir, "."+base+".tmp-"+strconv.Itoa(os.Getpid()))
	_ = os.Remove(tmp) // this process's own leftover, if any
	// Through /proc: linking a descriptor directly (AT_EMPTY_PATH) takes
	// CAP_DAC_READ_SEARCH.
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW)
	if errors.Is(err, unix.ENOENT) {
		err = unix.Linkat(int(f.Fd()), "", unix.AT_FDCWD, tmp, unix.AT_EMPTY_PATH)
	}
	if err != nil {
		return "", err
	}
	return tmp, nil
}

// clearDebris removes named temporary files of base in dir that no
// writer holds: those of writers killed before they finished. A file a
// minute old at least, so a writer between creating its file and locking
// it keeps it.
func clearDebris(dir, base string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := strings.TrimSuffix(debrisPattern(base), "*")
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		n := filepath.Join(dir, e.Name())
		fd, err := unix.Open(n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG &&
			time.Since(time.Unix(st.Mtim.Unix())) > time.Minute && unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			_ = os.Remove(n)
		}
		unix.Close(fd)
	}
}
