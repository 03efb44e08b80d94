package models

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

var knownTasks = map[Task]bool{
	TaskDetect: true, TaskLandmarks: true, TaskEmbed: true, TaskLiveness: true,
	TaskAge: true, TaskGender: true, TaskEmotion: true, TaskPose: true, TaskEyes: true,
}

func TestManifestParses(t *testing.T) {
	m := mustManifest(t)
	if m.Version != 1 {
		t.Errorf("version = %d, want 1", m.Version)
	}
	if len(m.Packages) == 0 || len(m.Models) == 0 {
		t.Fatalf("manifest has %d packages and %d models", len(m.Packages), len(m.Models))
	}
}

func TestManifestModelsComplete(t *testing.T) {
	m := mustManifest(t)
	seen := map[string]bool{}
	for _, s := range m.Models {
		t.Run(s.Name, func(t *testing.T) {
			if s.Name == "" || s.Family == "" || s.File == "" || s.Source == "" || s.License == "" {
				t.Errorf("empty field in %+v", s)
			}
			if seen[s.Name] {
				t.Errorf("duplicate model name %q", s.Name)
			}
			seen[s.Name] = true
			if !knownTasks[s.Task] {
				t.Errorf("unknown task %q", s.Task)
			}
			switch s.Format {
			case FormatONNX, FormatTFLite:
				if ext := strings.TrimPrefix(filepath.Ext(s.File), "."); ext != string(s.Format) {
					t.Errorf("file %s does not match format %s", s.File, s.Format)
				}
			default:
				t.Errorf("unknown format %q", s.Format)
			}
			if !hex64.MatchString(s.SHA256) {
				t.Errorf("sha256 %q is not 64 lowercase hex digits", s.SHA256)
			}
			if !strings.HasPrefix(s.File, "models/") {
				t.Errorf("file %q is not below models/", s.File)
			}
			switch {
			case s.Task == TaskDetect && s.Crop != "":
				t.Errorf("detector has crop %q", s.Crop)
			case s.Task != TaskDetect && s.Crop != "box" && s.Crop != "aligned" && s.Crop != "eyes":
				t.Errorf("crop %q", s.Crop)
			case s.Crop == "box" && s.CropScale <= 0:
				t.Errorf("box crop with scale %v", s.CropScale)
			}
			// The aligned crop is warped at the embedder's side: 112 for
			// the ArcFace-style networks, 150 for dlib's.
			if s.Task == TaskEmbed && (s.Crop != "aligned" || s.Input.Width() != s.Input.Height()) {
				t.Errorf("embedder must take a square aligned face, has crop %q and input %dx%d",
					s.Crop, s.Input.Width(), s.Input.Height())
			}
		})
	}
}

func TestManifestInputSpecs(t *testing.T) {
	for _, s := range mustManifest(t).Models {
		t.Run(s.Name, func(t *testing.T) {
			in := s.Input
			if in.Name == "" {
				t.Error("input has no name")
			}
			if len(in.Shape) != 4 {
				t.Fatalf("shape %v is not 4-D", in.Shape)
			}
			if in.Shape[0] != 1 {
				t.Errorf("batch %d, want 1", in.Shape[0])
			}
			var ch int64
			switch in.Layout {
			case "NCHW":
				ch = in.Shape[1]
				if in.Height() != int(in.Shape[2]) || in.Width() != int(in.Shape[3]) {
					t.Errorf("NCHW %v: Width/Height = %d/%d", in.Shape, in.Width(), in.Height())
				}
			case "NHWC":
				ch = in.Shape[3]
				if in.Height() != int(in.Shape[1]) || in.Width() != int(in.Shape[2]) {
					t.Errorf("NHWC %v: Width/Height = %d/%d", in.Shape, in.Width(), in.Height())
				}
			default:
				t.Fatalf("layout %q", in.Layout)
			}
			if int(ch) != in.Channels() {
				t.Errorf("shape %v has %d channels, colour %s wants %d", in.Shape, ch, in.Color, in.Channels())
			}
			if in.Width() <= 0 || in.Height() <= 0 {
				t.Errorf("size %dx%d", in.Width(), in.Height())
			}
			switch in.Color {
			case "RGB", "BGR", "GRAY":
			default:
				t.Errorf("colour %q", in.Color)
			}
			switch in.Norm {
			case "imagenet":
				if in.Color == "GRAY" {
					t.Error("imagenet norm on a grey input")
				}
			case "":
				if in.Scale <= 0 {
					t.Errorf("scale %v", in.Scale)
				}
			default:
				t.Errorf("norm %q", in.Norm)
			}
		})
	}
}

func TestManifestPackages(t *testing.T) {
	m := mustManifest(t)
	dstCount := map[string]int{}
	dstPkg := map[string]Package{}
	for _, p := range m.Packages {
		if p.NPM == "" || p.License == "" || len(p.Files) == 0 {
			t.Errorf("package %+v incomplete", p)
		}
		if !hex64.MatchString(p.SHA256) {
			t.Errorf("%s: tarball sha256 %q", p.NPM, p.SHA256)
		}
		for _, f := range p.Files {
			dstCount[f.Dst]++
			dstPkg[f.Dst] = p
			if !strings.HasPrefix(f.Src, "package/") {
				t.Errorf("%s: src %q outside package/", p.NPM, f.Src)
			}
			if filepath.IsAbs(f.Dst) || strings.Contains(f.Dst, "..") {
				t.Errorf("%s: dst %q escapes the dependency folder", p.NPM, f.Dst)
			}
			sum, ok := m.FileSHA256(f.Dst)
			if !ok || !hex64.MatchString(sum) {
				t.Errorf("%s: %s has no pinned sha256 (got %q, %v)", p.NPM, f.Dst, sum, ok)
			}
			if f.SHA256 != "" && !hex64.MatchString(f.SHA256) {
				t.Errorf("%s: %s sha256 %q", p.NPM, f.Dst, f.SHA256)
			}
		}
	}
	for dst, n := range dstCount {
		if n != 1 {
			t.Errorf("%s is a dst %d times", dst, n)
		}
	}
	for _, s := range m.Models {
		from := s.File
		if s.ConvertedFrom != "" {
			// Made at make deps time from another extracted file, which
			// must itself be pinned and come from the same package.
			if dstCount[s.File] != 0 {
				t.Errorf("model %s: converted file %s is also extracted from a package", s.Name, s.File)
			}
			if s.Format != FormatONNX {
				t.Errorf("model %s: converted to %s, want onnx", s.Name, s.Format)
			}
			from = s.ConvertedFrom
		}
		if dstCount[from] != 1 {
			t.Errorf("model %s: file %s is a dst in %d packages, want 1", s.Name, from, dstCount[from])
			continue
		}
		p := dstPkg[from]
		if p.NPM != s.Source {
			t.Errorf("model %s: source %s, but its file comes from %s", s.Name, s.Source, p.NPM)
		}
		if p.License != s.License {
			t.Errorf("model %s: license %s, package %s has %s", s.Name, s.License, p.NPM, p.License)
		}
		if sum, _ := m.FileSHA256(s.File); s.ConvertedFrom == "" && sum != s.SHA256 {
			t.Errorf("model %s: FileSHA256 = %s, model pins %s", s.Name, sum, s.SHA256)
		}
	}
	if _, ok := m.FileSHA256("models/not-in-manifest.onnx"); ok {
		t.Error("FileSHA256 of an unknown file reported a digest")
	}
}

func TestFileSHA256PrefersPackageEntry(t *testing.T) {
	m := &Manifest{
		Packages: []Package{{Files: []File{
			{Src: "package/a", Dst: "models/a.onnx", SHA256: "pkg"},
			{Src: "package/b", Dst: "models/b.onnx"},
		}}},
		Models: []Spec{
			{Name: "a", File: "models/a.onnx", SHA256: "model-a"},
			{Name: "b", File: "models/b.onnx", SHA256: "model-b"},
		},
	}
	for _, tc := range []struct{ dst, want string }{
		{"models/a.onnx", "pkg"},
		{"models/b.onnx", "model-b"},
	} {
		if got, ok := m.FileSHA256(tc.dst); !ok || got != tc.want {
			t.Errorf("FileSHA256(%s) = %q, %v; want %q", tc.dst, got, ok, tc.want)
		}
	}
}

func TestModelLookup(t *testing.T) {
	m := mustManifest(t)
	for _, s := range m.Models {
		got, err := m.Model(s.Name)
		if err != nil || got.Name != s.Name || got.SHA256 != s.SHA256 {
			t.Errorf("Model(%q) = %q, %v", s.Name, got.Name, err)
		}
	}
	for _, name := range []string{"no-such-model", "", "ARCFACE-R512"} {
		_, err := m.Model(name)
		if !errors.Is(err, ErrUnknownModel) {
			t.Errorf("Model(%q) error = %v, want ErrUnknownModel", name, err)
		}
	}
}

func TestByTask(t *testing.T) {
	m := mustManifest(t)
	total := 0
	for task := range knownTasks {
		got := m.ByTask(task)
		want := 0
		for _, s := range m.Models {
			if s.Task == task {
				want++
			}
		}
		if len(got) != want {
			t.Errorf("ByTask(%s): %d models, want %d", task, len(got), want)
		}
		for _, s := range got {
			if s.Task != task {
				t.Errorf("ByTask(%s) returned %s of task %s", task, s.Name, s.Task)
			}
		}
		total += len(got)
	}
	if total != len(m.Models) {
		t.Errorf("ByTask over all tasks found %d models, manifest has %d", total, len(m.Models))
	}
	if got := m.ByTask("no-such-task"); len(got) != 0 {
		t.Errorf("ByTask(unknown) = %v", got)
	}
	// Manifest order is kept.
	det := m.ByTask(TaskDetect)
	if len(det) < 2 || det[0].Name != "ultraface-rfb320" || det[1].Name != "blazeface-short" {
		t.Errorf("ByTask(detect) order: %v", det)
	}
}

func TestReadVerified(t *testing.T) {
	dir := t.TempDir()
	data := []byte("weights of a very small network\x00\x01\x02")
	sum := SHA256Hex(data)
	spec := Spec{Name: "tiny", File: "models/tiny.onnx", SHA256: sum}
	path := filepath.Join(dir, spec.File)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := spec.Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if string(got) != string(data) {
		t.Fatalf("Load returned %q, want %q", got, data)
	}

	t.Run("flipped byte", func(t *testing.T) {
		bad := append([]byte(nil), data...)
		bad[3] ^= 0x01
		badSum := SHA256Hex(bad)
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := spec.Load(dir)
		if !errors.Is(err, ErrChecksum) {
			t.Fatalf("Load error = %v, want ErrChecksum", err)
		}
		if got != nil {
			t.Errorf("Load returned %d bytes with the error", len(got))
		}
		for _, d := range []string{sum, badSum} {
			if !strings.Contains(err.Error(), d) {
				t.Errorf("error %q does not name digest %s", err, d)
			}
		}
		if _, err := ReadVerified(path, sum); !errors.Is(err, ErrChecksum) {
			t.Errorf("ReadVerified error = %v, want ErrChecksum", err)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		_, err := ReadVerified(filepath.Join(dir, "models", "absent.onnx"), sum)
		if err == nil || errors.Is(err, ErrChecksum) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error = %v, want a not-exist error", err)
		}
	})
}

func TestSHA256Hex(t *testing.T) {
	// sha256 of the empty string.
	const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got := SHA256Hex(nil); got != empty {
		t.Errorf("SHA256Hex(nil) = %s", got)
	}
	if got := SHA256Hex([]byte("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("SHA256Hex(abc) = %s", got)
	}
}

// TestDepsVerify checks that every model in the dependency folder (after
// `make deps`) is the pinned one.
func TestDepsVerify(t *testing.T) {
	dir := FindDir()
	if dir == "" || !isDir(filepath.Join(dir, "models")) {
		t.Skip("no dependency folder; run `make deps`")
	}
	for _, s := range mustManifest(t).Models {
		if _, err := s.Load(dir); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
}
