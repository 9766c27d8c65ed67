package rootless

import (
	"debug/elf"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Warm reads, through the container's mounted root, what init and the
// payload's exec read first: the mount points and files init resolves,
// the payload's binary, its ELF interpreter and the shared libraries it
// needs (warmlibs.go). On a FUSE root mounted a
// moment ago each of those is a round trip to the union's server, and an
// exec waits for one READ per page fault (a static busybox: 20 of them,
// ~10 ms here); read ahead, they come from the kernel's caches. The shim
// calls Warm while init's process starts, when nothing waits for the
// union.
//
// Best effort: a failure only ends the warming, which never writes. stop
// ends it early; the caller waits for Warm to return before unmounting the
// root (an open file would keep the mount busy).
func Warm(cfg InitConfig, stop <-chan struct{}) {
	defer func() {
		// debug/elf reads a file of the image: its faults are never
		// the shim's.
		_ = recover()
	}()
	root := cfg.Rootfs
	for _, p := range []string{"/proc", "/sys", "/dev", cfg.Process.Cwd} {
		warmStat(root, p)
	}
	for _, m := range cfg.Mounts {
		warmStat(root, m.Target)
	}
	for _, p := range []string{"/etc/passwd", "/etc/group"} {
		warmRead(root, p, stop)
	}
	if bin := warmLookPath(root, cfg.Process); bin != "" {
		warmExec(root, bin, payloadEnv(cfg.Process, "/"), stop)
	}
}

// warmMax bounds what is read of one file: a binary's first pages are
// those its start faults in; reading hundreds of MiB would compete with
// the start it means to speed up.
const warmMax = 8 << 20

// warmStat looks p up inside root, caching its entry and attributes.
func warmStat(root, p string) {
	if p != "" {
		statInRoot(root, p)
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

// warmRead reads up to warmMax of the regular file p inside root into the
// page cache and returns what it asks the dynamic loader for, if it is an
// ELF file. n is how much it read.
func warmRead(root, p string, stop <-chan struct{}) (deps elfDeps, n int64) {
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
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
	buf := make([]byte, 512<<10)
	var magic [len(elf.ELFMAG)]byte // buf's start is overwritten by later reads
	for n < min(fi.Size(), warmMax) {
		select {
		case <-stop:
			return deps, n
		default:
		}
		got, err := f.ReadAt(buf, n)
		if n == 0 {
			copy(magic[:], buf[:got])
		}
		n += int64(got)
		if err != nil || got == 0 {
			break
		}
	}
	if string(magic[:]) != elf.ELFMAG {
		return deps, n
	}
	return readELFDeps(f), n
}

// warmLookPath finds the payload's binary as init will (lookPath), inside
// root: absolute, relative to the working directory, or on the PATH.
func warmLookPath(root string, p InitProcess) string {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return ""
	}
	name := p.Args[0]
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			name = filepath.Join("/", p.Cwd, name)
		}
		return name
	}
	path := defaultPath
	for _, kv := range payloadEnv(p, "/") {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		cand := filepath.Join("/", p.Cwd, dir, name)
		if filepath.IsAbs(dir) {
			cand = filepath.Join(dir, name)
		}
		if fi, ok := statInRoot(root, cand); ok && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return cand
		}
	}
	return ""
}
