// Command fetchdeps puts the inference runtimes and models that faced needs
// into a dependency folder (by default .deps of the checkout).
//
// Every source is an npm package named in models/manifest.json. It is fetched
// with `npm pack` (so npm's own registry configuration applies and no host is
// named here), checked against the pinned sha256, and cached per user under
// $XDG_CACHE_HOME/faced (or ~/.cache/faced) by that digest, so a second
// checkout on the same machine downloads nothing. Only the files the manifest
// lists are extracted, each verified again. Models no registry ships as
// ONNX (Spec.ConvertedFrom) are then converted from extracted files (a
// TensorFlow Lite model, or a TensorFlow.js weights manifest and its
// shards) and checked against their own pin. Re-running it is a no-op.
package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/models/toonnx"
)

func main() {
	dest := flag.String("dest", ".deps", "folder to extract runtimes and models into")
	cache := flag.String("cache", defaultCacheDir(), "per-user download cache, keyed by sha256")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger, *dest, *cache); err != nil {
		logger.Error("fetchdeps failed", "err", err)
		os.Exit(1)
	}
}

func defaultCacheDir() string {
	if d := os.Getenv("FACED_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "faced")
	}
	return filepath.Join(os.TempDir(), "faced-cache")
}

func run(logger *slog.Logger, dest, cache string) error {
	m, err := models.LoadManifest()
	if err != nil {
		return err
	}
	for _, pkg := range m.Packages {
		missing, err := missingFiles(m, pkg, dest)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			continue
		}
		tarball, err := cachedTarball(logger, pkg, cache)
		if err != nil {
			return err
		}
		n := len(missing)
		if err := extract(m, tarball, missing, dest); err != nil {
			return fmt.Errorf("%s: %w", pkg.NPM, err)
		}
		logger.Info("extracted", "package", pkg.NPM, "files", n)
	}
	return convertModels(logger, m, dest)
}

// convertModels makes the catalogue's converted models (Spec.ConvertedFrom)
// that are absent from dest or differ from their pinned digest, from the
// already verified files they are converted from. The conversion is
// deterministic, so its output is checked against the pin like a download.
func convertModels(logger *slog.Logger, m *models.Manifest, dest string) error {
	for _, spec := range m.Models {
		if spec.ConvertedFrom == "" {
			continue
		}
		if _, err := models.ReadVerified(filepath.Join(dest, spec.File), spec.SHA256); err == nil {
			continue
		}
		want, ok := m.FileSHA256(spec.ConvertedFrom)
		if !ok {
			return fmt.Errorf("manifest: %s is converted from %s, which has no pinned sha256", spec.Name, spec.ConvertedFrom)
		}
		src, err := models.ReadVerified(filepath.Join(dest, spec.ConvertedFrom), want)
		if err != nil {
			return fmt.Errorf("%s: %w", spec.Name, err)
		}
		out, err := convert(m, dest, spec.ConvertedFrom, src)
		if err != nil {
			return fmt.Errorf("%s: %w", spec.Name, err)
		}
		if got := models.SHA256Hex(out); got != spec.SHA256 {
			return fmt.Errorf("%s: converted from %s: %w: got %s, want %s", spec.Name, spec.ConvertedFrom, models.ErrChecksum, got, spec.SHA256)
		}
		if err := writeAtomic(filepath.Join(dest, spec.File), out); err != nil {
			return err
		}
		logger.Info("converted", "model", spec.Name, "from", spec.ConvertedFrom)
	}
	return nil
}

// convert picks the converter by the kind of file the model is made from:
// a TensorFlow Lite model, or a TensorFlow.js weights manifest (which holds
// only weights; the one network toonnx builds from such weights is
// face-api.js's port of dlib's ResNet). A manifest's shard files are read
// from beside it, each checked against its own pin.
func convert(m *models.Manifest, dest, from string, src []byte) ([]byte, error) {
	switch {
	case strings.HasSuffix(from, ".tflite"):
		return toonnx.TFLiteToONNX(src)
	case strings.HasSuffix(from, "weights_manifest.json"):
		return toonnx.DlibResNetToONNX(src, func(shard string) ([]byte, error) {
			if !filepath.IsLocal(shard) {
				return nil, fmt.Errorf("shard path %q leaves the manifest's folder", shard)
			}
			rel := path.Join(path.Dir(from), shard)
			want, ok := m.FileSHA256(rel)
			if !ok {
				return nil, fmt.Errorf("manifest: %s has no pinned sha256", rel)
			}
			return models.ReadVerified(filepath.Join(dest, rel), want)
		})
	}
	return nil, fmt.Errorf("no converter for %s (a .tflite model or a TensorFlow.js weights_manifest.json)", from)
}

// missingFiles lists the files of pkg that are absent from dest or differ
// from their pinned digest.
func missingFiles(m *models.Manifest, pkg models.Package, dest string) (map[string]models.File, error) {
	missing := make(map[string]models.File)
	for _, f := range pkg.Files {
		want, ok := m.FileSHA256(f.Dst)
		if !ok {
			return nil, fmt.Errorf("manifest: %s has no pinned sha256", f.Dst)
		}
		if _, err := models.ReadVerified(filepath.Join(dest, f.Dst), want); err != nil {
			missing[f.Src] = f
		}
	}
	return missing, nil
}

// npmPack runs `npm pack spec --json --pack-destination dir` and returns its
// standard output. It is a variable so that tests can stand in for npm.
var npmPack = func(spec, dir string) ([]byte, error) {
	cmd := exec.Command("npm", "pack", spec, "--json", "--pack-destination", dir)
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fund=false")
	cmd.Stderr = io.Discard
	return cmd.Output()
}

// cachedTarball returns the path of the package tarball in the cache,
// downloading it with npm pack when it is not there yet.
func cachedTarball(logger *slog.Logger, pkg models.Package, cache string) (string, error) {
	path := filepath.Join(cache, pkg.SHA256+".tgz")
	if _, err := models.ReadVerified(path, pkg.SHA256); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("create cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cache, "pack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	logger.Info("downloading", "package", pkg.NPM)
	out, err := npmPack(pkg.NPM, tmp)
	if err != nil {
		return "", fmt.Errorf("npm pack %s: %w", pkg.NPM, err)
	}
	var packed []struct {
		Filename string `json:"filename"`
	}
	if err := json.Unmarshal(out, &packed); err != nil || len(packed) != 1 {
		return "", fmt.Errorf("npm pack %s: unexpected output %q", pkg.NPM, out)
	}
	// npm names scoped packages scope-name-version.tgz in the destination.
	got := filepath.Join(tmp, strings.TrimPrefix(strings.ReplaceAll(packed[0].Filename, "/", "-"), "@"))
	if _, err := models.ReadVerified(got, pkg.SHA256); err != nil {
		return "", fmt.Errorf("npm pack %s: %w", pkg.NPM, err)
	}
	if err := os.Rename(got, path); err != nil {
		return "", fmt.Errorf("store in cache: %w", err)
	}
	return path, nil
}

// extract copies the wanted entries of a .tgz into dest, verifying each.
func extract(m *models.Manifest, tarball string, want map[string]models.File, dest string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("open %s: %w", tarball, err)
	}
	tr := tar.NewReader(gz)
	for len(want) > 0 {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", tarball, err)
		}
		file, ok := want[hdr.Name]
		if !ok || hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("read %s: %w", hdr.Name, err)
		}
		sum, _ := m.FileSHA256(file.Dst)
		if got := models.SHA256Hex(data); got != sum {
			return fmt.Errorf("%s: %w: got %s, want %s", hdr.Name, models.ErrChecksum, got, sum)
		}
		if err := writeAtomic(filepath.Join(dest, file.Dst), data); err != nil {
			return err
		}
		delete(want, hdr.Name)
	}
	for src := range want {
		return fmt.Errorf("%s not found in package", src)
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
