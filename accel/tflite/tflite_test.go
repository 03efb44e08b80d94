package tflite

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

func newBackend(t *testing.T, cfg accel.Config) (*Backend, string) {
	t.Helper()
	dir := testenv.DepsDir(t)
	if cfg.LibDir == "" {
		cfg.LibDir = models.LibDir(dir)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, dir
}

func loadSession(t *testing.T, b *Backend, name string) accel.Session {
	t.Helper()
	_, model := testenv.Model(t, name)
	s, err := b.NewSession(context.Background(), model)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func delegateOf(s accel.Session) string {
	if d, ok := s.(interface{ Delegate() string }); ok {
		return d.Delegate()
	}
	return "?"
}

func checkFinite(t *testing.T, out []accel.Tensor) {
	t.Helper()
	for _, o := range out {
		if int64(len(o.Data)) != accel.NumElements(o.Shape) || len(o.Data) == 0 {
			t.Errorf("output %q: %d values for shape %v", o.Name, len(o.Data), o.Shape)
		}
		for i, v := range o.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Errorf("output %q[%d] = %v", o.Name, i, v)
				break
			}
		}
	}
}

// TestRunsEveryTFLiteModel loads each TensorFlow Lite model of the catalogue
// and runs it on a zero input of the manifest's shape.
func TestRunsEveryTFLiteModel(t *testing.T) {
	b, _ := newBackend(t, accel.Config{})
	t.Logf("TensorFlow Lite %s", b.Version())
	specs := testenv.Specs(t, models.FormatTFLite)
	for _, spec := range specs {
		t.Run(spec.Name, func(t *testing.T) {
			s := loadSession(t, b, spec.Name)
			t.Logf("%s (%s) on %s", spec.Name, spec.File, delegateOf(s))
			for _, ti := range s.Inputs() {
				t.Logf("  input  %-28q %-8s %v", ti.Name, ti.DType, ti.Shape)
			}
			for _, ti := range s.Outputs() {
				t.Logf("  output %-28q %-8s %v", ti.Name, ti.DType, ti.Shape)
			}
			if d := delegateOf(s); d != "xnnpack" {
				t.Errorf("runs on %q, want xnnpack", d)
			}
			if got := s.Inputs()[0].Name; got != spec.Input.Name {
				t.Errorf("input name %q, manifest says %q", got, spec.Input.Name)
			}
			x := accel.Tensor{Shape: spec.Input.Shape, Data: make([]float32, accel.NumElements(spec.Input.Shape))}
			out, err := s.Run(context.Background(), []accel.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(s.Outputs()) || len(out) == 0 {
				t.Fatalf("%d outputs, model declares %d", len(out), len(s.Outputs()))
			}
			for i, o := range out {
				want := s.Outputs()[i]
				if o.Name != want.Name || len(o.Shape) != len(want.Shape) || o.Shape[0] != spec.Input.Shape[0] {
					t.Errorf("output %d: %q %v, declared %q %v", i, o.Name, o.Shape, want.Name, want.Shape)
				}
				t.Logf("  ran:   %-28q %v", o.Name, o.Shape)
			}
			checkFinite(t, out)
		})
	}
	if len(specs) != 4 {
		t.Errorf("%d tflite models in the manifest, want 4", len(specs))
	}
}

func randomInput(shape []int64, seed uint64) accel.Tensor {
	r := rand.New(rand.NewPCG(seed, 1))
	x := accel.Tensor{Shape: shape, Data: make([]float32, accel.NumElements(shape))}
	for i := range x.Data {
		x.Data[i] = r.Float32()*2 - 1
	}
	return x
}

// stack concatenates batch-1 tensors into one batch.
func stack(ts ...accel.Tensor) accel.Tensor {
	out := accel.Tensor{Shape: append([]int64{int64(len(ts))}, ts[0].Shape[1:]...)}
	for _, t := range ts {
		out.Data = append(out.Data, t.Data...)
	}
	return out
}

func assertClose(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-3*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// MobileFaceNet.tflite is declared with batch 2 and a RESHAPE that bakes it
// in: batch 1 cannot be resized to and runs padded, batch 3 in two chunks.
// Every image's embedding must not depend on what it is batched with.
func TestMobileFaceNetAnyBatch(t *testing.T) {
	b, _ := newBackend(t, accel.Config{})
	s := loadSession(t, b, "mobilefacenet-192")
	if got := s.Inputs()[0].Shape; got[0] != -1 {
		t.Errorf("input shape %v: batch should be reported dynamic", got)
	}
	ctx := context.Background()
	shape := []int64{1, 112, 112, 3}
	imgs := []accel.Tensor{randomInput(shape, 1), randomInput(shape, 2), randomInput(shape, 3)}
	var single [][]float32
	for _, x := range imgs {
		out, err := s.Run(ctx, []accel.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || len(out[0].Data) != 192 || len(out[0].Shape) != 2 || out[0].Shape[0] != 1 {
			t.Fatalf("batch 1: got %d outputs, shape %v, %d values; want 192", len(out), out[0].Shape, len(out[0].Data))
		}
		checkFinite(t, out)
		single = append(single, out[0].Data)
	}
	if !s.(*session).fixedBatch {
		t.Error("batch 1 did not fall back to padded runs of the declared batch")
	}
	for _, n := range []int{2, 3} {
		out, err := s.Run(ctx, []accel.Tensor{stack(imgs[:n]...)})
		if err != nil {
			t.Fatal(err)
		}
		if got := out[0].Shape; got[0] != int64(n) || got[1] != 192 {
			t.Fatalf("batch %d: shape %v", n, got)
		}
		for i := range n {
			assertClose(t, "embedding", out[0].Data[i*192:(i+1)*192], single[i])
		}
	}
}

// BlazeFace resizes to any batch but folds it into the anchors ([1, 896*b,
// 16]); the session must notice and still return [b, 896, 16].
func TestBlazeFaceBatch(t *testing.T) {
	b, _ := newBackend(t, accel.Config{})
	s := loadSession(t, b, "blazeface-short")
	ctx := context.Background()
	shape := []int64{1, 128, 128, 3}
	x1, x2 := randomInput(shape, 4), randomInput(shape, 5)
	one1, err := s.Run(ctx, []accel.Tensor{x1})
	if err != nil {
		t.Fatal(err)
	}
	one2, err := s.Run(ctx, []accel.Tensor{x2})
	if err != nil {
		t.Fatal(err)
	}
	two, err := s.Run(ctx, []accel.Tensor{stack(x1, x2)})
	if err != nil {
		t.Fatal(err)
	}
	if !s.(*session).fixedBatch {
		t.Error("folded batch not detected")
	}
	for i, o := range two {
		if o.Shape[0] != 2 || o.Shape[1] != 896 {
			t.Fatalf("output %q: shape %v, want [2 896 ...]", o.Name, o.Shape)
		}
		half := len(o.Data) / 2
		assertClose(t, o.Name, o.Data[:half], one1[i].Data)
		assertClose(t, o.Name, o.Data[half:], one2[i].Data)
	}
	// And back to batch 1 after the batch changed.
	again, err := s.Run(ctx, []accel.Tensor{x1})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "regressors", again[0].Data, one1[0].Data)
}

func TestRejectsBadModelBytes(t *testing.T) {
	b, dir := newBackend(t, accel.Config{})
	good, err := os.ReadFile(filepath.Join(dir, "models", "face_detection_short_range.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 4096)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	cases := map[string][]byte{
		"empty":     nil,
		"random":    random,
		"truncated": good[:len(good)/2],
		"text":      []byte("TFL3 this is not a model"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := b.NewSession(context.Background(), accel.Model{Name: name, Format: accel.TFLite, Data: data})
			if err == nil {
				s.Close()
				t.Fatal("bad model accepted")
			}
			if !strings.HasPrefix(err.Error(), "tflite: ") {
				t.Errorf("error lacks context: %v", err)
			}
		})
	}
}

func TestRejectsONNXModel(t *testing.T) {
	b, _ := newBackend(t, accel.Config{})
	_, err := b.NewSession(context.Background(), accel.Model{Name: "x", Format: accel.ONNX, Data: []byte("x")})
	if !errors.Is(err, accel.ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	if accel.Supports(b, accel.ONNX) || !accel.Supports(b, accel.TFLite) || b.Name() != "tflite" {
		t.Errorf("backend %s formats %v", b.Name(), b.Formats())
	}
}

func TestRejectsWrongInputShape(t *testing.T) {
	b, _ := newBackend(t, accel.Config{})
	s := loadSession(t, b, "blazeface-short")
	_, err := s.Run(context.Background(), []accel.Tensor{{Shape: []int64{1, 64, 64, 3}, Data: make([]float32, 64*64*3)}})
	if err == nil {
		t.Fatal("wrong input shape accepted")
	}
}

func TestMissingLibraryGivesUnavailable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing-here")
	_, err := New(accel.Config{LibDir: dir})
	if !errors.Is(err, accel.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	for _, want := range []string{filepath.Join(dir, LibraryName), "make deps"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestNotALibraryGivesUnavailable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LibraryName), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(accel.Config{LibDir: dir})
	if !errors.Is(err, accel.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestUnsupportedDevice(t *testing.T) {
	_, err := New(accel.Config{Device: accel.CUDA})
	if !errors.Is(err, accel.ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

// There is no Edge TPU runtime on the test machines: asking for the device
// must fail at construction with an error that says what to install.
func TestEdgeTPUAbsentGivesInstallHint(t *testing.T) {
	dir := testenv.DepsDir(t)
	for _, lib := range []string{"", filepath.Join(t.TempDir(), "libedgetpu.so.1")} {
		b, err := New(accel.Config{LibDir: models.LibDir(dir), Device: accel.EdgeTPU, EdgeTPULibrary: lib})
		if err == nil {
			b.Close()
			t.Skip("an Edge TPU is installed on this machine")
		}
		if !errors.Is(err, accel.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if errors.Is(err, accel.ErrUnavailable) && strings.Contains(err.Error(), "found no Edge TPU") {
			t.Skip("libedgetpu is installed but no accelerator is plugged in")
		}
		for _, want := range []string{"libedgetpu1-std", "Coral", "libedgetpu.so.1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		t.Log(err)
	}
}

// stubPlugin builds a stand-in for libedgetpu.so.1: an external delegate
// plugin whose delegate takes no nodes (so the model runs on the CPU
// kernels), or, with noDevice, one that finds no device. The first kind
// also finds no device while FACED_STUB_PLUGIN_FAIL is set.
func stubPlugin(t *testing.T, noDevice bool) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("no C compiler (%s) to build the stub plugin", cc)
	}
	src := `
#include <stdlib.h>
#include "tensorflow/lite/c/common.h"
static TfLiteStatus prepare(TfLiteContext* c, TfLiteDelegate* d) { return kTfLiteOk; }
TfLiteDelegate* tflite_plugin_create_delegate(char** k, char** v, size_t n,
                                              void (*report)(const char*)) {
#ifdef NO_DEVICE
  return NULL;
#else
  if (getenv("FACED_STUB_PLUGIN_FAIL") != NULL) return NULL;
  TfLiteDelegate* d = calloc(1, sizeof *d);
  d->Prepare = prepare;
  return d;
#endif
}
void tflite_plugin_destroy_delegate(TfLiteDelegate* d) { free(d); }
`
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "stub.c"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "libedgetpu-stub.so")
	args := []string{"-shared", "-fPIC", "-I", filepath.Join(testenv.DepsDir(t), "include"), "-o", out, filepath.Join(tmp, "stub.c")}
	if noDevice {
		args = append(args, "-DNO_DEVICE")
	}
	if msg, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("build stub plugin: %v\n%s", err, msg)
	}
	return out
}

// The edgetpu device path (external delegate, plugin probe, delegate
// lifetime) exercised with a stub plugin, since no Edge TPU is attached.
func TestEdgeTPUPathWithStubPlugin(t *testing.T) {
	b, dir := newBackend(t, accel.Config{Device: accel.EdgeTPU, EdgeTPULibrary: stubPlugin(t, false)})
	if b.Device() != accel.EdgeTPU {
		t.Fatalf("device %s", b.Device())
	}
	s := loadSession(t, b, "blazeface-short")
	if d := delegateOf(s); d != "edgetpu" {
		t.Errorf("runs on %q, want edgetpu", d)
	}
	out, err := s.Run(context.Background(), []accel.Tensor{randomInput([]int64{1, 128, 128, 3}, 9)})
	if err != nil {
		t.Fatal(err)
	}
	checkFinite(t, out)

	// The accelerator goes away after start-up. TfLiteExternalDelegateCreate
	// then returns an uninitialised delegate, likely in the heap chunk of the
	// session just closed; NewSession must notice instead of crashing.
	s.Close()
	t.Setenv("FACED_STUB_PLUGIN_FAIL", "1")
	for range 3 {
		_, model := testenv.Model(t, "blazeface-short")
		s, err := b.NewSession(context.Background(), accel.Model{Name: "again", Format: accel.TFLite, Data: model.Data})
		if err == nil {
			s.Close()
			t.Fatal("session created without a device")
		}
		if !errors.Is(err, accel.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	}
	os.Unsetenv("FACED_STUB_PLUGIN_FAIL")
	loadSession(t, b, "blazeface-short")

	_, err = New(accel.Config{LibDir: models.LibDir(dir), Device: accel.EdgeTPU, EdgeTPULibrary: stubPlugin(t, true)})
	if !errors.Is(err, accel.ErrUnavailable) || !strings.Contains(err.Error(), "found no Edge TPU") {
		t.Fatalf("no device: err = %v", err)
	}
}

// Threads only changes scheduling: results must match the default.
func TestThreadsSetting(t *testing.T) {
	b0, _ := newBackend(t, accel.Config{})
	b2, _ := newBackend(t, accel.Config{Threads: 2})
	x := randomInput([]int64{1, 192, 192, 3}, 11)
	var outs [][]accel.Tensor
	for _, b := range []*Backend{b0, b2} {
		s := loadSession(t, b, "blazeface-full")
		out, err := s.Run(context.Background(), []accel.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
	}
	for i := range outs[0] {
		assertClose(t, outs[0][i].Name, outs[1][i].Data, outs[0][i].Data)
	}
}

func TestCancelledContext(t *testing.T) {
	b, _ := newBackend(t, accel.Config{})
	s := loadSession(t, b, "blazeface-short")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x := accel.Tensor{Shape: []int64{1, 128, 128, 3}, Data: make([]float32, 128*128*3)}
	if _, err := s.Run(ctx, []accel.Tensor{x}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// Sessions and backends close idempotently; a backend closed under an open
// session keeps the runtime until that session closes.
func TestCloseOrder(t *testing.T) {
	dir := testenv.DepsDir(t)
	b, err := New(accel.Config{LibDir: models.LibDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	s := loadSession(t, b, "blazeface-short")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	x := accel.Tensor{Shape: []int64{1, 128, 128, 3}, Data: make([]float32, 128*128*3)}
	if _, err := s.Run(context.Background(), []accel.Tensor{x}); err != nil {
		t.Fatalf("open session after backend Close: %v", err)
	}
	if _, err := b.NewSession(context.Background(), accel.Model{Name: "x", Format: accel.TFLite, Data: []byte("x")}); !errors.Is(err, accel.ErrClosed) {
		t.Errorf("NewSession after Close: err = %v, want ErrClosed", err)
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Run(context.Background(), []accel.Tensor{x}); !errors.Is(err, accel.ErrClosed) {
		t.Errorf("Run after Close: err = %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestQuantize(t *testing.T) {
	cases := []struct {
		v                      float32
		scale, zero, lo, hi, q float64
	}{
		{0, 1.0 / 255, 0, 0, 255, 0},
		{1, 1.0 / 255, 0, 0, 255, 255},
		{0.5, 1.0 / 255, 0, 0, 255, 128},
		{2, 1.0 / 255, 0, 0, 255, 255}, // clamped
		{-1, 1.0 / 128, 0, -128, 127, -128},
		{0, 0.5, -3, -128, 127, -3},
		{float32(math.NaN()), 0.5, 7, 0, 255, 7},
		{3.6, 0, 0, math.MinInt32, math.MaxInt32, 4}, // not quantised: rounding
	}
	for _, c := range cases {
		if got := quantize(c.v, c.scale, c.zero, c.lo, c.hi); got != c.q {
			t.Errorf("quantize(%v, scale %v, zero %v) = %v, want %v", c.v, c.scale, c.zero, got, c.q)
		}
	}
	if !knownXNNPackLayout("2.9.0") || knownXNNPackLayout("2.16.1") || knownXNNPackLayout("") {
		t.Error("knownXNNPackLayout")
	}
}

// FaceAntiSpoofing resizes cleanly: batch 2 runs in one invocation.
func TestResizeBatch(t *testing.T) {
	b, _ := newBackend(t, accel.Config{})
	s := loadSession(t, b, "face-antispoofing")
	ctx := context.Background()
	shape := []int64{1, 256, 256, 3}
	x1, x2 := randomInput(shape, 12), randomInput(shape, 13)
	var single [][]accel.Tensor
	for _, x := range []accel.Tensor{x1, x2} {
		out, err := s.Run(ctx, []accel.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		single = append(single, out)
	}
	two, err := s.Run(ctx, []accel.Tensor{stack(x1, x2)})
	if err != nil {
		t.Fatal(err)
	}
	if sess := s.(*session); sess.fixedBatch || sess.current[0][0] != 2 {
		t.Errorf("batch 2 not run by resizing (fixed %v, current %v)", sess.fixedBatch, sess.current)
	}
	for i, o := range two {
		if o.Shape[0] != 2 {
			t.Fatalf("output %q: shape %v", o.Name, o.Shape)
		}
		half := len(o.Data) / 2
		assertClose(t, o.Name, o.Data[:half], single[0][i].Data)
		assertClose(t, o.Name, o.Data[half:], single[1][i].Data)
	}
}

// A Pool of sessions serves concurrent callers (run with -race).
func TestPoolConcurrency(t *testing.T) {
	b, _ := newBackend(t, accel.Config{})
	_, model := testenv.Model(t, "mobilefacenet-192")
	p, err := accel.NewPool(context.Background(), b, model, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	x := randomInput([]int64{1, 112, 112, 3}, 21)
	want, err := p.Run(context.Background(), []accel.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			out, err := p.Run(context.Background(), []accel.Tensor{x})
			if err == nil && len(out[0].Data) != len(want[0].Data) {
				err = errors.New("wrong output size")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
