// Package docs_test keeps docs/architecture.md true to the code: the packages
// it names, the import graph it draws, the functions its walk-throughs name
// and the configuration keys it places.
package docs_test

import (
	"bufio"
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/config"
)

const module = "github.com/dockhand-ci/dockhand/"

// doc is architecture.md cut into what the tests check.
type doc struct {
	packages  []string            // the first column of the Packages table
	edges     map[[2]string]bool  // the mermaid diagram's A --> B
	nodes     map[string]bool     // every package the diagram names
	idents    []string            // `pkg.Name` and `pkg.Type.Method` anywhere
	keys      []string            // the first column of the Configuration keys table, split at commas
	layers    [][]string          // the Layers table: its packages, top layer first
	sectionOf map[string][]string // section title -> its lines
}

func readDoc(t *testing.T) doc {
	t.Helper()
	data, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	d := doc{edges: map[[2]string]bool{}, nodes: map[string]bool{}, sectionOf: map[string][]string{}}
	section, inMermaid := "", false
	cell := regexp.MustCompile("^\\| *(`[^|]+) *\\|")
	code := regexp.MustCompile("`([^`]+)`")
	edge := regexp.MustCompile(`^\s*(\S+)\s*-->\s*(\S+)\s*$`)
	layer := regexp.MustCompile(`^\| *(\d+) *\|(.*)\|\s*$`)
	node := regexp.MustCompile(`^\s*([a-z][\w/-]*)\s*(\[\[.*)?$`)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		case strings.HasPrefix(line, "```mermaid"):
			inMermaid = true
			continue
		case inMermaid && strings.HasPrefix(line, "```"):
			inMermaid = false
			continue
		}
		d.sectionOf[section] = append(d.sectionOf[section], line)
		if inMermaid {
			if m := edge.FindStringSubmatch(line); m != nil {
				d.edges[[2]string{m[1], m[2]}] = true
				d.nodes[m[1]], d.nodes[m[2]] = true, true
			} else if m := node.FindStringSubmatch(line); m != nil {
				d.nodes[m[1]] = true
			}
			continue
		}
		if m := layer.FindStringSubmatch(line); m != nil && section == "Packages" {
			var in []string
			for _, c := range code.FindAllStringSubmatch(m[2], -1) {
				in = append(in, c[1])
			}
			d.layers = append(d.layers, in)
		}
		first := ""
		if m := cell.FindStringSubmatch(line); m != nil {
			first = m[1]
		}
		for _, m := range code.FindAllStringSubmatch(first, -1) {
			switch section {
			case "Packages":
				d.packages = append(d.packages, m[1])
			case "Configuration keys":
				d.keys = append(d.keys, m[1])
			}
		}
		for _, m := range code.FindAllStringSubmatch(line, -1) {
			d.idents = append(d.idents, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(d.packages) == 0 || len(d.edges) == 0 || len(d.keys) == 0 || len(d.layers) == 0 {
		t.Fatalf("architecture.md: found %d packages, %d edges, %d configuration keys, %d layers; has its layout changed?",
			len(d.packages), len(d.edges), len(d.keys), len(d.layers))
	}
	return d
}

// listed is one package of the module as `go list` sees it.
type listed struct {
	path    string          // relative to the module
	dir     string          // its directory
	imports map[string]bool // the module's packages it imports (not its tests)
}

func goList(t *testing.T) map[string]listed {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .Imports \" \"}}", "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	pkgs := map[string]listed{}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) != 3 {
			t.Fatalf("go list printed %q", line)
		}
		p := listed{path: strings.TrimPrefix(f[0], module), dir: f[1], imports: map[string]bool{}}
		for imp := range strings.FieldsSeq(f[2]) {
			if rel, ok := strings.CutPrefix(imp, module); ok {
				p.imports[rel] = true
			}
		}
		pkgs[p.path] = p
	}
	return pkgs
}

// TestArchitectureNamesEveryPackage fails when a package named in the
// Packages table is gone, or a package of the module is not named there.
func TestArchitectureNamesEveryPackage(t *testing.T) {
	d, pkgs := readDoc(t), goList(t)
	for _, p := range d.packages {
		if _, ok := pkgs[p]; !ok {
			t.Errorf("architecture.md names package %s, which does not exist", p)
		}
	}
	for p := range pkgs {
		if !slices.Contains(d.packages, p) {
			t.Errorf("package %s is not named in architecture.md's Packages table", p)
		}
	}
}

// TestArchitectureDiagramIsTheImportGraph checks the mermaid diagram against
// `go list`: every arrow is an import, every import between the packages
// drawn is an arrow, and every package outside test/ (and docs/) is drawn.
func TestArchitectureDiagramIsTheImportGraph(t *testing.T) {
	d, pkgs := readDoc(t), goList(t)
	for e := range d.edges {
		from, ok := pkgs[e[0]]
		switch {
		case !ok:
			t.Errorf("the diagram draws %s, which does not exist", e[0])
		case !from.imports[e[1]]:
			t.Errorf("the diagram draws %s --> %s, but %s does not import %s", e[0], e[1], e[0], e[1])
		}
	}
	for _, p := range pkgs {
		if strings.HasPrefix(p.path, "test/") || p.path == "docs" {
			continue
		}
		if !d.nodes[p.path] {
			t.Errorf("package %s is not in the diagram", p.path)
		}
		for imp := range p.imports {
			if !d.edges[[2]string{p.path, imp}] {
				t.Errorf("%s imports %s: the diagram lacks %s --> %s", p.path, imp, p.path, imp)
			}
		}
	}
}

// TestArchitectureNamesDeclaredFunctions checks every `pkg.Name` and
// `pkg.Type.Method` the page names (pkg a package path relative to the
// module, or the last element of exactly one) against the package's declarations.
func TestArchitectureNamesDeclaredFunctions(t *testing.T) {
	d, pkgs := readDoc(t), goList(t)
	keys := map[string]bool{}
	for _, e := range config.Default("").Entries() {
		keys[e.Key] = true
	}
	decls := map[string]map[string]bool{}
	checked := 0
	for _, id := range d.idents {
		if keys[id] || strings.ContainsAny(id, " *=") {
			continue // a configuration key, or not an identifier
		}
		pkg, rest, ok := splitIdent(id, pkgs)
		if !ok {
			continue
		}
		if _, done := decls[pkg]; !done {
			decls[pkg] = declared(t, pkgs[pkg].dir)
		}
		checked++
		if !decls[pkg][rest] {
			t.Errorf("architecture.md names `%s`, but package %s declares no %s", id, pkg, rest)
		}
	}
	if checked < 20 {
		t.Errorf("only %d identifiers checked; is the page's style of naming functions changed?", checked)
	}
}

// fileExt are the extensions of the file names the page mentions.
var fileExt = map[string]bool{".go": true, ".md": true, ".json": true, ".jsonl": true, ".toml": true, ".pem": true,
	".hcl": true, ".sh": true, ".sock": true, ".log": true, ".lock": true, ".service": true}

// splitIdent splits "a/b.Name" or "a/b.Type.Method" into the package and
// the rest, when the prefix is a package of the module.
func splitIdent(id string, pkgs map[string]listed) (string, string, bool) {
	dir, last := path.Split(id)
	name, rest, ok := strings.Cut(last, ".")
	if !ok || rest == "" || fileExt[path.Ext(last)] {
		return "", "", false // a file name: dockhand.toml, job.json
	}
	pkg := dir + name
	if _, ok := pkgs[pkg]; !ok {
		// `proc.Run` for internal/proc: the last element of exactly one
		// package.
		var found []string
		for p := range pkgs {
			if dir == "" && path.Base(p) == name {
				found = append(found, p)
			}
		}
		if len(found) != 1 {
			return "", "", false
		}
		pkg = found[0]
	}
	for part := range strings.SplitSeq(rest, ".") {
		if !token.IsIdentifier(part) {
			return "", "", false
		}
	}
	return pkg, rest, true
}

// declared returns the top-level names ("Name") and methods ("Type.Method")
// of the package in dir, tests excluded.
func declared(t *testing.T, dir string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if decl.Recv == nil {
					names[decl.Name.Name] = true
					continue
				}
				recv := decl.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				if id, ok := recv.(*ast.Ident); ok {
					names[id.Name+"."+decl.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						names[spec.Name.Name] = true
					case *ast.ValueSpec:
						for _, n := range spec.Names {
							names[n.Name] = true
						}
					}
				}
			}
		}
	}
	return names
}

// TestArchitecturePlacesEveryConfigurationKey fails when a key of the
// configuration schema is in no row of the Configuration keys table, or a
// row names a key (or `prefix.*`) that matches none.
func TestArchitecturePlacesEveryConfigurationKey(t *testing.T) {
	d := readDoc(t)
	var schema []string
	for _, e := range config.Default("").Entries() {
		schema = append(schema, e.Key)
	}
	matches := func(pattern, key string) bool {
		if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
			return strings.HasPrefix(key, prefix)
		}
		return pattern == key
	}
	for _, p := range d.keys {
		if !slices.ContainsFunc(schema, func(k string) bool { return matches(p, k) }) {
			t.Errorf("architecture.md places configuration key %s, which the schema lacks", p)
		}
	}
	for _, k := range schema {
		if !slices.ContainsFunc(d.keys, func(p string) bool { return matches(p, k) }) {
			t.Errorf("configuration key %s is not placed in architecture.md's Configuration keys table", k)
		}
	}
}

// TestArchitectureLayersPointDown fails when a package imports one of its
// own layer or a layer above it (internal/* may import each other), or
// when a package is in no layer or in two.
func TestArchitectureLayersPointDown(t *testing.T) {
	d, pkgs := readDoc(t), goList(t)
	layerOf := map[string]int{}
	for i, in := range d.layers {
		for _, p := range in {
			if j, ok := layerOf[p]; ok {
				t.Errorf("architecture.md puts %s in layers %d and %d", p, j+1, i+1)
			}
			layerOf[p] = i
		}
	}
	for _, p := range pkgs {
		if strings.HasPrefix(p.path, "test/") || p.path == "docs" || p.path == "packer" {
			continue
		}
		from, ok := layerOf[p.path]
		if !ok {
			t.Errorf("package %s is in no layer of architecture.md", p.path)
			continue
		}
		for imp := range p.imports {
			to, ok := layerOf[imp]
			if !ok {
				continue // reported as its own package
			}
			sideways := to == from && strings.HasPrefix(p.path, "internal/") && strings.HasPrefix(imp, "internal/")
			if to < from || (to == from && !sideways) {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports point down only", p.path, from+1, imp, to+1)
			}
		}
	}
}
