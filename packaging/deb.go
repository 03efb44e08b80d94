package packaging

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the "deb" packager
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/facedhq/faced/models"
)

// Where the package puts things. models.FindDir looks for LibRoot next to
// the binary (../lib/faced), so the daemon needs no setting to find it.
const (
	BinPath    = "/usr/bin/faced"
	LibRoot    = models.InstalledDir // lib/<arch>/ and models/ below it
	UnitDir    = "/lib/systemd/system"
	ConfigPath = "/etc/faced/faced.yaml"
	DocDir     = "/usr/share/doc/faced"
)

// ExtraDepends are run-time needs no linked library shows: the unit's
// ExecReload= runs /bin/kill.
var ExtraDepends = []string{"procps"}

// Spec is one package to build.
type Spec struct {
	Arch    string // Debian architecture: amd64, arm64
	Version string // Debian version, e.g. 0.1.0~git20250101.abcdef0
	Binary  string // faced built for Arch
	DepsDir string // .deps: lib/<arch>/ and models/, as make deps fetched them
	SrcDir  string // the checkout: systemd/, packaging/, README.md
	Depends []string
	MTime   time.Time // every file's and the archive's time (reproducible builds)
}

// Build writes the .deb into outDir and returns its path. Every runtime
// library and model is checked against the sha256 the manifest pins before
// it is staged, so a package never ships a file that was not evaluated.
func Build(s Spec, outDir string) (string, error) {
	stage, err := os.MkdirTemp("", "faced-deb-")
	if err != nil {
		return "", fmt.Errorf("packaging: %w", err)
	}
	defer os.RemoveAll(stage)

	contents, err := runtimeContents(s, stage)
	if err != nil {
		return "", err
	}
	contents = append(contents, staticContents(s)...)

	info := &nfpm.Info{
		Name:          "faced",
		Arch:          s.Arch,
		Platform:      "linux",
		Version:       s.Version,
		VersionSchema: "none", // Debian versions (0.1.0~git...) are not semver
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "faced maintainers <faced@example.invalid>",
		Homepage:      "https://github.com/facedhq/faced",
		License:       "MIT AND Apache-2.0",
		Description: "on-device face recognition daemon\n" +
			"Detects, aligns, embeds and checks the liveness of faces on the\n" +
			"device, with ONNX Runtime and TensorFlow Lite, and serves an HTTP API.",
		MTime: s.MTime,
		Overridables: nfpm.Overridables{
			Depends:  append(append([]string(nil), s.Depends...), ExtraDepends...),
			Contents: contents,
			Umask:    0o022,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(s.SrcDir, "packaging", "scripts", "postinst"),
				PreRemove:   filepath.Join(s.SrcDir, "packaging", "scripts", "prerm"),
				PostRemove:  filepath.Join(s.SrcDir, "packaging", "scripts", "postrm"),
			},
		},
	}
	if err := nfpm.PrepareForPackager(nfpm.WithDefaults(info), "deb"); err != nil {
		return "", fmt.Errorf("packaging: %s: %w", s.Arch, err)
	}
	pkger, err := nfpm.Get("deb")
	if err != nil {
		return "", fmt.Errorf("packaging: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("packaging: %w", err)
	}
	out := filepath.Join(outDir, pkger.ConventionalFileName(info))
	if err := writePackage(pkger, info, out); err != nil {
		return "", fmt.Errorf("packaging: %s: %w", out, err)
	}
	return out, nil
}

func writePackage(pkger nfpm.Packager, info *nfpm.Info, out string) error {
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := pkger.Package(info, f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}

// runtimeContents stages the binary, the runtime libraries of s.Arch and
// every model, each verified, and returns them as package contents.
func runtimeContents(s Spec, stage string) (files.Contents, error) {
	m, err := models.LoadManifest()
	if err != nil {
		return nil, err
	}
	var c files.Contents
	add := func(rel, dst string, mode os.FileMode) error {
		want, ok := m.FileSHA256(rel)
		if !ok {
			return fmt.Errorf("packaging: %s: no sha256 pinned in models/manifest.json", rel)
		}
		data, err := models.ReadVerified(filepath.Join(s.DepsDir, rel), want)
		if err != nil {
			return fmt.Errorf("packaging: %w", err)
		}
		staged := filepath.Join(stage, rel)
		if err := os.MkdirAll(filepath.Dir(staged), 0o755); err != nil {
			return fmt.Errorf("packaging: %w", err)
		}
		if err := os.WriteFile(staged, data, mode); err != nil {
			return fmt.Errorf("packaging: stage %s: %w", rel, err)
		}
		c = append(c, file(staged, dst, mode))
		return nil
	}

	libPrefix := path.Join("lib", s.Arch) + "/"
	libs := 0
	for _, p := range m.Packages {
		for _, f := range p.Files {
			if !strings.HasPrefix(f.Dst, libPrefix) {
				continue // headers, other architectures, models (below)
			}
			if err := add(f.Dst, path.Join(LibRoot, f.Dst), 0o644); err != nil {
				return nil, err
			}
			libs++
		}
	}
	if libs == 0 {
		return nil, fmt.Errorf("packaging: the manifest has no runtime libraries for %s", s.Arch)
	}
	for _, spec := range m.Models {
		if err := add(spec.File, path.Join(LibRoot, spec.File), 0o644); err != nil {
			return nil, err
		}
	}

	if err := checkArch(s.Binary, s.Arch); err != nil {
		return nil, err
	}
	c = append(c, file(s.Binary, BinPath, 0o755))
	return c, nil
}

// staticContents are the files taken as they are from the checkout.
func staticContents(s Spec) files.Contents {
	src := func(rel string) string { return filepath.Join(s.SrcDir, rel) }
	return files.Contents{
		file(src("systemd/faced.service"), UnitDir+"/faced.service", 0o644),
		file(src("systemd/faced.socket"), UnitDir+"/faced.socket", 0o644),
		file(src("README.md"), DocDir+"/README.md", 0o644),
		file(src("packaging/README.md"), DocDir+"/PACKAGING.md", 0o644),
		// A conffile: dpkg keeps the administrator's edits on upgrade and
		// removes it only on purge.
		{Source: src("packaging/faced.yaml"), Destination: ConfigPath, Type: files.TypeConfig,
			FileInfo: &files.ContentFileInfo{Mode: 0o644}},
	}
}

func file(src, dst string, mode os.FileMode) *files.Content {
	return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}}
}
