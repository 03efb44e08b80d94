//go:build !arm64

package index

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// qemuTests are the tests run on arm64: every kernel test and the search
// tests that go through the kernels (exact and sketch paths), leaving out
// the ones that take minutes under emulation (brute-force sweeps, recall,
// benches), which test no arm64-specific code beyond these.
const qemuTests = "Kernel|FWHT|SketchEstimate|TiesBreak|ApproxBeforeReady|ApproxSeesWrites|AutoPicks|BadInput|DropGallery|UpdatesVisible"

// TestKernelsUnderQemuArm64 cross-compiles this package's tests for arm64
// (pure Go there: no assembly, CGO off) and runs them under qemu-aarch64,
// so the portable kernels are tested on the architecture that serves them.
func TestKernelsUnderQemuArm64(t *testing.T) {
	qemu, err := exec.LookPath("qemu-aarch64")
	if err != nil {
		t.Skip("qemu-aarch64 not installed (Debian qemu-user: `make deps-pkg`, which `make test` runs)")
	}
	if testing.Short() {
		t.Skip("-short: cross-compiling and emulating takes a minute")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to cross-compile with")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "index-arm64.test")
	build := exec.CommandContext(ctx, goTool, "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cross-compile for arm64: %v\n%s", err, out)
	}
	run := exec.CommandContext(ctx, qemu, bin, "-test.run", qemuTests, "-test.v", "-test.count=1")
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("index tests under qemu-aarch64: %v\n%s", err, out)
	}
	// A pattern that matched nothing would pass silently: require the
	// kernel tests to have run their Go implementations, and nothing else.
	for _, want := range []string{"--- PASS: TestDotsF32Kernels/go", "--- PASS: TestSketchIPKernels/go", "--- PASS: TestSketchBoundsKernels/go", "--- PASS: TestAutoPicksExactForSmallGalleries", "dispatched: dot=go sketch=go"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("qemu-aarch64 run lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "avx") {
		t.Errorf("the arm64 run lists an x86 kernel:\n%s", out)
	}
}
