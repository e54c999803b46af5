package namespace

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeExchange writes an nsc stand-in that counts its calls in count and
// stores a tenant token expiring at exp, as `nsc auth exchange-*` does.
func fakeExchange(t *testing.T, count string, exp time.Time) string {
	t.Helper()
	claims := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"tenant_id":"tnt","exp":%d}`, exp.Unix())))
	script := filepath.Join(t.TempDir(), "nsc")
	body := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %q
mkdir -p "$XDG_CONFIG_HOME/ns"
umask 077
printf '{"bearer_token":"nsct_e30.%s.sig"}' > "$XDG_CONFIG_HOME/ns/token.json"
`, count, claims)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script
}

func lines(t *testing.T, path string) int {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

// TestConcurrentJobsExchangeOneTenantToken: eight jobs of a host starting
// together do one token exchange and all get the token (0600, in their own
// job dir); a later job reuses it until it nears its expiry.
func TestConcurrentJobsExchangeOneTenantToken(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "calls")
	nsc := fakeExchange(t, count, time.Now().Add(time.Hour))
	shared := filepath.Join(dir, "state", "namespace")
	job := func(i int, now func() time.Time) *Namespace {
		jobDir := filepath.Join(dir, fmt.Sprintf("job-%d", i))
		return &Namespace{NSC: nsc, Auth: "cognito", TenantID: "tnt", AWSRegion: "us-east-1", IdentityPool: "p",
			JobDir: jobDir, Timeout: 10 * time.Second, Tokens: TenantTokens{Dir: shared, Now: now}}
	}
	auth := func(n *Namespace) error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return n.authenticate(ctx, []string{"PATH=/usr/bin:/bin", "XDG_CONFIG_HOME=" + filepath.Join(n.nscDir(), "config")})
	}
	var wg sync.WaitGroup
	jobs := make([]*Namespace, 8)
	for i := range jobs {
		jobs[i] = job(i, nil)
		wg.Go(func() {
			if err := auth(jobs[i]); err != nil {
				t.Errorf("job %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n := lines(t, count); n != 1 {
		t.Errorf("8 concurrent jobs did %d exchanges, want 1", n)
	}
	shares := 0
	for i, n := range jobs {
		fi, err := os.Stat(n.TokenFile())
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("job %d token file: %v %v", i, fi, err)
		}
		if strings.HasPrefix(n.TokenNote, "tenant token shared") {
			shares++
		}
	}
	if shares != 7 {
		t.Errorf("%d jobs used the shared token, want 7", shares)
	}
	fi, err := os.Stat(filepath.Join(shared, "tenant-tnt.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("shared token file: %v %v", fi, err)
	}

	// 55 minutes on, the token has less than the margin left: renewed once.
	later := func() time.Time { return time.Now().Add(55 * time.Minute) }
	if err := auth(job(8, later)); err != nil {
		t.Fatal(err)
	}
	if n := lines(t, count); n != 2 {
		t.Errorf("%d exchanges after the token neared its expiry, want 2", n)
	}
}

func TestTenantTokenExpiry(t *testing.T) {
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"exp":1900000000}`))
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{`{"bearer_token":"nsct_e30.` + claims + `.sig"}`, 1900000000, ""},
		{`{"session_token":"e30.` + claims + `.sig"}`, 1900000000, ""},
		{`{"bearer_token":"opaque"}`, 0, "not a JWT"},
		{`{"bearer_token":"nsct_e30.e30.sig"}`, 0, "no expiry"},
		{`not json`, 0, "not JSON"},
	} {
		got, err := TenantTokenExpiry([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.Unix() != tc.want {
			t.Errorf("%s: %v %v", tc.in, got, err)
		}
	}
}

func TestNamespaceTokenState(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	c := TenantTokens{Dir: dir, Now: func() time.Time { return now }}
	if got := TokenState(c, "tnt"); !strings.Contains(got, "no shared tenant token yet") {
		t.Errorf("none: %q", got)
	}
	claims := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d}`, now.Add(time.Hour).Unix())))
	if err := c.Put("tnt", []byte(`{"bearer_token":"nsct_e30.`+claims+`.sig"}`)); err != nil {
		t.Fatal(err)
	}
	if got := TokenState(c, "tnt"); got != "tenant tnt: shared tenant token valid until 2026-12-02T04:00:00Z" {
		t.Errorf("valid: %q", got)
	}
	now = now.Add(55 * time.Minute)
	if got := TokenState(c, "tnt"); !strings.Contains(got, "the next job exchanges a new one") {
		t.Errorf("near expiry: %q", got)
	}
}
