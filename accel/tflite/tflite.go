// Package tflite runs TensorFlow Lite models through the TensorFlow Lite C
// API (libtensorflowlite_c.so, 2.9 from tfjs-tflite-node).
//
// The runtime is opened with dlopen when a Backend is created and every
// function is looked up with dlsym: nothing is linked against it, so a faced
// binary starts on machines without TensorFlow Lite and the other backends
// keep working. Building needs only the C headers in .deps/include.
//
// Two devices are offered:
//
//   - cpu runs on the XNNPACK delegate, falling back to the builtin kernels
//     when XNNPACK cannot take a model. The pinned library does not apply
//     XNNPACK on its own: an interpreter created without a delegate never
//     logs "Created TensorFlow Lite XNNPACK delegate for CPU" and runs
//     MobileFaceNet in ~155 ms against ~9 ms with the delegate (single
//     thread, amd64), so the delegate is added explicitly.
//   - edgetpu hands the graph to libedgetpu.so.1 through TensorFlow Lite's
//     external delegate (libexternal_delegate_obj.so). Both libraries are
//     opened, and an Edge TPU looked for, when the Backend is created, so a
//     machine without one fails at start-up with an install hint.
//
// Callers speak float32 only: uint8 and int8 tensors are quantised and
// dequantised at the boundary with the tensor's own scale and zero point.
// Sessions have a Delegate() string method ("xnnpack", "edgetpu" or
// "builtin") for callers that want to log what a model actually runs on.
//
// The runtime itself still writes to stderr in two places the 2.9 C API
// gives no hook for: one "INFO: Created TensorFlow Lite XNNPACK delegate"
// line per process, and "ERROR: The model is not a valid Flatbuffer buffer"
// when a model is refused. Interpreter errors are captured and returned.
package tflite

/*
#cgo CFLAGS: -I${SRCDIR}/../../.deps/include
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "capi.h"
*/
import "C"

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/facedhq/faced/accel"
)

// Name is the backend's configuration name.
const Name = "tflite"

// File names of the libraries, inside Config.LibDir or on the system
// library path when LibDir is empty.
const (
	LibraryName             = "libtensorflowlite_c.so"
	ExternalDelegateLibrary = "libexternal_delegate_obj.so"
	// EdgeTPULibraryName is what Config.EdgeTPULibrary defaults to.
	EdgeTPULibraryName = "libedgetpu.so.1"
)

// Backend is a loaded TensorFlow Lite runtime configured for one device.
// It is safe for concurrent use; its sessions are not.
type Backend struct {
	cfg     accel.Config
	version string
	// lib holds the dlopen handles and function pointers. It is C memory so
	// that C code may keep pointers to it; sessions share it read-only.
	lib *C.faced_tflite
	// xnnpackOptions: the runtime's XNNPACK options layout is known (see
	// capi.h), so the thread count can be set. Otherwise XNNPACK runs with
	// the runtime's default options.
	xnnpackOptions bool
	// edgeTPULib is the plugin path handed to the external delegate.
	edgeTPULib *C.char

	mu     sync.Mutex
	closed bool
	live   int // sessions not yet closed
}

// New opens the runtime from cfg.LibDir (the system library path when
// empty) and checks that the requested device can be used.
func New(cfg accel.Config) (*Backend, error) {
	if cfg.Device == "" {
		cfg.Device = accel.CPU
	}
	switch cfg.Device {
	case accel.CPU, accel.EdgeTPU:
	default:
		return nil, fmt.Errorf("tflite: device %q: %w (use cpu or edgetpu)", cfg.Device, accel.ErrUnsupported)
	}
	if cfg.Threads < 0 {
		cfg.Threads = 0
	}
	b := &Backend{cfg: cfg, lib: (*C.faced_tflite)(C.calloc(1, C.sizeof_faced_tflite))}
	if b.lib == nil {
		return nil, fmt.Errorf("tflite: out of memory")
	}

	path, err := libPath(cfg.LibDir, LibraryName)
	if err != nil {
		b.unload()
		return nil, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if C.faced_tflite_load(b.lib, cpath) != 0 {
		err := fmt.Errorf("tflite: %w: load %s: %s (run `make deps` or install the faced package)",
			accel.ErrUnavailable, path, b.loadError())
		b.unload()
		return nil, err
	}
	b.version = C.GoString(C.faced_version(b.lib))
	b.xnnpackOptions = knownXNNPackLayout(b.version)

	if cfg.Device == accel.EdgeTPU {
		if err := b.loadEdgeTPU(); err != nil {
			b.unload()
			return nil, err
		}
	}
	return b, nil
}

// libPath is name inside dir, or the bare name for dlopen's search path.
// A configured folder that lacks the file is reported as such, which is
// clearer than dlopen's message.
func libPath(dir, name string) (string, error) {
	if dir == "" {
		return name, nil
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("tflite: %w: %s not found (run `make deps` or install the faced package)", accel.ErrUnavailable, p)
	}
	return p, nil
}

func (b *Backend) loadError() string { return C.GoString(&b.lib.err[0]) }

func (b *Backend) loadEdgeTPU() error {
	ext, err := libPath(b.cfg.LibDir, ExternalDelegateLibrary)
	if err != nil {
		return err
	}
	cext := C.CString(ext)
	defer C.free(unsafe.Pointer(cext))
	if C.faced_tflite_load_external(b.lib, cext) != 0 {
		return fmt.Errorf("tflite: %w: load %s: %s (run `make deps` or install the faced package)",
			accel.ErrUnavailable, ext, b.loadError())
	}

	plugin := b.cfg.EdgeTPULibrary
	if plugin == "" {
		plugin = EdgeTPULibraryName
	}
	b.edgeTPULib = C.CString(plugin)
	if C.faced_tflite_load_plugin(b.lib, b.edgeTPULib) != 0 {
		if b.lib.plugin_handle == nil {
			return fmt.Errorf("tflite: %w: Edge TPU runtime %s cannot be loaded (%s): install the Coral "+
				"\"libedgetpu1-std\" Debian package from the Coral repository "+
				"(https://coral.ai/software/#debian-packages), or put libedgetpu.so.1 on the library path",
				accel.ErrUnavailable, plugin, b.loadError())
		}
		return fmt.Errorf("tflite: %w: %s is not a TensorFlow Lite delegate plugin: %s",
			accel.ErrUnavailable, plugin, b.loadError())
	}
	// libedgetpu returns no delegate when it finds no device; finding that
	// out now reports an unplugged accelerator at start-up, not at the
	// first model load.
	if C.faced_tflite_probe_plugin(b.lib) != 0 {
		return fmt.Errorf("tflite: %w: %s found no Edge TPU: plug in the USB accelerator, or check the "+
			"PCIe driver (gasket/apex) and the permissions of /dev/apex_0", accel.ErrUnavailable, plugin)
	}
	return nil
}

// knownXNNPackLayout reports whether TfLiteXNNPackDelegateOptions of this
// runtime version has the layout declared in capi.h (2.5 to 2.9).
func knownXNNPackLayout(version string) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && major == 2 && minor >= 5 && minor <= 9
}

// Name implements accel.Backend.
func (b *Backend) Name() string { return Name }

// Device implements accel.Backend.
func (b *Backend) Device() accel.Device { return b.cfg.Device }

// Formats implements accel.Backend.
func (b *Backend) Formats() []accel.Format { return []accel.Format{accel.TFLite} }

// Version is the loaded runtime's version, e.g. "2.9.0".
func (b *Backend) Version() string { return b.version }

// Close releases the runtime: the dlopen handles are closed once every
// session is closed. Sessions must be closed first; if some are still open,
// Close stops new sessions and the last session's Close releases the
// runtime, so open sessions never run code that has been unmapped.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.live == 0 {
		b.unload()
	}
	return nil
}

// retain counts a new session, failing once the backend is closed.
func (b *Backend) retain() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("tflite: %w", accel.ErrClosed)
	}
	b.live++
	return nil
}

// release is called by a session's Close.
func (b *Backend) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.live--
	if b.closed && b.live == 0 {
		b.unload()
	}
}

func (b *Backend) unload() {
	if b.lib != nil {
		C.faced_tflite_unload(b.lib)
		C.free(unsafe.Pointer(b.lib))
		b.lib = nil
	}
	if b.edgeTPULib != nil {
		C.free(unsafe.Pointer(b.edgeTPULib))
		b.edgeTPULib = nil
	}
}

// NewSession implements accel.Backend. The model bytes are copied: the
// session does not keep model.Data.
func (b *Backend) NewSession(ctx context.Context, model accel.Model) (accel.Session, error) {
	if model.Format != accel.TFLite {
		return nil, fmt.Errorf("tflite: %s: format %q: %w", model.Name, model.Format, accel.ErrUnsupported)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(model.Data) == 0 {
		return nil, fmt.Errorf("tflite: %s: empty model", model.Name)
	}
	if err := b.retain(); err != nil {
		return nil, err
	}
	s, err := newSession(b, model)
	if err != nil {
		return nil, err
	}
	return s, nil
}

var _ accel.Backend = (*Backend)(nil)
