package daemon

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
)

// CustomModel declares a model that is not in the catalogue: an embedder
// or detector the integrator licenses (vision.custom_models). faced reads
// the file only if its sha256 matches, then uses it like a catalogue
// model; vision.embedder or vision.detector name it. Example, an embedder:
//
//	vision:
//	  embedder: acme-face-v3
//	  custom_models:
//	    - name: acme-face-v3
//	      task: embed
//	      format: onnx
//	      file: /opt/acme/face-v3.onnx
//	      sha256: 0f3c...             # sha256sum /opt/acme/face-v3.onnx
//	      license: "ACME commercial licence #1234, 20 devices"
//	      input: {name: input, shape: [1, 3, 112, 112], layout: NCHW, color: RGB, mean: 127.5, scale: 0.0078125}
//	      dim: 512
//	      output: embedding          # "": the first output
//	      calibration: {low: 0.28, medium: 0.34, strict: 0.40}
//
// An embedder takes the face aligned on its five points in a square of its
// input's side (112x112 as ArcFace frames it, unless align_zoom and
// align_shift_y frame it otherwise) and returns one vector of dim values
// (L2-normalised by faced); its calibration gives the cosines
// at false-accept rates 1e-3, 1e-4 and 1e-5 (`faced eval verify
// --custom-models FILE --embedder NAME` measures them), which place its scores on the 0-1
// confidence scale. A detector names its decoder in family (ultraface or
// blazeface) and takes the whole photo, letterboxed to its input size.
type CustomModel struct {
	// Name is what vision.embedder / vision.detector give; it cannot be a
	// catalogue model's name (faced models list) and must not contain
	// "@", which separates it from the digest in an embedder id.
	Name string `json:"name" yaml:"name"`
	// Task is embed or detect.
	Task string `json:"task" yaml:"task"`
	// Family is a detector's decoder (ultraface, blazeface); an
	// embedder's is embedder (or empty).
	Family string `json:"family" yaml:"family"`
	// Format is onnx or tflite: which runtime loads the file.
	Format string `json:"format" yaml:"format"`
	// File is the model's path (relative paths are relative to the
	// working directory, as elsewhere in the file).
	File string `json:"file" yaml:"file"`
	// SHA256 is the file's digest in hex; a file that does not match is
	// refused.
	SHA256 string `json:"sha256" yaml:"sha256"`
	// License is recorded as given (GET /v1/device reports it).
	License string `json:"license" yaml:"license"`
	// Input says how pixels become the input tensor.
	Input CustomInput `json:"input" yaml:"input"`
	// Dim is an embedder's vector length; Output its output tensor's name
	// (empty: the first output).
	Dim    int    `json:"dim" yaml:"dim"`
	Output string `json:"output" yaml:"output"`
	// Crop is what an embedder sees: aligned (or empty). Detectors leave
	// it empty.
	Crop string `json:"crop" yaml:"crop"`
	// AlignZoom and AlignShiftY frame an embedder's aligned crop for a
	// network trained on another framing than ArcFace's (models.Geometry):
	// the five-point template is scaled by align_zoom (0.5..2; 0 or
	// absent: 1) about the crop's centre and moved down by align_shift_y
	// pixels of the 112x112 template (-40..40, negative: up), in a crop
	// of the input's side.
	AlignZoom   float32 `json:"align_zoom" yaml:"align_zoom"`
	AlignShiftY float32 `json:"align_shift_y" yaml:"align_shift_y"`
	// MinFace and MinScore tune a detector (0: faced's defaults): its
	// smallest reliably found face in input pixels, which sets the tiles of
	// distant faces (face.FaceSearch), and its confidence threshold, as
	// the catalogue's min_face and min_score do.
	MinFace  float32 `json:"min_face" yaml:"min_face"`
	MinScore float32 `json:"min_score" yaml:"min_score"`
	// Calibration is required for an embedder.
	Calibration *CustomCalibration `json:"calibration,omitempty" yaml:"calibration"`
}

// CustomInput is a declared model's input tensor: value = (pixel - mean) *
// scale, or ImageNet mean/std with norm: imagenet.
type CustomInput struct {
	// Name of the input tensor ("": by position).
	Name string `json:"name" yaml:"name"`
	// Shape is [1, C, H, W] (NCHW) or [1, H, W, C] (NHWC).
	Shape  []int64 `json:"shape" yaml:"shape"`
	Layout string  `json:"layout" yaml:"layout"` // NCHW or NHWC
	Color  string  `json:"color" yaml:"color"`   // RGB, BGR or GRAY
	Mean   float32 `json:"mean" yaml:"mean"`
	Scale  float32 `json:"scale" yaml:"scale"`
	Norm   string  `json:"norm" yaml:"norm"` // "" or imagenet
}

// CustomCalibration is an embedder's cosine at false-accept rates 1e-3
// (low), 1e-4 (medium) and 1e-5 (strict), and optionally where its
// strangers centre (zero; `faced eval verify` prints it as the impostor
// mean), which reads confidence 0.05.
type CustomCalibration struct {
	Low    float32 `json:"low" yaml:"low"`
	Medium float32 `json:"medium" yaml:"medium"`
	Strict float32 `json:"strict" yaml:"strict"`
	Zero   float32 `json:"zero" yaml:"zero"`
}

// spec is the declaration as the catalogue describes models. The file is
// made absolute here, against the working directory.
func (c CustomModel) spec() models.Spec {
	file := c.File
	if file != "" && !filepath.IsAbs(file) {
		if abs, err := filepath.Abs(file); err == nil {
			file = abs
		}
	}
	return models.Spec{
		Name: c.Name, Task: models.Task(c.Task), Family: c.Family, Format: models.Format(c.Format),
		File: file, SHA256: strings.ToLower(c.SHA256), Source: "configuration", License: c.License,
		Input: models.InputSpec{
			Name: c.Input.Name, Shape: c.Input.Shape, Layout: c.Input.Layout, Color: c.Input.Color,
			Mean: c.Input.Mean, Scale: c.Input.Scale, Norm: c.Input.Norm,
		},
		Crop: c.Crop, AlignZoom: c.AlignZoom, AlignShiftY: c.AlignShiftY, Dim: c.Dim, Output: c.Output, MinFace: c.MinFace, MinScore: c.MinScore,
	}
}

// customSpecs are the declarations as catalogue specs.
func (v VisionConfig) customSpecs() []models.Spec {
	out := make([]models.Spec, len(v.CustomModels))
	for i, c := range v.CustomModels {
		out[i] = c.spec()
	}
	return out
}

// manifest is the catalogue with the declared models added.
func (v VisionConfig) manifest() (*models.Manifest, error) {
	m, err := models.LoadManifest()
	if err != nil {
		return nil, err
	}
	if err := m.AddCustom(v.customSpecs()...); err != nil {
		return nil, fmt.Errorf("vision.custom_models: %w", err)
	}
	return m, nil
}

// CustomCalibrations are the declared embedders' thresholds, by name.
func (v VisionConfig) CustomCalibrations() map[string]service.Calibration {
	out := map[string]service.Calibration{}
	for _, c := range v.CustomModels {
		if c.Task == string(models.TaskEmbed) && c.Calibration != nil {
			out[c.Name] = service.Calibration{Low: c.Calibration.Low, Medium: c.Calibration.Medium, Strict: c.Calibration.Strict, Zero: c.Calibration.Zero}
		}
	}
	return out
}

// validateCustom checks every declaration, naming each problem's setting
// (vision.custom_models[1].sha256), and returns the declared names with
// their tasks for the model lookups.
func (v VisionConfig) validateCustom(m *models.Manifest, bad func(field, format string, args ...any)) map[string]models.Task {
	tasks := map[string]models.Task{}
	seen := map[string]int{}
	for i, c := range v.CustomModels {
		field := func(name string) string { return fmt.Sprintf("vision.custom_models[%d].%s", i, name) }
		for _, err := range models.ValidateCustom(c.spec()) {
			if se, ok := err.(*models.SpecError); ok {
				bad(field(se.Field), "%s", se.Msg)
			} else {
				bad(fmt.Sprintf("vision.custom_models[%d]", i), "%v", err)
			}
		}
		if _, err := m.Model(c.Name); err == nil {
			bad(field("name"), "%q is a catalogue model (faced models list): a declaration cannot replace it, choose another name", c.Name)
		} else if j, dup := seen[c.Name]; dup {
			bad(field("name"), "%q is also vision.custom_models[%d]'s name", c.Name, j)
		} else {
			seen[c.Name] = i
			tasks[c.Name] = models.Task(c.Task)
		}
		switch {
		case c.Task == string(models.TaskEmbed) && c.Calibration == nil:
			bad(field("calibration"), "required for an embedder: {low, medium, strict}, its cosines at false-accept rates 1e-3, 1e-4, 1e-5 (faced eval verify --custom-models FILE --embedder %s)", c.Name)
		case c.Task == string(models.TaskEmbed):
			k := c.Calibration
			ok := true
			for _, x := range []float32{k.Low, k.Medium, k.Strict} {
				ok = ok && !math.IsNaN(float64(x)) && x > -1 && x < 1
			}
			if !ok || !(k.Low < k.Medium && k.Medium < k.Strict) {
				bad(field("calibration"), "want cosines in (-1, 1) with low < medium < strict, got %v / %v / %v", k.Low, k.Medium, k.Strict)
			}
			if k.Zero != 0 && !(k.Zero > -1 && k.Zero < k.Low) { // also refuses NaN
				bad(field("calibration.zero"), "want a cosine in (-1, low), where strangers centre (0 or absent: 0), got %v", k.Zero)
			}
		case c.Calibration != nil:
			bad(field("calibration"), "only embedders have a calibration")
		}
		if !(c.MinFace >= 0 && c.MinFace <= 4096) { // also refuses NaN
			bad(field("min_face"), "want 0..4096 input pixels (0: the default), got %v", c.MinFace)
		}
		if !(c.MinScore >= 0 && c.MinScore <= 1) {
			bad(field("min_score"), "want 0..1 (0: the default), got %v", c.MinScore)
		}
	}
	return tasks
}
