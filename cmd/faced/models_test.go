package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

func TestModelsList(t *testing.T) {
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := mustFaced(t, "models", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(m.Models)+1 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("want a header and %d models:\n%s", len(m.Models), out)
	}
	for i, s := range m.Models {
		f := strings.Fields(lines[i+1])
		if len(f) < 5 || f[0] != s.Name || f[1] != string(s.Task) || f[4] != s.SHA256[:12] {
			t.Errorf("line for %s: %q", s.Name, lines[i+1])
		}
		if f[3] == "-" {
			t.Errorf("%s: no size, so the file is missing from the deps folder", s.Name)
		}
	}
}

func TestModelsVerify(t *testing.T) {
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := mustFaced(t, "models", "verify")
	for _, s := range m.Models {
		if !regexp.MustCompile(`(?m)^ok +` + regexp.QuoteMeta(s.Name) + `$`).MatchString(out) {
			t.Errorf("no ok line for %s:\n%s", s.Name, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("verify reported a failure:\n%s", out)
	}
}

// TestModelsVerifyTampered points --deps-dir at a copy of the deps folder
// (symlinks to the real files) where one model has one byte flipped.
func TestModelsVerifyTampered(t *testing.T) {
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	real := testenv.DepsDir(t)
	dir := t.TempDir()
	const victim = "eye-state" // small, so the copy is cheap
	found := false
	for _, s := range m.Models {
		src, dst := filepath.Join(real, s.File), filepath.Join(dir, s.File)
		if _, err := os.Lstat(dst); err == nil {
			continue // shared file, already placed
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if s.Name != victim {
			if err := os.Symlink(src, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		found = true
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x01
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatalf("model %s is not in the manifest", victim)
	}

	out, _, err := faced(t, "models", "verify", "--deps-dir", dir)
	if err == nil {
		t.Fatalf("tampered %s verified:\n%s", victim, out)
	}
	if !errors.Is(err, models.ErrChecksum) || !strings.Contains(err.Error(), "sha256 mismatch") || !strings.Contains(err.Error(), victim) {
		t.Errorf("err = %v, want a sha256 mismatch naming %s", err, victim)
	}
	if !strings.Contains(err.Error(), "1 model file(s) failed") {
		t.Errorf("err = %v, want exactly one failure counted", err)
	}
	if !regexp.MustCompile(`(?m)^FAIL ` + victim + `: .*sha256 mismatch`).MatchString(out) {
		t.Errorf("no FAIL line for %s:\n%s", victim, out)
	}
	if n := strings.Count(out, "\nok ") + map[bool]int{true: 1}[strings.HasPrefix(out, "ok ")]; n != len(m.Models)-1 {
		t.Errorf("%d ok lines, want %d:\n%s", n, len(m.Models)-1, out)
	}
}

func TestModelsVerifyMissingDir(t *testing.T) {
	out, _, err := faced(t, "models", "verify", "--deps-dir", t.TempDir())
	if err == nil {
		t.Fatalf("empty deps dir verified:\n%s", out)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want a missing-file error", err)
	}
}
