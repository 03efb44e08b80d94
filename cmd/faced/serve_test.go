package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/testenv"
)

var servingAddr = regexp.MustCompile(`msg=serving addr=(\S+)`)

// startServe runs `faced serve args...` in-process until the test ends and
// returns the address it bound (from its "serving" log line) and its log.
func startServe(t *testing.T, args ...string) (addr string, log *testenv.Buffer) {
	t.Helper()
	testenv.DepsDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log = &testenv.Buffer{}
	go func() { done <- run(ctx, append([]string{"serve"}, args...), io.Discard, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := servingAddr.FindStringSubmatch(log.String()); m != nil {
			return m[1], log
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("serve ended before serving: %v\nlog:\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start\nlog:\n%s", log)
		}
	}
}

// TestServeConfig: `serve --config FILE` provisions the file's key and
// serves HTTPS with its certificate; flags given explicitly override the
// file (listen, data dir, a model flag).
func TestServeConfig(t *testing.T) {
	dir := t.TempDir()
	certs := testenv.NewCerts(t)
	certFile, keyFile := certs.ServerCert, certs.ServerKey
	fileData, flagData := filepath.Join(dir, "file-data"), filepath.Join(dir, "flag-data")
	const id, secret = "0123456789ab", "k7Qw1v3l9OQ3Pq0wU4jx2pIY1n0m9V1sZl8H3yX5cR4"
	config := filepath.Join(dir, "faced.yaml")
	// 192.0.2.1 (TEST-NET-1) is not an address of this machine: were the
	// file's listen used, serve would fail to bind.
	err := os.WriteFile(config, fmt.Appendf(nil, `
data_dir: %s
listen: 192.0.2.1:8443
tls:
  cert_file: %s
  key_file: %s
vision:
  attributes: true
api:
  request_timeout: 20s
keys:
  - id: %s
    name: test client
    secret_sha256: %s
    scopes: [read]
`, fileData, certFile, keyFile, id, hex.EncodeToString(auth.HashSecret(secret))), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	addr, log := startServe(t, "--config", config, "--listen", "127.0.0.1:0", "--data-dir", flagData, "--attributes=false")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("serving on %s, want the --listen address", addr)
	}
	for _, want := range []string{"tls=true", "API key provisioned", "id=" + id, "result=created", "file=" + config} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if _, err := os.Stat(daemon.ControlSocketPath(flagData)); err != nil {
		t.Errorf("--data-dir not used: %v", err)
	}
	if _, err := os.Stat(fileData); err == nil {
		t.Error("the file's data_dir was created despite --data-dir")
	}

	roots := certs.Pool(t)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	get := func(token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+addr+"/v1/device", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET /v1/device: %v", err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := get(id + "." + secret)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("with the provisioned key: %s\n%s", resp.Status, body)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("connection state %+v", resp.TLS)
	}
	var device struct {
		Models []struct{ Name, Task string } `json:"models"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&device); err != nil {
		t.Fatal(err)
	}
	if len(device.Models) == 0 {
		t.Error("device lists no models")
	}
	for _, m := range device.Models {
		if m.Task == "age" || m.Task == "gender" {
			t.Errorf("attribute model %s loaded despite --attributes=false", m.Name)
		}
	}
	if resp := get(""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a key: %s, want 401", resp.Status)
	}
	if resp := get(id + ".not-the-secret"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("with a wrong secret: %s, want 401", resp.Status)
	}

	// TLS only, 1.2 or later.
	old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get("https://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("TLS 1.1 accepted")
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served on the TLS port")
		}
		resp.Body.Close()
	}
}

// serveConfig layers DefaultConfig, the file, the FACED_* environment and
// the explicit flags.
func TestServeConfigLayers(t *testing.T) {
	config := filepath.Join(t.TempDir(), "faced.yaml")
	if err := os.WriteFile(config, []byte("listen: 10.0.0.1:9000\ndata_dir: /srv/faced\nvision:\n  threads: 4\n  detector: ultraface-rfb320\n  attributes: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args, env []string
		want      func(*daemon.Config)
	}{
		{nil, nil, func(c *daemon.Config) {}},
		{[]string{"--config", config}, nil, func(c *daemon.Config) {
			c.Listen, c.DataDir, c.Vision.Threads, c.Vision.Detector = "10.0.0.1:9000", "/srv/faced", 4, "ultraface-rfb320"
		}},
		// A flag set to its default value still overrides the file.
		{[]string{"--config", config, "--listen", "127.0.0.1:8080", "--threads", "1", "--attributes=false"}, nil, func(c *daemon.Config) {
			c.DataDir, c.Vision.Detector, c.Vision.Attributes = "/srv/faced", "ultraface-rfb320", false
		}},
		// Order does not matter.
		{[]string{"--data-dir", "d", "--config", config, "--embedder", "mobilefacenet-192"}, nil, func(c *daemon.Config) {
			c.Listen, c.DataDir, c.Vision.Threads, c.Vision.Detector, c.Vision.Embedder = "10.0.0.1:9000", "d", 4, "ultraface-rfb320", "mobilefacenet-192"
		}},
		// The environment overrides the file; explicit flags override both.
		{[]string{"--config", config, "--threads", "3"}, []string{
			"FACED_LISTEN=127.0.0.1:9999", "FACED_VISION_THREADS=2", "FACED_SERVICE_THRESHOLD=strict",
			"FACED_FETCH_ALLOW_HOSTS=a.example, b.example:8080", "FACED_DEPS_DIR=/ignored", "PATH=/bin",
		}, func(c *daemon.Config) {
			c.Listen, c.DataDir, c.Vision.Threads, c.Vision.Detector = "127.0.0.1:9999", "/srv/faced", 3, "ultraface-rfb320"
			c.Service.Threshold = "strict"
			c.Fetch.AllowHosts = []string{"a.example", "b.example:8080"}
		}},
		// Without a file, the environment overrides the defaults.
		{nil, []string{"FACED_API_REQUEST_TIMEOUT=1m", "FACED_VISION_ATTRIBUTES=false"}, func(c *daemon.Config) {
			c.API.RequestTimeout, c.Vision.Attributes = time.Minute, false
		}},
	} {
		loader, err := serveConfig(tc.args, tc.env, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got, err := loader.Load()
		if err != nil {
			t.Fatalf("%v %v: %v", tc.args, tc.env, err)
		}
		want := daemon.DefaultConfig()
		tc.want(&want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v %v:\n got %+v\nwant %+v", tc.args, tc.env, got, want)
		}
	}
}

// Configuration mistakes fail before the models load, naming the setting.
// "Before the models load" is shown without a clock: the runtimes and
// models are pointed at an empty folder, so reaching the models would fail
// with their error (the control case shows it), not the setting's.
func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FACED_DEPS_DIR", t.TempDir())
	serveErr := func(args ...string) error {
		return run(t.Context(), append([]string{"serve", "--data-dir", filepath.Join(dir, "data")}, args...), io.Discard, io.Discard)
	}
	const modelErr = "make deps" // what a missing runtime says
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.yaml", "listen: 127.0.0.1:0\n")
	if err := serveErr("--config", good); err == nil || !strings.Contains(err.Error(), modelErr) {
		t.Fatalf("control: a good configuration without runtimes: %v, want the runtime's error (%q)", err, modelErr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{"--config", write("typo.yaml", "api:\n  request_timout: 5s\n")}, "api.request_timout: unknown field"},
		{[]string{"--config", write("bad.yaml", "keys:\n  - id: 0123456789ab\n    name: x\n    secret_sha256: abc\n    scopes: [root]\n")}, "config: keys[0].secret_sha256: want 64 hex digits"},
		{[]string{"--config", write("scope.yaml", "keys:\n  - id: 0123456789ab\n    name: x\n    secret_sha256: "+strings.Repeat("0", 64)+"\n    scopes: [root]\n")}, `config: keys[0].scopes: unknown scope "root"`},
		{[]string{"--config", good, "--listen", "nowhere"}, "config: listen: want host:port"},
		{[]string{"--config", good, "--threads", "-2"}, "config: vision.threads"},
		{[]string{"--config", write("tls.yaml", "tls:\n  cert_file: "+filepath.Join(dir, "none.crt")+"\n")}, "config: tls: cert_file and key_file go together"},
		{[]string{"--config", write("tls2.yaml", "tls:\n  cert_file: "+filepath.Join(dir, "none.crt")+"\n  key_file: "+filepath.Join(dir, "none.key")+"\n")}, "config: tls: certificate:"},
		{[]string{"--config", good, "extra"}, `unexpected argument "extra"`},
	} {
		err := serveErr(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: %v, want an error containing %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), modelErr) {
			t.Errorf("serve %v reached the models before failing on the configuration: %v", tc.args, err)
		}
	}
}
