package packaging

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// ErrUnmapped reports a shared library no installed Debian package owns,
// so the package could not declare it.
var ErrUnmapped = errors.New("no Debian package owns the library")

// Needed lists the shared libraries (DT_NEEDED sonames) an ELF file links.
func Needed(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("packaging: read ELF %s: %w", path, err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("packaging: %s: dynamic section: %w", path, err)
	}
	return libs, nil
}

// Resolver maps a soname to the Debian package that ships it, using the
// dpkg database of the machine that builds the packages.
type Resolver struct {
	// LibDirs are searched in order for the soname; dpkg knows each file
	// by the path its package used (/lib or /usr/lib, before usrmerge).
	LibDirs []string
	// Owner returns the package owning an absolute path ("" when none);
	// Version returns a package's installed version. Tests replace them.
	Owner   func(path string) (string, error)
	Version func(pkg string) (string, error)
}

// HostResolver resolves sonames with this machine's dpkg, in the library
// directories of its multiarch triplet (x86_64-linux-gnu on amd64).
func HostResolver(triplet string) *Resolver {
	return &Resolver{
		LibDirs: []string{"/lib/" + triplet, "/usr/lib/" + triplet, "/lib", "/usr/lib"},
		Owner:   dpkgOwner,
		Version: dpkgVersion,
	}
}

// Package returns "name (>= upstream-version)" for the package shipping
// soname. The bound is the built-against upstream version without the
// Debian revision, so a stable point release satisfies it.
func (r *Resolver) Package(soname string) (string, error) {
	for _, dir := range r.LibDirs {
		p := filepath.Join(dir, soname)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		pkg, err := r.Owner(p)
		if err != nil {
			return "", err
		}
		if pkg == "" {
			continue
		}
		v, err := r.Version(pkg)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s (>= %s)", pkg, upstreamVersion(v)), nil
	}
	return "", fmt.Errorf("packaging: %s: %w (searched %s)", soname, ErrUnmapped, strings.Join(r.LibDirs, ", "))
}

// Depends maps every soname to its package, sorted and without duplicates.
// Sonames in skip (libraries the package ships itself) are left out.
func (r *Resolver) Depends(sonames []string, skip map[string]bool) ([]string, error) {
	var deps []string
	for _, so := range sonames {
		if skip[so] {
			continue
		}
		d, err := r.Package(so)
		if err != nil {
			return nil, err
		}
		deps = append(deps, d)
	}
	slices.Sort(deps)
	return slices.Compact(deps), nil
}

// upstreamVersion strips the Debian revision: "2.36-9+deb12u4" -> "2.36",
// "1:4.6.0+dfsg-12" -> "1:4.6.0+dfsg".
func upstreamVersion(v string) string {
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		return v[:i]
	}
	return v
}

func dpkgOwner(path string) (string, error) {
	out, err := exec.Command("dpkg-query", "-S", path).Output()
	if err != nil {
		// dpkg-query -S exits 1 for a path no package owns.
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return "", nil
		}
		return "", fmt.Errorf("packaging: dpkg-query -S %s: %w", path, err)
	}
	// "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6"
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	pkg, _, ok := strings.Cut(line, ": ")
	if !ok {
		return "", fmt.Errorf("packaging: dpkg-query -S %s: unexpected output %q", path, out)
	}
	pkg, _, _ = strings.Cut(pkg, ", ") // diverted: the first is the owner
	pkg, _, _ = strings.Cut(pkg, ":")  // drop the architecture qualifier
	return pkg, nil
}

func dpkgVersion(pkg string) (string, error) {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("packaging: dpkg-query -W %s: %w", pkg, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// elfMachines are the Debian architectures faced is packaged for.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkArch fails unless path is an ELF file for the Debian architecture.
func checkArch(path, arch string) error {
	want, ok := elfMachines[arch]
	if !ok {
		return fmt.Errorf("packaging: unsupported architecture %q (want amd64 or arm64)", arch)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("packaging: read ELF %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("packaging: %s is built for %s, not %s", path, f.Machine, arch)
	}
	return nil
}

// LinkedLibraries lists the sonames the binary and the runtime libraries
// in libDir link, without the ones libDir holds (the package ships those).
// Dynamic loaders (ld-linux-*.so.*) become libc.so.6: libc6 ships both on
// every architecture, and the build machine's dpkg knows only its own
// loader. Every other soname is the same on amd64 and arm64, and so is the
// Debian package that ships it, which is what lets the amd64 build machine
// declare the arm64 package's dependencies.
func LinkedLibraries(binary, libDir string) ([]string, error) {
	entries, err := os.ReadDir(libDir)
	if err != nil {
		return nil, fmt.Errorf("packaging: runtime libraries: %w", err)
	}
	shipped := map[string]bool{}
	objects := []string{binary}
	for _, e := range entries {
		shipped[e.Name()] = true
		objects = append(objects, filepath.Join(libDir, e.Name()))
	}
	seen := map[string]bool{}
	var out []string
	for _, obj := range objects {
		needed, err := Needed(obj)
		if err != nil {
			return nil, err
		}
		for _, so := range needed {
			if strings.HasPrefix(so, "ld-linux") {
				so = "libc.so.6"
			}
			if !shipped[so] && !seen[so] {
				seen[so] = true
				out = append(out, so)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
