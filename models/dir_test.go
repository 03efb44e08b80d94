package models

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestFindDirEnvWins(t *testing.T) {
	d := t.TempDir()
	t.Setenv("FACED_DEPS_DIR", d)
	if got := FindDir(); got != d {
		t.Errorf("FindDir() = %q, want FACED_DEPS_DIR %q", got, d)
	}
	// Even over a .deps in the working directory.
	wd := t.TempDir()
	if err := os.MkdirAll(filepath.Join(wd, ".deps", "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	if got := FindDir(); got != d {
		t.Errorf("FindDir() = %q, want FACED_DEPS_DIR %q", got, d)
	}
}

func TestFindDirWalksUp(t *testing.T) {
	if isDir(filepath.Join(InstalledDir, "models")) {
		t.Skip("installed package takes precedence")
	}
	t.Setenv("FACED_DEPS_DIR", "")
	root := t.TempDir()
	deps := filepath.Join(root, ".deps")
	if err := os.MkdirAll(filepath.Join(deps, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	got := FindDir()
	// The temp dir may be reached through a symlink; compare resolved paths.
	gotR, _ := filepath.EvalSymlinks(got)
	wantR, _ := filepath.EvalSymlinks(deps)
	if gotR != wantR {
		t.Errorf("FindDir() = %q, want %q", got, deps)
	}

	// A .deps without models/ does not count.
	other := t.TempDir()
	if err := os.MkdirAll(filepath.Join(other, ".deps"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(other)
	if got := FindDir(); got != "" && isDir(filepath.Join(got, "models")) == false {
		t.Errorf("FindDir() = %q, a folder without models/", got)
	}
}

func TestLibDir(t *testing.T) {
	want := filepath.Join("/x/deps", "lib", runtime.GOARCH)
	if got := LibDir("/x/deps"); got != want {
		t.Errorf("LibDir = %q, want %q", got, want)
	}
}
