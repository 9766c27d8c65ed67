package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// layers is STYLE.md's table: each group of nook's packages and the groups
// it may import (its own always). Imports point down the table; nothing
// imports cli; rootless, fusefs and image never import each other. A new
// top-level package fails the test until it has a row.
func layers() map[string][]string {
	return map[string][]string{
		"nook":      {"cli", "rootless", "internal"},
		"cli":       {"build", "registry", "container", "tarball", "mountd", "image", "fusefs", "rootless", "internal"},
		"cmd":       {"container", "rootless", "internal"},
		"build":     {"container", "image", "registry", "internal"},
		"registry":  {"image", "internal"},
		"tarball":   {"image", "internal"},
		"mountd":    {"fusefs", "rootless", "internal"},
		"container": {"image", "fusefs", "rootless", "internal"},
		"image":     {"internal"},
		"fusefs":    {"internal"},
		"rootless":  {"internal"},
		"internal":  {},
		"bench":     {"internal"},
		"tests":     {"internal"},
	}
}

// group is the row of the table a package of this module belongs to.
func group(importPath string) string {
	rest, ok := strings.CutPrefix(importPath, "nook/")
	if !ok {
		return "nook"
	}
	g, _, _ := strings.Cut(rest, "/")
	return g
}

// TestImportDirection holds every import of nook's own packages, tests
// included, to the table above.
func TestImportDirection(t *testing.T) {
	walkGo(t, true, parser.ImportsOnly, func(path string, f *ast.File, _ *token.FileSet) {
		pkg := "nook"
		if dir := filepath.Dir(path); dir != "." {
			pkg = "nook/" + filepath.ToSlash(dir)
		}
		from := group(pkg)
		allowed, known := layers()[from]
		if !known {
			t.Errorf("%s: package group %q has no row in the import table", path, from)
			return
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p != "nook" && !strings.HasPrefix(p, "nook/") {
				continue
			}
			to := group(p)
			if to != from && !slices.Contains(allowed, to) {
				t.Errorf("%s imports %s: %s may import only %q", path, p, from, allowed)
			}
		}
	})
}

// walkGo parses every Go file of the module (tests too when tests) with
// mode and hands each to fn.
func walkGo(t *testing.T, tests bool, mode parser.Mode, fn func(path string, f *ast.File, fset *token.FileSet)) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || !tests && strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, mode)
		if err != nil {
			return err
		}
		fn(path, f, fset)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
