package models

import (
	"os"
	"path/filepath"
	"runtime"
)

// InstalledDir is where the faced package puts runtimes and models.
const InstalledDir = "/usr/lib/faced"

// FindDir locates the folder holding lib/<arch>/ and models/: the
// FACED_DEPS_DIR environment variable, else the installed package's folder,
// else .deps in the working directory or the nearest parent that has one (a
// checkout after `make deps`). It returns "" when none exists.
func FindDir() string {
	if d := os.Getenv("FACED_DEPS_DIR"); d != "" {
		return d
	}
	if exe, err := os.Executable(); err == nil {
		if d := filepath.Join(filepath.Dir(exe), "..", "lib", "faced"); isDir(filepath.Join(d, "models")) {
			return filepath.Clean(d)
		}
	}
	if isDir(filepath.Join(InstalledDir, "models")) {
		return InstalledDir
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if isDir(filepath.Join(d, ".deps", "models")) {
			return filepath.Join(d, ".deps")
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// LibDir is the folder of the runtime libraries for this machine's
// architecture below a dependency folder.
func LibDir(depsDir string) string {
	return filepath.Join(depsDir, "lib", runtime.GOARCH)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
