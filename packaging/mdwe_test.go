package packaging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// systemd's MemoryDenyWriteExecute= forbids memory that is writable and
// executable at once, or made executable later: a JIT would break. The
// kernel (Linux >= 6.3) offers the same policy as prctl(PR_SET_MDWE,
// PR_MDWE_REFUSE_EXEC_GAIN), inherited across fork and execve, which newer
// systemd uses when it can. These tests run faced under that prctl: they
// emulate the unit's setting, they are not systemd.
const (
	prSetMDWE            = 65
	prGetMDWE            = 66
	prMDWERefuseExecGain = 1
)

// Environment variables that turn the test binary into a helper (see
// TestMain): the wrapper sets MDWE and execs its arguments; the probe
// tries to map writable executable memory.
const (
	envMDWEExec  = "FACED_TEST_MDWE_EXEC"
	envMDWEProbe = "FACED_TEST_MDWE_PROBE"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envMDWEExec) == "1":
		// self -- argv...
		os.Exit(mdweExec(os.Args[min(2, len(os.Args)):]))
	case os.Getenv(envMDWEProbe) == "1":
		os.Exit(mdweProbe())
	}
	os.Exit(m.Run())
}

// mdweExec sets the policy on this process, checks it took, and replaces
// the process with argv, which inherits it.
func mdweExec(argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "mdwe: nothing to exec")
		return 2
	}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetMDWE, prMDWERefuseExecGain, 0, 0, 0, 0); e != 0 {
		fmt.Fprintln(os.Stderr, "mdwe: prctl(PR_SET_MDWE):", e, "(needs Linux >= 6.3)")
		return 3
	}
	flags, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prGetMDWE, 0, 0, 0, 0, 0)
	if e != 0 || flags&prMDWERefuseExecGain == 0 {
		fmt.Fprintln(os.Stderr, "mdwe: PR_GET_MDWE does not report the policy:", e, flags)
		return 3
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envMDWEExec+"=") {
			env = append(env, kv)
		}
	}
	err := syscall.Exec(argv[0], argv, env)
	fmt.Fprintln(os.Stderr, "mdwe: exec:", err)
	return 4
}

// mdweProbe exits 0 when a writable and executable mapping is refused
// (EACCES: the policy is in force), 1 when it is granted.
func mdweProbe() int {
	mem, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if errors.Is(err, syscall.EACCES) {
		return 0
	}
	if err == nil {
		syscall.Munmap(mem)
		fmt.Fprintln(os.Stderr, "probe: write+exec mapping granted")
		return 1
	}
	fmt.Fprintln(os.Stderr, "probe:", err)
	return 2
}

// underMDWE runs argv in a child with the policy set.
func underMDWE(t *testing.T, env []string, argv ...string) (stdout, stderr string, err error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--"}, argv...)
	return tryRun(append(env, envMDWEExec+"=1"), self, args...)
}

// TestMDWEWrapperEnforces is the control: without it, the tests below
// would pass just as well if the policy were silently not applied.
func TestMDWEWrapperEnforces(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := tryRun(append(os.Environ(), envMDWEProbe+"=1"), self); err == nil {
		t.Fatalf("the probe was refused write+exec memory without the policy: %s", errOut)
	}
	if _, errOut, err := underMDWE(t, append(os.Environ(), envMDWEProbe+"=1"), self); err != nil {
		t.Fatalf("under PR_SET_MDWE the probe still got write+exec memory (%v): %s", err, errOut)
	}
}

// TestRuntimesUnderEmulatedMemoryDenyWriteExecute runs the packaged faced
// over a photo under PR_SET_MDWE with each backend: ONNX Runtime (the
// default), TensorFlow Lite with XNNPACK, and OpenCV DNN. detect loads
// every model; bench pipeline also runs landmarks, embedding, liveness and
// (for onnxrt) the attribute networks. faced.service sets
// MemoryDenyWriteExecute=yes because this passes.
func TestRuntimesUnderEmulatedMemoryDenyWriteExecute(t *testing.T) {
	faced := builtBinary(t, "amd64")
	img := photo(t)
	images := t.TempDir()
	if err := os.Symlink(img, filepath.Join(images, filepath.Base(img))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"onnxrt", []string{"--backend", "onnxrt", "--attributes"}},
		{"tflite", []string{"--backend", "tflite", "--detector", "blazeface-short", "--embedder", "mobilefacenet-192", "--liveness", "face-antispoofing", "--landmarks", ""}},
		{"opencvdnn", []string{"--backend", "opencvdnn"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			detect := append(append([]string{faced, "detect"}, tc.flags...), img)
			out, errOut, err := underMDWE(t, os.Environ(), detect...)
			if err != nil {
				t.Fatalf("faced detect under PR_SET_MDWE: %v\n%s", err, errOut)
			}
			if !strings.Contains(out, `"score"`) {
				t.Errorf("faced detect found no face under PR_SET_MDWE:\n%s", out)
			}
			bench := append([]string{faced, "bench", "pipeline", "--images", images, "--calls", "2", "--json"}, tc.flags...)
			out, errOut, err = underMDWE(t, os.Environ(), bench...)
			if err != nil {
				t.Fatalf("faced bench pipeline under PR_SET_MDWE: %v\n%s", err, errOut)
			}
			if !strings.Contains(out, `"images_per_s"`) {
				t.Errorf("bench pipeline output lacks images_per_s:\n%s", out)
			}
		})
	}
}
