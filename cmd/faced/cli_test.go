package main

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/store"
)

// The command line of issue 17: flags anywhere, -h exits 0, complete
// help, a hint instead of a dozen "no such file", a safe restore, and a
// version that names its commit.

// commands are every command with its verbs (nil: none).
var commands = map[string][]string{
	"serve":   nil,
	"eval":    {"verify", "detect", "liveness"},
	"bench":   {"pipeline", "index", "http", "camera"},
	"models":  {"list", "verify"},
	"backup":  nil,
	"restore": nil,
	"keys":    {"add", "list", "revoke", "hash"},
	"detect":  nil,
	"config":  {"check", "default"},
	"version": nil,
}

// TestHelpIsComplete: the top-level help names every command and every
// verb, and each command's own -h lists exactly the verbs it dispatches.
func TestHelpIsComplete(t *testing.T) {
	top, _, err := faced(t, "help")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("faced help: err = %v, want flag.ErrHelp", err)
	}
	for cmd, verbs := range commands {
		if !regexp.MustCompile(`(?m)^  ` + cmd + `\b`).MatchString(top) {
			t.Errorf("the help lacks a line for %q:\n%s", cmd, top)
		}
		for _, v := range verbs {
			if !regexp.MustCompile(`(?m)^  ` + cmd + ` ` + v + `\b`).MatchString(top) {
				t.Errorf("the help lacks a line for %q:\n%s", cmd+" "+v, top)
			}
		}
		if verbs == nil {
			continue
		}
		// The verbs the command really dispatches, from its own usage.
		out, _, _ := faced(t, cmd, "-h")
		m := regexp.MustCompile(`usage: faced ` + cmd + ` <([^>]+)>`).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("faced %s -h: no verb list:\n%s", cmd, out)
			continue
		}
		for _, v := range strings.Split(m[1], " | ") {
			if !strings.Contains(top, "  "+cmd+" "+v) {
				t.Errorf("faced %s dispatches %q, which the top-level help does not list", cmd, v)
			}
		}
	}
	for _, want := range []string{"FACED_DEPS_DIR", "--deps-dir", "Flags may come before or after the arguments"} {
		if !strings.Contains(top, want) {
			t.Errorf("the help lacks %q", want)
		}
	}
}

// TestREADMECommandList: the README's command list has every command and
// verb the help has.
func TestREADMECommandList(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(b), "\n## The command\n")
	section, _, _ = strings.Cut(section, "\n## ")
	words := map[string]map[string]bool{} // command -> words on its lines
	for _, line := range strings.Split(section, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "faced" {
			continue
		}
		if words[f[1]] == nil {
			words[f[1]] = map[string]bool{}
		}
		for _, w := range f[2:] {
			words[f[1]][w] = true
		}
	}
	for cmd, verbs := range commands {
		if words[cmd] == nil {
			t.Errorf("README's command list lacks faced %s", cmd)
		}
		for _, v := range verbs {
			if !words[cmd][v] {
				t.Errorf("README's command list lacks faced %s %s", cmd, v)
			}
		}
	}
}

// TestHelpExitsZero: -h and --help on every command and verb are a help
// request (exit status 0) that prints the usage, which states where flags
// may go when the command takes arguments.
func TestHelpExitsZero(t *testing.T) {
	var lines [][]string
	for cmd, verbs := range commands {
		lines = append(lines, []string{cmd})
		for _, v := range verbs {
			lines = append(lines, []string{cmd, v})
		}
	}
	lines = append(lines, []string{}) // faced -h
	for _, line := range lines {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string{}, line...), h)
			out, errOut, err := faced(t, args...)
			if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
				t.Errorf("faced %s: err = %v, exit %d; want a help request, exit 0", strings.Join(args, " "), err, exitCode(err))
			}
			if !strings.Contains(out+errOut, "usage: faced") {
				t.Errorf("faced %s printed no usage: %q %q", strings.Join(args, " "), out, errOut)
			}
		}
	}
	for cmd, operands := range map[string]string{"backup": "FILE", "restore": "FILE", "detect": "PHOTO...", "keys revoke": "ID"} {
		_, errOut, _ := faced(t, append(strings.Fields(cmd), "-h")...)
		if !strings.Contains(errOut, "usage: faced "+cmd+" [flags] "+operands+"\nFlags may come before or after "+operands) {
			t.Errorf("faced %s -h does not state where flags go:\n%s", cmd, errOut)
		}
	}
}

// TestExitStatus runs the real process (the test binary as faced): help
// exits 0, a usage error 2.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"-h"}, 0},
		{[]string{"backup", "--help"}, 0},
		{[]string{"keys", "revoke", "-h"}, 0},
		{[]string{"eval", "-h"}, 0},
		{[]string{}, 2},
		{[]string{"backup"}, 2},
		{[]string{"eval"}, 2},
	} {
		cmd := exec.Command(os.Args[0], tc.args...)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		err := cmd.Run()
		got := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			got = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("faced %s: exit %d, want %d", strings.Join(tc.args, " "), got, tc.want)
		}
	}
}

// TestFlagsAfterArguments: every command takes its flags before or after
// its arguments, and "--" ends the flags.
func TestFlagsAfterArguments(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	seedStore(t, src, "ada")
	file := filepath.Join(t.TempDir(), "snap.db")
	mustFaced(t, "backup", file, "--data-dir", src)
	if err := store.Verify(file); err != nil {
		t.Fatalf("backup FILE --data-dir: %v", err)
	}
	mustFaced(t, "restore", file, "--data-dir", dst)
	if !personIn(t, dst, "ada") {
		t.Fatal("restore FILE --data-dir restored nothing")
	}
	// "--" ends the flags: a file name that starts with a dash.
	dashed := filepath.Join(t.TempDir(), "-dashed.db")
	t.Setenv("FACED_DEPS_DIR", testenv.DepsDir(t)) // found from any folder
	t.Chdir(filepath.Dir(dashed))
	mustFaced(t, "backup", "--data-dir", src, "--", "-dashed.db")
	if _, err := os.Stat(dashed); err != nil {
		t.Fatalf("backup -- -dashed.db: %v", err)
	}

	keys := t.TempDir()
	token := strings.TrimSpace(mustFaced(t, "keys", "add", "--name", "door", "--data-dir", keys, "--scopes", "read"))
	id, _, _ := strings.Cut(token, ".")
	if out := mustFaced(t, "keys", "revoke", id, "--data-dir", keys); !strings.Contains(out, "revoked") {
		t.Errorf("keys revoke ID --data-dir: %q", out)
	}
	out := mustFaced(t, "keys", "list", "--data-dir", keys, "--json")
	if !strings.Contains(out, `"revoked": "`) {
		t.Errorf("keys list after revoke: %s", out)
	}

	// A command that takes no arguments names the stray one.
	for _, args := range [][]string{
		{"config", "check", "extra"},
		{"keys", "list", "extra", "--data-dir", keys},
		{"eval", "verify", "extra"},
	} {
		_, _, err := faced(t, args...)
		if err == nil || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
			t.Errorf("faced %s: err = %v, want unexpected argument", strings.Join(args, " "), err)
		}
	}
}

// TestDepsNotFound: without runtimes and models, models verify and bench
// say once which flag or variable to set.
func TestDepsNotFound(t *testing.T) {
	testenv.DepsDir(t)
	empty := t.TempDir()
	noModels := t.TempDir()
	if err := os.Mkdir(filepath.Join(noModels, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	images := filepath.Join(testenv.DataDir(t), "deepface")
	for _, args := range [][]string{
		{"models", "verify", "--deps-dir", empty},
		{"models", "verify", "--deps-dir", noModels},
		{"bench", "pipeline", "--deps-dir", empty, "--images", images},
		{"bench", "http", "--deps-dir", empty},
		{"detect", "--deps-dir", empty, filepath.Join(images, "img1.jpg")},
		{"eval", "liveness", "--deps-dir", empty, "--images", images},
	} {
		out, _, err := faced(t, args...)
		if err == nil || !strings.Contains(err.Error(), "--deps-dir") || !strings.Contains(err.Error(), "FACED_DEPS_DIR") {
			t.Errorf("faced %s: err = %v, want one error naming --deps-dir and FACED_DEPS_DIR", strings.Join(args, " "), err)
		}
		if strings.Contains(out, "no such file") || strings.Contains(out, "FAIL") {
			t.Errorf("faced %s printed per-file failures:\n%s", strings.Join(args, " "), out)
		}
	}
	// The variable is honoured as the flag is.
	t.Setenv("FACED_DEPS_DIR", empty)
	if _, _, err := faced(t, "models", "verify"); err == nil || !strings.Contains(err.Error(), "no models/ folder in "+empty) {
		t.Errorf("FACED_DEPS_DIR=%s models verify: err = %v", empty, err)
	}
}

// TestRestoreKeepsAndNeedsForce: restore refuses to replace a store
// without --force; with it, the replaced store is kept as
// <store>.before-restore, which a second restore does not overwrite.
func TestRestoreKeepsAndNeedsForce(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	seedStore(t, src, "ada")
	seedStore(t, dst, "bob")
	file := filepath.Join(t.TempDir(), "snap.db")
	mustFaced(t, "backup", "--data-dir", src, file)
	db := daemon.DBPath(dst)
	kept := db + ".before-restore"

	_, _, err := faced(t, "restore", "--data-dir", dst, file)
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over a store without --force: err = %v, want a refusal naming --force", err)
	}
	if !personIn(t, dst, "bob") || personIn(t, dst, "ada") {
		t.Fatal("the refused restore changed the store")
	}
	if _, err := os.Stat(kept); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused restore left %s: %v", kept, err)
	}

	out := mustFaced(t, "restore", file, "--data-dir", dst, "--force")
	if !strings.Contains(out, kept) {
		t.Errorf("restore does not say where the replaced store is: %q", out)
	}
	if !personIn(t, dst, "ada") || personIn(t, dst, "bob") {
		t.Fatal("the store was not restored")
	}
	if !personIn(t, keptDir(t, kept), "bob") {
		t.Fatal("the kept store lacks what the store held before")
	}

	// A second restore would overwrite the only copy of the original.
	_, _, err = faced(t, "restore", "--force", "--data-dir", dst, file)
	if err == nil || !strings.Contains(err.Error(), kept) {
		t.Fatalf("second restore: err = %v, want a refusal naming %s", err, kept)
	}
	if !personIn(t, keptDir(t, kept), "bob") {
		t.Fatal("the second restore changed the kept store")
	}
}

// keptDir is a data directory whose store is a copy of the kept file, so
// personIn can open it without touching the original.
func keptDir(t *testing.T, kept string) string {
	t.Helper()
	b, err := os.ReadFile(kept)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(daemon.DBPath(dir), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVersion: faced version prints the version and the VCS revision as
// the binary's build information gives them (go test stamps none, so
// versionString is also checked on its own).
func TestVersion(t *testing.T) {
	bi, _ := debug.ReadBuildInfo()
	want := versionString(version, revision, bi) + "\n"
	for _, arg := range []string{"version", "--version", "-version"} {
		if out := mustFaced(t, arg); out != want {
			t.Errorf("%s printed %q, want %q", arg, out, want)
		}
	}
	const rev = "5bdf4fc1f22a28dcdadaedefb662b0550095da24"
	stamped := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261203130000-5bdf4fc1f22a"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: "2026-12-03T13:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	for _, tc := range []struct {
		linked, linkedRev string
		bi                *debug.BuildInfo
		want              string
	}{
		{"", "", stamped, "faced v0.0.0-20261203130000-5bdf4fc1f22a (revision " + rev + ", 2026-12-03T13:00:00Z, modified)"},
		{"0.1.0~git20261203.5bdf4fc", "", stamped, "faced 0.1.0~git20261203.5bdf4fc (revision " + rev + ", 2026-12-03T13:00:00Z, modified)"},
		// A git worktree: the go command stamps no revision; the Makefile
		// links it in.
		{"", rev + "-modified", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "faced (devel) (revision " + rev + ", modified)"},
		{"", rev, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "faced (devel) (revision " + rev + ")"},
		{"", "", nil, "faced (devel) (no VCS revision"},
	} {
		if got := versionString(tc.linked, tc.linkedRev, tc.bi); !strings.HasPrefix(got, tc.want) {
			t.Errorf("versionString(%q, %q) = %q, want %q", tc.linked, tc.linkedRev, got, tc.want)
		}
	}
}

// TestVersionOfSourceBuild builds faced as the Makefile does (the commit
// linked in, since a git worktree gets no vcs.revision stamp) and checks
// `faced version` names the checkout's commit.
func TestVersionOfSourceBuild(t *testing.T) {
	root := testenv.RepoRoot(t)
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD (git is needed to stamp the revision): %v", err)
	}
	rev := strings.TrimSpace(string(head))
	bin := filepath.Join(t.TempDir(), "faced")
	build := exec.Command("go", "build", "-ldflags", "-X main.revision="+rev, "-o", bin, "./cmd/faced")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "faced ") || !strings.Contains(string(out), "revision "+rev) {
		t.Errorf("faced version printed %q, want the revision %s", out, rev)
	}
}
