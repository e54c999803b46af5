package e2e

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryTestIsParallelOrSaysWhyNot: each end-to-end test starts with
// t.Parallel() (the harness's limiter bounds how many run at once), or with a
// "// Not parallel: why" comment, so a new test cannot go serial unnoticed.
func TestEveryTestIsParallelOrSaysWhyNot(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var checked int
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") || fn.Name.Name == "TestMain" {
				continue
			}
			checked++
			if !startsParallel(fn) && !saysWhyNot(f, fset, fn) {
				t.Errorf("%s: %s neither starts with t.Parallel() nor with a \"// Not parallel: why\" comment", fset.Position(fn.Pos()), fn.Name.Name)
			}
		}
	}
	if checked < 50 {
		t.Errorf("checked %d tests, want the package's (over 50): are the files where the test looks?", checked)
	}
}

func startsParallel(fn *ast.FuncDecl) bool {
	if len(fn.Body.List) == 0 {
		return false
	}
	call, ok := fn.Body.List[0].(*ast.ExprStmt)
	if !ok {
		return false
	}
	c, ok := call.X.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Parallel" && len(c.Args) == 0
}

// saysWhyNot: the body's first line is a comment "// Not parallel: REASON".
func saysWhyNot(f *ast.File, fset *token.FileSet, fn *ast.FuncDecl) bool {
	open := fset.Position(fn.Body.Lbrace).Line
	for _, g := range f.Comments {
		if fset.Position(g.Pos()).Line == open+1 {
			text := g.List[0].Text
			return strings.HasPrefix(text, "// Not parallel: ") && len(text) > len("// Not parallel: ")+10
		}
	}
	return false
}
