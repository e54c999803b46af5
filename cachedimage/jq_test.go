package cachedimage

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/cachedimage/jqeval"
)

// runJQ runs Debian's `jq -r filter` on input. jq 1.6 carries on after an
// error on one input and exits with the last input's status, so any error it
// reports counts as a failure.
func runJQ(t *testing.T, filter, input string) (string, error) {
	t.Helper()
	cmd := exec.Command(realJQ(t), "-r", filter)
	cmd.Stdin = strings.NewReader(input)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err == nil && errb.Len() > 0 {
		err = errors.New(strings.TrimSpace(errb.String()))
	}
	return out.String(), err
}

// TestJQNumbersMatchJQ prints thousands of doubles as jq 1.6 does.
func TestJQNumbersMatchJQ(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	texts := []string{"0", "-0", "1", "1.0", "0.1", "1e15", "1e16", "1e17", "999999999999999", "9999999999999999",
		"99999999999999999", "123456789012345678", "12345678901234567890", "1e-4", "1e-5", "0.0001", "0.00001234",
		"1.7976931348623157e308", "5e-324", "2.2250738585072014e-308", "1e400", "-1e400", "1e-400", "100", "1e21",
		"1.5", "-2.5e-7", "3.14159", "0.30000000000000004", "4503599627370496", "9007199254740993", "1e22", "1e23"}
	for range 3000 {
		var f float64
		switch r.IntN(4) {
		case 0:
			f = math.Float64frombits(r.Uint64())
		case 1:
			f = r.Float64() * math.Pow(10, float64(r.IntN(40)-20))
		case 2:
			f = float64(r.Int64N(1<<62)) * math.Pow(10, float64(r.IntN(6)))
		default:
			f = math.Round(r.Float64()*1e6) / math.Pow(10, float64(r.IntN(8)))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		texts = append(texts, strconv.FormatFloat(f, 'g', -1, 64))
	}
	want, err := runJQ(t, ".[]", "["+strings.Join(texts, ",")+"]")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("jq printed %d numbers for %d", len(lines), len(texts))
	}
	bad := 0
	for i, text := range texts {
		f, _ := strconv.ParseFloat(text, 64)
		if got := formatJQNumber(f); got != lines[i] {
			if bad++; bad < 20 {
				t.Errorf("%s: dockhand %s, jq %s", text, got, lines[i])
			}
		}
	}
}

// TestJQFiltersMatchJQ runs filters with dockhand and with Debian's jq and
// wants the same bytes.
func TestJQFiltersMatchJQ(t *testing.T) {
	docs := map[string]string{
		"package": packageJSON,
		"stream":  "1 \"two\" {\"b\": 3, \"a\": [4]} null",
		"array":   `[{"name": "b", "v": 2}, {"name": "a", "v": 1}, "s", 3.5, null, true]`,
		"unicode": `{"k\u00e9y": "v\u2028al\ud83d\ude00", "ctl": "\u0000\u001f\u007f", "bad": "x"}`,
		"empty":   "",
	}
	filters := []string{
		".", ".name", ".version", ".dependencies", ".dependencies[]", ".dependencies|keys", ".dependencies|keys_unsorted",
		".scripts|to_entries", ".nums", ".nums[2]", ".nums[-1]", ".nums[1:3]", ".nums[:2]", ".nums[-2:]", ".nested|..",
		".nested.b", `.nested["b"].d`, `."name"`, ".name,.version", ".text", ".text|tojson", ".nums|tojson", ".dup",
		".missing", ".missing.deeper", ".nested|length", ".name|length", ".nums[0]|length", ".nested|type", ".[]?",
		".name[]?", ".dependencies|tostring", ".nested|tostring", ".devDependencies", ".nested.b.c", ".nested.a",
		"(.name)", ".name|ascii_downcase", ".nums|max", ".nums|length", ".dependencies|has(\"zod\")",
		".version|split(\".\")|.[0]", ".nums|map(.*2)", "[.name, .version]", ".scripts|length > 2",
		".dependencies|keys|join(\",\")", ".name|test(\"App\")",
	}
	// The filters dockhand refuses, whatever the document, and the word its
	// error names as the reason: gojq would evaluate them, but their output
	// could depend on an object's key order, which gojq does not keep.
	refused := map[string]string{
		".nums|map(.*2)":               `"map" could make the output depend on that order`,
		`.dependencies|keys|join(",")`: `"join" could make the output depend on that order`,
	}
	for docName, doc := range docs {
		for _, f := range filters {
			want, jqErr := runJQ(t, f, doc)
			got, err := jqRaw(f, []byte(doc), jqeval.Eval)
			if why, ok := refused[f]; ok {
				if err == nil || !strings.Contains(err.Error(), why) {
					t.Errorf("%s | %s: dockhand printed %q, %v; want it refused saying %q", docName, f, got, err, why)
				}
				continue
			}
			switch {
			case jqErr != nil && err == nil:
				t.Errorf("%s | %s: jq failed (%v) but dockhand printed %q", docName, f, jqErr, got)
			case jqErr == nil && err != nil:
				t.Errorf("%s | %s: dockhand: %v; jq printed %q", docName, f, err, want)
			case err == nil && got != want:
				t.Errorf("%s | %s:\ndockhand %q\njq       %q", docName, f, got, want)
			}
		}
	}
}

func TestOrderRisk(t *testing.T) {
	for filter, want := range map[string]string{
		".a|ascii_downcase": "", ".address|ascii_downcase": "", ".map.env": "", `.a|test("{")`: "",
		"{a:.b}": "{", ".a[]|length": "[]", ".a[ ]": "[]", "..|numbers": "..", ".a|@base64": "@",
		`"\(.a)"`: `\(`, ".a|add": "add", ".a|to_entries": "to_entries", "$ENV.HOME": "$ENV", ".a|map(.)": "map",
	} {
		if got := orderRisk(filter); got != want {
			t.Errorf("orderRisk(%q) = %q, want %q", filter, got, want)
		}
	}
}
