// Package daemon wires faced together: configuration, the vision pipeline
// on its accelerator backends, and (in later layers) the store, the APIs and
// fleet sync.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/accel/backends"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
)

// VisionConfig chooses the networks and the runtime they run on. The
// defaults are the combination `faced eval` and `faced bench` measured best
// (see README.md).
type VisionConfig struct {
	// Backend runs the models of its format; models of another format get
	// that format's CPU backend (onnxrt for ONNX, tflite for TFLite).
	Backend string `json:"backend" yaml:"backend"`
	// Device of the primary backend: cpu, cuda, tensorrt, edgetpu, opencl.
	Device string `json:"device" yaml:"device"`
	// Threads per inference session (0: the runtime's default).
	Threads int `json:"threads" yaml:"threads"`
	// Sessions per model: requests that may run one model at once.
	Sessions int `json:"sessions" yaml:"sessions"`

	Detector  string `json:"detector" yaml:"detector"`
	Landmarks string `json:"landmarks" yaml:"landmarks"`
	// Align is "keypoints" (detector keypoints) or "landmarks" (the 68);
	// empty: keypoints when the detector has them.
	Align string `json:"align" yaml:"align"`
	// Embedder names one embedder, or two or three joined by "+"
	// ("arcface-r512+mobilefacenet-192-onnx+dlib-resnet-128", the default):
	// the others are fused to the first (face.Config.FuseEmbedder),
	// separating strangers better for an embedder run each. The embedder
	// ID names them all, so changing any needs re-enrolment (GET
	// /v1/reembed); each fused combination needs its own calibration.
	Embedder   string `json:"embedder" yaml:"embedder"`
	Liveness   string `json:"liveness" yaml:"liveness"`
	Attributes bool   `json:"attributes" yaml:"attributes"`
	// Flip embeds each face and its mirror image (face.Config.Flip): a
	// second embedder run for slightly better recognition. Its embedder
	// ID differs, so switching it needs re-enrolment (GET /v1/reembed).
	Flip bool `json:"flip" yaml:"flip"`

	// MinScore is the detection confidence a face needs; 0: the
	// detector's measured default (models/manifest.json).
	MinScore float32 `json:"min_score" yaml:"min_score"`
	// MinFacePx is the smallest face detection looks for, in photo
	// pixels; 0: 20 px or 1/48 of the photo's long side, whichever is
	// bigger (face.FaceSearch). Smaller means more detector runs on large
	// photos.
	MinFacePx int `json:"min_face_px" yaml:"min_face_px"`
	// DepsDir holds lib/ and models/ (default: models.FindDir()).
	DepsDir string `json:"deps_dir" yaml:"deps_dir"`
	// EdgeTPULibrary is libedgetpu.so.1's path for the edgetpu device.
	EdgeTPULibrary string `json:"edgetpu_library" yaml:"edgetpu_library"`
	// Limits bound accepted photos.
	MaxImageBytes  int64 `json:"max_image_bytes" yaml:"max_image_bytes"`
	MaxImagePixels int64 `json:"max_image_pixels" yaml:"max_image_pixels"`

	// CustomModels declare embedders and detectors beyond the catalogue
	// (see CustomModel); Detector and Embedder may name them.
	CustomModels []CustomModel `json:"custom_models,omitempty" yaml:"custom_models,omitempty"`

	// Observe, when set, receives every model run's duration (see
	// face.Config.Observe); it is wiring, not configuration.
	Observe func(model string, d time.Duration) `json:"-" yaml:"-"`
}

// DefaultVision is the measured default (README.md, "Choosing the
// models"): UltraFace RFB-320 with a tiled second pass for distant faces
// (wider/ recall 0.901 on faces >= 40 px, against 0.43 for the BlazeFace
// short-range networks), aligned on the 68-point model's five points, and
// the 512-d ArcFace embedder fused with MobileFaceNet (LFW 99.12 %,
// TAR@FAR1e-3 98.63 %, against 98.98 % / 97.87 % for ArcFace alone), all
// on ONNX Runtime's CPU provider. MiniFASNet liveness and the attribute
// networks are on.
func DefaultVision() VisionConfig {
	return VisionConfig{
		Backend:    "onnxrt",
		Device:     string(accel.CPU),
		Threads:    1,
		Sessions:   2,
		Detector:   "ultraface-rfb320",
		Landmarks:  "landmark68",
		Embedder:   "arcface-r512+mobilefacenet-192-onnx+dlib-resnet-128",
		Liveness:   "minifasnet-3class",
		Attributes: true,
	}
}

// Vision is a loaded pipeline and the backends it runs on.
type Vision struct {
	Pipeline *face.Pipeline
	Backends []accel.Backend
	DepsDir  string
}

// OpenVision opens the backends and loads the pipeline's models.
func OpenVision(ctx context.Context, cfg VisionConfig) (*Vision, error) {
	dir := cfg.DepsDir
	if dir == "" {
		dir = models.FindDir()
	}
	if dir == "" {
		return nil, errors.New("vision: runtimes and models not found: install the faced package, run `make deps`, or set vision.deps_dir, --deps-dir or FACED_DEPS_DIR to the folder holding lib/ and models/")
	}
	m, err := cfg.manifest()
	if err != nil {
		return nil, fmt.Errorf("vision: %w", err)
	}
	formats := map[accel.Format]bool{}
	for _, name := range cfg.modelNames() {
		spec, err := m.Model(name)
		if err != nil {
			return nil, fmt.Errorf("vision: %w", err)
		}
		formats[accel.Format(spec.Format)] = true
	}

	v := &Vision{DepsDir: dir}
	acfg := accel.Config{LibDir: models.LibDir(dir), Device: accel.Device(cfg.Device), Threads: cfg.Threads, EdgeTPULibrary: cfg.EdgeTPULibrary}
	primary, err := backends.Open(cfg.Backend, acfg)
	if err != nil {
		return nil, fmt.Errorf("vision: backend %s: %w", cfg.Backend, err)
	}
	v.Backends = append(v.Backends, primary)
	fallback := map[accel.Format]string{accel.ONNX: "onnxrt", accel.TFLite: "tflite"}
	for f := range formats {
		if slices.ContainsFunc(v.Backends, func(b accel.Backend) bool { return accel.Supports(b, f) }) {
			continue
		}
		cpu := acfg
		cpu.Device = accel.CPU
		b, err := backends.Open(fallback[f], cpu)
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("vision: %s models need the %s backend: %w", f, fallback[f], err)
		}
		v.Backends = append(v.Backends, b)
	}

	limits := cfg.Limits()
	// "a+b+c": face.Config takes the first and the rest apart.
	embedder, fused, _ := strings.Cut(cfg.Embedder, "+")
	v.Pipeline, err = face.New(ctx, face.Config{
		DepsDir: dir, Backends: v.Backends,
		Detector: cfg.Detector, Landmarks: cfg.Landmarks, Align: cfg.Align, Embedder: embedder, Liveness: cfg.Liveness,
		FuseEmbedder: fused, Attributes: cfg.Attributes, Sessions: cfg.Sessions, Limits: limits, MinScore: cfg.MinScore,
		Search: face.FaceSearch{MinFace: float32(cfg.MinFacePx)}, Flip: cfg.Flip,
		Observe: cfg.Observe, CustomModels: cfg.customSpecs(),
	})
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("vision: %w", err)
	}
	return v, nil
}

func (cfg VisionConfig) modelNames() []string {
	var names []string
	for _, n := range []string{cfg.Detector, cfg.Landmarks, cfg.Liveness} {
		if n != "" {
			names = append(names, n)
		}
	}
	for _, n := range strings.Split(cfg.Embedder, "+") {
		if n != "" {
			names = append(names, n)
		}
	}
	if cfg.Attributes {
		for _, n := range face.DefaultAttributeModels {
			names = append(names, n)
		}
	}
	return names
}

// Close unloads the models, then the backends.
func (v *Vision) Close() error {
	var errs []error
	if v.Pipeline != nil {
		errs = append(errs, v.Pipeline.Close())
	}
	for _, b := range slices.Backward(v.Backends) {
		errs = append(errs, b.Close())
	}
	return errors.Join(errs...)
}

// Limits bounds every image the pipeline takes: photos, and camera frames.
func (cfg VisionConfig) Limits() face.Limits {
	limits := face.DefaultLimits()
	if cfg.MaxImageBytes > 0 {
		limits.MaxBytes = cfg.MaxImageBytes
	}
	if cfg.MaxImagePixels > 0 {
		limits.MaxPixels = cfg.MaxImagePixels
	}
	return limits
}
