package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/buildkite/shellwords"
	"github.com/dockhand-ci/dockhand/fleet"
)

// The values of the configuration's enumerations, the one home of these
// names: buildx, bootstrap and report use them as they are.

// Builder kinds, in the default preference order (embedded is opt-in).
const (
	BuilderNamespace = "namespace"
	BuilderRemote    = "remote"
	BuilderLocal     = "local"
	BuilderEmbedded  = "embedded"
	// UntrustedNone is untrusted.builder's "none": a fork's build gets no
	// builder of dockhand's.
	UntrustedNone = "none"
)

// BuilderKinds are every builder kind `builders` may name.
var BuilderKinds = []string{BuilderNamespace, BuilderRemote, BuilderLocal, BuilderEmbedded}

// Cache modes.
const (
	CacheAuto   = "auto"
	CacheAlways = "always"
	CacheOff    = "off"
)

// Annotation modes (the annotate key).
const (
	AnnotateAuto   = "auto"   // only when the job built something on dockhand's builder
	AnnotateAlways = "always" // every job with dockhand's builder, "no builds" included
	AnnotateOff    = "off"
)

// Cache backends. Each is the BuildKit cache type of the same name
// (type=registry, type=s3, type=local), as a build's history records it.
const (
	CacheRegistry = "registry"
	CacheS3       = "s3"
	CacheLocal    = "local"
)

// Namespace authentication methods.
const (
	AuthOIDC    = "oidc"
	AuthCognito = "cognito"
)

const maxProbeTimeout = 60 * time.Second

// valueType is the type of a schema key's value.
type valueType int

const (
	tString    valueType = iota
	tStrings             // array of strings
	tDuration            // string in Go duration syntax
	tBool                // boolean
	tInt                 // integer
	tSize                // integer bytes, or a string such as "20GB"
	tPlatforms           // array of {platform, endpoints} tables
)

// field is one key of the schema.
type field struct {
	key   string
	typ   valueType
	check func(v any) error // nil: any value of the type is fine
	// ref returns a pointer to the Config field holding the value.
	ref func(c *Config) any
}

// schema lists every configuration key. The same keys are valid at the top
// level and inside [queue.NAME] sections.
func schema() []field {
	return []field{
		{"state_dir", tString, absPath, func(c *Config) any { return &c.StateDir }},
		{"shell", tString, checkShell, func(c *Config) any { return &c.Shell }},
		{"builders", tStrings, checkBuilders, func(c *Config) any { return &c.Builders }},
		{"probe_timeout", tDuration, checkProbeTimeout, func(c *Config) any { return &c.ProbeTimeout }},
		{"probe_cache_ttl", tDuration, ttl("shares nothing"), func(c *Config) any { return &c.ProbeCacheTTL }},
		{"builders_optional", tBool, nil, func(c *Config) any { return &c.BuildersOptional }},
		{"strict", tBool, nil, func(c *Config) any { return &c.Strict }},
		{"debug", tBool, nil, func(c *Config) any { return &c.Debug }},
		{"annotate", tString, oneOf(AnnotateAuto, AnnotateAlways, AnnotateOff), func(c *Config) any { return &c.Annotate }},

		{"remote.endpoints", tStrings, checkEndpoints, func(c *Config) any { return &c.Remote.Endpoints }},
		{"remote.ca", tString, nil, func(c *Config) any { return &c.Remote.CA }},
		{"remote.cert", tString, nil, func(c *Config) any { return &c.Remote.Cert }},
		{"remote.key", tString, nil, func(c *Config) any { return &c.Remote.Key }},
		{"remote.server_name", tString, nil, func(c *Config) any { return &c.Remote.ServerName }},
		{"remote.platform", tPlatforms, checkPlatforms, func(c *Config) any { return &c.Remote.Platforms }},
		{"remote.discovery_ttl", tDuration, ttl("asks the source on every job"), func(c *Config) any { return &c.Remote.DiscoveryTTL }},
		{"remote.dns_server", tString, checkHostPort, func(c *Config) any { return &c.Remote.DNSServer }},
		{"remote.ec2_endpoint_url", tString, httpURL, func(c *Config) any { return &c.Remote.EC2EndpointURL }},
		{"remote.allow_loopback", tBool, nil, func(c *Config) any { return &c.Remote.AllowLoopback }},
		{"untrusted.builder", tString, oneOf(UntrustedNone, BuilderRemote, BuilderEmbedded), func(c *Config) any { return &c.Untrusted.Builder }},
		{"untrusted.endpoints", tStrings, checkEndpoints, func(c *Config) any { return &c.Untrusted.Endpoints }},
		{"remote.balance_factor", tInt, checkBalanceFactor, func(c *Config) any { return &c.Remote.BalanceFactor }},
		{"remote.retry_lost_builds", tBool, nil, func(c *Config) any { return &c.Remote.RetryLostBuilds }},

		{"namespace.nsc", tString, optionalAbsPath, func(c *Config) any { return &c.Namespace.NSC }},
		{"namespace.auth", tString, oneOf(AuthOIDC, AuthCognito), func(c *Config) any { return &c.Namespace.Auth }},
		{"namespace.tenant_id", tString, nil, func(c *Config) any { return &c.Namespace.TenantID }},
		{"namespace.aws_region", tString, nil, func(c *Config) any { return &c.Namespace.AWSRegion }},
		{"namespace.identity_pool", tString, nil, func(c *Config) any { return &c.Namespace.IdentityPool }},

		{"embedded.buildkitd", tString, optionalAbsPath, func(c *Config) any { return &c.Embedded.Buildkitd }},
		{"embedded.config", tString, optionalAbsPath, func(c *Config) any { return &c.Embedded.Config }},
		{"embedded.rootlesskit", tString, optionalAbsPath, func(c *Config) any { return &c.Embedded.Rootlesskit }},

		{"cache.mode", tString, oneOf(CacheAuto, CacheAlways, CacheOff), func(c *Config) any { return &c.Cache.Mode }},
		{"cache.backend", tString, oneOf(CacheRegistry, CacheS3, CacheLocal), func(c *Config) any { return &c.Cache.Backend }},
		{"cache.repository", tString, checkRepository, func(c *Config) any { return &c.Cache.Repository }},
		{"cache.max_age_days", tInt, intRange(1, 3650), func(c *Config) any { return &c.Cache.MaxAgeDays }},
		{"cache.s3.bucket", tString, nil, func(c *Config) any { return &c.Cache.S3.Bucket }},
		{"cache.s3.region", tString, nil, func(c *Config) any { return &c.Cache.S3.Region }},
		{"cache.s3.prefix", tString, nil, func(c *Config) any { return &c.Cache.S3.Prefix }},
		{"cache.s3.endpoint_url", tString, httpURL, func(c *Config) any { return &c.Cache.S3.EndpointURL }},
		{"cache.local.dir", tString, absPath, func(c *Config) any { return &c.Cache.Local.Dir }},
		{"cache.local.max_size", tSize, positiveSize, func(c *Config) any { return &c.Cache.Local.MaxSize }},

		{"packages.registries", tStrings, checkRegistries, func(c *Config) any { return &c.Packages.Registries }},

		{"registry.static", tStrings, checkStaticCredentials, func(c *Config) any { return &c.Registry.Static }},
		{"registry.ecr_aliases", tStrings, checkECRAliases, func(c *Config) any { return &c.Registry.ECRAliases }},
		{"registry.nscr_aliases", tStrings, checkNSCRAliases, func(c *Config) any { return &c.Registry.NSCRAliases }},
		{"registry.refresh_tokens", tBool, nil, func(c *Config) any { return &c.Registry.RefreshTokens }},
		{"registry.ecr_registries", tStrings, checkECRRegistries, func(c *Config) any { return &c.Registry.ECRRegistries }},
		{"registry.creds_store", tBool, nil, func(c *Config) any { return &c.Registry.CredsStore }},
	}
}

// Default returns the built-in configuration for an agent on queue.
func Default(queue string) *Config {
	c := &Config{
		StateDir:     "/var/lib/dockhand",
		Shell:        "/bin/bash",
		Builders:     []string{BuilderNamespace, BuilderRemote, BuilderLocal},
		ProbeTimeout: 1500 * time.Millisecond,
		Annotate:     AnnotateAuto,
		Namespace:    Namespace{Auth: AuthOIDC},
		Untrusted:    Untrusted{Builder: UntrustedNone},
		Cache: Cache{
			Mode:       CacheAuto,
			Backend:    CacheRegistry,
			MaxAgeDays: 14,
			S3:         CacheS3Settings{Prefix: "buildkit/"},
			Local:      CacheLocalSettings{Dir: "/var/lib/dockhand/cache", MaxSize: 20_000_000_000},
		},
		Registry: RegistrySettings{RefreshTokens: true},
		Queue:    queue,
		Sources:  map[string]Source{},
	}
	c.ProbeCacheTTL = 5 * time.Second // shared between jobs starting together
	c.Remote.DiscoveryTTL = 10 * time.Second
	c.Remote.BalanceFactor = DefaultBalanceFactor
	// On: a rerun happens only when the node is found unreachable after
	// the build failed, and pushes and loads are idempotent, so the cost of
	// being on is one rerun; the cost of off is a failed step.
	c.Remote.RetryLostBuilds = true
	for _, f := range schema() {
		c.Sources[f.key] = Source{Kind: SourceDefault}
	}
	return c
}

func fieldByKey(key string) (field, bool) {
	for _, f := range schema() {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// isTable reports whether key names a table of the schema, such as "cache"
// or "cache.s3" ("" is the root).
func isTable(key string) bool {
	if _, ok := fieldByKey(key); ok {
		return false
	}
	for _, f := range schema() {
		if key == "" || strings.HasPrefix(f.key, key+".") {
			return true
		}
	}
	return false
}

// set stores v, a value of f's type, into c.
func (f field) set(c *Config, v any) {
	switch p := f.ref(c).(type) {
	case *string:
		*p = v.(string)
	case *[]string:
		*p = slices.Clone(v.([]string))
	case *time.Duration:
		*p = v.(time.Duration)
	case *bool:
		*p = v.(bool)
	case *int:
		*p = v.(int)
	case *int64:
		*p = v.(int64)
	case *[]PlatformNodes:
		*p = clonePlatforms(v.([]PlatformNodes))
	}
}

// get returns f's value in c.
func (f field) get(c *Config) any {
	switch p := f.ref(c).(type) {
	case *string:
		return *p
	case *[]string:
		return *p
	case *time.Duration:
		return *p
	case *bool:
		return *p
	case *int:
		return *p
	case *int64:
		return *p
	case *[]PlatformNodes:
		return *p
	}
	return nil
}

// validate checks v, a value of f's type.
func (f field) validate(v any) error {
	if f.check == nil {
		return nil
	}
	return f.check(v)
}

// fromString converts an environment variable's value to f's type.
func (f field) fromString(s string) (any, error) {
	switch f.typ {
	case tString:
		return s, nil
	case tStrings:
		var list []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		return list, nil
	case tDuration:
		return parseDuration(s)
	case tBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a boolean (want true or false)", s)
		}
		return b, nil
	case tInt:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	case tSize:
		return ParseSize(s)
	}
	return nil, errors.New("cannot be set from the environment")
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (want Go syntax such as \"1500ms\" or \"2s\")", s)
	}
	return d, nil
}

// ParseSize parses a size: an integer number of bytes, or a number followed by
// one of the units B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
// (powers of 1024), such as "20GB", "512MiB" or "1.5GB". Units are not case
// sensitive.
func ParseSize(s string) (int64, error) {
	bad := fmt.Errorf("%q is not a size (want bytes, or a number with a unit such as \"20GB\" or \"512MiB\")", s)
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]int64{
		"": 1, "b": 1,
		"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	}[unit]
	if mult == 0 || num == "" {
		return 0, bad
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return 0, bad
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*float64(mult) >= math.MaxInt64 {
		return 0, bad
	}
	return int64(f * float64(mult)), nil
}

// Checks. Each receives a value of its field's type.

func oneOf(allowed ...string) func(any) error {
	return func(v any) error {
		if slices.Contains(allowed, v.(string)) {
			return nil
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

// DefaultBalanceFactor is remote.balance_factor's default: a node may take
// up to 1.25 times the pool's mean load before a pipeline spills.
const DefaultBalanceFactor = 125

// checkBalanceFactor takes 0 (routing by pipeline only) or a percentage of
// at least 100 (below the mean no node could take every job).
func checkBalanceFactor(v any) error {
	if n := v.(int); n != 0 && (n < 100 || n > 1000) {
		return fmt.Errorf("%d is out of range (0 for pipeline affinity only, or 100 to 1000 percent of the mean load)", n)
	}
	return nil
}

func intRange(lo, hi int) func(any) error {
	return func(v any) error {
		if n := v.(int); n < lo || n > hi {
			return fmt.Errorf("%d is out of range (%d to %d)", n, lo, hi)
		}
		return nil
	}
}

func absPath(v any) error {
	p := v.(string)
	if i := strings.IndexFunc(p, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%q holds a control character (%q at byte %d)", p, p[i], i)
	}
	if strings.TrimSpace(p) != p {
		return fmt.Errorf("%q starts or ends with white space", p)
	}
	if !path.IsAbs(p) {
		return fmt.Errorf("%q is not an absolute path", p)
	}
	return nil
}

// checkShell accepts what the shell wrapper can split (as the agent splits
// its shell setting) into an absolute program and its arguments.
func checkShell(v any) error {
	s := v.(string)
	argv, err := shellwords.Split(s)
	if err != nil {
		return fmt.Errorf("%q cannot be split into words: %v (an unterminated quote?)", s, err)
	}
	if len(argv) == 0 {
		return errors.New("is empty")
	}
	if err := absPath(argv[0]); err != nil {
		return fmt.Errorf("the program: %w", err)
	}
	return nil
}

// checkRepository accepts "" (unset) or a repository name as docker and
// BuildKit read it: [HOST[:PORT]/]PATH, all lower case, with no tag or
// digest (dockhand adds its own tags) and no scheme.
func checkRepository(v any) error {
	r := v.(string)
	switch {
	case r == "":
		return nil
	case strings.Contains(r, "://"):
		return fmt.Errorf("%q has a scheme; give HOST/PATH only", r)
	case strings.Contains(r, "@"):
		return fmt.Errorf("%q has a digest; give the repository only", r)
	}
	host, repoPath, hasHost := strings.Cut(r, "/")
	if !hasHost || (!strings.ContainsAny(host, ".:") && host != "localhost" && strings.ToLower(host) == host) {
		host, repoPath, hasHost = "", r, false // a Docker Hub path
	}
	if hasHost {
		name, port, hasPort := strings.Cut(host, ":")
		if strings.ToLower(name) != name {
			return fmt.Errorf("%q: the host %q must be lower case (%q)", r, host, strings.ToLower(host))
		}
		if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
			return fmt.Errorf("%q: %q is not a registry host", r, host)
		}
		if n, err := strconv.Atoi(port); hasPort && (err != nil || n < 1 || n > 65535) {
			return fmt.Errorf("%q: %q is not a port", r, port)
		}
	}
	if i := strings.LastIndexByte(repoPath, ':'); i >= 0 {
		return fmt.Errorf("%q has a tag (%q); give the repository only: dockhand tags it per image and branch", r, repoPath[i:])
	}
	for comp := range strings.SplitSeq(repoPath, "/") {
		if !isPathComponent(comp) {
			return fmt.Errorf("%q: path component %q is not lower-case letters and digits joined by '.', '_', '__' or '-'", r, comp)
		}
	}
	return nil
}

// isPathComponent reports whether s is [a-z0-9]+ runs joined by '.', '_',
// '__' or '-'s, as the distribution spec requires.
func isPathComponent(s string) bool {
	if s == "" {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	for i := 0; i < len(s); {
		if !alnum(s[i]) {
			return false
		}
		for i < len(s) && alnum(s[i]) {
			i++
		}
		if i == len(s) {
			return true
		}
		switch {
		case s[i] == '.':
			i++
		case strings.HasPrefix(s[i:], "__"):
			i += 2
		case s[i] == '_':
			i++
		default:
			for i < len(s) && s[i] == '-' {
				i++
			}
		}
		if i == len(s) {
			return false
		}
	}
	return true
}

// optionalAbsPath accepts "" (unset) or an absolute path.
func optionalAbsPath(v any) error {
	if v.(string) == "" {
		return nil
	}
	return absPath(v)
}

func positiveSize(v any) error {
	if n := v.(int64); n <= 0 {
		return fmt.Errorf("%d must be more than zero", n)
	}
	return nil
}

func checkProbeTimeout(v any) error {
	d := v.(time.Duration)
	if d <= 0 || d > maxProbeTimeout {
		return fmt.Errorf("%s is out of range (more than 0, at most %s)", d, maxProbeTimeout)
	}
	return nil
}

const maxTTL = 5 * time.Minute

// ttl accepts a duration from 0 to maxTTL; zero says what 0 means.
func ttl(zero string) func(v any) error {
	return func(v any) error {
		d := v.(time.Duration)
		if d < 0 || d > maxTTL {
			return fmt.Errorf("%s is out of range (0 to %s; 0 %s)", d, maxTTL, zero)
		}
		return nil
	}
}

func checkBuilders(v any) error {
	kinds := v.([]string)
	if len(kinds) == 0 {
		return errors.New("must list at least one builder kind")
	}
	for i, k := range kinds {
		if !slices.Contains(BuilderKinds, k) {
			return fmt.Errorf("unknown builder kind %q (want %s)", k, strings.Join(BuilderKinds, ", "))
		}
		if slices.Contains(kinds[:i], k) {
			return fmt.Errorf("builder kind %q is listed twice", k)
		}
	}
	return nil
}

func checkEndpoints(v any) error {
	for i, e := range v.([]string) {
		if err := checkEndpoint(e); err != nil {
			return err
		}
		if slices.Contains(v.([]string)[:i], e) {
			return fmt.Errorf("endpoint %q is listed twice", e)
		}
	}
	return nil
}

// checkEndpoint accepts tcp://host:port, unix:///absolute/path and the
// discovery sources dns://NAME:PORT, srv://NAME and ec2://REGION?tag:K=V&port=P.
func checkEndpoint(e string) error {
	if fleet.IsSource(e) {
		_, err := fleet.Parse(e)
		return err
	}
	bad := fmt.Errorf("endpoint %q is not tcp://host:port or unix:///path", e)
	u, err := url.Parse(e)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return bad
	}
	switch u.Scheme {
	case "tcp":
		port, err := strconv.Atoi(u.Port())
		if u.Hostname() == "" || err != nil || port < 1 || port > 65535 || (u.Path != "" && u.Path != "/") {
			return bad
		}
	case "unix":
		if u.Host != "" || !path.IsAbs(u.Path) {
			return bad
		}
	default:
		return fmt.Errorf("endpoint %q: unsupported scheme %q (want tcp://, unix://, or dns://, srv://, ec2:// to discover a fleet)", e, u.Scheme)
	}
	return nil
}

// checkHostPort accepts "" or HOST:PORT.
func checkHostPort(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not HOST:PORT", s)
	}
	return nil
}

func httpURL(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}

func checkRegistries(v any) error {
	regs := v.([]string)
	for i, r := range regs {
		org, name, ok := strings.Cut(r, "/")
		if !ok || !isSlug(org) || !isSlug(name) {
			return fmt.Errorf("registry %q is not ORG/REGISTRY", r)
		}
		if slices.Contains(regs[:i], r) {
			return fmt.Errorf("registry %q is listed twice", r)
		}
	}
	return nil
}

func isSlug(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func checkPlatforms(v any) error {
	nodes := v.([]PlatformNodes)
	for i, pn := range nodes {
		if err := checkPlatformNodes(pn); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
		if j := slices.IndexFunc(nodes[:i], func(o PlatformNodes) bool { return o.Platform == pn.Platform }); j >= 0 {
			return fmt.Errorf("[%d]: platform %q is already listed at [%d]", i, pn.Platform, j)
		}
	}
	return nil
}

// checkPlatformNodes checks one [[remote.platform]] entry.
func checkPlatformNodes(pn PlatformNodes) error {
	if pn.Platform == "" {
		return errors.New("platform is missing")
	}
	if !isPlatform(pn.Platform) {
		return fmt.Errorf("platform %q is not OS/ARCH or OS/ARCH/VARIANT", pn.Platform)
	}
	if len(pn.Endpoints) == 0 {
		return fmt.Errorf("platform %q has no endpoints", pn.Platform)
	}
	return checkEndpoints(pn.Endpoints)
}

// isPlatform accepts os/arch[/variant] in lower case, such as linux/arm64/v8.
func isPlatform(s string) bool {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.IndexFunc(p, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_')
		}) >= 0 {
			return false
		}
	}
	return true
}

func clonePlatforms(ps []PlatformNodes) []PlatformNodes {
	if ps == nil {
		return nil
	}
	out := make([]PlatformNodes, len(ps))
	for i, p := range ps {
		out[i] = PlatformNodes{Platform: p.Platform, Endpoints: slices.Clone(p.Endpoints)}
	}
	return out
}

// crossCheck validates rules that span several keys of a resolved config.
// Each problem is reported at the source of the key that made it one.
func (c *Config) crossCheck() []error {
	var errs []error
	report := func(key, msg string) {
		src := c.Sources[key]
		if src.Kind == SourceFile || src.Kind == SourceQueue {
			msg = key + ": " + msg
			if src.Kind == SourceQueue {
				msg = keyString([]string{"queue", src.Queue}) + "." + msg
			}
			errs = append(errs, &Error{File: src.File, Line: src.Line, Key: key, Msg: msg})
			return
		}
		errs = append(errs, fmt.Errorf("%s: %s: %s", src, key, msg))
	}
	switch {
	case c.Remote.Cert != "" && c.Remote.Key == "":
		report("remote.cert", "is set but remote.key is not")
	case c.Remote.Key != "" && c.Remote.Cert == "":
		report("remote.key", "is set but remote.cert is not")
	}
	c.checkUntrusted(report)
	if c.Cache.Backend == CacheS3 && c.Cache.Mode != CacheOff && c.Cache.S3.Bucket == "" {
		report("cache.backend", `is "s3" but cache.s3.bucket is not set`)
	}
	// Eviction removes whole dirs under cache.local.dir: the state dir (job
	// dirs, tokens, buildkitd) must not be one of them, nor be it.
	if c.Cache.Backend == CacheLocal && c.Cache.Mode != CacheOff {
		cache, state := path.Clean(c.Cache.Local.Dir), path.Clean(c.StateDir)
		if cache == state || strings.HasPrefix(state, strings.TrimSuffix(cache, "/")+"/") {
			report("cache.local.dir", fmt.Sprintf("%q holds the state dir %q; give the cache its own dir (such as %q)", c.Cache.Local.Dir, c.StateDir, path.Join(state, "cache")))
		}
	}
	return errs
}

// checkUntrusted keeps forks' builds off trusted builders: a separate pool
// shares no listed node with the trusted one, the embedded builder is
// theirs only when trusted builds do not use it.
func (c *Config) checkUntrusted(report func(key, msg string)) {
	u := c.Untrusted
	switch {
	case u.Builder == BuilderRemote && len(u.Endpoints) == 0:
		report("untrusted.builder", `is "remote" but untrusted.endpoints is empty`)
	case u.Builder != BuilderRemote && len(u.Endpoints) > 0:
		report("untrusted.endpoints", fmt.Sprintf(`is set but untrusted.builder is %q, not "remote"`, u.Builder))
	case u.Builder == BuilderEmbedded && slices.Contains(c.Builders, BuilderEmbedded):
		report("untrusted.builder", `is "embedded" but builders lists "embedded" too: forks' builds would share trusted builds' cache mounts; give them a pool (untrusted.endpoints) or "none"`)
	}
	trusted := slices.Clone(c.Remote.Endpoints)
	for _, p := range c.Remote.Platforms {
		trusted = append(trusted, p.Endpoints...)
	}
	for _, ep := range u.Endpoints {
		if slices.Contains(trusted, ep) {
			report("untrusted.endpoints", fmt.Sprintf("%q is also a trusted node ([remote]): forks' builds would share its cache mounts", ep))
		}
	}
}

// suggest returns the candidate closest to key, or "" if none is close.
func suggest(key string, candidates []string) string {
	best, bestDist := "", 3
	leaf := key[strings.LastIndex(key, ".")+1:]
	for _, c := range candidates {
		d := editDistance(key, c)
		if d < bestDist && d < len(key)/2+1 {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return best
	}
	// The right key in the wrong table, such as "cache.bucket".
	var same []string
	for _, c := range candidates {
		if c[strings.LastIndex(c, ".")+1:] == leaf {
			same = append(same, c)
		}
	}
	if len(same) == 1 {
		return same[0]
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// schemaKeys lists the schema's keys and tables, the candidates for a
// did-you-mean.
func schemaKeys() []string {
	var keys []string
	for _, f := range schema() {
		keys = append(keys, f.key)
		for i := strings.Index(f.key, "."); i >= 0; i = nextDot(f.key, i) {
			if t := f.key[:i]; !slices.Contains(keys, t) {
				keys = append(keys, t)
			}
		}
	}
	return keys
}

func nextDot(s string, i int) int {
	j := strings.Index(s[i+1:], ".")
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
