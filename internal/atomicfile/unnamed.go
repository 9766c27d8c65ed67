package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// debrisPattern matches the named temporary files of Write for base.
func debrisPattern(base string) string { return "." + base + ".tmp-*" }

// createTemp opens an unnamed file in dir (relative to r), or where the
// filesystem has none, a named one (returned as named, relative to r),
// locked so that clearDebris leaves it alone while this process lives.
func createTemp(r *os.Root, dir, base string) (f *os.File, named string, err error) {
	f, err = r.OpenFile(dir, unix.O_TMPFILE|os.O_WRONLY, 0o600)
	if err == nil {
		return f, "", nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, "", err
	}
	prefix := strings.TrimSuffix(debrisPattern(base), "*")
	for range 100 {
		named = path.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err = r.OpenFile(named, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, "", err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		r.Remove(named)
		return nil, "", fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return f, named, nil
}

// linkIn gives the unnamed file f a temporary name in the directory d
// (dir relative to the root), under the same lock as a named temporary
// file, and returns that name relative to the root.
func linkIn(f, d *os.File, dir, base string) (string, error) {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return "", fmt.Errorf("locking the new file: %w", err)
	}
	tmp := "." + base + ".tmp-" + strconv.Itoa(os.Getpid())
	dfd := int(d.Fd())
	_ = unix.Unlinkat(dfd, tmp, 0) // this process's own leftover, if any
	// Through /proc: linking a descriptor directly (AT_EMPTY_PATH) takes
	// CAP_DAC_READ_SEARCH.
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), dfd, tmp, unix.AT_SYMLINK_FOLLOW)
	if errors.Is(err, unix.ENOENT) {
		err = unix.Linkat(int(f.Fd()), "", dfd, tmp, unix.AT_EMPTY_PATH)
	}
	if err != nil {
		return "", err
	}
	return path.Join(dir, tmp), nil
}

// clearDebris removes named temporary files of base in the directory d
// (dir relative to r) that no writer holds: those of writers killed
// before they finished. A file a minute old at least, so a writer between
// creating its file and locking it keeps it.
func clearDebris(r *os.Root, d *os.File, dir, base string) {
	names, err := d.Readdirnames(-1)
	if _, serr := d.Seek(0, io.SeekStart); serr != nil || err != nil {
		return
	}
	prefix := strings.TrimSuffix(debrisPattern(base), "*")
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		fd, err := unix.Openat(int(d.Fd()), n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG &&
			time.Since(time.Unix(st.Mtim.Unix())) > time.Minute && unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			_ = r.Remove(path.Join(dir, n))
		}
		unix.Close(fd)
	}
}
