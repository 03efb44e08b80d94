package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/testenv"
)

// These tests check what `make deb` built; `make test` builds it first.
// Each prerequisite that is missing fails the test, naming the target
// that provides it: CI must never skip them.

// builtDeb returns the one package of arch in bin/pkg.
func builtDeb(t *testing.T, arch string) string {
	t.Helper()
	dir := os.Getenv("FACED_PKG_DIR")
	if dir == "" {
		dir = filepath.Join(testenv.RepoRoot(t), "bin", "pkg")
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "faced_*_"+arch+".deb"))
	if len(debs) != 1 {
		t.Fatalf("want one faced_*_%s.deb in %s, found %d: run `make deb` (make test does)", arch, dir, len(debs))
	}
	return debs[0]
}

// builtBinary returns the packaged binary of arch, as `make deb` left it.
func builtBinary(t *testing.T, arch string) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(builtDeb(t, arch)), arch, "faced")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%v: run `make deb` (make test does)", err)
	}
	return p
}

// cachedPath returns the path an environment variable of the Makefile
// names, failing when it is unset or the path does not exist.
func cachedPath(t *testing.T, env, target string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run the tests through `make test` (or `make %s` and export %s as the Makefile does)", env, target, env)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v: run `make %s` (make test does)", env, err, target)
	}
	return p
}

// needTool fails the test unless the command is installed.
func needTool(t *testing.T, name, target string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: run `make %s` (make test does)", name, target)
	}
	return p
}

// photo is a one-face photo of the shared test data.
func photo(t *testing.T) string {
	return filepath.Join(testenv.DataDir(t), "deepface", "img1.jpg")
}

// cleanEnv is the environment without FACED_* variables, so a child finds
// its runtimes and models the way an installed package does, not in the
// checkout's .deps that `make test` exports.
func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "FACED_") })
}

// run runs a command and returns its standard output, failing the test
// with both outputs when it fails.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, errOut, err := tryRun(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func tryRun(env []string, name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// asRoot prefixes a command with `sudo -n` when the test is not root, as
// the Makefile does for apt-get.
func asRoot(name string, args ...string) (string, []string) {
	if os.Geteuid() == 0 {
		return name, args
	}
	return "sudo", append([]string{"-n", name}, args...)
}

// extractDeb unpacks a package's files (not its scripts) into dir.
func extractDeb(t *testing.T, deb, dir string) {
	t.Helper()
	needTool(t, "dpkg-deb", "deps")
	run(t, os.Environ(), "dpkg-deb", "-x", deb, dir)
}
