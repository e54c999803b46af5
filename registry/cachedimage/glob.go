package cachedimage

import (
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
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
	g := globber{utf8: utf8Locale}
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

type globber struct{ utf8 bool }

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
func (g globber) walk(prefix, fsdir string, comps []string, out *[]string) {
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
		dirs := dirsBelow(fsdir, "", prefix != "" || trailing)
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
			if _, err := os.Lstat(f); err == nil {
				*out = append(*out, p)
			}
			return
		}
		g.walk(p, f, comps[1:], out)
	default:
		entries, err := os.ReadDir(fsdir)
		if err != nil {
			return
		}
		for _, e := range entries {
			name := e.Name()
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
func (g globber) everything(prefix, fsdir string, out *[]string) {
	entries, err := os.ReadDir(fsdir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := joinOut(prefix, e.Name())
		*out = append(*out, p)
		if e.IsDir() {
			g.everything(p, fsdir+"/"+e.Name(), out)
		}
	}
}

// dirsBelow lists, relative to root, the directories below root/rel a
// globstar matches: not hidden; symbolic links to directories only when
// links is set, and never entered.
func dirsBelow(root, rel string, links bool) []string {
	entries, err := os.ReadDir(root + "/" + rel)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r := e.Name()
		if rel != "" {
			r = rel + "/" + e.Name()
		}
		switch {
		case e.IsDir():
			out = append(out, r)
			out = append(out, dirsBelow(root, r, links)...)
		case links && e.Type()&os.ModeSymlink != 0 && isDir(root+"/"+r):
			out = append(out, r)
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
func (g globber) matchName(pattern, name string) bool {
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
func (g globber) chars(s string) []rune {
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
func (g globber) match(p, s []rune) bool {
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
