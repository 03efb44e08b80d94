package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// maxExposure is the `systemd-analyze security` exposure faced.service
// must stay at or below (0 is best, 10 worst; below 2 systemd calls "OK").
// packaging/README.md quotes the current score.
const maxExposure = 2.0

// unitRoot is a root directory holding the amd64 package's files, the
// system units of this machine (sysinit.target and the rest a unit is
// checked against) and /bin/kill, which ExecReload= runs and the package
// depends on (procps).
func unitRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	extractDeb(t, builtDeb(t, "amd64"), root)
	for _, d := range []string{"usr/lib/systemd", "bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run(t, os.Environ(), "cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/"))
	if _, err := os.Stat("/bin/kill"); err != nil {
		t.Fatalf("%v: run `make deps-pkg` (procps; make test does)", err)
	}
	run(t, os.Environ(), "cp", "/bin/kill", filepath.Join(root, "bin", "kill"))
	return root
}

// TestUnitsVerify runs `systemd-analyze verify` on the units as the
// package installs them: syntax, referenced units and executables.
func TestUnitsVerify(t *testing.T) {
	needTool(t, "systemd-analyze", "deps-pkg")
	root := unitRoot(t)
	// The units are the package's, not copies: they must be the ones in
	// systemd/ of the checkout.
	for _, u := range []string{"faced.service", "faced.socket"} {
		got, err := os.ReadFile(filepath.Join(root, UnitDir, u))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s in the package differs from systemd/%s: run `make deb`", u, u)
		}
	}
	out, errOut, err := tryRun(os.Environ(), "systemd-analyze", "verify", "--root="+root, "faced.service", "faced.socket")
	if err != nil || errOut != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s%s", err, out, errOut)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for faced\.service: ([0-9.]+)`)

// TestUnitSecurityScore checks the hardening of faced.service with
// `systemd-analyze security` read from the files (--offline: no running
// systemd needed).
func TestUnitSecurityScore(t *testing.T) {
	needTool(t, "systemd-analyze", "deps-pkg")
	root := unitRoot(t)
	out, errOut, err := tryRun(os.Environ(), "systemd-analyze", "security", "--offline=true", "--no-pager",
		"--root="+root, "--threshold="+strconv.FormatFloat(maxExposure*10, 'f', 0, 64), "faced.service")
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure in the output (%v):\n%s%s", err, out, errOut)
	}
	score, perr := strconv.ParseFloat(m[1], 64)
	if perr != nil {
		t.Fatal(perr)
	}
	t.Logf("systemd-analyze security: faced.service exposure %.1f", score)
	if score > maxExposure || err != nil {
		t.Errorf("exposure %.1f, want <= %.1f (exit: %v):\n%s", score, maxExposure, err, out)
	}
}
