package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/internal/filelock"

	"golang.org/x/sys/unix"
)

// Inside a job, every secret the helper hands out or stores is added to the
// job's log redactor through the agent's Job API (POST
// /api/current-job/v0/redactions on the unix socket named by
// BUILDKITE_AGENT_JOB_API_SOCKET, with BUILDKITE_AGENT_JOB_API_TOKEN as the
// bearer token), once per job: the SHA-256 of each secret added is kept in
// the job dir. The agent's own client (github.com/buildkite/agent/v3/jobapi)
// would bring net/http and the agent's tracing into the job-path binary,
// costing about a millisecond on every start; `buildkite-agent redactor add`
// would cost a process of tens of milliseconds. This is the same request,
// written on a unix socket with nothing but a system call package.

const (
	jobAPISocketVar = "BUILDKITE_AGENT_JOB_API_SOCKET"
	jobAPITokenVar  = "BUILDKITE_AGENT_JOB_API_TOKEN"
	redactedFile    = "redacted"
	jobAPITimeout   = 5 * time.Second
)

// redact adds secret to the job's log redactor, once per job. Outside a job
// or without a Job API it does nothing; a failure costs one line.
func (h *Helper) redact(ctx context.Context, secret string) {
	sock, _ := h.o.Env.Get(jobAPISocketVar)
	token, _ := h.o.Env.Get(jobAPITokenVar)
	if h.o.JobDir == "" || sock == "" || token == "" || secret == "" {
		return
	}
	record := filepath.Join(h.o.JobDir, redactedFile)
	unlock, err := filelock.Lock(ctx, record+".lock", h.o.LockWait)
	if err != nil {
		h.warnf("could not add a credential to the job's log redactor: %v", err)
		return
	}
	defer unlock()
	sum := sha256.Sum256([]byte(secret))
	id := hex.EncodeToString(sum[:])
	data, _ := os.ReadFile(record)
	for line := range strings.Lines(string(data)) {
		if strings.TrimSpace(line) == id {
			return
		}
	}
	if err := jobAPIRedact(sock, token, secret); err != nil {
		h.warnf("could not add a credential to the job's log redactor: %v", err)
		return
	}
	f, err := os.OpenFile(record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return // redacted again next time: harmless
	}
	fmt.Fprintln(f, id)
	f.Close()
}

// jobAPIRedact makes one POST /api/current-job/v0/redactions call.
func jobAPIRedact(sock, token, secret string) error {
	body, err := json.Marshal(map[string]string{"redact": secret})
	if err != nil {
		return err
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST /api/current-job/v0/redactions HTTP/1.1\r\nHost: job\r\n"+
		"Authorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"Connection: close\r\n\r\n", token, len(body))
	req.Write(body)
	status, respBody, err := unixHTTP(sock, req.Bytes(), jobAPITimeout)
	if err != nil {
		return fmt.Errorf("job API %s: %w", sock, err)
	}
	if status/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(respBody, &e)
		return fmt.Errorf("job API: HTTP %d: %s", status, e.Error)
	}
	return nil
}

// unixHTTP sends one raw HTTP/1.1 request on a unix socket and returns the
// response's status code and body (the request says Connection: close).
func unixHTTP(sock string, request []byte, timeout time.Duration) (int, []byte, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, err
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		unix.Close(fd)
		return 0, nil, err
	}
	conn := os.NewFile(uintptr(fd), sock)
	defer conn.Close()
	if _, err := conn.Write(request); err != nil {
		return 0, nil, err
	}
	r := bufio.NewReader(io.LimitReader(conn, 1<<20))
	statusLine, err := r.ReadString('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("reading the response: %w", err)
	}
	fields := strings.Fields(statusLine)
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "HTTP/1.") {
		return 0, nil, fmt.Errorf("not an HTTP response: %q", strings.TrimSpace(statusLine))
	}
	status, err := strconv.Atoi(fields[1])
	if err != nil {
		return 0, nil, fmt.Errorf("not an HTTP status: %q", fields[1])
	}
	length, chunked := -1, false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return status, nil, fmt.Errorf("reading the response headers: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			length, _ = strconv.Atoi(strings.TrimSpace(value))
		case "transfer-encoding":
			chunked = strings.Contains(strings.ToLower(value), "chunked")
		}
	}
	var body []byte
	switch {
	case chunked:
		body, err = readChunked(r)
	case length >= 0:
		body = make([]byte, length)
		_, err = io.ReadFull(r, body)
	default:
		body, err = io.ReadAll(r)
	}
	return status, body, err
}

func readChunked(r *bufio.Reader) ([]byte, error) {
	var body []byte
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return body, err
		}
		sizeField, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(sizeField, 16, 32)
		if err != nil || n < 0 {
			return body, errors.New("bad chunk size")
		}
		if n == 0 {
			return body, nil
		}
		chunk := make([]byte, n+2) // the data and its CRLF
		if _, err := io.ReadFull(r, chunk); err != nil {
			return body, err
		}
		body = append(body, chunk[:n]...)
	}
}
