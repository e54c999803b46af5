package config

import (
	"fmt"
	"strings"
)

// Kind says how dockhand uses an environment variable.
type Kind int

const (
	// Reads: set by the agent (or the host) and read by dockhand.
	Reads Kind = iota
	// Sets: exported by dockhand to the job.
	Sets
	// Override: a DOCKHAND_* setting for operators. It is ignored, with a
	// warning, when found in a job's environment, where a pipeline could have
	// set it.
	Override
	// PipelineSafe: a DOCKHAND_* setting a pipeline step may set. It can opt
	// out of or narrow what the operator configured, never point dockhand at
	// a new endpoint.
	PipelineSafe
)

func (k Kind) String() string {
	switch k {
	case Reads:
		return "reads"
	case Sets:
		return "sets"
	case Override:
		return "override"
	case PipelineSafe:
		return "pipeline-safe"
	}
	return "unknown"
}

// Variable documents one environment variable dockhand reads or sets.
type Variable struct {
	Name string
	Doc  string
	Kind Kind
	// Key is the dotted configuration key an Override or PipelineSafe variable
	// replaces ("" for the others, and for DOCKHAND_CONFIG, which names the
	// configuration file instead).
	Key string
}

// Variables lists every environment variable dockhand reads or sets.
var Variables = []Variable{
	// Read from the agent and the job.
	{Name: "BUILDKITE_JOB_ID", Kind: Reads,
		Doc: "Set by the agent for every job. When non-empty the environment is a job's: only pipeline-safe DOCKHAND_* overrides apply."},
	{Name: "BUILDKITE_AGENT_META_DATA_QUEUE", Kind: Reads,
		Doc: "The agent's queue tag as the job carries it; selects the [queue.NAME] section of the configuration file outside a job, and in a job when the agent's own configuration file has no tags line. The agent passes the job's value through unprotected, so in a job the tags line wins and a value that differs is ignored with a warning."},
	{Name: "BUILDKITE_CONFIG_PATH", Kind: Reads,
		Doc: "Set by the agent itself (a job cannot change it): its configuration file, whose tags line gives the job's [queue.NAME] section."},
	{Name: "BUILDKITE_BIN_PATH", Kind: Reads,
		Doc: "Directory holding the buildkite-agent binary, used to request OIDC tokens and run the real bootstrap."},
	{Name: "BUILDKITE_PIPELINE_SLUG", Kind: Reads,
		Doc: "Pipeline slug; part of every cache key and of the builder routing key."},
	{Name: "BUILDKITE_PIPELINE_DEFAULT_BRANCH", Kind: Reads,
		Doc: "The pipeline's default branch; its cache is the fallback --cache-from."},
	{Name: "BUILDKITE_BRANCH", Kind: Reads,
		Doc: "The build's branch; part of the cache key."},
	{Name: "BUILDKITE_PULL_REQUEST", Kind: Reads,
		Doc: `Pull request number, or "false". Pull-request builds never write the default branch's cache.`},
	{Name: "BUILDKITE_REPO", Kind: Reads,
		Doc: "The pipeline's repository; a pull request from another repository (a fork) only reads the cache."},
	{Name: "BUILDKITE_PULL_REQUEST_REPO", Kind: Reads,
		Doc: "The repository a pull request comes from; when it is not BUILDKITE_REPO the build's cache is read-only."},
	{Name: "BUILDKITE_BUILD_CHECKOUT_PATH", Kind: Reads,
		Doc: "The job's checkout; the buildx shim keys cache by context and Dockerfile paths relative to it, so every agent computes the same key. With the pipeline, it scopes buildx's node identity (docs/state.md)."},
	{Name: "BUILDKITE_BUILD_PATH", Kind: Reads,
		Doc: "The agent's build path: with BUILDKITE_AGENT_NAME, the organization and pipeline slugs, the job's checkout when BUILDKITE_BUILD_CHECKOUT_PATH is unset (as the agent's bootstrap makes it)."},
	{Name: "BUILDKITE_AGENT_NAME", Kind: Reads,
		Doc: "The agent's name, part of the job's checkout path (see BUILDKITE_BUILD_PATH)."},
	{Name: "BUILDKITE_PIPELINE_ID", Kind: Reads,
		Doc: "The pipeline's UUID; scopes buildx's node identity (docs/state.md), else the organization and pipeline slugs do."},
	{Name: "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND", Kind: Reads,
		Doc: "Set by docker when it runs a CLI plugin; without it the buildx shim reads its arguments as a standalone docker-buildx call."},
	{Name: "BUILDX_CONFIG", Kind: Reads,
		Doc: "buildx's state dir (default $DOCKER_CONFIG/buildx), where the buildx shim reads which driver a build's builder has. A host-level one (the agent's environment, or a hook's) is replaced in the job by the job's own store, $DOCKER_CONFIG/buildx, seeded with that store's builders, so dockhand's builder is found and the host's stay usable by name (docs/transparency.md)."},
	{Name: "BUILDX_BUILDER", Kind: Reads,
		Doc: "buildx's default for --builder, ahead of the store's current builder; the buildx shim reads it as buildx does. dockhand does not set it: its builder is the job's buildx store's current one, which a step's own `docker buildx use` replaces (docs/transparency.md)."},
	{Name: "NSC_TOKEN_FILE", Kind: Reads,
		Doc: "Never set in the job (it would shadow a step's own `nsc auth … --tenant_id` login, which nsc stores in its config dir): on the namespace builder the job's tenant token is a 0600 file in the job dir, which dockhand's credential helper gives docker-credential-nsc, unless the job sets its own NSC_TOKEN_FILE."},
	{Name: "OTEL_RESOURCE_ATTRIBUTES", Kind: Reads,
		Doc: "Set by docker (23 and later) for every CLI plugin with the command it runs for (docker.cli.cobra.command_path): the buildx shim knows a forwarded `docker build` by it and runs it on dockhand's builder, as docker runs it on the default builder (docs/transparency.md)."},
	{Name: "DOCKER_CONTEXT", Kind: Reads,
		Doc: "With DOCKER_HOST and config.json's currentContext: the docker context, whose name (or, for the default context, its endpoint) keys buildx's current builder; the buildx shim reads it as buildx does."},
	{Name: "BUILDKITE_ORGANIZATION_SLUG", Kind: Reads,
		Doc: "Organization slug; used for Buildkite Package Registries and OIDC audiences."},
	{Name: "BUILDKITE_SIGNAL_GRACE_PERIOD_SECONDS", Kind: Reads,
		Doc: "Seconds the agent waits between signalling the job's process group and killing it; cleanup must finish inside it."},
	{Name: "BUILDKITE_CANCEL_SIGNAL_TIMEOUT", Kind: Reads,
		Doc: "Agent v4's wait between the cancel signal and SIGKILL (a Go duration), used when the v3 signal grace period is absent."},
	{Name: "BUILDKITE_CANCEL_GRACE_PERIOD", Kind: Reads,
		Doc: "The agent's cancel grace period in seconds; the signal grace period defaults to one second less."},
	{Name: "BUILDKITE_SHELL", Kind: Reads,
		Doc: "The agent's shell setting, pointing at `dockhand shell`; checked by dockhand doctor."},
	{Name: "BUILDKITE_AGENT_DEBUG", Kind: Reads,
		Doc: "The agent's debug flag; turns on dockhand's debug output like DOCKHAND_DEBUG."},
	{Name: "TMPDIR", Kind: Reads,
		Doc: "Temporary directory for short-lived files outside the job directory."},
	{Name: "HOME", Kind: Reads,
		Doc: "The agent user's home directory, where the docker CLI's default config (~/.docker) lives."},
	{Name: "DOCKER_HOST", Kind: Reads,
		Doc: "The host's docker daemon for the local builder kind (unix:// or tcp://); default unix:///var/run/docker.sock when that socket exists."},
	{Name: "BUILDKITE_AGENT_JOB_API_SOCKET", Kind: Reads,
		Doc: "The job's Job API socket, set by the agent: the credential helper adds every secret it serves or stores to the job's log redactor through it."},
	{Name: "BUILDKITE_AGENT_JOB_API_TOKEN", Kind: Reads,
		Doc: "The bearer token of the job's Job API, set by the agent with BUILDKITE_AGENT_JOB_API_SOCKET."},
	{Name: "AWS_ENDPOINT_URL_ECR", Kind: Reads,
		Doc: "Read by aws-sdk-go-v2 in `dockhand-cloud ecr-token`: the ECR API endpoint (also AWS_ENDPOINT_URL for every service, AWS_ENDPOINT_URL_ECR_PUBLIC for ECR Public). Part of the ECR token cache's identity hint."},
	{Name: "AWS_ENDPOINT_URL_EC2", Kind: Reads,
		Doc: "Set by dockhand for `dockhand-cloud fleet-ec2` from remote.ec2_endpoint_url (a job's own AWS_ENDPOINT_URL* variables are not passed to discovery); AWS_REGION names the region when an ec2:// endpoint has none."},
	{Name: "AWS_ACCESS_KEY_ID", Kind: Reads,
		Doc: "Read by the AWS SDK's default credential chain (with AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_CONTAINER_CREDENTIALS_*, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, IMDS). The credential helper hashes the non-secret ones into the identity hint that keys the shared ECR token cache; the secrets are never read by it."},
	{Name: "BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_*", Kind: Reads,
		Doc: "The docker-ecr-cache plugin's properties as the agent sets them (`cache-on` is …_CACHE_ON, or …_CACHE_ON_0, _1, … in `env | sort` order; `ecr-tags` is …_ECR_TAGS_KEY): the options of `dockhand cached-image`, which its flags override."},
	{Name: "AWS_DEFAULT_REGION", Kind: Reads,
		Doc: "`dockhand cached-image`: the ECR region when the region option is not set (then eu-west-1, as the plugin)."},
	{Name: "SSH_AUTH_SOCK", Kind: Reads,
		Doc: "`dockhand cached-image`: `$SSH_AUTH_SOCK` (or any `$NAME`) in an --ssh value of additional-build-args is the job's variable, as the plugin's README writes `--ssh= default=\\$SSH_AUTH_SOCK`; the job's docker, which builds the image, reads it for `--ssh default`."},
	{Name: "LC_ALL", Kind: Reads,
		Doc: "With LC_COLLATE, LC_CTYPE and LANG, the locale `dockhand cached-image` assumes bash had: a UTF-8 one makes `?` in cache-on globs match a character; a collation other than C/POSIX/C.UTF-8 draws a warning when it could order matches differently."},

	// Exported to the job.
	{Name: "BUILDKITE_PLUGIN_DOCKER_IMAGE", Kind: Sets,
		Doc: "`dockhand cached-image`: IMAGE:TAG of the checksum-tagged image, set through the Job API (the export-env-variable option names another variable)."},
	{Name: "BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_EXPORT_IMAGE", Kind: Sets,
		Doc: "`dockhand cached-image`: the image without its tag, set through the Job API."},
	{Name: "BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_EXPORT_TAG", Kind: Sets,
		Doc: "`dockhand cached-image`: the tag (7 hex digits, the docker-ecr-cache plugin's), set through the Job API."},
	{Name: "DOCKER_CONFIG", Kind: Sets,
		Doc: "The job's own docker config directory, holding the credential helper, builder and buildx shim; removed after the job."},
	{Name: "BUILDKIT_HOST", Kind: Sets,
		Doc: "The chosen BuildKit endpoint, for buildctl users."},
	{Name: "BUILDKIT_TLS_DIR", Kind: Sets,
		Doc: "With an mTLS builder: a job-dir directory of links ca.pem, cert.pem and key.pem to the configured files. buildctl reads no TLS variables, so run `buildctl --tlsdir \"$BUILDKIT_TLS_DIR\" ...`."},
	{Name: "BUILDKIT_TLS_SERVERNAME", Kind: Sets,
		Doc: "With an mTLS builder and remote.server_name set: the name to verify, for `buildctl --tlsservername`."},
	{Name: "DOCKHAND_JOB_DIR", Kind: Sets,
		Doc: "The job's private directory under the state directory; removed after the job."},
	{Name: "DOCKHAND_REAL_BUILDX", Kind: Sets,
		Doc: "The real docker-buildx plugin the job's buildx shim runs, found by the bootstrap in the user's and the system plugin dirs."},
	{Name: "DOCKHAND_SHIM_PID", Kind: Sets,
		Doc: "Set by the buildx shim on the real plugin's environment to its own pid, so a DOCKHAND_REAL_BUILDX that leads back to dockhand ends with an error instead of an exec loop."},
	{Name: "PATH", Kind: Sets,
		Doc: "Prefixed with the job dir's bin/, which holds dockhand and docker-credential-dockhand for the job's docker CLI and hooks."},

	// Operator overrides.
	{Name: "DOCKHAND_CONFIG", Kind: Override,
		Doc: "Path of the configuration file (default /etc/dockhand/dockhand.toml); the --config flag wins over it."},
	{Name: "DOCKHAND_STATE_DIR", Kind: Override, Key: "state_dir",
		Doc: "Overrides state_dir."},
	{Name: "DOCKHAND_SHELL", Kind: Override, Key: "shell",
		Doc: "Overrides shell, the real shell `dockhand shell` execs."},
	{Name: "DOCKHAND_PROBE_TIMEOUT", Kind: Override, Key: "probe_timeout",
		Doc: `Overrides probe_timeout, a Go duration such as "1500ms".`},
	{Name: "DOCKHAND_REMOTE_BALANCE_FACTOR", Kind: Override, Key: "remote.balance_factor",
		Doc: `Overrides remote.balance_factor, the most builds a remote node may have before a pipeline's jobs spill to its next node, in percent of the pool's mean (0: by pipeline only).`},
	{Name: "DOCKHAND_REMOTE_DISCOVERY_TTL", Kind: Override, Key: "remote.discovery_ttl",
		Doc: `Overrides remote.discovery_ttl, how long a discovered remote membership (dns://, srv://, ec2:// endpoints) serves the host's jobs (a Go duration; "0s" asks on every job).`},
	{Name: "DOCKHAND_PROBE_CACHE_TTL", Kind: Override, Key: "probe_cache_ttl",
		Doc: `Overrides probe_cache_ttl, how long one job's builder probes serve the host's other jobs (a Go duration; "0s" shares nothing).`},
	{Name: "DOCKHAND_BUILDERS_OPTIONAL", Kind: Override, Key: "builders_optional",
		Doc: "Overrides builders_optional (a boolean): when every configured builder is down, run the job without dockhand's builder instead of failing it with exit 125."},
	{Name: "DOCKHAND_ANNOTATE", Kind: Override, Key: "annotate",
		Doc: "Overrides annotate: auto (a build annotation when the job built on dockhand's builder), always or off."},
	{Name: "DOCKHAND_CACHE_BACKEND", Kind: Override, Key: "cache.backend",
		Doc: "Overrides cache.backend: registry, s3 or local."},

	// Settings a pipeline may choose.
	{Name: "DOCKHAND_CACHE", Kind: PipelineSafe, Key: "cache.mode",
		Doc: "Overrides cache.mode: auto, always or off (off: no cache flags are injected)."},
	{Name: "DOCKHAND_BUILDERS", Kind: PipelineSafe, Key: "builders",
		Doc: "Comma-separated builder kinds in preference order (namespace, remote, local, embedded). In a job it may only narrow or reorder the configured kinds; it never adds endpoints."},
	{Name: "DOCKHAND_STRICT", Kind: PipelineSafe, Key: "strict",
		Doc: "Overrides strict (a boolean): a build whose cache flags the buildx shim could not work out (arguments it cannot read, bake targets it cannot learn, a job state it cannot read) fails instead of running without them. Builders are builders_optional's business."},
	{Name: "DOCKHAND_DEBUG", Kind: PipelineSafe, Key: "debug",
		Doc: "Overrides debug (a boolean): verbose dockhand output in the job log."},
	{Name: "DOCKHAND_RETRY_LOST_BUILDS", Kind: PipelineSafe, Key: "remote.retry_lost_builds",
		Doc: "Overrides remote.retry_lost_builds (a boolean): a build whose remote node died or became unreachable mid-build runs again, once, on the pipeline's next healthy node; false keeps the step's build on its one node (a build that failed on its own is never run again)."},
}

// Lookup returns the Variable called name.
func Lookup(name string) (Variable, bool) {
	for _, v := range Variables {
		if v.Name == name {
			return v, true
		}
	}
	return Variable{}, false
}

// pipelineSafeNames lists the pipeline-safe variables, for messages.
func pipelineSafeNames() []string {
	var names []string
	for _, v := range Variables {
		if v.Kind == PipelineSafe {
			names = append(names, v.Name)
		}
	}
	return names
}

// VariablesMarkdown renders Variables as the reference page
// docs/variables.md, grouped by kind.
func VariablesMarkdown() string {
	var b strings.Builder
	b.WriteString("# Environment variables\n\nEvery variable dockhand reads or sets. Generated from `config/vars.go` by\n" +
		"`go test ./config -run TestVariablesDoc -update`; a test fails when the two differ.\n")
	titles := map[Kind]string{
		Reads:        "Read from the agent and the job",
		Sets:         "Exported to the job",
		Override:     "Operator overrides (ignored, with a warning, when set in a job's environment)",
		PipelineSafe: "Pipeline-safe (a step's `env` may set these)",
	}
	for _, k := range []Kind{Reads, Sets, Override, PipelineSafe} {
		fmt.Fprintf(&b, "\n## %s\n\n| variable | configuration key | meaning |\n|---|---|---|\n", titles[k])
		for _, v := range Variables {
			if v.Kind != k {
				continue
			}
			key := "—"
			if v.Key != "" {
				key = "`" + v.Key + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, key, strings.ReplaceAll(v.Doc, "|", "\\|"))
		}
	}
	return b.String()
}
