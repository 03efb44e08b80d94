package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/testenv"
)

const module = "github.com/facedhq/faced"

// pkg is what `go list -json` says of one package (test files excluded:
// a test may use any library to set up its fixtures).
type pkg struct {
	ImportPath string
	Dir        string
	Standard   bool
	Imports    []string
	Deps       []string
	CgoFiles   []string
}

// listPackages runs `go list -json` on the patterns from the module root.
func listPackages(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = testenv.RepoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %v listed nothing", args)
	}
	return pkgs
}

// rel is a package's path inside the module ("accel/onnxrt").
func rel(importPath string) string {
	return strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
}

// importsFrom reports whether imp is lib or one of its subpackages.
func importsFrom(imp, lib string) bool {
	return imp == lib || strings.HasPrefix(imp, lib+"/")
}

// includesTFLite reports whether a package's cgo files include the
// TensorFlow Lite C API: the tflite runtime is reached through cgo, not a
// Go import.
func includesTFLite(t *testing.T, p pkg) bool {
	for _, f := range p.CgoFiles {
		b, err := os.ReadFile(filepath.Join(p.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("tensorflow/lite")) {
			return true
		}
	}
	// The C files of the package (capi.c, capi.h) count too.
	for _, pat := range []string{"*.c", "*.h", "*.cpp"} {
		files, _ := filepath.Glob(filepath.Join(p.Dir, pat))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("tensorflow/lite")) {
				return true
			}
		}
	}
	return false
}

// rule: only the packages allowed (path.Match patterns, relative to the
// module) may use lib.
type rule struct {
	what    string
	uses    func(t *testing.T, p pkg) bool
	allowed []string
}

func importRule(lib string, allowed ...string) rule {
	return rule{what: "import " + lib, allowed: allowed, uses: func(_ *testing.T, p pkg) bool {
		return slices.ContainsFunc(p.Imports, func(imp string) bool { return importsFrom(imp, lib) })
	}}
}

var rules = []rule{
	importRule("github.com/yalue/onnxruntime_go", "accel/*"),
	{what: "include the TensorFlow Lite C API", uses: includesTFLite, allowed: []string{"accel/*"}},
	importRule("gocv.io/x/gocv", "face", "accel/opencvdnn"),
	importRule("go.etcd.io/bbolt", "store"),
	// internal/mqtttest is the tests' recording fleet backend: it talks
	// MQTT as the backend would, and TestTestSupportStaysOutOfFaced keeps
	// it out of the binary.
	importRule("github.com/eclipse/paho.mqtt.golang", "sync", "internal/mqtttest"),
	// Nothing imports the front ends or the wiring but the command (and
	// the tests' server set-up, internal/apitest and, for the vendor
	// dialects, internal/apitest/dialecttest).
	importRule(module+"/api", "api/*", "cmd/*", "daemon", "internal/apitest", "internal/apitest/dialecttest"),
	// The admin page is a front end like the API: only the command wires
	// it (its tests build their fixtures with internal/apitest).
	importRule(module+"/webui", "cmd/*"),
	// internal/visiontest loads the models for test binaries (daemon.OpenVision).
	importRule(module+"/daemon", "cmd/*", "internal/apitest", "internal/visiontest"),
}

func allowed(patterns []string, relPath string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, relPath); ok {
			return true
		}
	}
	return false
}

// TestImportBoundaries: only accel/* reach the inference runtimes
// (onnxruntime_go, the TensorFlow Lite C API); only face and
// accel/opencvdnn import gocv; only store imports bbolt; only sync imports
// paho; nothing imports api or daemon but the command.
func TestImportBoundaries(t *testing.T) {
	pkgs := listPackages(t, "./...")
	for _, r := range rules {
		users := 0
		for _, p := range pkgs {
			if !r.uses(t, p) {
				continue
			}
			users++
			if !allowed(r.allowed, rel(p.ImportPath)) {
				t.Errorf("%s: %s, which only %v may", rel(p.ImportPath), r.what, r.allowed)
			}
		}
		// A rule that matches no package tests nothing (a renamed
		// library would make it pass forever).
		if users == 0 {
			t.Errorf("no package does %q: the rule is stale", r.what)
		}
	}
}

// TestPureGoPackages: models and eval are pure Go (README), so nothing
// they depend on, in or outside the module, uses cgo. The standard
// library's optional cgo (net, os/user) is not theirs.
func TestPureGoPackages(t *testing.T) {
	for _, p := range listPackages(t, "-deps", "./models", "./eval") {
		if len(p.CgoFiles) > 0 && !p.Standard {
			t.Errorf("%s uses cgo, and models or eval depend on it", p.ImportPath)
		}
	}
}

// TestTestSupportStaysOutOfFaced: the command links none of the test
// support packages (internal/mqtttest imports paho outside sync).
func TestTestSupportStaysOutOfFaced(t *testing.T) {
	for _, p := range listPackages(t, "-deps", "./cmd/faced") {
		if !strings.HasPrefix(p.ImportPath, module+"/internal/") {
			continue
		}
		if r := rel(p.ImportPath); strings.HasSuffix(r, "test") || r == "internal/testenv" {
			t.Errorf("cmd/faced links the test support package %s", r)
		}
	}
}
