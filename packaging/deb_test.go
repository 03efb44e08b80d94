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

// sonamePackages is written by hand, not computed: the Debian package
// shipping each library faced and its runtimes link, on amd64 and arm64
// alike (read from `objdump -p` of the binary and runtimes, and from
// `dpkg -S` here and the arm64 package lists of bookworm). It is the
// independent expectation for Depends: the package code derives arm64's
// Depends from the amd64 build machine's dpkg, and a test that derived it
// the same way could not catch a mistake in that derivation. A new
// soname fails the test until it is added here, by hand.
var sonamePackages = map[string]string{
	"ld-linux-x86-64.so.2": "libc6", "ld-linux-aarch64.so.1": "libc6",
	"libc.so.6": "libc6", "libdl.so.2": "libc6", "libm.so.6": "libc6",
	"libpthread.so.0": "libc6", "librt.so.1": "libc6",
	"libgcc_s.so.1":               "libgcc-s1",
	"libstdc++.so.6":              "libstdc++6",
	"libopencv_calib3d.so.406":    "libopencv-calib3d406",
	"libopencv_core.so.406":       "libopencv-core406",
	"libopencv_dnn.so.406":        "libopencv-dnn406",
	"libopencv_features2d.so.406": "libopencv-features2d406",
	"libopencv_highgui.so.406":    "libopencv-highgui406",
	"libopencv_imgcodecs.so.406":  "libopencv-imgcodecs406",
	"libopencv_imgproc.so.406":    "libopencv-imgproc406",
	"libopencv_objdetect.so.406":  "libopencv-objdetect406",
	"libopencv_photo.so.406":      "libopencv-photo406",
	"libopencv_video.so.406":      "libopencv-video406",
	"libopencv_videoio.so.406":    "libopencv-videoio406",
}

// objdumpFor is the binutils that reads arch's ELF files: another ELF
// reader than the debug/elf the package code uses.
var objdumpFor = map[string]string{"amd64": "objdump", "arm64": "aarch64-linux-gnu-objdump"}

// TestDependsIndependently checks each package's Depends against
// sonamePackages: every library the packaged binary and runtimes need
// (as binutils reads them) has its package declared, and nothing else is
// declared but ExtraDepends.
func TestDependsIndependently(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			deb := builtDeb(t, arch)
			objdump := needTool(t, objdumpFor[arch], "deps-pkg")
			root := t.TempDir()
			extractDeb(t, deb, root)
			objects := []string{filepath.Join(root, BinPath)}
			libs, _ := filepath.Glob(filepath.Join(root, LibRoot, "lib", arch, "*.so*"))
			if len(libs) == 0 {
				t.Fatalf("no runtime libraries in the %s package", arch)
			}
			shipped := map[string]bool{}
			for _, l := range libs {
				shipped[filepath.Base(l)] = true
			}
			want := map[string]bool{}
			for _, name := range ExtraDepends {
				want[name] = true
			}
			for _, obj := range append(objects, libs...) {
				out := run(t, os.Environ(), objdump, "-p", obj)
				for _, line := range strings.Split(out, "\n") {
					f := strings.Fields(line)
					if len(f) != 2 || f[0] != "NEEDED" || shipped[f[1]] {
						continue
					}
					pkg, ok := sonamePackages[f[1]]
					if !ok {
						t.Errorf("%s needs %s, which sonamePackages does not know: add its Debian package by hand", filepath.Base(obj), f[1])
						continue
					}
					want[pkg] = true
				}
			}
			got := map[string]bool{}
			depends := strings.TrimSpace(run(t, os.Environ(), "dpkg-deb", "-f", deb, "Depends"))
			for _, d := range strings.Split(depends, ", ") {
				name, _, _ := strings.Cut(d, " ")
				got[name] = true
			}
			for name := range want {
				if !got[name] {
					t.Errorf("Depends %q lacks %s", depends, name)
				}
			}
			for name := range got {
				if !want[name] {
					t.Errorf("Depends %q declares %s, which nothing links", depends, name)
				}
			}
		})
	}
}
