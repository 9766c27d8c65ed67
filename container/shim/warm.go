package shim

import (
	"debug/elf"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"nook/rootless"
)

// warmCaches reads, through the container's mounted root, what init and the
// payload's exec read first: the mount points and files init resolves,
// the payload's binary, its ELF interpreter and the shared libraries it
// needs (warmlibs.go). On a FUSE root mounted a moment ago each of those
// is a round trip to the union's server, and an exec waits for one READ
// per page fault (a static busybox: 20 of them, ~10 ms here; ls and its
// libraries: ~15 ms); warmed, they come from the kernel's caches.
//
// store, when not nil, puts a file's first bytes straight into the
// kernel's page cache (the union's Prefetch: no READ round trips); a file
// it fails on, or every file without it, is read through the mount. The
// kernel takes stored bytes as the file's data, so the shim calls warmCaches
// before the payload exists. Best effort: a failure only ends the warming,
// which never writes; stop ends it early.
func warmCaches(cfg rootless.InitConfig, store func(rel string, max int64) (int64, error), stop <-chan struct{}) {
	defer func() {
		// debug/elf reads a file of the image: its faults are never
		// the shim's.
		_ = recover()
	}()
	w := &warmer{root: cfg.Rootfs, store: store, stop: stop}
	// The exec first: its page faults cost most.
	if bin := warmLookPath(w.root, cfg.Process); bin != "" {
		w.exec(bin, cfg.Process.Environ("/"))
	}
	for _, p := range []string{"/etc/passwd", "/etc/group"} {
		w.cache(p)
	}
	for _, p := range []string{"/proc", "/sys", "/dev", cfg.Process.Cwd} {
		w.stat(p)
	}
	for _, m := range cfg.Mounts {
		w.stat(m.Target)
	}
}

// warmer holds what Warm's steps share.
type warmer struct {
	root  string
	store func(rel string, max int64) (int64, error)
	stop  <-chan struct{}
}

func (w *warmer) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// warmMax bounds what is read of one file: a binary's first pages are
// those its start faults in; reading hundreds of MiB would compete with
// the start it means to speed up.
const warmMax = 8 << 20

// stat looks p up inside the root, caching its entry and attributes.
func (w *warmer) stat(p string) {
	if p != "" {
		statInRoot(w.root, p)
	}
}

// statInRoot stats p, its links resolved inside root.
func statInRoot(root, p string) (os.FileInfo, bool) {
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return nil, false
	}
	fi, err := os.Lstat(full)
	return fi, err == nil
}

// cache puts up to warmMax of the regular file p inside the root into the
// page cache without opening it: the lookup makes it known to the kernel
// and the union stores its bytes, sparing the OPEN, FLUSH and RELEASE
// round trips of read (~1 ms each while init starts beside). Without a
// store, or when it fails, p is read through the mount.
func (w *warmer) cache(p string) int64 {
	if w.store == nil || w.stopped() {
		_, n := w.read(p, false)
		return n
	}
	full, err := securejoin.SecureJoin(w.root, p)
	if err != nil {
		return 0
	}
	if fi, err := os.Lstat(full); err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	if n, err := w.store(strings.TrimPrefix(full, w.root), warmMax); err == nil {
		return n
	}
	_, n := w.read(p, false)
	return n
}

// read puts up to warmMax of the regular file p inside the root into the
// page cache, stored when useStore and the union takes it, else read
// through the mount, and returns what it asks the dynamic loader for, if
// it is an ELF file, and how much it cached.
func (w *warmer) read(p string, useStore bool) (deps elfDeps, n int64) {
	full, err := securejoin.SecureJoin(w.root, p)
	if err != nil || w.stopped() {
		return deps, 0
	}
	// O_NONBLOCK: a FIFO in the image must not block the shim.
	fd, err := unix.Open(full, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return deps, 0
	}
	f := os.NewFile(uintptr(fd), full)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return deps, 0
	}
	stored := false
	if useStore && w.store != nil {
		// The lookups above made every component of full known to
		// the kernel, links resolved.
		n, err = w.store(strings.TrimPrefix(full, w.root), warmMax)
		stored = err == nil
	}
	if !stored {
		n = w.readAll(f, min(fi.Size(), warmMax))
	}
	var magic [len(elf.ELFMAG)]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil || string(magic[:]) != elf.ELFMAG {
		return deps, n
	}
	return readELFDeps(f), n
}

// readAll reads f's first size bytes through the mount.
func (w *warmer) readAll(f *os.File, size int64) (n int64) {
	buf := make([]byte, 512<<10)
	for n < size && !w.stopped() {
		got, err := f.ReadAt(buf, n)
		n += int64(got)
		if err != nil || got == 0 {
			break
		}
	}
	return n
}

// warmLookPath finds the payload's binary as init will (searchPath),
// inside root; a relative result is taken from the working directory.
func warmLookPath(root string, p rootless.InitProcess) string {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return ""
	}
	inCwd := func(rel string) string {
		if filepath.IsAbs(rel) {
			return rel
		}
		return filepath.Join("/", p.Cwd, rel)
	}
	stat := func(rel string) (os.FileInfo, bool) { return statInRoot(root, inCwd(rel)) }
	bin, ok := rootless.SearchPath(p.Args[0], p.Environ("/"), stat)
	if !ok {
		return ""
	}
	return inCwd(bin)
}
