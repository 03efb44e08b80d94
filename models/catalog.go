// Package models holds the catalogue of face networks faced can run and, one
// file per network family, how to feed each one and how to decode its outputs.
//
// The catalogue is manifest.json, embedded at build time: it pins every model
// and runtime library by sha256 to the npm package it is extracted from, so a
// model file on disk is loaded only if it is byte for byte the one that was
// evaluated. The package is pure Go: it turns pixels into tensors and tensors
// into results, and leaves image handling to package face and inference to
// package accel.
package models

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

//go:embed manifest.json
var manifestJSON []byte

// ErrChecksum reports a model or library file whose bytes differ from the
// pinned sha256: it was tampered with, truncated, or is another version.
var ErrChecksum = errors.New("sha256 mismatch")

// ErrUnknownModel reports a model name that is not in the catalogue.
var ErrUnknownModel = errors.New("unknown model")

// Manifest is the parsed manifest.json.
type Manifest struct {
	Version  int       `json:"version"`
	Packages []Package `json:"packages"`
	Models   []Spec    `json:"models"`
}

// Package is one npm package the runtimes or models are extracted from.
type Package struct {
	NPM     string `json:"npm"` // name@version, as given to `npm pack`
	SHA256  string `json:"sha256"`
	License string `json:"license"`
	Files   []File `json:"files"`
}

// File is one file extracted from a package into the dependency folder.
// SHA256 may be empty for model files: the model's own entry pins them.
type File struct {
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	SHA256 string `json:"sha256,omitempty"`
}

// Spec describes one network: what it is for, where its file is and what
// its input looks like.
type Spec struct {
	Name    string    `json:"name"`
	Task    Task      `json:"task"`
	Family  string    `json:"family"`
	Format  Format    `json:"format"`
	File    string    `json:"file"` // relative to the dependency folder
	SHA256  string    `json:"sha256"`
	Source  string    `json:"source"` // npm package@version
	License string    `json:"license"`
	Input   InputSpec `json:"input"`
	// Crop is the region of the photo the network looks at: "box" (the
	// detection box made square and scaled by CropScale about its centre),
	// "aligned" (the face aligned on its five points, in a square of the
	// input's side framed as Geometry says) or "eyes" (each eye from
	// the 68 landmarks). Detectors see the whole photo and leave it empty.
	Crop      string  `json:"crop,omitempty"`
	CropScale float32 `json:"crop_scale,omitempty"`
	// AlignZoom and AlignShiftY frame an "aligned" crop differently from
	// the ArcFace crop, for embedders trained on another framing: the
	// template's five points are scaled by AlignZoom about the crop's
	// centre and moved down by AlignShiftY template pixels (negative: up).
	// Zero means the ArcFace framing (zoom 1, shift 0). See Geometry.
	AlignZoom   float32 `json:"align_zoom,omitempty"`
	AlignShiftY float32 `json:"align_shift_y,omitempty"`
	// Dim is an embedder's vector length.
	Dim int `json:"dim,omitempty"`
	// MinFace is a detector's smallest reliably found face, in input
	// pixels: the pipeline tiles large photos so that the faces it looks
	// for reach this size (face.FaceSearch). Measured on wider/.
	MinFace float32 `json:"min_face,omitempty"`
	// MinScore is a detector's default confidence threshold, chosen on
	// wider/ and deepface/ (README, "Choosing the models").
	MinScore float32 `json:"min_score,omitempty"`
	// Output names the output tensor an embedder's vector is read from;
	// empty means the first output. Models declared in the configuration
	// (see AddCustom) may need it.
	Output string `json:"output,omitempty"`
	// ConvertedFrom names another catalogue file (a TensorFlow Lite model,
	// or a TensorFlow.js weights manifest whose shards lie beside it) this
	// ONNX file is made from at `make deps` time by models/toonnx, because
	// no registry ships it ready; SHA256 pins the conversion's
	// deterministic output.
	ConvertedFrom string `json:"converted_from,omitempty"`
	// Custom marks a model declared in the configuration rather than
	// pinned in the catalogue; File is then an absolute path.
	Custom bool `json:"custom,omitempty"`
}

// Task is what a network computes.
type Task string

// The tasks of the catalogue.
const (
	TaskDetect    Task = "detect"
	TaskLandmarks Task = "landmarks"
	TaskEmbed     Task = "embed"
	TaskLiveness  Task = "liveness"
	TaskAge       Task = "age"
	TaskGender    Task = "gender"
	TaskEmotion   Task = "emotion"
	TaskPose      Task = "pose"
	TaskEyes      Task = "eyes"
)

// Format is the file format of a network, which decides the backends that
// can run it.
type Format string

// The model formats.
const (
	FormatONNX   Format = "onnx"
	FormatTFLite Format = "tflite"
)

// InputSpec says how pixels become the network's input tensor:
// value = (pixel - Mean) * Scale, or ImageNet mean/std when Norm is
// "imagenet".
type InputSpec struct {
	Name   string  `json:"name"`
	Shape  []int64 `json:"shape"`
	Layout string  `json:"layout"` // NCHW or NHWC
	Color  string  `json:"color"`  // RGB, BGR or GRAY
	Mean   float32 `json:"mean"`
	Scale  float32 `json:"scale"`
	Norm   string  `json:"norm,omitempty"`
}

// Width and Height are the spatial size of the input tensor.
func (in InputSpec) Width() int {
	if in.Layout == "NHWC" {
		return int(in.Shape[2])
	}
	return int(in.Shape[3])
}

// Height is the input tensor's height in pixels.
func (in InputSpec) Height() int {
	if in.Layout == "NHWC" {
		return int(in.Shape[1])
	}
	return int(in.Shape[2])
}

// LoadManifest parses the embedded manifest.
func LoadManifest() (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(manifestJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("models: parse manifest: %w", err)
	}
	var errs []error
	for _, s := range m.Models {
		for _, err := range ValidateAlign(s) {
			errs = append(errs, fmt.Errorf("models: manifest: model %s: %w", s.Name, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &m, nil
}

// Model returns the spec of the named model.
func (m *Manifest) Model(name string) (Spec, error) {
	i := slices.IndexFunc(m.Models, func(s Spec) bool { return s.Name == name })
	if i < 0 {
		return Spec{}, fmt.Errorf("models: %q: %w", name, ErrUnknownModel)
	}
	return m.Models[i], nil
}

// ByTask lists the models of one task, in manifest order.
func (m *Manifest) ByTask(t Task) []Spec {
	var out []Spec
	for _, s := range m.Models {
		if s.Task == t {
			out = append(out, s)
		}
	}
	return out
}

// FileSHA256 returns the pinned digest of a dependency file, looking first at
// the package entry and then at the model that names the file.
func (m *Manifest) FileSHA256(dst string) (string, bool) {
	for _, p := range m.Packages {
		for _, f := range p.Files {
			if f.Dst == dst && f.SHA256 != "" {
				return f.SHA256, true
			}
		}
	}
	for _, s := range m.Models {
		if s.File == dst {
			return s.SHA256, true
		}
	}
	return "", false
}

// ReadVerified reads a file and returns its bytes only if their sha256 is
// want. Callers hand the returned bytes to the runtime rather than the path,
// so the file cannot be swapped between the check and the load.
func ReadVerified(path, want string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("models: read %s: %w", path, err)
	}
	if got := SHA256Hex(data); got != want {
		return nil, fmt.Errorf("models: %s: %w: got %s, want %s (re-run `make deps` or reinstall the package)",
			path, ErrChecksum, got, want)
	}
	return data, nil
}

// Load reads the spec's file below dir (or at File itself when it is an
// absolute path, as a configured model's is) and verifies it.
func (s Spec) Load(dir string) ([]byte, error) {
	path := s.File
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	if !s.Custom {
		return ReadVerified(path, s.SHA256)
	}
	// A declared model: the fix is in the declaration or the file, not
	// in `make deps`.
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("models: custom model %s: read %s: %w", s.Name, path, err)
	}
	if got := SHA256Hex(data); got != s.SHA256 {
		return nil, fmt.Errorf("models: custom model %s: %s: %w: the file's is %s, the declared one is %s (a different or damaged file, or a wrong sha256 in the declaration: compare sha256sum %s)",
			s.Name, path, ErrChecksum, got, s.SHA256, path)
	}
	return data, nil
}

// SHA256Hex is the lowercase hex sha256 of data.
func SHA256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
