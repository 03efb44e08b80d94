package packaging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// systemd's MemoryDenyWriteExecute= forbids memory that is writable and
// executable at once, or made executable later: a JIT would break. It
// enforces it in one of two ways, and these tests run faced under each
// (they emulate the unit's setting, they are not systemd):
//
//   - prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN), Linux >= 6.3, which
//     newer systemd uses when the kernel has it. On an older kernel (Debian
//     bookworm's is 6.1) these tests skip, saying so; FACED_TEST_NO_MDWE=1
//     takes that path on any kernel.
//   - a seccomp filter, what systemd uses on every other kernel: mmap with
//     PROT_WRITE|PROT_EXEC, mprotect and pkey_mprotect with PROT_EXEC, and
//     shmat with SHM_EXEC fail with EPERM (systemd's
//     seccomp_memory_deny_write_execute). These run on any kernel with
//     seccomp (3.5 on).
const (
	shmExec              = 0o100000 // SHM_EXEC, linux/shm.h (x/sys/unix lacks it)
	prSetMDWE            = 65
	prGetMDWE            = 66
	prMDWERefuseExecGain = 1
)

// Environment variables that turn the test binary into a helper (see
// TestMain): the wrapper sets MDWE and execs its arguments; the probe
// tries to map writable executable memory.
const (
	envMDWEExec    = "FACED_TEST_MDWE_EXEC"
	envSeccompExec = "FACED_TEST_SECCOMP_EXEC"
	envMDWEProbe   = "FACED_TEST_MDWE_PROBE"
	// envNoMDWE makes the tests behave as on a kernel without PR_SET_MDWE.
	envNoMDWE = "FACED_TEST_NO_MDWE"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envMDWEExec) == "1":
		// self -- argv...
		os.Exit(mdweExec(os.Args[min(2, len(os.Args)):]))
	case os.Getenv(envSeccompExec) == "1":
		os.Exit(seccompExec(os.Args[min(2, len(os.Args)):]))
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
	return execWithout(argv, envMDWEExec)
}

// execWithout replaces the process with argv, its environment without
// the helper variable that led here.
func execWithout(argv []string, helperEnv string) int {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, helperEnv+"=") {
			env = append(env, kv)
		}
	}
	err := syscall.Exec(argv[0], argv, env)
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 4
}

// mdweAvailable says why PR_SET_MDWE cannot be tested here ("" when it
// can): PR_GET_MDWE fails with EINVAL on kernels before 6.3.
func mdweAvailable() string {
	if os.Getenv(envNoMDWE) == "1" {
		return "kernel lacks PR_SET_MDWE (needs 6.3) (" + envNoMDWE + "=1 simulates it)"
	}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prGetMDWE, 0, 0, 0, 0, 0); e != 0 {
		return "kernel lacks PR_SET_MDWE (needs 6.3): " + e.Error()
	}
	return ""
}

// seccompExec installs systemd's MemoryDenyWriteExecute= seccomp filter
// on every thread of this process and replaces it with argv, which
// inherits the filter.
func seccompExec(argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "seccomp: nothing to exec")
		return 2
	}
	runtime.LockOSThread()
	// Required to install a filter without CAP_SYS_ADMIN; systemd sets it
	// for MemoryDenyWriteExecute= too.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "seccomp: PR_SET_NO_NEW_PRIVS:", err)
		return 3
	}
	prog := mdweSeccompFilter()
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		fmt.Fprintln(os.Stderr, "seccomp: SECCOMP_SET_MODE_FILTER:", e)
		return 3
	}
	return execWithout(argv, envSeccompExec)
}

// mdweSeccompFilter is systemd's seccomp_memory_deny_write_execute as
// classic BPF over struct seccomp_data (nr at 0, arch at 4, args from 16,
// the low 32 bits first on little-endian machines).
func mdweSeccompFilter() []unix.SockFilter {
	const (
		ldW   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		and   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
		allow = unix.SECCOMP_RET_ALLOW
		deny  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		arg2  = 16 + 2*8
		wx    = unix.PROT_WRITE | unix.PROT_EXEC
	)
	st := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jmp := func(k uint32, jt, jf uint8) unix.SockFilter { return unix.SockFilter{Code: jeq, Jt: jt, Jf: jf, K: k} }
	return []unix.SockFilter{
		/* 0 */ st(ldW, 4),
		/* 1 */ jmp(auditArch, 1, 0),
		/* 2 */ st(ret, unix.SECCOMP_RET_KILL_PROCESS), // another ABI: refuse to guess
		/* 3 */ st(ldW, 0),
		/* 4 */ jmp(unix.SYS_MMAP, 4, 0), // -> 9
		/* 5 */ jmp(unix.SYS_MPROTECT, 7, 0), // -> 13
		/* 6 */ jmp(unix.SYS_PKEY_MPROTECT, 6, 0), // -> 13
		/* 7 */ jmp(unix.SYS_SHMAT, 9, 0), // -> 17
		/* 8 */ st(ret, allow),
		/* 9 mmap */ st(ldW, arg2),
		/* 10 */ st(and, wx),
		/* 11 */ jmp(wx, 8, 0), // -> 20
		/* 12 */ st(ret, allow),
		/* 13 mprotect */ st(ldW, arg2),
		/* 14 */ st(and, unix.PROT_EXEC),
		/* 15 */ jmp(unix.PROT_EXEC, 4, 0), // -> 20
		/* 16 */ st(ret, allow),
		/* 17 shmat */ st(ldW, arg2),
		/* 18 */ st(and, shmExec),
		/* 19 */ jmp(shmExec, 0, 1), // -> 20, else 21
		/* 20 */ st(ret, deny),
		/* 21 */ st(ret, allow),
	}
}

// mdweProbe exits 0 when a writable and executable mapping is refused
// (EACCES from PR_SET_MDWE, EPERM from the seccomp filter: the policy is
// in force), 1 when it is granted.
func mdweProbe() int {
	mem, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
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

// enforcement is one way of imposing the policy on a child.
type enforcement struct {
	name string
	env  string // the helper variable that makes the test binary impose it
	// unavailable says why this kernel cannot impose it ("" when it can).
	unavailable func() string
}

var enforcements = []enforcement{
	{"prctl", envMDWEExec, mdweAvailable},
	{"seccomp", envSeccompExec, func() string { return "" }},
}

// under runs argv in a child with the policy imposed by e.
func under(t *testing.T, e enforcement, env []string, argv ...string) (stdout, stderr string, err error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--"}, argv...)
	return tryRun(append(env, e.env+"=1"), self, args...)
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
	for _, e := range enforcements {
		t.Run(e.name, func(t *testing.T) {
			if why := e.unavailable(); why != "" {
				t.Skip(why)
			}
			if _, errOut, err := under(t, e, append(os.Environ(), envMDWEProbe+"=1"), self); err != nil {
				t.Fatalf("under %s the probe still got write+exec memory (%v): %s", e.name, err, errOut)
			}
		})
	}
}

// TestNoMDWESimulated: FACED_TEST_NO_MDWE=1 makes the prctl path report a
// kernel without PR_SET_MDWE, so `make test` on such a kernel can be
// rehearsed on any machine.
func TestNoMDWESimulated(t *testing.T) {
	t.Setenv(envNoMDWE, "1")
	if why := mdweAvailable(); !strings.Contains(why, "kernel lacks PR_SET_MDWE (needs 6.3)") {
		t.Fatalf("with %s=1: %q, want the lacking-kernel reason", envNoMDWE, why)
	}
}

// TestRuntimesUnderEmulatedMemoryDenyWriteExecute runs the packaged faced
// over a photo under each enforcement of the policy with each backend:
// ONNX Runtime (the default), TensorFlow Lite with XNNPACK, and OpenCV
// DNN. detect loads every model; bench pipeline also runs landmarks,
// embedding, liveness and (for onnxrt) the attribute networks.
// faced.service sets MemoryDenyWriteExecute=yes because this passes.
func TestRuntimesUnderEmulatedMemoryDenyWriteExecute(t *testing.T) {
	faced := builtBinary(t, "amd64")
	img := photo(t)
	images := t.TempDir()
	if err := os.Symlink(img, filepath.Join(images, filepath.Base(img))); err != nil {
		t.Fatal(err)
	}
	for _, e := range enforcements {
		t.Run(e.name, func(t *testing.T) {
			if why := e.unavailable(); why != "" {
				t.Skip(why)
			}
			runRuntimesUnder(t, e, faced, img, images)
		})
	}
}

func runRuntimesUnder(t *testing.T, e enforcement, faced, img, images string) {
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
			out, errOut, err := under(t, e, os.Environ(), detect...)
			if err != nil {
				t.Fatalf("faced detect under %s: %v\n%s", e.name, err, errOut)
			}
			if !strings.Contains(out, `"score"`) {
				t.Errorf("faced detect found no face under %s:\n%s", e.name, out)
			}
			bench := append([]string{faced, "bench", "pipeline", "--images", images, "--calls", "2", "--json"}, tc.flags...)
			out, errOut, err = under(t, e, os.Environ(), bench...)
			if err != nil {
				t.Fatalf("faced bench pipeline under %s: %v\n%s", e.name, err, errOut)
			}
			if !strings.Contains(out, `"images_per_s"`) {
				t.Errorf("bench pipeline output lacks images_per_s:\n%s", out)
			}
		})
	}
}
