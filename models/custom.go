package models

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Custom models: an integrator who licenses a stronger embedder or detector
// declares it in the configuration (the daemon's vision.custom_models) with
// the same facts the catalogue pins for its own models: file, sha256,
// licence and input spec. AddCustom checks the declaration and adds it to a
// loaded manifest, so everything that looks models up by name (the
// pipeline, the daemon) then treats it like a catalogue model: its file is
// read only if its sha256 matches, and an embedder's vectors carry its
// EmbedderID (name@sha256-prefix) like any other.
//
// Only the two tasks whose output faced can decode generically are open to
// custom models: embedders (an aligned face in, one vector out: the ArcFace
// 112x112 crop, or another square side and framing given by its input
// shape, align_zoom and align_shift_y) and detectors of a family faced
// already decodes (NewDetector).

// CustomTasks are the tasks a configured model may have.
var CustomTasks = []Task{TaskDetect, TaskEmbed}

// SpecError is one problem with a declared model; Field is the
// declaration's key ("sha256", "input.shape"), so a configuration layer can
// name the setting.
type SpecError struct {
	Field string
	Msg   string
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Msg }

var sha256Digits = regexp.MustCompile(`^[0-9a-f]{64}$`)

var customName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$`)

// The sides of a declared embedder's square input: the aligned crop is
// warped at that size (Geometry), so any square works; these only keep a
// typo from asking for a huge crop.
const (
	minEmbedSide = 32
	maxEmbedSide = 512
)

// MaxDim bounds an embedding's length, a fused one's included: the store
// keeps up to 4096 values per face.
const MaxDim = 4096

// ValidateCustom checks a declared model on its own (not against the
// catalogue: AddCustom does that) and returns every problem, each a
// *SpecError. It does not read the file.
func ValidateCustom(s Spec) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &SpecError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if !customName.MatchString(s.Name) {
		bad("name", "want 1-48 letters, digits, '.', '_' or '-' (starting with a letter or digit), got %q", s.Name)
	}
	if !slices.Contains(CustomTasks, s.Task) {
		bad("task", "want detect or embed, got %q", s.Task)
	}
	if s.Format != FormatONNX && s.Format != FormatTFLite {
		bad("format", "want onnx or tflite, got %q", s.Format)
	}
	if strings.TrimSpace(s.File) == "" {
		bad("file", "required (the model file's path)")
	} else if ext := strings.TrimPrefix(filepath.Ext(s.File), "."); s.Format != "" && ext != "" && ext != string(s.Format) {
		// A hint, not a rule a runtime needs; but a mismatch is almost
		// always a wrong file or a wrong format line.
		bad("file", "%q does not end in .%s (format %s)", s.File, s.Format, s.Format)
	}
	if !sha256Digits.MatchString(s.SHA256) {
		bad("sha256", "want the file's sha256 as 64 hex digits (sha256sum FILE), got %q", s.SHA256)
	}
	if strings.TrimSpace(s.License) == "" {
		bad("license", "required: the licence under which the model is used, recorded as given")
	}
	inputOK := validateInput(s.Input, bad)
	errs = append(errs, ValidateAlign(s)...)

	switch s.Task {
	case TaskEmbed:
		if s.Family != "" && s.Family != "embedder" {
			bad("family", "an embedder's family is embedder (or empty), got %q", s.Family)
		}
		if s.Crop != "" && s.Crop != "aligned" {
			bad("crop", "an embedder sees the aligned face: want aligned (or empty), got %q", s.Crop)
		}
		if s.Dim <= 0 || s.Dim > MaxDim {
			bad("dim", "an embedder's vector length is required, 1..%d, got %d", MaxDim, s.Dim)
		}
		if inputOK {
			if w, h := s.Input.Width(), s.Input.Height(); w != h || w < minEmbedSide || w > maxEmbedSide {
				bad("input.shape", "an embedder takes a square aligned face (%d for the ArcFace crop), %d..%d pixels a side, got %dx%d",
					AlignedSize, minEmbedSide, maxEmbedSide, w, h)
			}
		}
		if s.Input.Color == "GRAY" {
			bad("input.color", "an embedder takes a colour face (RGB or BGR)")
		}
	case TaskDetect:
		if s.Dim != 0 {
			bad("dim", "only embedders have a dim")
		}
		if s.Output != "" {
			bad("output", "only embedders have an output name; a detector's outputs are its family's")
		}
		if s.Crop != "" {
			bad("crop", "a detector sees the whole photo: leave crop empty")
		}
		if s.Family == "" {
			bad("family", "required: the decoder, one of %s", strings.Join(DetectorFamilies, ", "))
		} else if inputOK {
			if _, err := NewDetector(s); errors.Is(err, ErrUnknownFamily) {
				bad("family", "no detector decoder %q (want one of %s)", s.Family, strings.Join(DetectorFamilies, ", "))
			} else if err != nil {
				bad("input.shape", "%v", err)
			}
		}
	}
	return errs
}

// DetectorFamilies are the detector decoders NewDetector knows, for
// messages (a test keeps the two in step).
var DetectorFamilies = []string{"ultraface", "blazeface"}

// validateInput checks an input spec; ok reports that the shape is usable
// (so sizes can be read from it).
func validateInput(in InputSpec, bad func(field, format string, args ...any)) (ok bool) {
	layoutOK := in.Layout == "NCHW" || in.Layout == "NHWC"
	if !layoutOK {
		bad("input.layout", "want NCHW or NHWC, got %q", in.Layout)
	}
	if in.Color != "RGB" && in.Color != "BGR" && in.Color != "GRAY" {
		bad("input.color", "want RGB, BGR or GRAY, got %q", in.Color)
	}
	ok = len(in.Shape) == 4 && layoutOK
	if len(in.Shape) != 4 {
		bad("input.shape", "want 4 dimensions ([1, C, H, W] for NCHW, [1, H, W, C] for NHWC), got %v", in.Shape)
	} else {
		if in.Shape[0] != 1 && in.Shape[0] != -1 {
			bad("input.shape", "the batch dimension must be 1 (or -1), got %d", in.Shape[0])
			ok = false
		}
		for _, d := range in.Shape[1:] {
			if d <= 0 || d > 8192 {
				bad("input.shape", "dimensions must be 1..8192, got %v", in.Shape)
				ok = false
				break
			}
		}
		if ok {
			c := in.Shape[1]
			if in.Layout == "NHWC" {
				c = in.Shape[3]
			}
			if want := int64(in.Channels()); c != want && (in.Color == "RGB" || in.Color == "BGR" || in.Color == "GRAY") {
				bad("input.shape", "%d channels for colour %s (want %d; layout %s)", c, in.Color, want, in.Layout)
			}
		}
	}
	switch in.Norm {
	case "":
		if !finite32(in.Mean) || !finite32(in.Scale) || in.Scale == 0 {
			bad("input.scale", "want a finite, non-zero scale (value = (pixel - mean) * scale), got mean %v, scale %v", in.Mean, in.Scale)
		}
	case "imagenet":
	default:
		bad("input.norm", "want imagenet or empty, got %q", in.Norm)
	}
	return ok
}

func finite32(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// ErrNameTaken reports a declared model whose name is already a model's.
var ErrNameTaken = errors.New("name taken")

// AddCustom checks declared models (ValidateCustom) and adds them to m,
// marked Custom. A name already in the manifest, catalogue or declared, is
// ErrNameTaken: a declaration cannot shadow a pinned model. It adds
// nothing unless every declaration is valid.
func (m *Manifest) AddCustom(specs ...Spec) error {
	var errs []error
	names := map[string]bool{}
	for _, s := range m.Models {
		names[s.Name] = true
	}
	for _, s := range specs {
		for _, err := range ValidateCustom(s) {
			errs = append(errs, fmt.Errorf("models: custom model %q: %w", s.Name, err))
		}
		if names[s.Name] {
			errs = append(errs, fmt.Errorf("models: custom model %q: %w", s.Name, ErrNameTaken))
		}
		names[s.Name] = true
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, s := range specs {
		s.Custom = true
		if s.Task == TaskEmbed {
			s.Family, s.Crop = "embedder", "aligned"
		}
		m.Models = append(m.Models, s)
	}
	return nil
}
