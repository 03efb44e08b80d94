package packaging

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestARM64UnderQEMU runs the arm64 package's binary, from its installed
// layout, under qemu-user with the arm64 sysroot as its root for
// libraries (-L): `faced version`, then a detect that loads ONNX Runtime's
// arm64 library, the models and the arm64 OpenCV. No binfmt is needed.
func TestARM64UnderQEMU(t *testing.T) {
	qemu := needTool(t, "qemu-aarch64", "deps-pkg")
	sysroot := cachedPath(t, "FACED_ARM64_SYSROOT", "sysroot-arm64")
	root := t.TempDir()
	extractDeb(t, builtDeb(t, "arm64"), root)
	faced := filepath.Join(root, "usr", "bin", "faced")
	img := photo(t)
	// Away from the checkout, whose .deps the binary would otherwise find.
	t.Chdir(t.TempDir())

	out := run(t, cleanEnv(), qemu, "-L", sysroot, faced, "version")
	if !strings.HasPrefix(out, "faced ") {
		t.Errorf("faced version printed %q", out)
	}

	// No FACED_DEPS_DIR: the binary must find root/usr/lib/faced from its
	// own path, as on a device. Not the attribute models: emulation is slow.
	out = run(t, cleanEnv(), qemu, "-L", sysroot, faced, "detect", img)
	var res struct {
		Faces []struct {
			Score float32 `json:"score"`
		} `json:"faces"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("detect output: %v\n%s", err, out)
	}
	if len(res.Faces) != 1 || res.Faces[0].Score < 0.7 {
		t.Errorf("arm64 detect: %+v, want one face scoring >= 0.7", res.Faces)
	}
}
