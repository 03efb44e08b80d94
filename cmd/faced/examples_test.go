package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
)

// TestExamples runs the README's clients, examples/python and examples/go,
// against a real `faced serve` on loopback, as an integrator would: create
// a gallery, enrol a person from a photo, identify and verify a probe.
func TestExamples(t *testing.T) {
	root, data := testenv.RepoRoot(t), filepath.Join(testenv.DataDir(t), "deepface")
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not installed: the Python example needs it (apt-get install python3; `make deps` installs it)")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is not on PATH: the Go example is built with it")
	}
	goClient := filepath.Join(t.TempDir(), "faced-client")
	build := exec.Command(goCmd, "build", "-o", goClient, "./examples/go")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/go: %v\n%s", err, out)
	}

	addr, token := serveWithKey(t, "")
	url := "http://" + addr
	client := func(argv ...string) string {
		t.Helper()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "FACED_TOKEN="+token)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), err, out, stderr.String())
		}
		return string(out)
	}
	photo := func(name string) string { return filepath.Join(data, name) }
	medium := float64(service.Presets["medium"])

	// Python: a new gallery, Angelina Jolie from one photo, found and
	// verified on another.
	out := client(python, filepath.Join(root, "examples", "python", "faced_client.py"),
		"--url", url, "--gallery", "staff", "--id", "angelina", "--name", "Angelina Jolie", photo("img1.jpg"), photo("img2.jpg"))
	expect(t, "python", out, medium,
		`gallery staff: created`,
		`enrolled angelina: 1 face\(s\)`,
		`identify: angelina confidence (0\.\d\d|1\.00)`,
		`verify angelina: verified confidence (0\.\d\d|1\.00)`)

	// Go: a second gallery and person, the same way.
	out = client(goClient, "-url", url, "-gallery", "visitors", "-id", "person-b", photo("img13.jpg"), photo("img14.jpg"))
	expect(t, "go", out, medium,
		`gallery visitors: created`,
		`enrolled person-b: 1 face\(s\)`,
		`identify: person-b confidence (0\.\d\d|1\.00)`,
		`verify person-b: verified confidence (0\.\d\d|1\.00)`)

	// Go again, in the existing gallery, with a probe of someone else:
	// identify names the person the Python client enrolled, and verify
	// against the new person says no.
	out = client(goClient, "-url", url, "-gallery", "staff", "-id", "person-c", photo("img16.jpg"), photo("img4.jpg"))
	expect(t, "go, other probe", out, medium,
		`gallery staff: exists`,
		`enrolled person-c: 1 face\(s\)`,
		`identify: angelina confidence (0\.\d\d|1\.00)`,
		`verify person-c: not verified confidence (0\.\d\d)`)
	if c := lastConfidence(out); c >= medium {
		t.Errorf("go: a different person verified at confidence %.2f, at or above the medium preset %.2f", c, medium)
	}
}

// expect checks out is exactly the lines (regular expressions), and that
// the identify line's confidence, and a "verified" line's, reach medium.
func expect(t *testing.T, who, out string, medium float64, lines ...string) {
	t.Helper()
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("%s printed %d lines, want %d:\n%s", who, len(got), len(lines), out)
	}
	for i, want := range lines {
		if !regexp.MustCompile("^" + want + "$").MatchString(got[i]) {
			t.Errorf("%s line %d = %q, want %q", who, i+1, got[i], want)
		}
		if strings.HasPrefix(got[i], "identify:") || strings.Contains(got[i], ": verified") {
			if c := lastConfidence(got[i]); c < medium {
				t.Errorf("%s: %q: confidence below the medium preset %.2f", who, got[i], medium)
			}
		}
	}
}

// lastConfidence is the number after the last "confidence " in s.
func lastConfidence(s string) float64 {
	i := strings.LastIndex(s, "confidence ")
	if i < 0 {
		return -1
	}
	f, err := strconv.ParseFloat(strings.Fields(s[i+len("confidence "):])[0], 64)
	if err != nil {
		return -1
	}
	return f
}
