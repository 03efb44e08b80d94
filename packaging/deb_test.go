package packaging

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/facedhq/faced/models"
)

// TestPackageContents checks both packages: the binary for the right
// architecture, that architecture's runtimes and every model byte for byte
// as the manifest pins them, the units, the conffile, and a Depends line
// naming a package for every library the binary and runtimes link.
func TestPackageContents(t *testing.T) {
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			deb := builtDeb(t, arch)
			root := t.TempDir()
			extractDeb(t, deb, root)

			if err := checkArch(filepath.Join(root, BinPath), arch); err != nil {
				t.Error(err)
			}
			var want []string
			for _, p := range m.Packages {
				for _, f := range p.Files {
					if strings.HasPrefix(f.Dst, "lib/") {
						want = append(want, f.Dst)
					}
				}
			}
			for _, s := range m.Models {
				want = append(want, s.File)
			}
			for _, rel := range want {
				p := filepath.Join(root, LibRoot, rel)
				_, statErr := os.Stat(p)
				ours := !strings.HasPrefix(rel, "lib/") || strings.HasPrefix(rel, "lib/"+arch+"/")
				if !ours {
					if statErr == nil {
						t.Errorf("%s ships another architecture's %s", arch, rel)
					}
					continue
				}
				sum, _ := m.FileSHA256(rel)
				if _, err := models.ReadVerified(p, sum); err != nil {
					t.Error(err)
				}
			}
			for _, f := range []string{UnitDir + "/faced.service", UnitDir + "/faced.socket", ConfigPath} {
				if _, err := os.Stat(filepath.Join(root, f)); err != nil {
					t.Error(err)
				}
			}

			ctl := t.TempDir()
			run(t, os.Environ(), "dpkg-deb", "-e", deb, ctl)
			cf, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
			if err != nil || strings.TrimSpace(string(cf)) != ConfigPath {
				t.Errorf("conffiles %q (%v), want %s", cf, err, ConfigPath)
			}
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				if st, err := os.Stat(filepath.Join(ctl, s)); err != nil || st.Mode()&0o111 == 0 {
					t.Errorf("maintainer script %s: %v (mode %v)", s, err, st)
				}
			}

			depends := strings.TrimSpace(run(t, os.Environ(), "dpkg-deb", "-f", deb, "Depends"))
			declared := map[string]bool{}
			for _, d := range strings.Split(depends, ", ") {
				name, _, _ := strings.Cut(d, " ")
				declared[name] = true
			}
			sonames, err := LinkedLibraries(filepath.Join(root, BinPath), filepath.Join(root, LibRoot, "lib", arch))
			if err != nil {
				t.Fatal(err)
			}
			for _, so := range sonames {
				d, err := HostResolver("x86_64-linux-gnu").Package(so)
				if err != nil {
					t.Fatal(err)
				}
				if name, _, _ := strings.Cut(d, " "); !declared[name] {
					t.Errorf("Depends %q lacks %s (for %s)", depends, name, so)
				}
			}
			if !strings.Contains(depends, "libopencv-core406") {
				t.Errorf("Depends %q lacks OpenCV", depends)
			}
		})
	}
}

func TestResolver(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"libfoo.so.1", "libbar.so.2"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &Resolver{
		LibDirs: []string{filepath.Join(dir, "missing"), dir},
		Owner: func(p string) (string, error) {
			return map[string]string{"libfoo.so.1": "libfoo1", "libbar.so.2": "libfoo1"}[filepath.Base(p)], nil
		},
		Version: func(string) (string, error) { return "1:2.3+dfsg-4+deb12u1", nil },
	}
	got, err := r.Depends([]string{"libfoo.so.1", "libbar.so.2", "libskip.so.0"}, map[string]bool{"libskip.so.0": true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"libfoo1 (>= 1:2.3+dfsg)"}; !slices.Equal(got, want) {
		t.Errorf("Depends = %q, want %q", got, want)
	}
	if _, err := r.Package("libnone.so.9"); !errors.Is(err, ErrUnmapped) {
		t.Errorf("unknown soname: %v, want ErrUnmapped", err)
	}
}
