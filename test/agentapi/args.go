package agentapi

import (
	"os"
	"path/filepath"
)

// AgentArgs returns the arguments for `buildkite-agent start` that run
// exactly job id against this server and then exit:
//
//	start --config DIR/agent.cfg --endpoint ENDPOINT --token REGISTRATION-TOKEN
//	  --name agentapi-ID[:8] --acquire-job ID --reflect-exit-status --ping-mode poll-only
//	  --build-path DIR/builds --hooks-path DIR/hooks --plugins-path DIR/plugins
//	  --sockets-path DIR/sockets --no-color EXTRA...
//
// It creates those directories and an empty config file (so no agent config
// on the machine leaks in), and reserves the job for --acquire-job: pings
// never offer it to another agent. With --reflect-exit-status the agent's
// exit code is the job's. Keep DIR short: the job API's unix socket lives
// under DIR/sockets.
func (s *Server) AgentArgs(dir, id string, extra ...string) []string {
	s.reserve(id)
	args := s.baseArgs(dir, "agentapi-"+prefix(id, 8))
	args = append(args, "--acquire-job", id, "--reflect-exit-status")
	return append(args, extra...)
}

// PollAgentArgs returns the arguments for `buildkite-agent start` that run
// one job handed out by ping (any job AddJob queued that AgentArgs did not
// reserve) and then exit: like AgentArgs, but with --disconnect-after-job
// instead of --acquire-job.
func (s *Server) PollAgentArgs(dir, name string, extra ...string) []string {
	args := s.baseArgs(dir, name)
	args = append(args, "--disconnect-after-job")
	return append(args, extra...)
}

func (s *Server) baseArgs(dir, name string) []string {
	sub := func(n string) string {
		p := filepath.Join(dir, n)
		os.MkdirAll(p, 0o755)
		return p
	}
	cfg := filepath.Join(dir, "agent.cfg")
	if _, err := os.Stat(cfg); err != nil {
		os.MkdirAll(dir, 0o755)
		os.WriteFile(cfg, nil, 0o644)
	}
	return []string{
		"start",
		"--config", cfg,
		"--endpoint", s.Endpoint,
		"--token", s.RegistrationToken,
		"--name", name,
		"--ping-mode", "poll-only",
		"--build-path", sub("builds"),
		"--hooks-path", sub("hooks"),
		"--plugins-path", sub("plugins"),
		"--sockets-path", sub("sockets"),
		"--no-color",
	}
}
