// Package unitfile reads systemd unit files and drop-ins as systemd does, for
// the tests of what the AMIs' install scripts write (packer's tests and the
// end-to-end tests that start the installed units): sections, assignments,
// Environment= and ExecStart= split into words with systemd's quoting.
//
// It stays a test package on purpose: github.com/coreos/go-systemd's
// unit.Deserialize would read the sections and assignments, but not split
// Environment= and ExecStart= into words with systemd's quotes, escapes and
// specifiers, which is most of what these tests need.
package unitfile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Unit is a parsed systemd unit file or drop-in: the assignments of each
// section, in file order.
type Unit struct {
	sections map[string][]assignment
}

type assignment struct {
	key, value string
	line       int
}

// ReadFile reads and parses the unit file at path; its errors name the file
// and the line.
func ReadFile(path string) (*Unit, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	u, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// Parse reads a unit file the way systemd does: [Section] headers,
// KEY=VALUE lines with the blanks around "=" dropped, lines ending in a
// backslash continued on the next, and comment lines starting with # or ;.
func Parse(data []byte) (*Unit, error) {
	u := &Unit{sections: map[string][]assignment{}}
	section := ""
	s := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for s.Scan() {
		n++
		line, start := strings.TrimSpace(s.Text()), n
		for strings.HasSuffix(line, `\`) && s.Scan() {
			n++
			next := strings.TrimSpace(s.Text())
			if strings.HasPrefix(next, "#") || strings.HasPrefix(next, ";") {
				next = ""
			}
			line = strings.TrimSuffix(line, `\`) + " " + next
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("line %d: bad section header %q", start, line)
			}
			section = line[1 : len(line)-1]
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not KEY=VALUE", start, line)
			}
			if section == "" {
				return nil, fmt.Errorf("line %d: %s is outside any section", start, strings.TrimSpace(key))
			}
			u.sections[section] = append(u.sections[section], assignment{strings.TrimSpace(key), strings.TrimSpace(value), start})
		}
	}
	return u, s.Err()
}

// Values returns every value assigned to key in section, in order. An empty
// assignment resets the list, as it does for systemd's list settings.
func (u *Unit) Values(section, key string) []string {
	var out []string
	for _, a := range u.sections[section] {
		if a.key != key {
			continue
		}
		if a.value == "" {
			out = nil
			continue
		}
		out = append(out, a.value)
	}
	return out
}

// Environment returns the NAME=VALUE pairs of the [Service] section's
// Environment= lines, later assignments of a name replacing earlier ones.
func (u *Unit) Environment() ([]string, error) {
	var names []string
	vals := map[string]string{}
	for _, v := range u.Values("Service", "Environment") {
		words, err := SplitWords(v)
		if err != nil {
			return nil, fmt.Errorf("[Service] Environment=%s: %w", v, err)
		}
		for _, w := range words {
			name, value, ok := strings.Cut(w, "=")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("[Service] Environment=%s: %q is not NAME=VALUE", v, w)
			}
			if _, seen := vals[name]; !seen {
				names = append(names, name)
			}
			vals[name] = value
		}
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, n+"="+vals[n])
	}
	return out, nil
}

// SplitWords splits a value into words as systemd does for Environment= and
// ExecStart=: blanks separate words; "..." and '...' quote (a quoted part
// must end a word); backslash escapes the next character (\n, \t, \s and
// \\ as C does, \" and \' literally); "%%" is a literal "%". Other
// specifiers (%h, %t, ...) depend on the host and are refused.
func SplitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '"' || c == '\'':
			if inWord {
				return nil, fmt.Errorf("quote in the middle of a word at byte %d", i)
			}
			end := -1
			for j := i + 1; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == c {
					end = j
					break
				}
			}
			if end < 0 {
				return nil, fmt.Errorf("unterminated %c quote at byte %d", c, i)
			}
			if end+1 < len(s) && s[end+1] != ' ' && s[end+1] != '\t' {
				return nil, fmt.Errorf("a quoted word must end at its closing quote (byte %d)", end)
			}
			unq, err := unescape(s[i+1 : end])
			if err != nil {
				return nil, err
			}
			words = append(words, unq)
			i = end
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			part, err := unescape(s[i:min(j, len(s))])
			if err != nil {
				return nil, err
			}
			w.WriteString(part)
			inWord = true
			i = j - 1
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return "", fmt.Errorf("trailing backslash in %q", s)
			}
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 's':
				b.WriteByte(' ')
			case '\\', '"', '\'':
				b.WriteByte(e)
			default:
				return "", fmt.Errorf(`unsupported escape \%c in %q`, e, s)
			}
		case '%':
			if i+1 < len(s) && s[i+1] == '%' {
				b.WriteByte('%')
				i++
				continue
			}
			return "", fmt.Errorf("specifier %q in %q depends on the host: not supported here", s[i:min(i+2, len(s))], s)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// ExecStart returns the argv of the [Service] section's one ExecStart=,
// without systemd's prefix characters (-, @, :, +, !).
func (u *Unit) ExecStart() ([]string, error) {
	vals := u.Values("Service", "ExecStart")
	if len(vals) != 1 {
		return nil, fmt.Errorf("want one ExecStart=, found %d", len(vals))
	}
	argv, err := SplitWords(strings.TrimLeft(vals[0], "-@:+!"))
	if err != nil {
		return nil, fmt.Errorf("ExecStart=%s: %w", vals[0], err)
	}
	if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		return nil, fmt.Errorf("ExecStart=%s: the command is not an absolute path", vals[0])
	}
	return argv, nil
}
