// Package visiontest loads the default vision pipeline once for a test
// binary: model loading dominates the time of the packages that need real
// models on real images.
package visiontest

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/facedhq/faced/daemon"
)

// Main is a TestMain: it opens the default models without the attribute
// models into *vision, runs the tests and closes them.
func Main(m *testing.M, vision **daemon.Vision) {
	cfg := daemon.DefaultVision()
	cfg.Attributes = false
	MainWith(m, vision, cfg)
}

// MainWith is Main with the given models. Missing models end the test
// binary with a hint.
func MainWith(m *testing.M, vision **daemon.Vision, cfg daemon.VisionConfig) {
	v, err := daemon.OpenVision(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load models:", err, "(run make deps)")
		os.Exit(1)
	}
	*vision = v
	code := m.Run()
	v.Close()
	os.Exit(code)
}
