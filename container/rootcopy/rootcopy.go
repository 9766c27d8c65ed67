// Package rootcopy copies files and trees as `docker cp` does, between the
// host and a container's root, where every path, symbolic links included,
// resolves inside the root. It is the part of cp that the stages' program
// runs for a copy into a running container (see Handlers), so it
// links only what that program needs.
package rootcopy

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nook/image/layer"
	"nook/internal/overlay"
)

// Errors of cp that callers and tests branch on.
var (
	ErrNoSuchPath = errors.New("no such file or directory")
	ErrCopyTarget = errors.New("cannot copy there")
)

// Side is one end of a copy: the host, where paths resolve as usual, or a
// container's mounted filesystem, where every path, symbolic links
// included, resolves inside its root (openat2 RESOLVE_IN_ROOT), so a link
// to / or ../../.. never leads outside it (CVE-2018-15664).
type Side struct {
	root   int // directory descriptor paths resolve from
	inRoot bool
	name   string // for messages: "container c1" or "host"
	// outsidePID: this process is outside the pid namespace whose /proc
	// it sees (a copy into a running container), so /proc/self does not
	// name it: Extract works from the directory as its working directory.
	outsidePID bool
}

// Host is the host's side: paths resolve from the working directory, as
// they do for any command.
func Host() Side { return Side{root: unix.AT_FDCWD, name: "host"} }

// Open returns the side of the root at dir, named name in messages
// ("container c1"); Close releases it.
func Open(dir, name string) (Side, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Side{}, fmt.Errorf("opening the filesystem of %s: %w", name, err)
	}
	return Side{root: fd, inRoot: true, name: name}, nil
}

// Close releases a side returned by Open.
func (s Side) Close() error {
	if !s.inRoot {
		return nil
	}
	return unix.Close(s.root)
}

func (s Side) resolve() uint64 {
	if s.inRoot {
		return unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
	}
	return 0
}

// open returns an O_PATH descriptor of p; a symbolic link as the last
// component is followed only with follow.
func (s Side) open(p string, follow bool) (int, error) {
	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	for {
		fd, err := unix.Openat2(s.root, p, &unix.OpenHow{Flags: flags, Resolve: s.resolve()})
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue // openat2 asks for a retry when a rename raced the lookup
		}
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("%s: %q: %w", s.name, p, ErrNoSuchPath)
		}
		if err != nil {
			return -1, fmt.Errorf("%s: resolving %q: %w", s.name, p, err)
		}
		return fd, nil
	}
}

// fdPath names an open descriptor for the functions that take a path;
// opening it reopens the very file, wherever it was found.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// Archive writes the file or tree at p as tar entries named under name
// ("" for a directory's contents alone; a file needs a name).
func (s Side) Archive(w io.Writer, p string, follow bool, name string, log *slog.Logger) error {
	fd, err := s.open(p, follow)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: inspecting %q: %w", s.name, p, err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	names := TreeNames(name)
	if !isDir {
		names = func(string) string { return name } // the one entry
	}
	go func() {
		err := retar(pr, w, names)
		pr.CloseWithError(io.ErrClosedPipe) // a writer still writing stops
		done <- err
	}()
	var werr error
	if isDir {
		werr = layer.Write(pw, fdPath(fd), layer.WriteOptions{Root: true, Logger: log})
	} else {
		// One entry: its parent written with every other name left out,
		// so the entry is made exactly as a tree's entries are.
		werr = s.archiveOne(pw, fd, p, log)
	}
	pw.CloseWithError(werr)
	if err := <-done; err != nil {
		return err
	}
	return werr
}

// archiveOne writes the single non-directory open at fd as one entry
// named by its base name (renamed by the caller), made exactly as a
// tree's entries are: its parent is written with every other name left
// out. The parent is found by the kernel's path of fd; a check of device
// and inode makes sure the name there is still the file resolved.
func (s Side) archiveOne(w io.Writer, fd int, p string, log *slog.Logger) error {
	real, err := os.Readlink(fdPath(fd))
	if err != nil {
		return fmt.Errorf("%s: locating %q: %w", s.name, p, err)
	}
	base := path.Base(real)
	dir, err := unix.Open(path.Dir(real), unix.O_PATH|unix.O_CLOEXEC|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("%s: opening the directory of %q: %w", s.name, p, err)
	}
	defer unix.Close(dir)
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Fstatat(dir, base, &b, unix.AT_SYMLINK_NOFOLLOW) != nil || a.Dev != b.Dev || a.Ino != b.Ino {
		return fmt.Errorf("%s: %q moved while being copied", s.name, p)
	}
	return layer.Write(w, fdPath(dir), layer.WriteOptions{Skip: func(n string) bool { return n != base }, Logger: log})
}

// retar copies a tar from r to w with each entry's name (and a
// hardlink's target) mapped by rename; an entry mapped to "" is left out,
// and so is any name that reads as an overlay whiteout, which is never a
// copied file's and must not become a deletion on the receiving side.
func retar(r io.Reader, w io.Writer, rename func(string) string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		hdr.Name = rename(hdr.Name)
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = rename(hdr.Linkname)
		}
		if hdr.Name == "" || strings.HasPrefix(path.Base(hdr.Name), overlay.WhiteoutPrefix) {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
	}
	return tw.Close()
}

// TreeNames maps a tree written with its root entry "./" to sit under
// name, or with name "" to its contents alone.
func TreeNames(name string) func(string) string {
	return func(n string) string {
		rest := strings.TrimPrefix(n, "./")
		switch {
		case name == "":
			return rest
		case rest == "":
			return name + "/"
		}
		return name + "/" + rest
	}
}

// KeepNames leaves a tar's names as they are.
func KeepNames(n string) string { return n }

// Extract unpacks a tar, its names mapped by rename, into the existing
// directory dir of this side.
func (s Side) Extract(r io.Reader, dir string, rename func(string) string, chown bool, log *slog.Logger) error {
	fd, err := s.open(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: inspecting %q: %w", s.name, dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s: %q is not a directory: %w", s.name, dir, ErrCopyTarget)
	}
	// Apply renames in place rather than through retar, which would
	// expand a sparse entry's holes into a stream of zeros.
	at := fdPath(fd)
	if s.outsidePID {
		if err := unix.Fchdir(fd); err != nil {
			return fmt.Errorf("%s: entering %q: %w", s.name, dir, err)
		}
		at = "."
	}
	_, err = layer.Apply(r, at, layer.ApplyOptions{Chown: chown, Logger: log, Rename: func(n string) string {
		n = rename(n)
		for comp := range strings.SplitSeq(n, "/") {
			if strings.HasPrefix(comp, overlay.WhiteoutPrefix) {
				return "" // never a copied file's name; must not delete on this side
			}
		}
		return n
	}})
	if err != nil {
		return fmt.Errorf("%s: copying into %q: %w", s.name, dir, err)
	}
	return nil
}

// Source is what a cp copies: a file or a tree, whole or (a directory
// given as "DIR/.") its contents alone.
type Source struct {
	IsDir    bool   `json:"isDir"`
	Contents bool   `json:"contents"`
	Name     string `json:"name"` // the copy's name unless the destination renames it
}

// Source inspects p, the source of a copy.
func (s Side) Source(p string, follow bool) (Source, error) {
	isDir, err := s.isDir(p, follow)
	if err != nil {
		return Source{}, err
	}
	src := Source{IsDir: isDir, Name: path.Base(path.Clean(p))}
	src.Contents = isDir && (strings.HasSuffix(p, "/.") || p == ".")
	if src.Name == "/" || src.Name == "." {
		src.Name, src.Contents = ".", true
	}
	return src, nil
}

// Target applies `docker cp`'s rules for where src lands on this side:
// into dst when it is a directory (a source's contents alone, or the
// source under its own name), else as dst, whose parent must exist. It
// returns the directory to extract into and the copy's name there ("" for
// contents alone).
func (s Side) Target(dst string, src Source) (dir, name string, err error) {
	if dst, err = s.followLinks(dst); err != nil {
		return "", "", err
	}
	dstIsDir, err := s.isDir(dst, true)
	switch {
	case err == nil && dstIsDir:
		if src.Contents {
			return dst, "", nil
		}
		return dst, src.Name, nil
	case err == nil && src.IsDir:
		return "", "", fmt.Errorf("%s: cannot copy a directory onto the file %q: %w", s.name, dst, ErrCopyTarget)
	case err == nil || errors.Is(err, ErrNoSuchPath):
		if strings.HasSuffix(dst, "/") {
			return "", "", fmt.Errorf("%s: the directory %q does not exist: %w", s.name, dst, ErrNoSuchPath)
		}
		return path.Dir(strings.TrimRight(dst, "/")), path.Base(dst), nil
	}
	return "", "", err
}

// followLinks resolves symbolic links as the last component of dst, as
// Docker does, so a copy onto a link writes where the link points (inside
// the root, like every path here), existing yet or not.
func (s Side) followLinks(dst string) (string, error) {
	for range 40 { // the kernel's limit (MAXSYMLINKS)
		if strings.HasSuffix(dst, "/") {
			return dst, nil // a directory is meant; open follows the link
		}
		parent, err := s.open(path.Dir(dst), true)
		if err != nil {
			return dst, nil // the copy reports what is missing
		}
		target, err := readlinkat(parent, path.Base(dst))
		unix.Close(parent)
		if err != nil {
			return dst, nil // not a link
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(dst), target)
		}
		dst = path.Clean(target)
	}
	return "", fmt.Errorf("%s: %q: %w", s.name, dst, unix.ELOOP)
}

// readlinkat reads the symbolic link name in dir.
func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// isDir reports whether p is a directory (following a final link with follow).
func (s Side) isDir(p string, follow bool) (bool, error) {
	fd, err := s.open(p, follow)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("%s: inspecting %q: %w", s.name, p, err)
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}
