package registry

import (
	"bytes"
	"os"
	"path/filepath"
)

// ECRCallsFile, in the job dir, has one line per ECR API request dockhand
// made for the job: the job report counts them.
const ECRCallsFile = "ecr-api-calls"

// CountECRCall records one ECR API request in jobDir. One short write on an
// O_APPEND file: concurrent helpers' lines do not mix. A failure is ignored
// (the count is for metrics only).
func CountECRCall(jobDir string) {
	f, err := os.OpenFile(filepath.Join(jobDir, ECRCallsFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	f.Write([]byte("1\n"))
	f.Close()
}

// ECRCalls is the number of ECR API requests recorded in jobDir.
func ECRCalls(jobDir string) int {
	data, _ := os.ReadFile(filepath.Join(jobDir, ECRCallsFile))
	return bytes.Count(data, []byte("\n"))
}
