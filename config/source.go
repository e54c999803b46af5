package config

import (
	"fmt"
	"strconv"
	"strings"
)

// SourceKind says which layer of the configuration a value came from.
type SourceKind int

const (
	// SourceDefault: the built-in default.
	SourceDefault SourceKind = iota
	// SourceFile: a top-level key of the configuration file.
	SourceFile
	// SourceQueue: a key in the file's [queue.NAME] section for the agent's queue.
	SourceQueue
	// SourceEnv: a DOCKHAND_* environment variable.
	SourceEnv
)

func (k SourceKind) String() string {
	switch k {
	case SourceDefault:
		return "default"
	case SourceFile:
		return "file"
	case SourceQueue:
		return "queue"
	case SourceEnv:
		return "env"
	}
	return "unknown"
}

// Source is where one configuration value came from.
type Source struct {
	Kind  SourceKind
	File  string // SourceFile, SourceQueue
	Line  int    // SourceFile, SourceQueue
	Queue string // SourceQueue
	Var   string // SourceEnv
}

// String renders s as "default", "/etc/dockhand/dockhand.toml:7",
// "/etc/dockhand/dockhand.toml:12 [queue.build]" or "env DOCKHAND_CACHE".
func (s Source) String() string {
	switch s.Kind {
	case SourceDefault:
		return "default"
	case SourceFile:
		return fmt.Sprintf("%s:%d", s.File, s.Line)
	case SourceQueue:
		return fmt.Sprintf("%s:%d [%s]", s.File, s.Line, keyString([]string{"queue", s.Queue}))
	case SourceEnv:
		return "env " + s.Var
	}
	return "unknown"
}

// Error is a problem with the configuration file, located by line (and, for
// syntax errors, column).
type Error struct {
	File   string
	Line   int    // 0 when unknown
	Column int    // syntax errors only
	Key    string // the dotted key at fault, "" for syntax errors
	Msg    string // the complete message, naming Key
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":" + strconv.Itoa(e.Column))
		}
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// keyString renders a key path the way TOML would accept it: parts joined by
// dots, quoting any part that is not a bare key.
func keyString(parts []string) string {
	quoted := make([]string, len(parts))
	for i, p := range parts {
		if isBareKey(p) {
			quoted[i] = p
		} else {
			quoted[i] = tomlQuote(p)
		}
	}
	return strings.Join(quoted, ".")
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// tomlQuote renders s as a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
