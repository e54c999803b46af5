package config

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Entry is one resolved configuration value and where it came from.
type Entry struct {
	Key    string
	Value  any // string, []string, time.Duration, bool, int, int64 or []PlatformNodes
	Source Source
}

const redacted = "<redacted>"

// sensitive reports whether a key's value must not be printed.
func sensitive(key string) bool {
	leaf := strings.ToLower(key[strings.LastIndex(key, ".")+1:])
	return strings.Contains(leaf, "token") || strings.Contains(leaf, "secret") || strings.Contains(leaf, "password")
}

// Entries returns every key of the schema with its value and source, sorted
// by key. Values of keys named like tokens, secrets or passwords are redacted.
func (c *Config) Entries() []Entry {
	fields := schema()
	entries := make([]Entry, 0, len(fields))
	for _, f := range fields {
		v := f.get(c)
		if s, ok := v.(string); ok && s != "" && sensitive(f.key) {
			v = redacted
		}
		entries = append(entries, Entry{Key: f.key, Value: v, Source: c.Sources[f.key]})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Key < entries[j].Key })
	return entries
}

// WriteText writes the resolved configuration as an aligned table of
// `key = value  # source` lines; keys and values are written as TOML.
func (c *Config) WriteText(w io.Writer) error {
	file := c.Path
	if file == "" {
		file = "none (built-in defaults)"
	}
	queue := c.Queue
	if queue == "" {
		queue = "none"
	}
	if _, err := fmt.Fprintf(w, "# configuration file: %s\n# queue: %s\n", file, queue); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, e := range c.Entries() {
		if _, err := fmt.Fprintf(tw, "%s\t= %s\t  # %s\n", e.Key, formatValue(e.Value), e.Source); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// formatValue renders a value as TOML.
func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return tomlQuote(v)
	case []string:
		quoted := make([]string, len(v))
		for i, s := range v {
			quoted[i] = tomlQuote(s)
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	case time.Duration:
		return tomlQuote(v.String())
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case []PlatformNodes:
		tables := make([]string, len(v))
		for i, p := range v {
			tables[i] = fmt.Sprintf("{platform = %s, endpoints = %s}", tomlQuote(p.Platform), formatValue(p.Endpoints))
		}
		return "[" + strings.Join(tables, ", ") + "]"
	}
	return fmt.Sprint(v)
}

type jsonSetting struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

// MarshalJSON renders the resolved configuration as
// {"path": ..., "queue": ..., "settings": [{"key", "value", "source"}, ...]},
// settings sorted by key. Durations are strings in Go syntax ("1.5s"), sizes
// are bytes, lists are never null.
func (c *Config) MarshalJSON() ([]byte, error) {
	entries := c.Entries()
	settings := make([]jsonSetting, len(entries))
	for i, e := range entries {
		v := e.Value
		switch t := v.(type) {
		case time.Duration:
			v = t.String()
		case []string:
			if t == nil {
				v = []string{}
			}
		case []PlatformNodes:
			nodes := make([]PlatformNodes, len(t))
			for j, p := range t {
				nodes[j] = p
				if p.Endpoints == nil {
					nodes[j].Endpoints = []string{}
				}
			}
			v = nodes
		}
		settings[i] = jsonSetting{Key: e.Key, Value: v, Source: e.Source.String()}
	}
	return json.Marshal(struct {
		Path     string        `json:"path"`
		Queue    string        `json:"queue"`
		Settings []jsonSetting `json:"settings"`
	}{c.Path, c.Queue, settings})
}
