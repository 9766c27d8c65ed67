package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// TestNoPatternsAtInit keeps nook's own packages from compiling a regular
// expression in a package-level variable's initializer: every nook process
// (the CLI, and the shim and init of each `nook run`) runs all of its
// packages' initializers before main, whatever verb it serves. A pattern
// is compiled where it is used, or once on first use (sync.OnceValue, as
// container's validName).
func TestNoPatternsAtInit(t *testing.T) {
	walkGo(t, false, parser.SkipObjectResolution, func(_ string, f *ast.File, fset *token.FileSet) {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					if call := patternAtInit(v); call != nil {
						t.Errorf("%s: a package-level variable compiles a pattern at init", fset.Position(call.Pos()))
					}
				}
			}
		}
	})
}

// patternAtInit returns a call of regexp's compilers in e that runs when
// e is evaluated (not one inside a function literal, which runs later).
func patternAtInit(e ast.Expr) *ast.CallExpr {
	var found *ast.CallExpr
	ast.Inspect(e, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "regexp" && strings.Contains(sel.Sel.Name, "Compile") {
					found = n
				}
			}
		}
		return found == nil
	})
	return found
}
