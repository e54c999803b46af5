package registry

import (
	"errors"
	"fmt"
	"io"

	"github.com/docker/docker-credential-helpers/credentials"
)

// JobDirVar names the variable that tells the helper which job it serves.
const JobDirVar = "DOCKHAND_JOB_DIR"

// ErrNoJob is returned by store/erase outside a dockhand job.
var ErrNoJob = errors.New("not inside a dockhand job (" + JobDirVar + " is not set): credentials are only stored per job")

// Helper is docker-credential-dockhand: the job's credsStore.
type Helper struct {
	store *Store // nil outside a job
}

var _ credentials.Helper = (*Helper)(nil)

// NewHelper builds the helper for the job whose dir is jobDir ("" outside a job).
func NewHelper(jobDir string) *Helper {
	h := &Helper{}
	if jobDir != "" {
		h.store = JobStore(jobDir)
	}
	return h
}

// Add stores a `docker login` in the job's store.
func (h *Helper) Add(c *credentials.Credentials) error {
	if h.store == nil {
		return ErrNoJob
	}
	return h.store.Put(Login{ServerURL: c.ServerURL, Username: c.Username, Secret: c.Secret})
}

// Delete forgets a login (`docker logout`).
func (h *Helper) Delete(serverURL string) error {
	if h.store == nil {
		return ErrNoJob
	}
	return h.store.Delete(serverURL)
}

// Get returns the credentials for a registry: what the job stored, else the
// standard "not found" so docker carries on anonymously.
func (h *Helper) Get(serverURL string) (string, string, error) {
	if h.store != nil {
		l, ok, err := h.store.Get(serverURL)
		if err != nil {
			return "", "", err
		}
		if ok {
			return l.Username, l.Secret, nil
		}
	}
	return "", "", credentials.NewErrCredentialsNotFound()
}

// List returns registry -> username for the job's logins.
func (h *Helper) List() (map[string]string, error) {
	out := map[string]string{}
	if h.store == nil {
		return out, nil
	}
	logins, err := h.store.List()
	if err != nil {
		return nil, err
	}
	for _, l := range logins {
		out[l.ServerURL] = l.Username
	}
	return out, nil
}

// Serve answers one credential-helper call (get, store, erase, list,
// version) on in/out, exactly as the docker-credential-helpers protocol
// says. A protocol error is returned for the caller to print on stdout.
func Serve(h *Helper, args []string, in io.Reader, out io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: docker-credential-dockhand <store|get|erase|list|version>")
	}
	return credentials.HandleCommand(h, args[0], in, out)
}
