package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/models"
)

var (
	aData = []byte("contents of a\n")
	bData = []byte("contents of b, a little longer\x00\xff")
)

type entry struct {
	name string
	data []byte
	typ  byte
}

// makeTgz returns the bytes of a gzipped tar of the entries.
func makeTgz(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: e.typ}
		switch e.typ {
		case 0:
			hdr.Typeflag = tar.TypeReg
		case tar.TypeSymlink:
			hdr.Linkname, hdr.Size = string(e.data), 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testPackage is a manifest with one package holding a.bin (pinned in the
// package entry) and b.bin (pinned by a model), and a tarball of it.
func testPackage(t *testing.T) (*models.Manifest, string, []byte) {
	t.Helper()
	tgz := makeTgz(t,
		entry{name: "package/", typ: tar.TypeDir},
		entry{name: "package/README.md", data: []byte("readme")},
		entry{name: "package/a.bin", data: aData},
		entry{name: "package/sub/link.bin", data: []byte("../a.bin"), typ: tar.TypeSymlink},
		entry{name: "package/b.bin", data: bData},
	)
	m := &models.Manifest{
		Packages: []models.Package{{
			NPM:    "@scope/pkg@1.0.0",
			SHA256: models.SHA256Hex(tgz),
			Files: []models.File{
				{Src: "package/a.bin", Dst: "lib/a.bin", SHA256: models.SHA256Hex(aData)},
				{Src: "package/b.bin", Dst: "models/deep/b.bin"},
			},
		}},
		Models: []models.Spec{{Name: "b", File: "models/deep/b.bin", SHA256: models.SHA256Hex(bData)}},
	}
	path := filepath.Join(t.TempDir(), "pkg.tgz")
	if err := os.WriteFile(path, tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	return m, path, tgz
}

// files lists the regular files below dir, relative, with their contents.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func wantAll(m *models.Manifest) map[string]models.File {
	want := map[string]models.File{}
	for _, f := range m.Packages[0].Files {
		want[f.Src] = f
	}
	return want
}

func TestExtract(t *testing.T) {
	m, tgz, _ := testPackage(t)

	t.Run("all files", func(t *testing.T) {
		dest := t.TempDir()
		if err := extract(m, tgz, wantAll(m), dest); err != nil {
			t.Fatal(err)
		}
		got := files(t, dest)
		want := map[string]string{"lib/a.bin": string(aData), "models/deep/b.bin": string(bData)}
		if len(got) != len(want) {
			t.Errorf("dest holds %v, want %v", keys(got), keys(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
	})

	t.Run("only wanted", func(t *testing.T) {
		dest := t.TempDir()
		f := m.Packages[0].Files[1]
		if err := extract(m, tgz, map[string]models.File{f.Src: f}, dest); err != nil {
			t.Fatal(err)
		}
		if got := files(t, dest); len(got) != 1 || got["models/deep/b.bin"] != string(bData) {
			t.Errorf("dest holds %v, want only models/deep/b.bin", got)
		}
	})

	t.Run("tampered entry", func(t *testing.T) {
		bad := *m
		bad.Packages = []models.Package{m.Packages[0]}
		bad.Packages[0].Files = []models.File{
			m.Packages[0].Files[0],
			{Src: "package/b.bin", Dst: "models/deep/b.bin", SHA256: models.SHA256Hex([]byte("other bytes"))},
		}
		dest := t.TempDir()
		err := extract(&bad, tgz, map[string]models.File{"package/b.bin": bad.Packages[0].Files[1]}, dest)
		if !errors.Is(err, models.ErrChecksum) {
			t.Fatalf("error = %v, want ErrChecksum", err)
		}
		if !strings.Contains(err.Error(), "package/b.bin") {
			t.Errorf("error %q does not name the entry", err)
		}
		if got := files(t, dest); len(got) != 0 {
			t.Errorf("tampered entry written: %v", keys(got))
		}
	})

	t.Run("missing entry", func(t *testing.T) {
		dest := t.TempDir()
		want := wantAll(m)
		want["package/c.bin"] = models.File{Src: "package/c.bin", Dst: "c.bin"}
		err := extract(m, tgz, want, dest)
		if err == nil || !strings.Contains(err.Error(), "package/c.bin") {
			t.Fatalf("error = %v, want package/c.bin not found", err)
		}
	})

	t.Run("symlink is not a file", func(t *testing.T) {
		dest := t.TempDir()
		link := models.File{Src: "package/sub/link.bin", Dst: "lib/a.bin"}
		err := extract(m, tgz, map[string]models.File{link.Src: link}, dest)
		if err == nil {
			t.Error("a symlink entry was accepted")
		}
		if got := files(t, dest); len(got) != 0 {
			t.Errorf("dest holds %v", keys(got))
		}
	})

	t.Run("not a tarball", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "x.tgz")
		if err := os.WriteFile(p, []byte("not gzip"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := extract(m, p, wantAll(m), t.TempDir()); err == nil {
			t.Error("no error")
		}
		if err := extract(m, filepath.Join(t.TempDir(), "absent.tgz"), wantAll(m), t.TempDir()); err == nil {
			t.Error("absent tarball: no error")
		}
	})
}

func keys(m map[string]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	return k
}

func TestMissingFiles(t *testing.T) {
	m, tgz, _ := testPackage(t)
	pkg := m.Packages[0]
	dest := t.TempDir()

	got, err := missingFiles(m, pkg, dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("empty dest: missing %v, want both files", got)
	}

	if err := extract(m, tgz, wantAll(m), dest); err != nil {
		t.Fatal(err)
	}
	if got, err := missingFiles(m, pkg, dest); err != nil || len(got) != 0 {
		t.Errorf("complete dest: missing %v, %v", got, err)
	}

	// Change one byte of b.bin.
	bPath := filepath.Join(dest, "models/deep/b.bin")
	changed := append([]byte(nil), bData...)
	changed[0] ^= 0x20
	if err := os.WriteFile(bPath, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = missingFiles(m, pkg, dest)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := got["package/b.bin"]; len(got) != 1 || !ok || f.Dst != "models/deep/b.bin" {
		t.Errorf("changed b.bin: missing %v, want only package/b.bin", got)
	}

	// Remove a.bin too.
	if err := os.Remove(filepath.Join(dest, "lib/a.bin")); err != nil {
		t.Fatal(err)
	}
	if got, _ := missingFiles(m, pkg, dest); len(got) != 2 {
		t.Errorf("removed a.bin: missing %v, want both", got)
	}

	// A file without any pinned digest is a manifest error.
	unpinned := pkg
	unpinned.Files = append(append([]models.File(nil), pkg.Files...), models.File{Src: "package/c", Dst: "c"})
	if _, err := missingFiles(m, unpinned, dest); err == nil || !strings.Contains(err.Error(), "no pinned sha256") {
		t.Errorf("unpinned file: error %v", err)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeNPM stands in for npm for the length of the test. pack is called with
// the package spec and destination folder.
func fakeNPM(t *testing.T, pack func(spec, dir string) ([]byte, error)) {
	t.Helper()
	old := npmPack
	npmPack = pack
	t.Cleanup(func() { npmPack = old })
}

func noNPM(t *testing.T) {
	fakeNPM(t, func(spec, dir string) ([]byte, error) {
		t.Errorf("npm pack %s called", spec)
		return nil, errors.New("npm must not run")
	})
}

// packer is a fake `npm pack` that writes data as file (the name npm gives
// the tarball in the destination) and reports filename in its JSON.
func packer(t *testing.T, calls *int, data []byte, file, filename string) func(spec, dir string) ([]byte, error) {
	return func(spec, dir string) ([]byte, error) {
		*calls++
		if spec != "@scope/pkg@1.0.0" {
			t.Errorf("npm pack %q", spec)
		}
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			return nil, err
		}
		return json.Marshal([]map[string]any{{"filename": filename, "name": "@scope/pkg"}})
	}
}

func TestCachedTarballUsesCache(t *testing.T) {
	m, _, tgz := testPackage(t)
	pkg := m.Packages[0]
	cache := t.TempDir()
	want := filepath.Join(cache, pkg.SHA256+".tgz")
	if err := os.WriteFile(want, tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	noNPM(t)
	got, err := cachedTarball(quietLogger(), pkg, cache)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("path %q, want %q", got, want)
	}
}

func TestCachedTarballDownloads(t *testing.T) {
	m, _, tgz := testPackage(t)
	pkg := m.Packages[0]
	// Newer npm reports the file name it wrote; older npm the scoped name.
	for _, filename := range []string{"scope-pkg-1.0.0.tgz", "@scope/pkg-1.0.0.tgz"} {
		t.Run(filename, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "not", "yet")
			calls := 0
			fakeNPM(t, packer(t, &calls, tgz, "scope-pkg-1.0.0.tgz", filename))
			got, err := cachedTarball(quietLogger(), pkg, cache)
			if err != nil {
				t.Fatal(err)
			}
			if calls != 1 {
				t.Errorf("npm called %d times", calls)
			}
			if want := filepath.Join(cache, pkg.SHA256+".tgz"); got != want {
				t.Errorf("path %q, want %q", got, want)
			}
			if data, err := os.ReadFile(got); err != nil || !bytes.Equal(data, tgz) {
				t.Errorf("cached tarball differs: %v", err)
			}
			if entries, _ := os.ReadDir(cache); len(entries) != 1 {
				t.Errorf("cache holds %d entries, want only the tarball", len(entries))
			}
			// The second time it comes from the cache.
			if _, err := cachedTarball(quietLogger(), pkg, cache); err != nil || calls != 1 {
				t.Errorf("second call: %v, npm called %d times", err, calls)
			}
		})
	}
}

func TestCachedTarballReplacesCorruptCache(t *testing.T) {
	m, _, tgz := testPackage(t)
	pkg := m.Packages[0]
	cache := t.TempDir()
	path := filepath.Join(cache, pkg.SHA256+".tgz")
	if err := os.WriteFile(path, tgz[:len(tgz)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	calls := 0
	fakeNPM(t, packer(t, &calls, tgz, "scope-pkg-1.0.0.tgz", "scope-pkg-1.0.0.tgz"))
	if _, err := cachedTarball(quietLogger(), pkg, cache); err != nil || calls != 1 {
		t.Fatalf("%v, npm called %d times", err, calls)
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, tgz) {
		t.Error("truncated cache entry not replaced")
	}
}

func TestCachedTarballRejectsWrongDownload(t *testing.T) {
	m, _, tgz := testPackage(t)
	pkg := m.Packages[0]
	cache := t.TempDir()
	calls := 0
	other := append(append([]byte(nil), tgz...), 0)
	fakeNPM(t, packer(t, &calls, other, "scope-pkg-1.0.0.tgz", "scope-pkg-1.0.0.tgz"))
	_, err := cachedTarball(quietLogger(), pkg, cache)
	if !errors.Is(err, models.ErrChecksum) {
		t.Fatalf("error = %v, want ErrChecksum", err)
	}
	if calls != 1 {
		t.Errorf("npm called %d times", calls)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("cache holds %v after a rejected download", entries)
	}

	// npm failing, or printing something unexpected, is an error too.
	fakeNPM(t, func(string, string) ([]byte, error) { return nil, errors.New("E404") })
	if _, err := cachedTarball(quietLogger(), pkg, cache); err == nil || !strings.Contains(err.Error(), "E404") {
		t.Errorf("npm failure: %v", err)
	}
	fakeNPM(t, func(string, string) ([]byte, error) { return []byte("[]"), nil })
	if _, err := cachedTarball(quietLogger(), pkg, cache); err == nil {
		t.Error("empty npm output: no error")
	}
}

// TestRunIsNoOp runs fetchdeps on the real manifest against the dependency
// folder of the checkout: everything is in place, so nothing is downloaded
// or rewritten. This is what makes re-running `make deps` free.
func TestRunIsNoOp(t *testing.T) {
	dest := os.Getenv("FACED_DEPS_DIR")
	if dest == "" {
		dest = filepath.Join("..", "..", ".deps")
	}
	if st, err := os.Stat(filepath.Join(dest, "models")); err != nil || !st.IsDir() {
		t.Skipf("no dependency folder at %s; run `make deps`", dest)
	}
	before := mtimes(t, dest)
	if len(before) == 0 {
		t.Fatal("empty dependency folder")
	}
	noNPM(t)
	cache := t.TempDir() // empty: any download attempt would go to npm
	if err := run(quietLogger(), dest, cache); err != nil {
		t.Fatalf("run: %v", err)
	}
	after := mtimes(t, dest)
	for p, mt := range before {
		if !after[p].Equal(mt) {
			t.Errorf("%s rewritten (mtime %v → %v)", p, mt, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s created", p)
		}
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("cache used: %v", entries)
	}
}

func mtimes(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = info.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// convertFixture is a dest folder holding every file the catalogue's
// converted models are made from, linked from the real dependency folder.
func convertFixture(t *testing.T) (m *models.Manifest, deps, dest string) {
	t.Helper()
	deps = os.Getenv("FACED_DEPS_DIR")
	if deps == "" {
		deps = filepath.Join("..", "..", ".deps")
	}
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	dest = t.TempDir()
	for _, p := range m.Packages {
		for _, f := range p.Files {
			if !strings.HasPrefix(f.Dst, "models/") {
				continue
			}
			real, err := filepath.Abs(filepath.Join(deps, f.Dst))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(real); err != nil {
				t.Skipf("no %s: run `make deps`", f.Dst)
			}
			os.MkdirAll(filepath.Join(dest, "models"), 0o755)
			if err := os.Symlink(real, filepath.Join(dest, f.Dst)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m, deps, dest
}

// TestConvertModels makes the converted catalogue models from the real
// files (a TFLite model; a TF.js weights manifest and its shard), as make
// deps does, and refuses a source or a result that does not match its pin.
func TestConvertModels(t *testing.T) {
	m, deps, dest := convertFixture(t)
	var converted []models.Spec
	for _, s := range m.Models {
		if s.ConvertedFrom != "" {
			converted = append(converted, s)
		}
	}
	if len(converted) < 2 {
		t.Fatalf("%d converted models, want the TFLite and the TF.js one", len(converted))
	}
	if err := convertModels(quietLogger(), m, dest); err != nil {
		t.Fatal(err)
	}
	st := make(map[string]os.FileInfo)
	for _, spec := range converted {
		if _, err := models.ReadVerified(filepath.Join(dest, spec.File), spec.SHA256); err != nil {
			t.Fatalf("converted file: %v", err)
		}
		st[spec.Name], _ = os.Stat(filepath.Join(dest, spec.File))
	}
	if err := convertModels(quietLogger(), m, dest); err != nil {
		t.Fatal(err)
	}
	for _, spec := range converted {
		if again, _ := os.Stat(filepath.Join(dest, spec.File)); !again.ModTime().Equal(st[spec.Name].ModTime()) {
			t.Errorf("%s: a converted file that matches its pin was converted again", spec.Name)
		}
	}

	put := func(rel string, data []byte) {
		t.Helper()
		if err := writeAtomic(filepath.Join(dest, rel), data); err != nil {
			t.Fatal(err)
		}
	}
	damaged := func(rel string) {
		t.Helper()
		src, err := os.ReadFile(filepath.Join(deps, rel))
		if err != nil {
			t.Fatal(err)
		}
		put(rel, append(bytes.Clone(src[:len(src)-1]), src[len(src)-1]^1))
	}
	restore := func(rel string) {
		t.Helper()
		src, err := os.ReadFile(filepath.Join(deps, rel))
		if err != nil {
			t.Fatal(err)
		}
		put(rel, src)
	}
	for _, spec := range converted {
		// A damaged source is refused before conversion.
		sources := []string{spec.ConvertedFrom}
		if spec.Name == "dlib-resnet-128" {
			sources = append(sources, "models/face_recognition_model.bin") // its shard
		}
		for _, src := range sources {
			os.Remove(filepath.Join(dest, spec.File))
			damaged(src)
			if err := convertModels(quietLogger(), m, dest); !errors.Is(err, models.ErrChecksum) || !strings.Contains(err.Error(), spec.Name) {
				t.Errorf("%s: damaged %s: err = %v, want ErrChecksum naming the model", spec.Name, src, err)
			}
			if _, statErr := os.Stat(filepath.Join(dest, spec.File)); statErr == nil {
				t.Errorf("%s: converted from a damaged %s", spec.Name, src)
			}
			restore(src)
		}
		// A conversion that does not give the pinned bytes is refused.
		wrong := clonePin(m, spec.Name, strings.Repeat("0", 64))
		if err := convertModels(quietLogger(), wrong, dest); !errors.Is(err, models.ErrChecksum) {
			t.Errorf("%s: wrong pin: err = %v, want ErrChecksum", spec.Name, err)
		}
		if _, statErr := os.Stat(filepath.Join(dest, spec.File)); statErr == nil {
			t.Errorf("%s: a conversion that missed its pin was written", spec.Name)
		}
	}
}

// clonePin is a copy of m where the named model pins sum.
func clonePin(m *models.Manifest, name, sum string) *models.Manifest {
	c := *m
	c.Models = slices.Clone(m.Models)
	for i := range c.Models {
		if c.Models[i].Name == name {
			c.Models[i].SHA256 = sum
		}
	}
	return &c
}

// TestConvertTFJSShards: a weights manifest's shards are read only from
// beside it and only when pinned.
func TestConvertTFJSShards(t *testing.T) {
	m, _, dest := convertFixture(t)
	const from = "models/face_recognition_model-weights_manifest.json"
	read := func(m *models.Manifest, manifest []byte) error {
		_, err := convert(m, dest, from, manifest)
		return err
	}
	src, err := os.ReadFile(filepath.Join(dest, from))
	if err != nil {
		t.Fatal(err)
	}

	// The shard's pin is gone: refused, not read unchecked.
	unpinned := *m
	unpinned.Packages = slices.Clone(m.Packages)
	for i, p := range unpinned.Packages {
		p.Files = slices.Clone(p.Files)
		for j := range p.Files {
			if p.Files[j].Dst == "models/face_recognition_model.bin" {
				p.Files[j].SHA256 = ""
			}
		}
		unpinned.Packages[i] = p
	}
	if err := read(&unpinned, src); err == nil || !strings.Contains(err.Error(), "face_recognition_model.bin has no pinned sha256") {
		t.Errorf("unpinned shard: err = %v", err)
	}
	// A shard outside the manifest's folder.
	escape := bytes.Replace(src, []byte(`"face_recognition_model.bin"`), []byte(`"../../etc/passwd"`), 1)
	if err := read(m, escape); err == nil || !strings.Contains(err.Error(), "leaves the manifest's folder") {
		t.Errorf("escaping shard: err = %v", err)
	}
	// A kind of file no converter reads.
	if _, err := convert(m, dest, "models/model.pb", src); err == nil || !strings.Contains(err.Error(), "no converter") {
		t.Errorf("unknown kind: err = %v", err)
	}
}
