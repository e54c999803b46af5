package ecrapi

import "testing"

// StartForSDK starts a fake for t, closed when t ends, and points
// aws-sdk-go-v2's default credential chain at it the way an operator would:
// through the process environment (t.Setenv, so t cannot be parallel). The
// chain gets o's one access key and no session token, profile, shared
// files, instance metadata or region; each of endpointVars
// (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_ECR_PUBLIC) names
// the fake, and the others are cleared.
func StartForSDK(t testing.TB, o Options, endpointVars ...string) *Server {
	t.Helper()
	if len(o.Keys) != 1 {
		t.Fatalf("ecrapi.StartForSDK: Options.Keys holds %d access keys, want one", len(o.Keys))
	}
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	env := map[string]string{
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": "/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
		"AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ENDPOINT_URL":          "", "AWS_ENDPOINT_URL_ECR": "", "AWS_ENDPOINT_URL_ECR_PUBLIC": "",
	}
	for key, secret := range o.Keys {
		env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = key, secret
	}
	for _, v := range endpointVars {
		env[v] = s.URL
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	return s
}
