package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// cachedImageTree writes a monorepo of files files: pkgs packages with a
// package.json each and their sources in eight directories of about twenty
// files (a common shape), a hidden cache directory (which ** skips) and a
// yarn.lock at the top.
func cachedImageTree(root string, files, pkgs int) error {
	write := func(p, content string) error {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(content), 0o644)
	}
	n := 0
	if err := write(filepath.Join(root, "Dockerfile"), "FROM node:20\nCOPY . /app\nRUN yarn install\n"); err != nil {
		return err
	}
	if err := write(filepath.Join(root, "yarn.lock"), "# yarn lockfile v1\n"); err != nil {
		return err
	}
	n += 2
	perPkg := (files - n) / pkgs
	for p := range pkgs {
		dir := filepath.Join(root, "packages", fmt.Sprintf("pkg-%03d", p))
		if err := write(filepath.Join(dir, "package.json"), fmt.Sprintf(`{"name": "pkg-%03d", "version": "1.0.%d"}`, p, p)); err != nil {
			return err
		}
		n++
		for f := range perPkg - 1 {
			sub := filepath.Join(dir, "src", fmt.Sprintf("m%d", f%8))
			if err := write(filepath.Join(sub, fmt.Sprintf("file%d.js", f)), "export default 1;\n"); err != nil {
				return err
			}
			n++
		}
	}
	for ; n < files; n++ {
		if err := write(filepath.Join(root, ".cache", fmt.Sprintf("blob%d", n)), "x"); err != nil {
			return err
		}
	}
	return nil
}

// cachedImageBench: the tag of a 50,000-file monorepo with
// cache-on ['**/package.json', 'yarn.lock'], by `dockhand cached-image
// --print-tag` and by the plugin's own bash (globstar expansion and one
// sha1sum per file, the reference script of the tag tests), in the same run.
// Both must give the same tag; the bar is dockhand ≥ 10× faster.
func cachedImageBench(dockhand, dir string, runs int) (bool, error) {
	root := filepath.Join(dir, "monorepo")
	const files, pkgs = 50000, 300
	if err := cachedImageTree(root, files, pkgs); err != nil {
		return false, err
	}
	repo, err := harness.RepoRoot()
	if err != nil {
		return false, err
	}
	env := []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8",
		"BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_CACHE_ON_0=**/package.json", "BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_CACHE_ON_1=yarn.lock"}
	ours := []string{dockhand, "cached-image", "--print-tag"}
	plain := []string{"/bin/bash", filepath.Join(repo, "cachedimage/testdata/plugin-tag.bash")}
	tag := func(argv []string) (string, error) {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir, cmd.Env = root, env
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return "", err
		}
		defer devnull.Close()
		cmd.ExtraFiles = []*os.File{devnull} // the script's fd 3
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	a, err := tag(ours)
	if err != nil {
		return false, err
	}
	b, err := tag(plain)
	if err != nil {
		return false, err
	}
	if a != b {
		return false, fmt.Errorf("dockhand's tag %s differs from the plugin's %s", a, b)
	}
	p := pair{
		name: "cached-image tag", runs: runs,
		dockhand: func() error { _, err := tag(ours); return err },
		plain:    func() error { _, err := tag(plain); return err },
	}
	d, pl, err := measure(p)
	if err != nil {
		return false, err
	}
	ratio := float64(pl) / float64(d)
	verdict := "met"
	if ratio < 10 {
		verdict = "MISSED"
	}
	fmt.Printf("\n| cached-image tag, %d files, %d package.json, cache-on `**/package.json` + `yarn.lock` (%d runs each) | dockhand --print-tag (median) | plugin's bash: globstar + sha1sum per file (median) | speed-up | bar |\n|---|---|---|---|---|\n",
		files, pkgs, runs)
	fmt.Printf("| same tag (%s) from both | %s | %s | %.1f× | ≥ 10×: %s |\n", a, ms(d), ms(pl), ratio, verdict)
	return verdict != "met", nil
}
