package cachedimage

import (
	"bytes"
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Pathname expansion as bash 5 does it for an unquoted word, with
// `shopt -s globstar` and every other glob option at its default (no
// dotglob, nullglob, failglob, nocaseglob or extglob; globskipdots on):
//
//   - `*`, `?` and `[…]` match within one path component; a leading `.` must
//     be matched by a literal `.`; `.` and `..` are never matched.
//   - `**` as a whole component matches any number of directories (zero
//     included), never entering hidden directories or symbolic links to
//     directories. Such a link still counts as one directory level, except
//     below a leading `**` (as in `**/x`, not `./**/x`): bash's quirk. As the
//     last component, `**` matches every file and directory below.
//   - The matches are sorted, as bash sorts them with strcoll: byte order in
//     the C, POSIX and C.UTF-8 locales (see sortNote for other locales).
//   - A word that matches nothing, or has no pattern character, is kept as
//     it is.
//   - Matches are not deduplicated: a file reached twice is listed twice.
//
// utf8 says whether `?` and bracket expressions match one UTF-8 character
// (a UTF-8 locale) or one byte (C/POSIX).

// expandWord returns the words bash's pathname expansion makes of word, run
// in dir, and whether the word was a pattern that matched something.
func expandWord(dir, word string, utf8Locale bool) ([]string, bool) {
	if !hasGlobMeta(word) {
		return []string{word}, false
	}
	g := &globber{utf8: utf8Locale, dirs: map[string][]dirent{}}
	prefix, fsdir, rest := "", dir, word
	if strings.HasPrefix(word, "/") {
		prefix, fsdir, rest = "/", "/", strings.TrimLeft(word, "/")
	}
	var comps []string
	for _, c := range strings.Split(rest, "/") {
		if c == "**" && len(comps) > 0 && comps[len(comps)-1] == "**" {
			continue // bash reads **/** as **
		}
		comps = append(comps, c)
	}
	var out []string
	g.walk(prefix, fsdir, comps, &out)
	if len(out) == 0 {
		return []string{word}, false
	}
	// Sorted but not deduplicated: bash lists a file twice when two ways
	// through the pattern reach it (**/b/**/x with nested b directories),
	// and the plugin then hashes it twice.
	slices.Sort(out)
	return out, true
}

// hasGlobMeta reports whether an unquoted word is subject to pathname
// expansion: it holds an unescaped `*` or `?`, or a `[` with a `]` after it.
func hasGlobMeta(word string) bool {
	open := false
	for i := 0; i < len(word); i++ {
		switch word[i] {
		case '\\':
			i++
		case '*', '?':
			return true
		case '[':
			open = true
		case ']':
			if open {
				return true
			}
		}
	}
	return false
}

// globber expands one word. It reads each directory once, and reads the
// directories below a ** concurrently: on a large checkout the time goes to
// system calls, which overlap.
type globber struct {
	utf8 bool
	mu   sync.Mutex
	dirs map[string][]dirent // by path, as walk spells it
}

// dirent is one directory entry and its type, from getdents(2).
type dirent struct {
	name string
	typ  uint8 // unix.DT_*
}

func (d dirent) isDir() bool  { return d.typ == unix.DT_DIR }
func (d dirent) isLink() bool { return d.typ == unix.DT_LNK }

var direntBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// scanWorkers bounds the directories read at once.
const scanWorkers = 8

// readDir lists a directory (unsorted: the matches are sorted at the end),
// with raw system calls: os.File would add several fcntl and epoll calls per
// directory, which on a checkout of thousands of directories cost more than
// reading them.
func (g *globber) readDir(path string) []dirent {
	if g.dirs != nil {
		g.mu.Lock()
		entries, ok := g.dirs[path]
		g.mu.Unlock()
		if ok {
			return entries
		}
	}
	entries := readDirRaw(path)
	if g.dirs != nil {
		g.mu.Lock()
		g.dirs[path] = entries
		g.mu.Unlock()
	}
	return entries
}

func readDirRaw(path string) []dirent {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	var out []dirent
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return out
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return out
			}
			typ := b[18]
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			if string(name) == "." || string(name) == ".." {
				continue
			}
			d := dirent{name: string(name), typ: typ}
			if typ == unix.DT_UNKNOWN { // file systems without d_type
				var st unix.Stat_t
				if unix.Lstat(path+"/"+d.name, &st) == nil {
					switch st.Mode & unix.S_IFMT {
					case unix.S_IFDIR:
						d.typ = unix.DT_DIR
					case unix.S_IFLNK:
						d.typ = unix.DT_LNK
					default:
						d.typ = unix.DT_REG
					}
				}
			}
			out = append(out, d)
		}
	}
}

// exists is lstat(dir/name) succeeding, answered from the directory's
// listing when it was read already.
func (g *globber) exists(dir, name string) bool {
	if name != "." && name != ".." && g.dirs != nil {
		g.mu.Lock()
		entries, ok := g.dirs[dir]
		g.mu.Unlock()
		if ok {
			for _, e := range entries {
				if e.name == name {
					return true
				}
			}
			return false
		}
	}
	_, err := os.Lstat(dir + "/" + name)
	return err == nil
}

// joinOut appends a name to a result prefix: "" is the working directory,
// "/" the root, and a prefix ending in "/" comes from an empty component
// (a//b), which keeps its two slashes as bash does.
func joinOut(prefix, name string) string {
	switch prefix {
	case "":
		return name
	case "/":
		return "/" + name
	}
	return prefix + "/" + name
}

// walk expands comps below the directory fsdir, whose name in the results
// is prefix, appending the matches to out.
func (g *globber) walk(prefix, fsdir string, comps []string, out *[]string) {
	c, last := comps[0], len(comps) == 1
	switch {
	case last && c == "":
		// A trailing slash: only directories match, and keep the slash.
		if prefix != "" && isDir(fsdir) {
			*out = append(*out, strings.TrimSuffix(prefix, "/")+"/")
		}
	case c == "**":
		if last {
			g.everything(prefix, fsdir, out)
			return
		}
		// **/ (directories only) lists linked directories even when leading.
		trailing := len(comps) == 2 && comps[1] == ""
		dirs := g.dirsBelow(fsdir, prefix != "" || trailing)
		if prefix != "" || !trailing {
			dirs = append([]string{""}, dirs...)
		}
		for _, d := range dirs {
			p, f := prefix, fsdir
			if d != "" {
				p, f = joinOut(prefix, d), fsdir+"/"+d
			}
			g.walk(p, f, comps[1:], out)
		}
	case !hasGlobMeta(c):
		// Joined by hand: filepath.Join would clean a/.. to . where the
		// system resolves it (and fails when a is not a directory).
		name := unescape(c)
		p, f := joinOut(prefix, name), fsdir+"/"+name
		if c == "" { // an empty component, as in a//b
			p, f = prefix+"/", fsdir
			if prefix == "" || prefix == "/" {
				p = prefix
			}
		}
		if last {
			exists := false
			if c == "" {
				_, err := os.Lstat(f)
				exists = err == nil
			} else {
				exists = g.exists(fsdir, name)
			}
			if exists {
				*out = append(*out, p)
			}
			return
		}
		g.walk(p, f, comps[1:], out)
	default:
		for _, e := range g.readDir(fsdir) {
			name := e.name
			if !g.matchName(c, name) {
				continue
			}
			p := joinOut(prefix, name)
			if last {
				*out = append(*out, p)
			} else if isDir(fsdir + "/" + name) {
				g.walk(p, fsdir+"/"+name, comps[1:], out)
			}
		}
	}
}

// everything appends every non-hidden entry below fsdir, not descending into
// hidden directories or symbolic links.
func (g *globber) everything(prefix, fsdir string, out *[]string) {
	for _, d := range append([]string{""}, g.dirsBelow(fsdir, false)...) {
		p, f := prefix, fsdir
		if d != "" {
			p, f = joinOut(prefix, d), fsdir+"/"+d
		}
		for _, e := range g.readDir(f) {
			if !strings.HasPrefix(e.name, ".") {
				*out = append(*out, joinOut(p, e.name))
			}
		}
	}
}

// dirsBelow lists, relative to root, the directories below root a globstar
// matches: not hidden; symbolic links to directories only when links is
// set, and never entered. Each level of the tree is read by a few workers
// at once (the time goes to system calls, which overlap).
func (g *globber) dirsBelow(root string, links bool) []string {
	var out []string
	level := []string{""}
	for len(level) > 0 {
		type found struct{ enter, linked []string }
		results := make([]found, len(level))
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(scanWorkers, len(level)) {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(level) {
						return
					}
					rel := level[i]
					path := root
					if rel != "" {
						path = root + "/" + rel
					}
					for _, e := range g.readDir(path) {
						if strings.HasPrefix(e.name, ".") {
							continue
						}
						r := e.name
						if rel != "" {
							r = rel + "/" + e.name
						}
						switch {
						case e.isDir():
							results[i].enter = append(results[i].enter, r)
						case links && e.isLink() && isDir(root+"/"+r):
							results[i].linked = append(results[i].linked, r)
						}
					}
				}
			})
		}
		wg.Wait()
		level = level[:0:0]
		for _, f := range results {
			out = append(out, f.enter...)
			out = append(out, f.linked...)
			level = append(level, f.enter...)
		}
	}
	return out
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// unescape removes the backslashes that quote the next character.
func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// matchName matches one path component against one pattern component.
func (g *globber) matchName(pattern, name string) bool {
	if name == "." || name == ".." {
		return false
	}
	if strings.HasPrefix(name, ".") && !strings.HasPrefix(pattern, ".") && !strings.HasPrefix(pattern, "\\.") {
		return false
	}
	return g.match(g.chars(pattern), g.chars(name))
}

// chars splits s into characters: runes in a UTF-8 locale (an invalid byte
// stands for itself), bytes otherwise.
func (g *globber) chars(s string) []rune {
	out := make([]rune, 0, len(s))
	if !g.utf8 {
		for i := 0; i < len(s); i++ {
			out = append(out, rune(s[i]))
		}
		return out
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			r = rune(s[i]) + 0x10FFFF + 1 // an invalid byte: distinct from any character
		}
		out = append(out, r)
		i += n
	}
	return out
}

// match is fnmatch(3) without flags on character slices: `*`, `?`, bracket
// expressions and backslash escapes.
func (g *globber) match(p, s []rune) bool {
	// Iterative with one backtracking point for the last `*`.
	var starP, starS = -1, -1
	pi, si := 0, 0
	for si < len(s) {
		if pi < len(p) {
			switch p[pi] {
			case '*':
				starP, starS = pi, si
				pi++
				continue
			case '?':
				pi++
				si++
				continue
			case '[':
				if ok, next, valid := matchBracket(p, pi, s[si], g.utf8); valid {
					if ok {
						pi, si = next, si+1
						continue
					}
					break
				}
				if s[si] == '[' {
					pi, si = pi+1, si+1
					continue
				}
			case '\\':
				if pi+1 < len(p) {
					if p[pi+1] == s[si] {
						pi, si = pi+2, si+1
						continue
					}
					break
				}
				if s[si] == '\\' {
					pi, si = pi+1, si+1
					continue
				}
			default:
				if p[pi] == s[si] {
					pi, si = pi+1, si+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchBracket matches c against the bracket expression starting at p[i]
// ('['). valid is false when the bracket is not closed (then '[' is an
// ordinary character); next is the index after the closing ']'.
func matchBracket(p []rune, i int, c rune, utf8Mode bool) (ok bool, next int, valid bool) {
	j := i + 1
	negate := false
	if j < len(p) && (p[j] == '!' || p[j] == '^') {
		negate = true
		j++
	}
	first := true
	for j < len(p) {
		if p[j] == ']' && !first {
			return ok != negate, j + 1, true
		}
		first = false
		if p[j] == '[' && j+1 < len(p) && (p[j+1] == ':' || p[j+1] == '=' || p[j+1] == '.') {
			kind := p[j+1]
			end := -1
			for k := j + 2; k+1 < len(p); k++ {
				if p[k] == kind && p[k+1] == ']' {
					end = k
					break
				}
			}
			if end >= 0 {
				name := string(p[j+2 : end])
				switch kind {
				case ':':
					if inClass(name, c, utf8Mode) {
						ok = true
					}
				default: // [=c=] and [.c.]: the one character
					if r := []rune(name); len(r) == 1 && r[0] == c {
						ok = true
					}
				}
				j = end + 2
				continue
			}
		}
		lo := p[j]
		if lo == '\\' && j+1 < len(p) {
			j++
			lo = p[j]
		}
		j++
		hi := lo
		if j+1 < len(p) && p[j] == '-' && p[j+1] != ']' {
			hi = p[j+1]
			if hi == '\\' && j+2 < len(p) {
				hi = p[j+2]
				j++
			}
			j += 2
		}
		if lo <= c && c <= hi {
			ok = true
		}
	}
	return false, 0, false
}

// inClass reports whether c is in the POSIX character class name: ASCII
// in the C locale; in a UTF-8 locale, glibc classifies every character, as
// Go's unicode tables approximate.
func inClass(name string, c rune, utf8Mode bool) bool {
	if utf8Mode && c > 0x7f && c <= unicode.MaxRune {
		switch name {
		case "alnum", "alpha", "word":
			return unicode.IsLetter(c)
		case "lower":
			return unicode.IsLower(c)
		case "upper":
			return unicode.IsUpper(c)
		case "punct":
			return unicode.IsPunct(c) || unicode.IsSymbol(c)
		case "graph", "print":
			return unicode.IsGraphic(c) && !unicode.IsSpace(c) || name == "print" && unicode.IsPrint(c)
		case "space":
			return unicode.IsSpace(c)
		case "cntrl":
			return unicode.IsControl(c)
		}
		return false
	}
	switch name {
	case "alnum":
		return isAlpha(c) || isDigit(c)
	case "alpha":
		return isAlpha(c)
	case "blank":
		return c == ' ' || c == '\t'
	case "cntrl":
		return c < 0x20 || c == 0x7f
	case "digit":
		return isDigit(c)
	case "graph":
		return c > 0x20 && c < 0x7f
	case "lower":
		return c >= 'a' && c <= 'z'
	case "print":
		return c >= 0x20 && c < 0x7f
	case "punct":
		return c > 0x20 && c < 0x7f && !isAlpha(c) && !isDigit(c)
	case "space":
		return c == ' ' || (c >= '\t' && c <= '\r')
	case "upper":
		return c >= 'A' && c <= 'Z'
	case "xdigit":
		return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
	case "word":
		return isAlpha(c) || isDigit(c) || c == '_'
	}
	return false
}

func isAlpha(c rune) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c rune) bool { return c >= '0' && c <= '9' }
