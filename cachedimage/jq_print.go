package cachedimage

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// printRaw is what `jq -r` prints for outs: a string as it is, any other
// value as pretty JSON, each on its own line.
func printRaw(outs []any) string {
	var b strings.Builder
	for _, v := range outs {
		if s, ok := v.(string); ok {
			b.WriteString(s)
		} else {
			writeJQ(&b, v, 0, true)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// writeJQ prints v as jq 1.6 does: pretty with two spaces, or compact
// (tojson, tostring).
func writeJQ(b *strings.Builder, v any, depth int, pretty bool) {
	nl := func(d int) {
		if pretty {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat("  ", d))
		}
	}
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case float64:
		b.WriteString(formatJQNumber(v))
	case string:
		writeJQString(b, v)
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			writeJQ(b, e, depth+1, pretty)
		}
		nl(depth)
		b.WriteByte(']')
	case *jqObject:
		if len(v.keys) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			writeJQString(b, k)
			b.WriteByte(':')
			if pretty {
				b.WriteByte(' ')
			}
			writeJQ(b, v.vals[k], depth+1, pretty)
		}
		nl(depth)
		b.WriteByte('}')
	}
}

// writeJQString writes s as a JSON string as jq 1.6 does: other control
// characters as \u00xx, in lower case. (config's tomlQuote escapes the same
// characters for TOML in upper case; each keeps its own tool's bytes.)
func writeJQString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// formatJQNumber prints a double as jq 1.6 does (David Gay's g_fmt with the
// shortest round-trip digits): exponent form when the decimal point would
// sit four or more places left of the first digit, or more than fifteen
// places right of the last one; the exponent is signed and at least two
// digits; NaN is null and infinities are the largest double.
func formatJQNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "null"
	case math.IsInf(f, 1):
		f = math.MaxFloat64
	case math.IsInf(f, -1):
		f = -math.MaxFloat64
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0"
		}
		return "0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	decpt := x + 1 // value = 0.DIGITS × 10^decpt
	n := len(digits)
	if decpt <= -4 || decpt > n+15 {
		var b strings.Builder
		b.WriteString(sign)
		b.WriteByte(digits[0])
		if n > 1 {
			b.WriteByte('.')
			b.WriteString(digits[1:])
		}
		b.WriteByte('e')
		if x < 0 {
			b.WriteByte('-')
			x = -x
		} else {
			b.WriteByte('+')
		}
		if x < 10 {
			b.WriteByte('0')
		}
		b.WriteString(strconv.Itoa(x))
		return b.String()
	}
	switch {
	case decpt <= 0:
		return sign + "0." + strings.Repeat("0", -decpt) + digits
	case decpt >= n:
		return sign + digits + strings.Repeat("0", decpt-n)
	}
	return sign + digits[:decpt] + "." + digits[decpt:]
}
