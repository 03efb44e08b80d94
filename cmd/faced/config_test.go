package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facedhq/faced/daemon"
)

// `faced config default` prints the embedded default file, which checks.
func TestConfigDefault(t *testing.T) {
	out := mustFaced(t, "config", "default")
	if !bytes.Equal([]byte(out), daemon.DefaultYAML()) {
		t.Fatal("config default does not print daemon/default.yaml")
	}
	path := filepath.Join(t.TempDir(), "faced.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mustFaced(t, "config", "check", "--config", path); got != path+": ok\n" {
		t.Errorf("config check of the default: %q", got)
	}
	if got := mustFaced(t, "config", "check"); got != "the defaults: ok\n" {
		t.Errorf("config check without a file: %q", got)
	}
}

// `faced config check` prints every problem, one a line, each naming its
// setting or variable, and fails.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "faced.yaml")
	err := os.WriteFile(path, []byte("listen: nowhere\napi:\n  request_timeout: 0s\n  tmeout: 5s\nservice:\n  threshold: lax\n"+
		"tls:\n  cert_file: "+filepath.Join(dir, "none.crt")+"\n  key_file: "+filepath.Join(dir, "none.key")+"\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FACED_LOG_LEVEL", "loud")
	t.Setenv("FACED_VISION_THREDS", "2")
	t.Setenv("FACED_FETCH_TIMEOUT", "soon")
	stdout, stderr, err := faced(t, "config", "check", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "8 problem(s)") {
		t.Fatalf("err = %v, want 8 problems\n%s", err, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q", stdout)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	for i, want := range []string{
		path + ": line 4: api.tmeout: unknown field",
		"FACED_FETCH_TIMEOUT (fetch.timeout): want a duration",
		"FACED_VISION_THREDS: not a setting (did you mean FACED_VISION_THREADS?)",
		"config: listen: want host:port",
		`config: log_level: want debug, info, warn or error, got "loud" (set by FACED_LOG_LEVEL)`,
		"config: api.request_timeout: must be positive",
		`config: service.threshold: want low, medium, strict, none or a confidence from 0 to 1, got "lax"`,
		"config: tls: certificate: open " + filepath.Join(dir, "none.crt"),
	} {
		if i >= len(lines) || !strings.Contains(lines[i], want) {
			t.Errorf("problem %d: want %q in\n%s", i, want, stderr)
		}
	}

	// A missing certificate alone.
	os.Unsetenv("FACED_LOG_LEVEL")
	os.Unsetenv("FACED_VISION_THREDS")
	os.Unsetenv("FACED_FETCH_TIMEOUT")
	err = os.WriteFile(path, []byte("tls:\n  cert_file: "+filepath.Join(dir, "none.crt")+"\n  key_file: "+filepath.Join(dir, "none.key")+"\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, err = faced(t, "config", "check", "--config", path)
	if err == nil || !strings.HasPrefix(stderr, "config: tls: certificate:") {
		t.Errorf("missing certificate: %v\n%s", err, stderr)
	}
	if _, _, err := faced(t, "config", "check", "extra"); err == nil {
		t.Error("extra argument accepted")
	}
}
