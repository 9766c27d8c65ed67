package container

import (
	"errors"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// mkdirIn creates the directory name in r (the containers directory), and
// subs inside it, through r's descriptor, which never leaves the store: a
// link planted where a container directory goes (the store's containers/
// once was another user's to write) must not lead nook to create the
// user's files elsewhere. What exists already must be a directory, not a
// link to one (run makes the container's directory early, to start its
// shim meanwhile).
func mkdirIn(r *os.Root, name string, subs ...string) error {
	if err := mkdirat(r, name); err != nil {
		return err
	}
	for _, s := range subs {
		if err := mkdirat(r, path.Join(name, s)); err != nil {
			return err
		}
	}
	return nil
}

// mkdirat makes name in r, or finds it there as a directory, not a link
// to one.
func mkdirat(r *os.Root, name string) error {
	err := r.Mkdir(name, 0o755)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := r.Lstat(name)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "mkdir", Path: name, Err: unix.ENOTDIR}
	}
	return nil
}
