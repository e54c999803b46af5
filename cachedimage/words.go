package cachedimage

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
)

// The plugin computes its tag in bash; these helpers reproduce the exact
// bytes bash and coreutils produce for the constructs it uses.

// splitWords splits s as bash splits an unquoted expansion with the default
// IFS: on runs of space, tab and newline, dropping empty fields. Expansion
// results are not re-parsed, so quotes and backslashes stay as they are.
func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' })
}

// echoBytes is what bash's builtin `echo "$s"` writes (xpg_echo off): s and a
// newline, unless s is a word made only of echo's options (-n, -e, -E and
// their combinations), which echo takes as options and does not print.
func echoBytes(s string) string {
	if len(s) >= 2 && s[0] == '-' && strings.Trim(s[1:], "neE") == "" {
		if strings.Contains(s, "n") {
			return ""
		}
		return "\n"
	}
	return s + "\n"
}

// sha1Hex is the lowercase hex SHA-1 of data.
func sha1Hex(data []byte) string {
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:])
}

// stdinLine is what `… | sha1sum` prints, inside $(…): "<hex>  -".
func stdinLine(data []byte) string { return sha1Hex(data) + "  -" }

// fileLine is what `sha1sum NAME` prints for a readable file, inside $(…).
// GNU coreutils (9.1, Debian bookworm) escapes a name holding a backslash, a
// newline or a carriage return and then starts the line with a backslash.
func fileLine(sum, name string) string {
	if !strings.ContainsAny(name, "\\\n\r") {
		return sum + "  " + name
	}
	r := strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r")
	return "\\" + sum + "  " + r.Replace(name)
}
