// Package backends opens an accel.Backend by its configuration name. It is
// the one place that knows every backend, so the daemon and the command
// line select runtimes by name without a global registry.
package backends

import (
	"fmt"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/accel/onnxrt"
	"github.com/facedhq/faced/accel/opencvdnn"
	"github.com/facedhq/faced/accel/tflite"
)

// Names lists the backends, in the order faced prefers them.
var Names = []string{onnxrt.Name, tflite.Name, opencvdnn.Name}

// Open starts the named backend.
func Open(name string, cfg accel.Config) (accel.Backend, error) {
	switch name {
	case onnxrt.Name:
		return nonNil(onnxrt.New(cfg))
	case tflite.Name:
		return nonNil(tflite.New(cfg))
	case opencvdnn.Name:
		return nonNil(opencvdnn.New(cfg))
	}
	return nil, fmt.Errorf("accel: unknown backend %q (want one of %v): %w", name, Names, accel.ErrUnsupported)
}

// nonNil returns a nil interface on error, never an interface holding a nil
// pointer, so callers may test the backend against nil.
func nonNil[B accel.Backend](b B, err error) (accel.Backend, error) {
	if err != nil {
		return nil, err
	}
	return b, nil
}
