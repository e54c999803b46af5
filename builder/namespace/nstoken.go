package namespace

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/internal/jsonfile"
	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// tenantTokenMargin is how long before its expiry a shared tenant token is
// exchanged anew, so that no job starts with a token about to lapse.
const tenantTokenMargin = 10 * time.Minute

// TenantTokens shares the tenant token `nsc auth exchange-*` stores between
// a host's jobs: one file per tenant under Dir (0700), 0600, replaced
// atomically, read and renewed under a lock (internal/jsonfile; the file is
// nsc's own token.json, kept byte for byte), so jobs starting together do
// one exchange and later jobs none until the token nears its expiry.
type TenantTokens struct {
	Dir string
	Now func() time.Time
}

func (c TenantTokens) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// tenantFile names a tenant's token file: the tenant id when it is plain.
func (c TenantTokens) tenantFile(tenant string) string {
	return filepath.Join(c.Dir, "tenant-"+safeName(tenant)+".json")
}

// Lock takes the tenant's lock, waiting until deadline at most and no
// longer than ctx lasts.
func (c TenantTokens) Lock(ctx context.Context, tenant string, deadline time.Time) (func(), error) {
	return jsonfile.LockUntil(ctx, c.tenantFile(tenant)+".lock", deadline)
}

// Get returns the shared token.json contents for tenant when it is valid for
// longer than the margin, and its expiry.
func (c TenantTokens) Get(tenant string) ([]byte, time.Time, bool) {
	data, err := os.ReadFile(c.tenantFile(tenant))
	if err != nil {
		return nil, time.Time{}, false
	}
	exp, err := TenantTokenExpiry(data)
	if err != nil || exp.Sub(c.now()) < tenantTokenMargin {
		return nil, time.Time{}, false
	}
	return data, exp, true
}

// Put shares a token.json nsc just stored; one without a readable expiry is
// not shared.
func (c TenantTokens) Put(tenant string, data []byte) error {
	if _, err := TenantTokenExpiry(data); err != nil {
		return err
	}
	return safefile.Write(c.tenantFile(tenant), data)
}

// TenantTokenExpiry reads the expiry of the tenant token in nsc's
// token.json: the exp claim of its bearer (or session) token, a JWT after
// a "nsct_"-style prefix.
func TenantTokenExpiry(data []byte) (time.Time, error) {
	var t struct {
		Bearer  string `json:"bearer_token"`
		Tenant  string `json:"tenant_token"`
		Session string `json:"session_token"`
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return time.Time{}, errors.New("token.json is not JSON")
	}
	tok := t.Session
	if tok == "" {
		tok = t.Bearer
	}
	if tok == "" {
		tok = t.Tenant
	}
	if i := strings.IndexByte(tok, '_'); i >= 0 && i < strings.IndexByte(tok, '.') {
		tok = tok[i+1:]
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("the tenant token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, fmt.Errorf("the tenant token's claims: %w", err)
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Exp == 0 {
		return time.Time{}, errors.New("the tenant token has no expiry")
	}
	return time.Unix(int64(claims.Exp), 0), nil
}

// TokenState says, for doctor, whether the host's jobs have a
// tenant token to share for tenant and how long it lasts.
func TokenState(c TenantTokens, tenant string) string {
	data, err := os.ReadFile(c.tenantFile(tenant))
	if err != nil {
		return fmt.Sprintf("tenant %s: no shared tenant token yet (the next job exchanges one)", tenant)
	}
	exp, err := TenantTokenExpiry(data)
	switch {
	case err != nil:
		return fmt.Sprintf("tenant %s: the shared tenant token is unreadable (%v); the next job replaces it", tenant, err)
	case exp.Sub(c.now()) < tenantTokenMargin:
		return fmt.Sprintf("tenant %s: the shared tenant token expires at %s; the next job exchanges a new one", tenant, exp.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("tenant %s: shared tenant token valid until %s", tenant, exp.UTC().Format(time.RFC3339))
}
