package shim

import (
	"debug/elf"
	"io"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// elfDeps is what an ELF file asks the dynamic loader for.
type elfDeps struct {
	interp  string   // PT_INTERP: the loader itself
	needed  []string // DT_NEEDED, in order
	runpath []string // DT_RUNPATH, else DT_RPATH
}

// readELFDeps reads f's loader requests; a static or malformed file asks
// for nothing.
func readELFDeps(f io.ReaderAt) (deps elfDeps) {
	ef, err := elf.NewFile(f)
	if err != nil {
		return deps
	}
	for _, prog := range ef.Progs {
		if prog.Type != elf.PT_INTERP || prog.Filesz > unix.PathMax {
			continue
		}
		if b, err := io.ReadAll(prog.Open()); err == nil {
			deps.interp = strings.TrimRight(string(b), "\x00")
		}
		break
	}
	deps.needed, _ = ef.ImportedLibraries()
	rp, _ := ef.DynString(elf.DT_RUNPATH)
	if len(rp) == 0 {
		rp, _ = ef.DynString(elf.DT_RPATH)
	}
	for _, s := range rp {
		deps.runpath = append(deps.runpath, filepath.SplitList(s)...)
	}
	return deps
}

// warmLibsMax and warmLibsBytes bound the libraries warmed: enough for a
// typical program's closure (ls: 3, python3: ~10), not a whole distribution.
const (
	warmLibsMax   = 32
	warmLibsBytes = 64 << 20
)

// exec warms the binary bin, its interpreter, then the shared
// libraries it needs, breadth first, found as the loader would find them
// in the usual places: RUNPATH ($ORIGIN included), LD_LIBRARY_PATH, then
// the system directories of glibc and musl images. /etc/ld.so.cache is
// not read: a library it alone knows is left to fault in. It returns the
// files it read, in order.
func (w *warmer) exec(bin string, env []string) (read []string) {
	deps, total := w.read(bin, true)
	read = append(read, bin)
	if deps.interp != "" {
		total += w.cache(deps.interp)
		read = append(read, deps.interp)
	}
	var libPath []string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "LD_LIBRARY_PATH="); ok {
			libPath = filepath.SplitList(v)
		}
	}
	// A library is searched for in the RUNPATH of the object that needs
	// it, so the queue keeps that object's search path with each name.
	type need struct {
		name    string
		runpath []string
	}
	var queue []need
	add := func(d elfDeps, object string) {
		rp := expandOrigin(d.runpath, object)
		for _, name := range d.needed {
			queue = append(queue, need{name, rp})
		}
	}
	add(deps, bin)
	// The interpreter is loaded already: a library naming it (libc
	// does) gets that one.
	seen := map[string]bool{path.Base(deps.interp): deps.interp != ""}
	for len(queue) > 0 && len(seen) < warmLibsMax && total < warmLibsBytes && !w.stopped() {
		nd := queue[0]
		queue = queue[1:]
		if seen[nd.name] {
			continue
		}
		seen[nd.name] = true
		if lib := findLib(w.root, nd.name, nd.runpath, libPath); lib != "" {
			d, n := w.read(lib, true)
			total += n
			read = append(read, lib)
			add(d, lib)
		}
	}
	return read
}

// expandOrigin replaces $ORIGIN (and ${ORIGIN}) in runpath entries with
// the directory of the object that names them.
func expandOrigin(runpath []string, object string) []string {
	dir := path.Dir(object)
	out := make([]string, 0, len(runpath))
	for _, p := range runpath {
		out = append(out, strings.NewReplacer("${ORIGIN}", dir, "$ORIGIN", dir).Replace(p))
	}
	return out
}

// findLib returns the path inside root of the library name, searched in
// runpath, libPath and the system directories; "" when none has it.
func findLib(root, name string, runpath, libPath []string) string {
	if strings.Contains(name, "/") {
		return name
	}
	dirs := append(append(append([]string(nil), runpath...), libPath...), systemLibDirs()...)
	for _, dir := range dirs {
		if !path.IsAbs(dir) {
			continue // relative entries are relative to the payload's cwd: rare, skipped
		}
		cand := path.Join(dir, name)
		if fi, ok := statInRoot(root, cand); ok && fi.Mode().IsRegular() {
			return cand
		}
	}
	return ""
}

// systemLibDirs are where glibc (Debian's multiarch layout, Fedora's
// lib64) and musl look without a cache.
func systemLibDirs() []string {
	dirs := []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"}
	if t := multiarch(); t != "" {
		dirs = append([]string{"/lib/" + t, "/usr/lib/" + t}, dirs...)
	}
	return dirs
}

// multiarch is Debian's triplet for this machine's architecture, the one
// images run here are built for.
func multiarch() string {
	return map[string]string{
		"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "386": "i386-linux-gnu",
		"arm": "arm-linux-gnueabihf", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu",
		"riscv64": "riscv64-linux-gnu",
	}[runtime.GOARCH]
}
