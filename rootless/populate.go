package rootless

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// populate fills an empty volume, dst, from what the image holds at the
// mount point, src, before the volume hides it, as Docker does on a
// volume's first use: files, directories and links with their owners,
// modes and times. A volume that holds anything is left as it is. It runs
// in init, inside the user namespace, where the image's owners are ids
// it may give, holding a lock on the volume's directory.
func populate(src, dst string) error {
	d, err := os.Open(dst)
	if err != nil {
		return fmt.Errorf("opening volume %s: %w", dst, err)
	}
	defer d.Close()
	// Two containers starting at once on a new volume: one fills it, the
	// other then finds it full.
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking volume %s: %w", dst, err)
	}
	names, err := d.Readdirnames(1)
	if err == nil && len(names) > 0 {
		return nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading volume %s: %w", dst, err)
	}
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return copyEntry(p, filepath.Join(dst, rel), e, rel == ".")
	})
}

// copyEntry copies one entry of populate's walk; the top directory exists
// already and takes the mount point's owner and mode.
func copyEntry(from, to string, e fs.DirEntry, top bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(from, &st); err != nil {
		return fmt.Errorf("populating volume: %w", err)
	}
	mode := os.FileMode(st.Mode & 0o7777)
	switch t := e.Type(); {
	case top:
	case t.IsDir():
		if err := os.Mkdir(to, 0o700); err != nil {
			return fmt.Errorf("populating volume: %w", err)
		}
	case t.IsRegular():
		if err := copyFile(from, to); err != nil {
			return err
		}
	case t&fs.ModeSymlink != 0:
		target, err := os.Readlink(from)
		if err != nil {
			return fmt.Errorf("populating volume: %w", err)
		}
		if err := os.Symlink(target, to); err != nil {
			return fmt.Errorf("populating volume: %w", err)
		}
	default: // devices, fifos and sockets: not data
		return nil
	}
	// An id the namespace does not map (single-id mode maps only root)
	// leaves the copy root's, as the union shows such files.
	if err := unix.Lchown(to, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("populating volume: owner of %s: %w", to, err)
	}
	if e.Type()&fs.ModeSymlink == 0 {
		// After the owner: chown clears the set-id bits.
		if err := unix.Fchmodat(unix.AT_FDCWD, to, uint32(mode), 0); err != nil {
			return fmt.Errorf("populating volume: mode of %s: %w", to, err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	_ = unix.UtimesNanoAt(unix.AT_FDCWD, to, ts, unix.AT_SYMLINK_NOFOLLOW)
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("populating volume: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("populating volume: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("populating volume: copying %s: %w", from, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("populating volume: %w", err)
	}
	return nil
}
