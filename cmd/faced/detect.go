package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/face"
)

// detectResult is one line of `faced detect`'s output: the faces of one
// photo, or why the photo could not be read.
type detectResult struct {
	Photo string       `json:"photo"`
	Faces []detectFace `json:"faces"`
}

// detectFace is what detect reports of a face: no embedding or
// attributes, which need models a smoke test of an install does not.
type detectFace struct {
	Box       face.Box      `json:"box"`
	Score     float32       `json:"score"`
	Landmarks [5]face.Point `json:"landmarks"`
}

// cmdDetect finds the faces in photos with the configured pipeline and
// prints one JSON object per photo. It is the quickest end-to-end check of
// an installation (`faced detect --config /etc/faced/faced.yaml photo.jpg`):
// runtimes, models and OpenCV all load exactly as serve loads them.
func cmdDetect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, photos, err := detectConfig(args, os.Environ(), stderr)
	if err != nil {
		return err
	}
	// One photo at a time: one session per model is enough.
	cfg.Sessions = 1
	v, err := openVision(ctx, cfg)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	defer v.Close()

	enc := json.NewEncoder(stdout)
	failed := 0
	for _, photo := range photos {
		faces, err := detectPhoto(ctx, v.Pipeline, photo)
		if err != nil {
			// Report and go on: one bad file should not hide the others'
			// results, but the exit status says something failed.
			fmt.Fprintf(stderr, "faced detect: %v\n", err)
			failed++
			continue
		}
		if err := enc.Encode(detectResult{Photo: photo, Faces: faces}); err != nil {
			return fmt.Errorf("detect: write: %w", err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("detect: %d of %d photos failed", failed, len(photos))
	}
	return nil
}

// detectConfig parses detect's flags: the vision section of --config (with
// FACED_* variables applied, as serve does), then the model flags given
// explicitly. Without --config, the measured defaults with the attribute
// models off.
func detectConfig(args, environ []string, stderr io.Writer) (daemon.VisionConfig, []string, error) {
	fs := newFlagSet("detect", "PHOTO...", stderr)
	file := fs.String("config", "", "YAML configuration file whose vision settings to use (the package's is /etc/faced/faced.yaml)")
	scratch := visionFlags(fs.FlagSet)
	if err := fs.parse(args); err != nil {
		return daemon.VisionConfig{}, nil, err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return daemon.VisionConfig{}, nil, errors.New("detect: no photo given")
	}
	if *file == "" {
		return *scratch, fs.Args(), nil
	}

	cfg, err := daemon.Loader{File: *file, Environ: environ}.Load()
	if err != nil {
		return daemon.VisionConfig{}, nil, fmt.Errorf("detect: %w", err)
	}
	// Flags given explicitly override the file: replay them onto its
	// vision section through a flag set bound to it.
	over := flag.NewFlagSet("detect", flag.ContinueOnError)
	over.SetOutput(io.Discard)
	bindVisionFlags(over, &cfg.Vision)
	var setErr error
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" || setErr != nil {
			return
		}
		if err := over.Set(f.Name, f.Value.String()); err != nil {
			setErr = fmt.Errorf("detect: --%s: %w", f.Name, err)
		}
	})
	return cfg.Vision, fs.Args(), setErr
}

// detectPhoto reads one photo and runs detection on it. Errors name the
// file; an unreadable or non-image file is an error, not a crash (the
// pipeline validates photos in Go before OpenCV sees them).
func detectPhoto(ctx context.Context, p *face.Pipeline, path string) ([]detectFace, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	faces, err := p.Detect(ctx, data, face.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := make([]detectFace, len(faces))
	for i, f := range faces {
		out[i] = detectFace{Box: f.Box, Score: f.Score, Landmarks: f.Landmarks}
	}
	return out, nil
}
