package config

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		outputFile,
		"state_dir = \"/srv\"\n[cache]\nmode = \"off\"\n[queue.build]\nstrict = true\n",
		"cache = { mode = \"off\", s3 = { bucket = \"b\" } }\nqueue = { build = { debug = true } }\n",
		"[[remote.platform]]\nplatform = \"linux/arm64\"\nendpoints = [\"tcp://a:1\"]\n",
		"remote.platform = [{ platform = \"linux/arm64\", endpoints = [\"unix:///s\"] }]\n",
		"[queue]\nbuild.cache.local.max_size = \"1.5GiB\"\n",
		"[queue.x.y]\n[[queue.x.remote.platform]]\n[queue.\"\"]\n",
		"probe_timeout = 5\ncache.mode = \"sometimes\"\nstrict = true\nstrict = false\n",
		"[cache]\nmode = \"auto\n",
		"a.b.c = 1\n[a.b]\n[[a]]\n",
		"remote.cert = \"/c\"\ncache.backend = \"s3\"\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), "build")
	}
	f.Fuzz(func(t *testing.T, data []byte, queue string) {
		c, err := Parse(testPath, data, queue)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, testPath+":") {
					t.Fatalf("error line does not name the file: %q", line)
				}
			}
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, fd := range schema() {
			src, ok := c.Sources[fd.key]
			if !ok {
				t.Fatalf("no source for %s", fd.key)
			}
			switch src.Kind {
			case SourceDefault:
			case SourceFile, SourceQueue:
				if src.File != testPath || src.Line < 1 || src.Line > lines {
					t.Fatalf("bad source for %s: %+v", fd.key, src)
				}
				if src.Kind == SourceQueue && src.Queue != queue {
					t.Fatalf("source for %s from queue %q, want %q", fd.key, src.Queue, queue)
				}
			default:
				t.Fatalf("source for %s is %v", fd.key, src)
			}
		}
		if len(c.Sources) != len(schema()) {
			t.Fatalf("%d sources for %d keys", len(c.Sources), len(schema()))
		}
		var b bytes.Buffer
		if err := c.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if _, err := c.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
	})
}
