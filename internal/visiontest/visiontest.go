// Package visiontest loads the default vision pipeline once for a test
// binary: model loading dominates the time of the packages that need real
// models on real images.
package visiontest

import (
	"context"
	"fmt"
	"os"

	"github.com/facedhq/faced/daemon"
)

// Load opens the default models without the attribute models, or ends
// the test binary with a hint when they are missing.
func Load() *daemon.Vision {
	cfg := daemon.DefaultVision()
	cfg.Attributes = false
	v, err := daemon.OpenVision(context.Background(), cfg)
	if err != nil {
		fmt.Println("load models:", err, "(run make deps)")
		os.Exit(1)
	}
	return v
}
