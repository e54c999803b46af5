// Package safedir checks that a directory dockhand trusts (the state dir,
// where job dirs, the token cache and the buildx shim live) can only be
// changed by the agent user and root: the dir itself and every dir above it,
// walked one component at a time with openat(2) and O_NOFOLLOW, so what is
// checked is what is opened, with no symlink or rename in between.
package safedir

import (
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Check resolves path's symlinks and checks the real path: every dir above
// it owned by root or uid and not writable by others (unless sticky, as
// /tmp is), the dir itself owned by uid and writable by no one else (with
// private, not readable by anyone else either). It returns the real path,
// which callers use from then on.
func Check(path string, uid int, private bool) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(real) {
		if real, err = filepath.Abs(real); err != nil {
			return "", err
		}
	}
	// O_PATH: the walk needs only what the agent user has to reach the
	// dir, search permission, not read (a dir above may be 0711).
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("opening /: %w", err)
	}
	defer func() { unix.Close(fd) }()
	parts := strings.FieldsFunc(real, func(r rune) bool { return r == '/' })
	walked := "/"
	for i := 0; ; i++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return "", fmt.Errorf("%s: %w", walked, err)
		}
		if err := checkOne(walked, st, uid, i == len(parts), private); err != nil {
			return "", err
		}
		if i == len(parts) {
			return real, nil
		}
		next, err := unix.Openat(fd, parts[i], unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		walked = filepath.Join(walked, parts[i])
		if err == unix.EACCES {
			return "", fmt.Errorf("%s cannot be reached by uid %d: %w", walked, uid, err)
		}
		if err != nil {
			return "", fmt.Errorf("%s changed while it was checked: %w", walked, err)
		}
		unix.Close(fd)
		fd = next
	}
}

func checkOne(dir string, st unix.Stat_t, uid int, last, private bool) error {
	owner, mode := int(st.Uid), st.Mode
	if last {
		if owner != uid {
			return fmt.Errorf("%s is owned by uid %d, not by uid %d that dockhand runs as (fix: chown -R %d %s, as install-dockhand.sh --user does)", dir, owner, uid, uid, dir)
		}
		if mode&0o022 != 0 {
			return fmt.Errorf("%s is writable by its group or by others (mode %04o; fix: chmod go-w %s)", dir, mode&0o7777, dir)
		}
		if private && mode&0o077 != 0 {
			return fmt.Errorf("%s is not private to uid %d (mode %04o; fix: chmod 0700 %s)", dir, uid, mode&0o7777, dir)
		}
		return nil
	}
	if owner != 0 && owner != uid {
		return fmt.Errorf("%s, above the dir, is owned by uid %d: it could replace what is below it (fix: a state_dir below dirs only root or uid %d own)", dir, owner, uid)
	}
	if mode&0o022 != 0 && mode&unix.S_ISVTX == 0 {
		return fmt.Errorf("%s, above the dir, is writable by its group or by others (mode %04o) without the sticky bit (fix: chmod go-w %s)", dir, mode&0o7777, dir)
	}
	return nil
}
