package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// setting is one value found in the file, already converted and checked.
type setting struct {
	line  int
	value any
}

// section holds the settings of the top level ("") or of one [queue.NAME].
type section struct {
	vals map[string]setting
	// platforms collects [[remote.platform]] entries, in order.
	platforms []*platformEntry
}

type platformEntry struct {
	line   int
	prefix []string // key path of the array, for messages
	index  int
	nodes  PlatformNodes
	seen   map[string]int // key -> line
	bad    bool           // already reported
}

type defKind int

const (
	defValue    defKind = iota // key = value
	defTable                   // [table]
	defImplicit                // parent of a [table.sub] header
	defDotted                  // parent made by a dotted key (a.b = 1)
	defArray                   // [[array]]
)

type definition struct {
	kind defKind
	line int
}

// tableCtx is the table that key/value lines currently belong to.
type tableCtx struct {
	path []string       // the header's key path; nil at the root
	plat *platformEntry // inside [[remote.platform]]
	skip bool           // the header was wrong and already reported
}

// fileParser walks the TOML syntax tree, checking it against the schema.
type fileParser struct {
	path     string
	data     []byte
	p        unstable.Parser
	errs     []error
	defs     map[string]definition // by keyString of the full path
	sections map[string]*section
	keys     []string // did-you-mean candidates
	newlines []int    // offsets of data's newlines, for line
}

func newFileParser(path string) *fileParser {
	return &fileParser{
		path:     path,
		defs:     map[string]definition{},
		sections: map[string]*section{},
		keys:     schemaKeys(),
	}
}

func (fp *fileParser) errorf(line int, key []string, format string, args ...any) {
	fp.errs = append(fp.errs, &Error{
		File: fp.path, Line: line, Key: keyString(key), Msg: fmt.Sprintf(format, args...),
	})
}

// line returns the 1-based line r starts on. The parser's Shape counts
// lines from the start of the file on every call, which made a file of
// many sections quadratic to check; the newlines are indexed once instead.
func (fp *fileParser) line(r unstable.Range) int {
	if fp.newlines == nil {
		fp.newlines = []int{}
		for i, b := range fp.data {
			if b == '\n' {
				fp.newlines = append(fp.newlines, i)
			}
		}
	}
	n, _ := slices.BinarySearch(fp.newlines, int(r.Offset))
	return n + 1
}

func (fp *fileParser) section(queue string) *section {
	s := fp.sections[queue]
	if s == nil {
		s = &section{vals: map[string]setting{}}
		fp.sections[queue] = s
	}
	return s
}

func (fp *fileParser) parse(data []byte) {
	fp.data = data
	fp.p.Reset(data)
	fp.section("")
	var ctx tableCtx
	for fp.p.NextExpression() {
		e := fp.p.Expression()
		switch e.Kind {
		case unstable.Table:
			ctx = fp.table(keyParts(e), fp.line(e.Child().Raw))
		case unstable.ArrayTable:
			ctx = fp.arrayTable(keyParts(e), fp.line(e.Child().Raw))
		case unstable.KeyValue:
			fp.keyValue(ctx, e)
		}
	}
	if err := fp.p.Error(); err != nil {
		fp.syntaxError(err)
	}
	fp.finishPlatforms()
}

func (fp *fileParser) syntaxError(err error) {
	e := &Error{File: fp.path, Msg: "syntax error: " + err.Error()}
	var perr *unstable.ParserError
	if errors.As(err, &perr) {
		if off, ok := offsetIn(fp.data, perr.Highlight); ok {
			pos := fp.p.Shape(unstable.Range{Offset: uint32(off)}).Start
			e.Line, e.Column = pos.Line, pos.Column
		}
	}
	fp.errs = append(fp.errs, e)
}

// offsetIn returns where sub starts in data, if it is a slice of data.
func offsetIn(data, sub []byte) (int, bool) {
	if sub == nil {
		return 0, false
	}
	off := cap(data) - cap(sub)
	if off < 0 || off+len(sub) > len(data) {
		return 0, false
	}
	if len(sub) > 0 && &data[off] != &sub[0] {
		return 0, false
	}
	return off, true
}

func keyParts(n *unstable.Node) []string {
	var parts []string
	it := n.Key()
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// locate splits a full key path into the queue section it belongs to ("" for
// the top level) and the schema key within it. ok is false when path is
// "queue" or "queue.NAME" themselves.
func locate(path []string) (queue string, key []string, ok bool) {
	if len(path) > 0 && path[0] == "queue" {
		if len(path) < 3 {
			return "", nil, false
		}
		return path[1], path[2:], true
	}
	return "", path, true
}

// emptyQueue reports, once, a [queue.""] section: it could never apply.
func (fp *fileParser) emptyQueue(path []string, line int) bool {
	if len(path) >= 2 && path[0] == "queue" && path[1] == "" {
		fp.errorf(line, path[:2], "queue name is empty")
		return true
	}
	return false
}

// schemaKey joins key parts into a dotted schema key; ok is false when a part
// could not be part of one (it is empty or holds a dot).
func schemaKey(parts []string) (string, bool) {
	for _, p := range parts {
		if p == "" || strings.Contains(p, ".") {
			return "", false
		}
	}
	return strings.Join(parts, "."), true
}

// unknown reports an unknown key, with a did-you-mean when one is close.
func (fp *fileParser) unknown(line int, path []string) {
	_, key, _ := locate(path)
	msg := fmt.Sprintf("unknown key %q", keyString(path))
	if len(key) > 0 && key[0] == "queue" && len(path) > len(key) {
		msg += " (queue sections cannot be nested)"
	} else if k, ok := schemaKey(key); ok {
		if s := suggest(k, fp.keys); s != "" {
			prefix := path[:len(path)-len(key)]
			msg += fmt.Sprintf(" (did you mean %q?)", keyString(append(slices.Clone(prefix), strings.Split(s, ".")...)))
		}
	}
	fp.errorf(line, path, "%s", msg)
}

// table handles a [table] header.
func (fp *fileParser) table(path []string, line int) tableCtx {
	if !fp.defineTable(path, line) || fp.emptyQueue(path, line) {
		return tableCtx{skip: true}
	}
	_, key, ok := locate(path)
	if !ok {
		return tableCtx{path: path} // [queue] or [queue.NAME]
	}
	k, valid := schemaKey(key)
	switch {
	case !valid:
		fp.unknown(line, path)
	case isTable(k):
		return tableCtx{path: path}
	case k == "remote.platform":
		fp.errorf(line, path, "%s is an array of tables: write [[%s]]", keyString(path), keyString(path))
	default:
		if _, ok := fieldByKey(k); ok {
			fp.errorf(line, path, "%s is a value, not a table", keyString(path))
		} else {
			fp.unknown(line, path)
		}
	}
	return tableCtx{skip: true}
}

// arrayTable handles an [[array]] header; only remote.platform is one.
func (fp *fileParser) arrayTable(path []string, line int) tableCtx {
	if fp.emptyQueue(path, line) {
		return tableCtx{skip: true}
	}
	queue, key, ok := locate(path)
	k, valid := schemaKey(key)
	if !ok || k != "remote.platform" {
		if !ok || (valid && isTable(k)) {
			fp.errorf(line, path, "%s is a table, not an array of tables: write [%s]", keyString(path), keyString(path))
		} else if _, isField := fieldByKey(k); valid && isField {
			fp.errorf(line, path, "%s is a value, not an array of tables", keyString(path))
		} else {
			fp.unknown(line, path)
		}
		return tableCtx{skip: true}
	}
	name := keyString(path)
	if d, ok := fp.defs[name]; ok && d.kind != defArray {
		fp.errorf(line, path, "duplicate key %q (first defined on line %d)", name, d.line)
		return tableCtx{skip: true}
	}
	if !fp.defineParents(path, 0, line, defImplicit) {
		return tableCtx{skip: true}
	}
	if _, ok := fp.defs[name]; !ok {
		fp.defs[name] = definition{defArray, line}
	}
	sec := fp.section(queue)
	entry := &platformEntry{line: line, prefix: path, index: len(sec.platforms), seen: map[string]int{}}
	sec.platforms = append(sec.platforms, entry)
	return tableCtx{path: path, plat: entry}
}

// defineParents records the tables that path's parents implicitly define,
// reporting a parent that is already a value. The first skip parents are
// not looked at (the keys of an inline table are inside a value).
func (fp *fileParser) defineParents(path []string, skip int, line int, kind defKind) bool {
	for i := 1 + skip; i < len(path); i++ {
		name := keyString(path[:i])
		d, ok := fp.defs[name]
		switch {
		case !ok:
			fp.defs[name] = definition{kind, line}
		case d.kind == defValue:
			fp.errorf(line, path[:i], "%q is already set on line %d; it cannot also be a table", name, d.line)
			return false
		case d.kind == defArray && kind == defDotted:
			fp.errorf(line, path[:i], "%q is an array of tables (line %d); it cannot be extended with dotted keys", name, d.line)
			return false
		}
	}
	return true
}

// defineTable records a [table] header, reporting one defined before.
func (fp *fileParser) defineTable(path []string, line int) bool {
	if !fp.defineParents(path, 0, line, defImplicit) {
		return false
	}
	name := keyString(path)
	d, ok := fp.defs[name]
	switch {
	case !ok || d.kind == defImplicit:
		fp.defs[name] = definition{defTable, line}
		return true
	case d.kind == defDotted:
		fp.errorf(line, path, "duplicate table [%s]: already defined by dotted keys on line %d", name, d.line)
	case d.kind == defTable:
		fp.errorf(line, path, "duplicate table [%s] (first defined on line %d)", name, d.line)
	default:
		fp.errorf(line, path, "duplicate key %q (first defined on line %d)", name, d.line)
	}
	return false
}

// defineKey records full = value, reporting a duplicate. The first skip
// parents are not looked at.
func (fp *fileParser) defineKey(full []string, skip int, line int) bool {
	if !fp.defineParents(full, skip, line, defDotted) {
		return false
	}
	name := keyString(full)
	if d, ok := fp.defs[name]; ok {
		fp.errorf(line, full, "duplicate key %q (first defined on line %d)", name, d.line)
		return false
	}
	fp.defs[name] = definition{defValue, line}
	return true
}

// keyValue handles a key = value line.
func (fp *fileParser) keyValue(ctx tableCtx, kv *unstable.Node) {
	if ctx.skip {
		return
	}
	line := fp.line(kv.Raw)
	parts := keyParts(kv)
	if ctx.plat != nil {
		fp.platformKey(ctx.plat, parts, kv.Value(), line)
		return
	}
	full := append(slices.Clone(ctx.path), parts...)
	if !fp.defineKey(full, 0, line) {
		return
	}
	fp.assign(full, kv.Value(), line)
}

// assign checks one value against the schema and records it.
func (fp *fileParser) assign(full []string, val *unstable.Node, line int) {
	if fp.emptyQueue(full, line) {
		return
	}
	queue, key, ok := locate(full)
	if !ok {
		if val.Kind == unstable.InlineTable {
			fp.inline(full, val)
			return
		}
		if len(full) == 1 {
			fp.errorf(line, full, "queue must be a table of [queue.NAME] sections")
		} else {
			fp.errorf(line, full, "%s must be a table", keyString(full))
		}
		return
	}
	k, valid := schemaKey(key)
	f, isField := fieldByKey(k)
	switch {
	case !valid:
		fp.unknown(line, full)
	case isField && f.typ == tPlatforms:
		nodes, ok := fp.platformArray(full, val, line)
		if ok {
			fp.section(queue).vals[k] = setting{line, nodes}
		}
	case isField:
		v, err := convert(f, val)
		if err == nil {
			err = f.validate(v)
		}
		if err != nil {
			fp.errorf(line, full, "%s: %v", keyString(full), err)
			return
		}
		fp.section(queue).vals[k] = setting{line, v}
	case isTable(k):
		if val.Kind != unstable.InlineTable {
			fp.errorf(line, full, "%s must be a table, got %s", keyString(full), describe(val))
			return
		}
		fp.inline(full, val)
	default:
		fp.unknown(line, full)
	}
}

// inline handles the key/values of an inline table at prefix.
func (fp *fileParser) inline(prefix []string, tbl *unstable.Node) {
	it := tbl.Children()
	for it.Next() {
		kv := it.Node()
		if kv.Kind != unstable.KeyValue {
			continue
		}
		line := fp.line(kv.Raw)
		full := append(slices.Clone(prefix), keyParts(kv)...)
		if fp.defineKey(full, len(prefix), line) {
			fp.assign(full, kv.Value(), line)
		}
	}
}

// platformArray converts remote.platform given as an array of inline tables.
func (fp *fileParser) platformArray(full []string, val *unstable.Node, line int) ([]PlatformNodes, bool) {
	if val.Kind != unstable.Array {
		fp.errorf(line, full, "%s: expected an array of tables, got %s", keyString(full), describe(val))
		return nil, false
	}
	var entries []*platformEntry
	it := val.Children()
	for it.Next() {
		el := it.Node()
		elLine := line
		if el.Raw.Length > 0 {
			elLine = fp.line(el.Raw)
		}
		entry := &platformEntry{line: elLine, prefix: full, index: len(entries), seen: map[string]int{}}
		entries = append(entries, entry)
		if el.Kind != unstable.InlineTable {
			fp.errorf(elLine, full, "%s[%d]: expected a table, got %s", keyString(full), entry.index, describe(el))
			entry.bad = true
			continue
		}
		kvs := el.Children()
		for kvs.Next() {
			if kv := kvs.Node(); kv.Kind == unstable.KeyValue {
				fp.platformKey(entry, keyParts(kv), kv.Value(), fp.line(kv.Raw))
			}
		}
	}
	return fp.checkPlatformEntries(entries)
}

// platformKey handles one key of a remote.platform entry.
func (fp *fileParser) platformKey(entry *platformEntry, parts []string, val *unstable.Node, line int) {
	name := fmt.Sprintf("%s[%d].%s", keyString(entry.prefix), entry.index, keyString(parts))
	full := append(slices.Clone(entry.prefix), parts...)
	if len(parts) != 1 || (parts[0] != "platform" && parts[0] != "endpoints") {
		fp.errorf(line, full, "unknown key %q (a platform entry has platform and endpoints)", name)
		entry.bad = true
		return
	}
	if first, ok := entry.seen[parts[0]]; ok {
		fp.errorf(line, full, "duplicate key %q (first defined on line %d)", name, first)
		entry.bad = true
		return
	}
	entry.seen[parts[0]] = line
	typ := tString
	if parts[0] == "endpoints" {
		typ = tStrings
	}
	v, err := convert(field{typ: typ}, val)
	if err != nil {
		fp.errorf(line, full, "%s: %v", name, err)
		entry.bad = true
		return
	}
	if parts[0] == "platform" {
		entry.nodes.Platform = v.(string)
	} else {
		entry.nodes.Endpoints = v.([]string)
	}
}

// checkPlatformEntries checks entries one by one, then as a whole. Entries
// with problems already reported are not checked again.
func (fp *fileParser) checkPlatformEntries(entries []*platformEntry) ([]PlatformNodes, bool) {
	ok := true
	nodes := make([]PlatformNodes, 0, len(entries))
	for _, e := range entries {
		name := fmt.Sprintf("%s[%d]", keyString(e.prefix), e.index)
		if e.bad {
			ok = false
		} else if err := checkPlatformNodes(e.nodes); err != nil {
			fp.errorf(e.line, e.prefix, "%s: %v", name, err)
			ok = false
		} else if j := slices.IndexFunc(nodes, func(o PlatformNodes) bool { return o.Platform == e.nodes.Platform }); j >= 0 {
			fp.errorf(e.line, e.prefix, "%s: platform %q is already listed at [%d]", name, e.nodes.Platform, j)
			ok = false
		}
		nodes = append(nodes, e.nodes)
	}
	return nodes, ok
}

// finishPlatforms turns each section's [[remote.platform]] entries into its
// remote.platform value.
func (fp *fileParser) finishPlatforms() {
	for _, sec := range fp.sections {
		if len(sec.platforms) == 0 {
			continue
		}
		if nodes, ok := fp.checkPlatformEntries(sec.platforms); ok {
			sec.vals["remote.platform"] = setting{sec.platforms[0].line, nodes}
		}
	}
}

// apply copies a section's settings onto c, with their sources.
func (fp *fileParser) apply(c *Config, queue string, src Source) {
	sec := fp.sections[queue]
	if sec == nil {
		return
	}
	for _, f := range schema() {
		if s, ok := sec.vals[f.key]; ok {
			f.set(c, s.value)
			src.Line = s.line
			c.Sources[f.key] = src
		}
	}
}

// convert turns a TOML value into a value of f's type.
func convert(f field, n *unstable.Node) (any, error) {
	switch f.typ {
	case tString:
		if n.Kind == unstable.String {
			return string(n.Data), nil
		}
		return nil, fmt.Errorf("expected a string, got %s", describe(n))
	case tStrings:
		if n.Kind != unstable.Array {
			return nil, fmt.Errorf("expected an array of strings, got %s", describe(n))
		}
		list := []string{}
		it := n.Children()
		for it.Next() {
			el := it.Node()
			if el.Kind == unstable.Comment {
				continue
			}
			if el.Kind != unstable.String {
				return nil, fmt.Errorf("element %d: expected a string, got %s", len(list), describe(el))
			}
			list = append(list, string(el.Data))
		}
		return list, nil
	case tDuration:
		if n.Kind != unstable.String {
			return nil, fmt.Errorf(`expected a duration string such as "1500ms", got %s`, describe(n))
		}
		return parseDuration(string(n.Data))
	case tBool:
		if n.Kind != unstable.Bool {
			return nil, fmt.Errorf("expected true or false, got %s", describe(n))
		}
		return string(n.Data) == "true", nil
	case tInt:
		if n.Kind != unstable.Integer {
			return nil, fmt.Errorf("expected an integer, got %s", describe(n))
		}
		i, err := strconv.ParseInt(string(n.Data), 0, 0)
		if err != nil {
			return nil, fmt.Errorf("integer %s is out of range", n.Data)
		}
		return int(i), nil
	case tSize:
		switch n.Kind {
		case unstable.Integer:
			i, err := strconv.ParseInt(string(n.Data), 0, 64)
			if err != nil {
				return nil, fmt.Errorf("integer %s is out of range", n.Data)
			}
			return i, nil
		case unstable.String:
			return ParseSize(string(n.Data))
		}
		return nil, fmt.Errorf(`expected a size such as "20GB" or a number of bytes, got %s`, describe(n))
	}
	return nil, fmt.Errorf("unsupported value %s", describe(n))
}

// describe names a value's type, and shows it when it is a scalar.
func describe(n *unstable.Node) string {
	switch n.Kind {
	case unstable.String:
		return "string " + tomlQuote(string(n.Data))
	case unstable.Integer:
		return "integer " + string(n.Data)
	case unstable.Float:
		return "float " + string(n.Data)
	case unstable.Bool:
		return "boolean " + string(n.Data)
	case unstable.Array:
		return "an array"
	case unstable.InlineTable:
		return "a table"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "date/time " + string(n.Data)
	}
	return n.Kind.String()
}
