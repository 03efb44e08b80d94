package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/models"
)

// depsHint is what to do when the runtimes and models are not found.
const depsHint = "set --deps-dir DIR or FACED_DEPS_DIR=DIR to the folder holding lib/ and models/ " +
	"(the package installs /usr/lib/faced; a checkout has .deps after `make deps`)"

// findDeps returns the dependency folder: flag, else models.FindDir. It is
// an error, saying once what to set, when there is none or it holds no
// models/ folder, rather than one "no such file" per model later.
func findDeps(flagDir string) (string, error) {
	dir := flagDir
	if dir == "" {
		dir = models.FindDir()
	}
	if dir == "" {
		return "", depsError("runtimes and models not found: " + depsHint)
	}
	if st, err := os.Stat(filepath.Join(dir, "models")); err != nil || !st.IsDir() {
		return "", depsError(fmt.Sprintf("no models/ folder in %s: %s", dir, depsHint))
	}
	return dir, nil
}

// depsError is a missing dependency folder: errors.Is(err, os.ErrNotExist).
type depsError string

func (e depsError) Error() string { return string(e) }
func (e depsError) Unwrap() error { return os.ErrNotExist }

// openVision is daemon.OpenVision after findDeps, so the eval, bench and
// detect commands name the flag or variable to set.
func openVision(ctx context.Context, cfg daemon.VisionConfig) (*daemon.Vision, error) {
	dir, err := findDeps(cfg.DepsDir)
	if err != nil {
		return nil, err
	}
	cfg.DepsDir = dir
	return daemon.OpenVision(ctx, cfg)
}

// visionFlags registers the flags that choose the pipeline's networks and
// runtime, starting from the measured defaults with the attribute models
// off (eval and bench do not need them).
func visionFlags(fs *flag.FlagSet) *daemon.VisionConfig {
	cfg := daemon.DefaultVision()
	cfg.Attributes = false
	bindVisionFlags(fs, &cfg)
	return &cfg
}

// bindVisionFlags registers the model flags on fs, bound to cfg's fields
// and defaulting to their current values.
func bindVisionFlags(fs *flag.FlagSet, cfg *daemon.VisionConfig) {
	fs.StringVar(&cfg.Backend, "backend", cfg.Backend, "inference backend: onnxrt, tflite or opencvdnn")
	fs.StringVar(&cfg.Device, "device", cfg.Device, "device of the backend: cpu, cuda, tensorrt, edgetpu, opencl")
	fs.IntVar(&cfg.Threads, "threads", cfg.Threads, "threads per inference session (0: runtime default)")
	fs.StringVar(&cfg.Detector, "detector", cfg.Detector, "detection model")
	fs.StringVar(&cfg.Landmarks, "landmarks", cfg.Landmarks, "landmark model (empty: align on detector keypoints)")
	fs.StringVar(&cfg.Align, "align", cfg.Align, "align faces on: landmarks (68-point model) or keypoints (detector); empty: keypoints when the detector has them")
	fs.StringVar(&cfg.Embedder, "embedder", cfg.Embedder, "embedding model, or two or three joined by '+' to fuse them (the cosine becomes the mean of theirs)")
	fs.StringVar(&cfg.Liveness, "liveness", cfg.Liveness, "liveness model (empty: off)")
	fs.BoolVar(&cfg.Attributes, "attributes", cfg.Attributes, "load the attribute models (age, gender, emotion, pose, eyes)")
	fs.BoolVar(&cfg.Flip, "flip", cfg.Flip, "embed each face and its mirror image (a second embedder run; embedder id gets +flip)")
	fs.IntVar(&cfg.MinFacePx, "min-face-px", cfg.MinFacePx, "smallest face looked for, in pixels (0: 20 px or 1/48 of the photo's long side)")
	fs.StringVar(&cfg.DepsDir, "deps-dir", cfg.DepsDir, "folder with lib/ and models/ (default: $FACED_DEPS_DIR, the installed package, or .deps)")
	fs.Var(&customModelsFlag{cfg: cfg}, "custom-models", "YAML configuration file whose vision.custom_models to declare, so --detector and --embedder may name them (its other settings are not used)")
}

// customModelsFlag reads vision.custom_models from a configuration file:
// how eval and bench reach a model declared there (e.g. to measure a
// custom embedder's calibration).
type customModelsFlag struct {
	cfg  *daemon.VisionConfig
	path string
}

func (f *customModelsFlag) String() string { return f.path }

func (f *customModelsFlag) Set(path string) error {
	c, err := daemon.LoadConfig(path)
	if err != nil {
		return err
	}
	if len(c.Vision.CustomModels) == 0 {
		return fmt.Errorf("%s declares no vision.custom_models", path)
	}
	f.path, f.cfg.CustomModels = path, c.Vision.CustomModels
	return nil
}
