// Package stagebin carries the stages that run a container — the shim and
// init — as a program of their own (cmd/nook-stages), embedded in nook, and
// writes it out for the CLI to start the shim from (the shim then starts
// init from the same file). Both start on the critical path of every
// `nook run`, one after the other, and a Go program takes longer to start
// the more it links (package initialisers, page faults): measured on a
// 2-core VM, nook's whole binary (BuildKit's parser and protobuf,
// go-digest, the codecs, mpb, kong) reaches main in ~13 ms, the stages'
// program in ~7.
//
// `go generate ./container/stagebin` builds it (gen.go) before `go build`
// embeds it (build.sh does both). Built without it, nook runs the stages
// from its own binary, as Path reports.
package stagebin

//go:generate go run gen.go

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"nook/internal/atomicfile"
	"nook/rootless"
)

//go:embed bin
var files embed.FS

// Names in bin/ that gen.go writes.
const (
	binFile   = "bin/nook-stages"
	sumFile   = "bin/nook-stages.sha256"
	entryFile = "bin/nook-stages.entry" // names its entry point, if not Go's
	prefix    = "nook-stages-"          // of the files Path writes
)

// embedded returns the size of the stages' binary in fsys and its SHA-256
// (hex) as gen.go recorded it, or ok false when nook was built without
// them. It does not touch the binary's bytes: reading them costs a page
// fault per 4 KiB (a third of a `nook run` on a VM where faults are slow).
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

// Path returns the path of the stages' binary in dir, writing it there first
// (atomically, dir made if missing) unless a regular file of its name and
// size is there already, and removing all but the newest few that other
// builds of nook wrote. The name carries the binary's digest, so a file found is the
// right one. It returns "" when nook was built without it.
func Path(dir string) (string, error) { return path(files, dir) }

// PathIn is Path for the directory r, written and inspected through its
// descriptor (a store's bin/, see image.Store.OpenDir). What it returns
// is still a path, r.Name()/NAME: a program is started by path, by this
// process and by the shim in another.
func PathIn(r *os.Root) (string, error) { return pathIn(files, r) }

// Embedded says whether nook carries the stages' program (else Path
// returns "" and makes nothing).
func Embedded() bool {
	_, _, ok := embedded(files)
	return ok
}

func path(fsys fs.FS, dir string) (string, error) {
	size, sum, ok := embedded(fsys)
	if !ok {
		return "", nil
	}
	// Written out already, as on every exec but the first: one lstat.
	p := filepath.Join(dir, prefix+sum[:16])
	if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() && st.Size() == size {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("writing the container stages: %w", err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("writing the container stages: %w", err)
	}
	defer r.Close()
	return pathIn(fsys, r)
}

func pathIn(fsys fs.FS, r *os.Root) (string, error) {
	size, sum, ok := embedded(fsys)
	if !ok {
		return "", nil
	}
	name := prefix + sum[:16]
	p := filepath.Join(r.Name(), name)
	if st, err := r.Lstat(name); err == nil && st.Mode().IsRegular() && st.Size() == size {
		return p, nil
	}
	data, err := fs.ReadFile(fsys, binFile)
	if err != nil {
		return "", fmt.Errorf("writing the container stages: %w", err)
	}
	if err := atomicfile.WriteFileIn(r, name, data, 0o555); err != nil {
		return "", fmt.Errorf("writing the container stages: %w", err)
	}
	removeOthers(r, name)
	return p, nil
}

// SelfUnshares says whether the program Path writes out unshares its own
// namespaces at its entry point (rootless.Cmd.SelfUnshare): gen.go links
// it so on amd64, and says so beside it.
func SelfUnshares() bool { return selfUnshares(files) }

func selfUnshares(fsys fs.FS) bool {
	if _, _, ok := embedded(fsys); !ok {
		return false
	}
	b, err := fs.ReadFile(fsys, entryFile)
	return err == nil && strings.TrimSpace(string(b)) == rootless.EntrySymbol
}

// kept is how many programs of other builds Path leaves in place: two
// nook builds used by turns (an upgrade beside the old one, a developer's
// build beside the installed one) must not rewrite 4 MB on every run.
const kept = 3

// removeOthers removes the stages' programs in dir but keep and the kept
// newest others. A container that runs one keeps its copy: the kernel
// holds the file it executes.
func removeOthers(r *os.Root, keep string) {
	d, err := r.Open(".")
	if err != nil {
		return
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return
	}
	type prog struct {
		name string
		mod  time.Time
	}
	var others []prog
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, prefix) && n != keep {
			if fi, err := e.Info(); err == nil {
				others = append(others, prog{n, fi.ModTime()})
			}
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].mod.After(others[j].mod) })
	for _, o := range others[min(kept, len(others)):] {
		_ = r.Remove(o.name)
	}
}
