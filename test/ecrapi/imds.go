package ecrapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// IMDS is a fake EC2 instance metadata service, IMDSv2 only (the Elastic CI
// Stack's instances require session tokens): a PUT to /latest/api/token
// with a TTL header gets a token, and every GET must carry it. It serves
// the instance identity document (where the SDK reads the region),
// placement/region, instance-id and autoscaling/target-lifecycle-state. The
// SDK finds it through AWS_EC2_METADATA_SERVICE_ENDPOINT.
type IMDS struct {
	URL       string
	region    string
	srv       *httptest.Server
	mu        sync.Mutex
	tokens    map[string]bool
	gets      int
	lifecycle string
}

// IMDSInstanceID is the instance's id, in its identity document and
// meta-data/instance-id.
const IMDSInstanceID = "i-0123456789abcdef0"

// StartIMDS starts a metadata service for an instance in region, closed
// when t ends.
func StartIMDS(t testing.TB, region string) *IMDS {
	m := &IMDS{region: region, tokens: map[string]bool{}, lifecycle: "InService"}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	m.URL = m.srv.URL
	t.Cleanup(m.srv.Close)
	return m
}

// SetLifecycleState sets what meta-data/autoscaling/target-lifecycle-state
// answers ("InService" at the start; "Terminated" when the instance's Auto
// Scaling group is terminating it).
func (m *IMDS) SetLifecycleState(state string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lifecycle = state
}

// Gets counts the GETs answered (with a valid token).
func (m *IMDS) Gets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func (m *IMDS) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/latest/api/token" {
		ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		if r.Method != http.MethodPut || err != nil || ttl < 1 || ttl > 21600 {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		b := make([]byte, 16)
		rand.Read(b)
		tok := hex.EncodeToString(b)
		m.mu.Lock()
		m.tokens[tok] = true
		m.mu.Unlock()
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
		w.Write([]byte(tok))
		return
	}
	m.mu.Lock()
	ok := m.tokens[r.Header.Get("X-aws-ec2-metadata-token")]
	if ok {
		m.gets++
	}
	lifecycle := m.lifecycle
	m.mu.Unlock()
	if r.Method != http.MethodGet {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	if !ok {
		http.Error(w, "", http.StatusUnauthorized) // IMDSv1 is off
		return
	}
	switch r.URL.Path {
	case "/latest/dynamic/instance-identity/document":
		doc, _ := json.Marshal(map[string]string{"region": m.region, "availabilityZone": m.region + "a",
			"accountId": "123456789012", "instanceId": IMDSInstanceID, "architecture": "x86_64"})
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	case "/latest/meta-data/placement/region":
		w.Write([]byte(m.region))
	case "/latest/meta-data/instance-id":
		w.Write([]byte(IMDSInstanceID))
	case "/latest/meta-data/autoscaling/target-lifecycle-state":
		w.Write([]byte(lifecycle))
	default:
		http.NotFound(w, r)
	}
}
