// Command fakensc stands in for Namespace's `nsc` CLI in tests: the
// commands, flags and files dockhand relies on, as namespacelabs/foundation
// implements them, with Namespace's control plane replaced by a JSON file
// (FAKENSC_BACKEND) that names the tenant and the builders — real buildkitd
// processes behind mTLS.
//
//	nsc auth exchange-oidc-token --token JWT --tenant_id ID
//	    checks the token's audience, stores $XDG_CONFIG_HOME/ns/token.json (0600)
//	nsc auth exchange-aws-cognito-token --aws_region R --identity_pool P --tenant_id ID
//	    stores the token the same way (no AWS call)
//	nsc docker buildx setup [--name N] [--state DIR] [--use] [--background] [--default_load]
//	    needs the token; writes DIR/proxy/client_cert_and_key.pem and
//	    server_<arch>_cert.pem, and the builder N (default nsc-remote) into
//	    $DOCKER_CONFIG/buildx/instances, one remote node per platform, in
//	    the API's order (amd64 first)
//	nsc docker buildx cleanup [--name N]
//	docker-credential-nsc get   (this binary under that name)
//	    nscr.io -> {"Username": "token", "Secret": the backend's registry_password}
//	nsc docker login
//	    needs the token; credHelpers["nscr.io"] = "nsc" in $DOCKER_CONFIG/config.json
//	nsc version
//
// Failures are printed as the real tools print them (printError): the
// reason in a "Failed:" block on stderr, then nsc's help footer.
//
// Every call is appended to the backend's log file (argv, with any --token
// value replaced by <token>), for tests to assert on. The backend can make
// every call slow (latency, as Namespace's API answering slowly would), each
// call to the API a command makes slow (api_latency: real nsc's setup makes
// 2 + one per platform, one after the other), or hang: the call leaves a grandchild in its own session holding stdout and
// stderr, then never returns, as an nsc stuck on the network with a helper
// process would.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Backend is the fake control plane.
type Backend struct {
	TenantID string `json:"tenant_id"`
	Reject   string `json:"reject,omitempty"`  // "auth": every token exchange is refused
	Latency  string `json:"latency,omitempty"` // a Go duration every call takes first
	// APILatency is what each call to Namespace's API takes (a Go
	// duration), as many times as the command makes calls: an exchange one,
	// `docker buildx setup` 2 + one per platform (the profile, the client
	// certificate, each platform's builder configuration), `docker login`
	// one, docker-credential-nsc's get two.
	APILatency string    `json:"api_latency,omitempty"`
	Hang       bool      `json:"hang,omitempty"` // every call but version hangs
	Builders   []Builder `json:"builders"`
	Log        string    `json:"log,omitempty"`
	// RegistryPassword is what docker-credential-nsc hands out for nscr.io
	// (user "token"): the password of the test registry standing in for it.
	RegistryPassword string `json:"registry_password,omitempty"`
}

// Builder is one platform's remote builder.
type Builder struct {
	Platform   string `json:"platform"` // linux/amd64
	Endpoint   string `json:"endpoint"` // tcp://host:port
	ServerCA   string `json:"server_ca"`
	ClientCert string `json:"client_cert"`
	ClientKey  string `json:"client_key"`
}

const audience = "federation.namespaceapis.com"

func main() {
	run := run
	if filepath.Base(os.Args[0]) == "docker-credential-nsc" {
		run = credentialHelper
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		printError(os.Stderr, filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
}

// apiError is Namespace's API refusing a call with a gRPC status code;
// nsc words each code its own way.
type apiError struct {
	code string // PermissionDenied, Unauthenticated, Unavailable…
	msg  string
}

func (e apiError) Error() string { return e.code + ": " + e.msg }

// frame is the rule nsc's tools draw around a local error.
const frame = "========================================"

// printError prints a failure as the real tools do, on stderr: the reason in
// a "Failed:" block — an API refusal worded by its code, anything else
// between two frames — and, from nsc but not docker-credential-nsc, a help
// footer whose last line points agents at the docs' llms.txt. The reason is
// never the last line.
func printError(w io.Writer, tool string, err error) {
	var api apiError
	switch {
	case !errors.As(err, &api):
		fmt.Fprintf(w, "\n%s\nFailed: %v\n%s\n", frame, err, frame)
	case api.code == "PermissionDenied":
		fmt.Fprintf(w, "\nFailed: it seems that's not allowed. We got: %s\n\n", api.msg)
	case api.code == "Unauthenticated":
		fmt.Fprintf(w, "\nFailed: no credentials found. We got: %s\n\n\nPlease run nsc login.\n", api.msg)
	default:
		fmt.Fprintf(w, "\nFailed: %s (%s).\n\nThis was unexpected; contact Namespace's support.\n", api.msg, api.code)
	}
	if tool == "docker-credential-nsc" {
		return
	}
	fmt.Fprintf(w, "\nSee https://namespace.so/docs for more help.\n")
	fmt.Fprintf(w, "Agents: fetch https://namespace.so/docs/llms.txt and look the failing command up in its CLI section.\n")
}

func run(args []string, stdout io.Writer) error {
	b, err := loadBackend()
	if err != nil {
		return err
	}
	logCall(b, args)
	if len(args) == 0 || args[0] != "version" {
		if b.Hang {
			hang()
		}
		if d, err := time.ParseDuration(b.Latency); err == nil && d > 0 {
			time.Sleep(d) // the control plane's latency, not a synchronisation
		}
	}
	switch {
	case len(args) >= 1 && args[0] == "version":
		fmt.Fprintln(stdout, "nsc fake (dockhand tests)")
		return nil
	case len(args) >= 2 && args[0] == "auth" && args[1] == "exchange-oidc-token":
		return exchangeOIDC(b, args[2:], stdout)
	case len(args) >= 2 && args[0] == "auth" && args[1] == "exchange-aws-cognito-token":
		return exchangeCognito(b, args[2:], stdout)
	case len(args) >= 3 && args[0] == "docker" && args[1] == "buildx" && args[2] == "setup":
		return setup(b, args[3:], stdout)
	case len(args) >= 3 && args[0] == "docker" && args[1] == "buildx" && args[2] == "cleanup":
		return cleanup(args[3:])
	case len(args) >= 2 && args[0] == "docker" && args[1] == "login":
		return dockerLogin(b, stdout)
	}
	return fmt.Errorf("unknown command %q", strings.Join(args, " "))
}

// api waits for n calls to Namespace's API, one after the other, as nsc
// makes them.
func (b *Backend) api(n int) {
	if d, err := time.ParseDuration(b.APILatency); err == nil && d > 0 {
		time.Sleep(time.Duration(n) * d) // the API's latency, not a synchronisation
	}
}

// hang starts a grandchild that outlives this process holding its output
// pipes (for 30 s), then blocks until killed.
func hang() {
	gc := exec.Command("sleep", "30")
	gc.Stdout, gc.Stderr = os.Stdout, os.Stderr
	gc.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	_ = gc.Start()
	time.Sleep(time.Hour) // hung: until killed
}

func loadBackend() (*Backend, error) {
	path := os.Getenv("FAKENSC_BACKEND")
	if path == "" {
		return nil, errors.New("FAKENSC_BACKEND is not set")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Backend
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &b, nil
}

func logCall(b *Backend, args []string) {
	if b.Log == "" {
		return
	}
	redacted := slices.Clone(args)
	for i, a := range redacted {
		if a == "--token" && i+1 < len(redacted) {
			redacted[i+1] = "<token>"
		}
		if strings.HasPrefix(a, "--token=") {
			redacted[i] = "--token=<token>"
		}
	}
	f, err := os.OpenFile(b.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "nsc %s\n", strings.Join(redacted, " "))
}

// configDir is nsc's config dir: os.UserConfigDir()/ns.
func configDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "ns"), nil
}

func tokenPath() (string, error) {
	if p := os.Getenv("NSC_TOKEN_FILE"); p != "" {
		return p, nil
	}
	d, err := configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "token.json"), nil
}

func exchangeOIDC(b *Backend, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("exchange-oidc-token", flag.ContinueOnError)
	token := fs.String("token", "", "")
	tenant := fs.String("tenant_id", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("--token is required")
	}
	if *tenant == "" {
		return errors.New("--tenant_id is required")
	}
	claims, err := jwtClaims(*token)
	if err != nil {
		return fmt.Errorf("invalid OIDC token: %w", err)
	}
	if !hasAudience(claims["aud"], audience) {
		return apiError{"PermissionDenied", fmt.Sprintf("token audience %v is not %s", claims["aud"], audience)}
	}
	return storeToken(b, *tenant, stdout)
}

func exchangeCognito(b *Backend, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("exchange-aws-cognito-token", flag.ContinueOnError)
	region := fs.String("aws_region", "", "")
	pool := fs.String("identity_pool", "", "")
	tenant := fs.String("tenant_id", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *region == "" || *pool == "" || *tenant == "" {
		return errors.New("--aws_region, --identity_pool and --tenant_id are required")
	}
	return storeToken(b, *tenant, stdout)
}

func storeToken(b *Backend, tenant string, stdout io.Writer) error {
	b.api(1)
	if b.Reject == "auth" {
		return apiError{"PermissionDenied", "tenant " + tenant + " does not trust this identity"}
	}
	if tenant != b.TenantID {
		return apiError{"NotFound", fmt.Sprintf("no tenant %q", tenant)}
	}
	claims, _ := json.Marshal(map[string]any{"tenant_id": tenant, "exp": time.Now().Add(time.Hour).Unix()})
	tok := "nsct_" + b64("{}") + "." + b64(string(claims)) + ".fake"
	data, _ := json.Marshal(map[string]string{"bearer_token": tok})
	dir, err := configDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "token.json"), data, 0o600); err != nil {
		return fmt.Errorf("failed to write token data: %w", err)
	}
	fmt.Fprintf(stdout, "You are now logged in to tenant %s.\n", tenant)
	return nil
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func jwtClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, err
	}
	return claims, nil
}

func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if x == want {
				return true
			}
		}
	}
	return false
}

// loadToken returns the stored tenant token's tenant, as nsc does before
// any API call.
func loadToken() (string, error) {
	p, err := tokenPath()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return "", errors.New("not logged in: run nsc auth login")
	}
	var t struct {
		BearerToken string `json:"bearer_token"`
	}
	if err := json.Unmarshal(data, &t); err != nil || !strings.HasPrefix(t.BearerToken, "nsct_") {
		return "", errors.New("not logged in")
	}
	claims, err := jwtClaims(strings.TrimPrefix(t.BearerToken, "nsct_"))
	if err != nil {
		return "", errors.New("not logged in")
	}
	if exp, _ := claims["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
		return "", apiError{"Unauthenticated", "login token expired"}
	}
	tenant, _ := claims["tenant_id"].(string)
	return tenant, nil
}

func setup(b *Backend, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	name := fs.String("name", "nsc-remote", "")
	state := fs.String("state", "", "")
	use := fs.Bool("use", false, "")
	fs.Bool("background", false, "")
	defaultLoad := fs.Bool("default_load", false, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tenant, err := loadToken()
	if err != nil {
		return err
	}
	if tenant != b.TenantID {
		return apiError{"PermissionDenied", fmt.Sprintf("token for tenant %q", tenant)}
	}
	b.api(2 + len(b.Builders))
	if *state == "" {
		d, err := configDir()
		if err != nil {
			return err
		}
		*state = filepath.Join(d, "buildkit")
	}
	proxy := filepath.Join(*state, "proxy")
	if err := os.MkdirAll(proxy, 0o700); err != nil {
		return err
	}
	type platform struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	}
	type node struct {
		Name       string
		Endpoint   string
		Platforms  []platform
		DriverOpts map[string]string
		Flags      []string
		Files      map[string][]byte
	}
	var nodes []node
	for _, bl := range apiOrder(b.Builders) {
		osName, arch, _ := strings.Cut(bl.Platform, "/")
		cert, err := os.ReadFile(bl.ClientCert)
		if err != nil {
			return err
		}
		key, err := os.ReadFile(bl.ClientKey)
		if err != nil {
			return err
		}
		ca, err := os.ReadFile(bl.ServerCA)
		if err != nil {
			return err
		}
		// nsc writes the certificate and key concatenated, used as both.
		certKey := filepath.Join(proxy, "client_cert_and_key.pem")
		if err := os.WriteFile(certKey, append(cert, key...), 0o600); err != nil {
			return err
		}
		serverCA := filepath.Join(proxy, "server_"+arch+"_cert.pem")
		if err := os.WriteFile(serverCA, ca, 0o600); err != nil {
			return err
		}
		opts := map[string]string{"cacert": serverCA, "cert": certKey, "key": certKey}
		if *defaultLoad {
			opts["default-load"] = "true"
		}
		nodes = append(nodes, node{Name: arch, Endpoint: bl.Endpoint, Platforms: []platform{{arch, osName}}, DriverOpts: opts})
	}
	ng := map[string]any{"Name": *name, "Driver": "remote", "Nodes": nodes, "Dynamic": false}
	data, _ := json.Marshal(ng)
	store, err := buildxStore()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(store, "instances"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(store, "instances", strings.ToLower(*name)), data, 0o600); err != nil {
		return err
	}
	if *use {
		cur, _ := json.Marshal(map[string]any{"Key": "unix:///var/run/docker.sock", "Name": *name, "Global": false})
		if err := os.WriteFile(filepath.Join(store, "current"), cur, 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "Configured buildx builder %q with %d remote node(s).\n", *name, len(nodes))
	return nil
}

// apiOrder is the order in which Namespace's API lists a tenant's build
// platforms, and nsc writes their nodes: amd64, then arm64, whatever order
// the backend file gives.
func apiOrder(bs []Builder) []Builder {
	rank := func(b Builder) int {
		switch b.Platform {
		case "linux/amd64":
			return 0
		case "linux/arm64":
			return 1
		}
		return 2
	}
	out := slices.Clone(bs)
	slices.SortStableFunc(out, func(a, b Builder) int { return rank(a) - rank(b) })
	return out
}

func cleanup(args []string) error {
	fs := flag.NewFlagSet("cleanup", flag.ContinueOnError)
	name := fs.String("name", "nsc-remote", "")
	fs.String("state", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	store, err := buildxStore()
	if err != nil {
		return err
	}
	err = os.Remove(filepath.Join(store, "instances", strings.ToLower(*name)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// buildxStore is buildx's store dir: $BUILDX_CONFIG, else $DOCKER_CONFIG/buildx.
// dockerLogin does what `nsc docker login` does with its default
// --use_credential_helper: credHelpers["nscr.io"] = "nsc" in the docker
// config, keeping every other key. It needs the tenant token.
func dockerLogin(b *Backend, stdout io.Writer) error {
	if _, err := loadToken(); err != nil {
		return err
	}
	b.api(1)
	store, err := buildxStore()
	if err != nil {
		return err
	}
	path := filepath.Join(filepath.Dir(store), "config.json")
	cfg := map[string]any{}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &cfg); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	helpers, _ := cfg["credHelpers"].(map[string]any)
	if helpers == nil {
		helpers = map[string]any{}
	}
	helpers["nscr.io"] = "nsc"
	cfg["credHelpers"] = helpers
	data, _ := json.MarshalIndent(cfg, "", "\t")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Added nscr.io to the docker credential helpers.")
	return nil
}

// credentialHelper is docker-credential-nsc (the same binary under that
// name): `get` answers for nscr.io with user "token" and the backend's
// registry password, given a valid tenant token (NSC_TOKEN_FILE or nsc's
// config dir); any other host is not found, as the real helper says it.
func credentialHelper(args []string, stdout io.Writer) error {
	b, err := loadBackend()
	if err != nil {
		return err
	}
	logCall(b, append([]string{"docker-credential-nsc"}, args...))
	if len(args) != 1 || args[0] != "get" {
		return fmt.Errorf("not supported: %q", args)
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	host := strings.TrimSpace(string(in))
	if host != "nscr.io" || b.RegistryPassword == "" {
		return errors.New("credentials not found in native keychain")
	}
	if _, err := loadToken(); err != nil {
		return err
	}
	b.api(2)
	return json.NewEncoder(stdout).Encode(map[string]string{"ServerURL": host, "Username": "token", "Secret": b.RegistryPassword})
}

func buildxStore() (string, error) {
	if d := os.Getenv("BUILDX_CONFIG"); d != "" {
		return d, nil
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "buildx"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".docker", "buildx"), nil
}
