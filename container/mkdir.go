package container

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mkdirNoFollow creates the directory name in parent (made when missing),
// and subs inside it, each from its parent's descriptor and
// without following a symbolic link at any step: a link planted where a
// container directory goes (the store's containers/ once was another
// user's to write) must not lead nook to create the user's files
// elsewhere. What exists already must be a directory (run makes the
// container's directory early, to start its shim meanwhile).
func mkdirNoFollow(parent, name string, subs ...string) error {
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", parent, err)
	}
	pfd, err := unix.Open(parent, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", parent, err)
	}
	defer unix.Close(pfd)
	if err := mkdirat(pfd, name); err != nil {
		return fmt.Errorf("creating %s/%s: %w", parent, name, err)
	}
	fd, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s/%s: %w", parent, name, err)
	}
	defer unix.Close(fd)
	for _, s := range subs {
		if err := mkdirat(fd, s); err != nil {
			return fmt.Errorf("creating %s/%s/%s: %w", parent, name, s, err)
		}
	}
	return nil
}

// mkdirat makes name in dfd, or finds it there as a directory, not a
// link to one.
func mkdirat(dfd int, name string) error {
	err := unix.Mkdirat(dfd, name, 0o755)
	if err != unix.EEXIST {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	return nil
}
