package main

import (
	"flag"

	"github.com/facedhq/faced/daemon"
)

// visionFlags registers the flags that choose the pipeline's networks and
// runtime, starting from the measured defaults.
func visionFlags(fs *flag.FlagSet) *daemon.VisionConfig {
	cfg := daemon.DefaultVision()
	fs.StringVar(&cfg.Backend, "backend", cfg.Backend, "inference backend: onnxrt, tflite or opencvdnn")
	fs.StringVar(&cfg.Device, "device", cfg.Device, "device of the backend: cpu, cuda, tensorrt, edgetpu, opencl")
	fs.IntVar(&cfg.Threads, "threads", cfg.Threads, "threads per inference session (0: runtime default)")
	fs.StringVar(&cfg.Detector, "detector", cfg.Detector, "detection model")
	fs.StringVar(&cfg.Landmarks, "landmarks", cfg.Landmarks, "landmark model (empty: align on detector keypoints)")
	fs.StringVar(&cfg.Align, "align", cfg.Align, "align faces on: landmarks (68-point model) or keypoints (detector); empty: keypoints when the detector has them")
	fs.StringVar(&cfg.Embedder, "embedder", cfg.Embedder, "embedding model")
	fs.StringVar(&cfg.Liveness, "liveness", cfg.Liveness, "liveness model (empty: off)")
	fs.BoolVar(&cfg.Attributes, "attributes", false, "load the attribute models (age, gender, emotion, pose, eyes)")
	fs.StringVar(&cfg.DepsDir, "deps-dir", "", "folder with lib/ and models/ (default: installed package or .deps)")
	return &cfg
}
