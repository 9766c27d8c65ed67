package rootless

import (
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Warm reads, through the container's mounted root, what init and the
// payload's exec read first: the mount points and files init resolves,
// the payload's binary and its ELF interpreter. On a FUSE root mounted a
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
	bin := warmLookPath(root, cfg.Process)
	// The binary, then its interpreter (a static binary has none).
	for range 2 {
		if bin == "" {
			return
		}
		bin = warmRead(root, bin, stop)
	}
}

// warmMax bounds what is read of one file: a binary's first pages are
// those its start faults in; reading hundreds of MiB would compete with
// the start it means to speed up.
const warmMax = 8 << 20

// warmStat looks p up inside root, caching its entry and attributes.
func warmStat(root, p string) {
	if p == "" {
		return
	}
	if full, err := securejoin.SecureJoin(root, p); err == nil {
		_, _ = os.Lstat(full)
	}
}

// warmRead reads up to warmMax of the regular file p inside root into the
// page cache and returns its ELF interpreter, if it has one.
func warmRead(root, p string, stop <-chan struct{}) (interp string) {
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return ""
	}
	// O_NONBLOCK: a FIFO in the image must not block the shim.
	fd, err := unix.Open(full, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	f := os.NewFile(uintptr(fd), full)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	buf := make([]byte, 512<<10)
	var magic [len(elf.ELFMAG)]byte // buf's start is overwritten by later reads
	for off := int64(0); off < min(fi.Size(), warmMax); {
		select {
		case <-stop:
			return ""
		default:
		}
		n, err := f.ReadAt(buf, off)
		if off == 0 {
			copy(magic[:], buf[:n])
		}
		off += int64(n)
		if err != nil || n == 0 {
			break
		}
	}
	if string(magic[:]) != elf.ELFMAG {
		return ""
	}
	return elfInterp(f)
}

// elfInterp returns the interpreter an ELF file names (PT_INTERP).
func elfInterp(f io.ReaderAt) string {
	ef, err := elf.NewFile(f)
	if err != nil {
		return ""
	}
	for _, prog := range ef.Progs {
		if prog.Type != elf.PT_INTERP || prog.Filesz > unix.PathMax {
			continue
		}
		b, err := io.ReadAll(prog.Open())
		if err != nil {
			return ""
		}
		return strings.TrimRight(string(b), "\x00")
	}
	return ""
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
		full, err := securejoin.SecureJoin(root, cand)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(full); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return cand
		}
	}
	return ""
}
