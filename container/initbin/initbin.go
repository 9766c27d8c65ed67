// Package initbin carries the container's init as a program of its own
// (cmd/nook-init), embedded in nook, and writes it out for the shim to
// start. Init starts on the critical path of every `nook run`, and a Go
// program takes longer to start the more it links (package initialisers,
// page faults): measured on a 2-core VM, nook's whole binary reaches main
// in ~13 ms, init's own in ~5.
//
// `go generate ./container/initbin` builds it (gen.go) before `go build`
// embeds it (build.sh does both). Built without it, nook runs init from its
// own binary, as Path reports.
package initbin

//go:generate go run gen.go

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"nook/internal/atomicfile"
)

//go:embed bin
var files embed.FS

// Names in bin/ that gen.go writes.
const (
	binFile = "bin/nook-init"
	sumFile = "bin/nook-init.sha256"
	prefix  = "nook-init-" // of the files Path writes
)

// Embedded returns the size of init's binary and its SHA-256 (hex) as
// gen.go recorded it, or ok false when nook was built without them. It
// does not touch the binary's bytes: reading them costs a page fault per
// 4 KiB (a third of a `nook run` on a VM where faults are slow).
func Embedded() (size int64, sum string, ok bool) { return embedded(files) }

func embedded(fsys fs.FS) (size int64, sum string, ok bool) {
	st, err := fs.Stat(fsys, binFile)
	if err != nil || st.Size() == 0 {
		return 0, "", false
	}
	s, err := fs.ReadFile(fsys, sumFile)
	sum = strings.TrimSpace(string(s))
	if err != nil || len(sum) != 64 {
		return 0, "", false
	}
	return st.Size(), sum, true
}

// Path returns the path of init's binary in dir, writing it there first
// (atomically, dir made if missing) unless a regular file of its name and
// size is there already, and removing the binaries other builds of nook
// wrote. The name carries the binary's digest, so a file found is the
// right one. It returns "" when nook was built without init embedded.
func Path(dir string) (string, error) { return path(files, dir) }

func path(fsys fs.FS, dir string) (string, error) {
	size, sum, ok := embedded(fsys)
	if !ok {
		return "", nil
	}
	p := filepath.Join(dir, prefix+sum[:16])
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Size() == size {
		return p, nil
	}
	data, err := fs.ReadFile(fsys, binFile)
	if err != nil {
		return "", fmt.Errorf("writing the container init: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("writing the container init: %w", err)
	}
	if err := atomicfile.WriteFile(p, data, 0o555); err != nil {
		return "", fmt.Errorf("writing the container init: %w", err)
	}
	removeOthers(dir, filepath.Base(p))
	return p, nil
}

// removeOthers removes the init binaries in dir but keep. A container
// that runs one keeps its copy: the kernel holds the file it executes.
func removeOthers(dir, keep string) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, prefix) && n != keep {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
}
