// Command faced is the on-device face recognition daemon and its tools.
//
//	faced serve    run the daemon
//	faced eval     measure accuracy: verify, detect, liveness
//	faced bench    measure speed: pipeline, index, http
//	faced models   list the model catalogue and verify the files
//	faced backup   snapshot the store; faced restore brings one back
//	faced keys     manage API keys (add | list | revoke | hash)
//	faced config   check a configuration file, print the default one
//	faced detect   print the faces found in photos
//	faced version  print the version and VCS revision
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...";
// without it, versionString reads the module version and VCS revision the
// go command stamps into the binary.
var version = ""

// revision is the commit, set with -ldflags "-X main.revision=HASH" (with
// "-modified" appended for a tree with uncommitted changes) where the go
// command cannot stamp vcs.revision itself (a git worktree); see Makefile.
var revision = ""

const usage = `usage: faced <command> [verb] [flags] [arguments]

Flags may come before or after the arguments, for every command
("faced backup FILE --data-dir DIR" = "faced backup --data-dir DIR FILE").

daemon:
  serve [--config FILE] [flags]       run the daemon (HTTP API, events, sync)
  config check [--config FILE]        check a configuration file and the FACED_* environment
  config default                      print every setting, commented

store (with the daemon stopped, or through a running daemon where noted):
  keys add --name NAME --scopes S     create an API key (also on a running daemon)
  keys list [--json]                  list the API keys (also on a running daemon)
  keys revoke ID                      revoke an API key (also on a running daemon)
  keys hash                           print the secret_sha256 of a secret read from stdin
  backup FILE                         write a consistent snapshot of the store (also online)
  restore FILE [--force]              replace the store with a snapshot, keeping the
                                      replaced one as <store>.before-restore (daemon stopped)

models and photos:
  detect [--config FILE] PHOTO...     print the faces found in photos as JSON lines
  models list                         list the model catalogue
  models verify                       check the model files' checksums

measurement:
  eval verify --pairs F --images D    accuracy of face verification, thresholds as confidences
  eval detect --images D              recall (and precision) of the detector
  eval liveness --images D            spoof detection accuracy
  bench pipeline                      speed of detect + align + embed on photos
  bench index                         speed and recall of 1:N search (synthetic)
  bench http                          speed of the HTTP API on loopback
  bench camera --clip FILE            CPU, rates and decision latency of the camera loop

  version                             print the version and VCS revision
  help                                print this help

Every command reading models takes --deps-dir DIR, the folder holding lib/
and models/; FACED_DEPS_DIR sets the same. Default: the installed package
(/usr/lib/faced), else .deps in this or a parent folder (a checkout).

Run 'faced <command> [verb] -h' for a command's flags.
`

// errNoCommand is a command line without its command or verb: the usage is
// printed and the exit status is 2, where asking for help (-h) exits 0.
var errNoCommand = errors.New("no command given")

// main runs a command until it ends or SIGTERM/SIGINT arrives, which
// cancels its context (serve then drains and stops). A second signal while
// it stops kills the process the default way. Serve handles SIGHUP itself.
func main() {
	signaled, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The command's context ends only once the default action is back, so
	// a second signal sent as soon as it starts stopping kills it (serve's
	// "shutting down" used to race the restore, and the signal was lost).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-signaled.Done()
		stop()
		cancel()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "faced:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is 0 for success and for a help request (-h, --help, help), 2
// for any error.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errNoCommand
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr)
	case "eval":
		return cmdEval(ctx, rest, stdout, stderr)
	case "bench":
		return cmdBench(ctx, rest, stdout, stderr)
	case "models":
		return cmdModels(ctx, rest, stdout, stderr)
	case "backup":
		return cmdBackup(ctx, rest, stdout, stderr)
	case "restore":
		return cmdRestore(ctx, rest, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, rest, stdout, stderr)
	case "detect":
		return cmdDetect(ctx, rest, stdout, stderr)
	case "config":
		return cmdConfig(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		return cmdVersion(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// cmdVersion prints the version, e.g.
//
//	faced v0.0.0-20261203130000-5bdf4fc1a2b3 (revision 5bdf4fc1a2b3..., 2026-12-03T13:00:00Z, modified)
func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stderr)
	if err := fs.parse(args); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionString(version, revision, bi))
	return nil
}

// versionString is "faced VERSION (revision REV, TIME[, modified])": the
// version given at link time, else the module's (a pseudo-version in a
// source build, "(devel)" when the go command had none), and the VCS
// revision, commit time and whether the tree had uncommitted changes, as
// the go command stamped them, else the revision given at link time.
func versionString(linked, linkedRev string, bi *debug.BuildInfo) string {
	v := linked
	if v == "" && bi != nil {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	var rev, when string
	modified := false
	if bi != nil {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if rev == "" && linkedRev != "" {
		rev, modified = strings.CutSuffix(linkedRev, "-modified")
	}
	if rev == "" {
		return "faced " + v + " (no VCS revision: built without version control information, e.g. go test or -buildvcs=false)"
	}
	details := []string{"revision " + rev}
	if when != "" {
		details = append(details, when)
	}
	if modified {
		details = append(details, "modified")
	}
	return fmt.Sprintf("faced %s (%s)", v, strings.Join(details, ", "))
}

// command is one verb of the command line.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// dispatch runs the verb args[0] of a command that has several
// ("faced eval verify ...").
func dispatch(ctx context.Context, name string, verbs map[string]command, args []string, stdout, stderr io.Writer) error {
	names := strings.Join(slices.Sorted(maps.Keys(verbs)), " | ")
	help := fmt.Sprintf("usage: faced %s <%s> [flags] [arguments]\n"+
		"Flags may come before or after the arguments. Run 'faced %s VERB -h' for a verb's flags.\n", name, names, name)
	if len(args) == 0 {
		fmt.Fprint(stderr, help)
		return fmt.Errorf("%s: %w (want one of %s)", name, errNoCommand, names)
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, help)
		return flag.ErrHelp
	}
	fn, ok := verbs[args[0]]
	if !ok {
		return fmt.Errorf("%s: unknown verb %q (want one of %s)", name, args[0], names)
	}
	return fn(ctx, args[1:], stdout, stderr)
}

// flagSet is a command's flags and the synopsis of its operands.
type flagSet struct {
	*flag.FlagSet
	// operands is the synopsis of the arguments after the flags ("FILE",
	// "PHOTO..."); "" for a command that takes none.
	operands string
	// stray, for a command that takes no operands, says what to do
	// instead of giving one.
	stray string
}

// newFlagSet makes the flag set of "faced name": its usage line names the
// operands and states that flags may come anywhere on the line.
func newFlagSet(name, operands string, stderr io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("faced "+name, flag.ContinueOnError), operands: operands}
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if operands == "" {
			fmt.Fprintf(stderr, "usage: faced %s [flags]\n", name)
		} else {
			fmt.Fprintf(stderr, "usage: faced %s [flags] %s\nFlags may come before or after %s.\n", name, operands, operands)
		}
		fmt.Fprintln(stderr, "flags:")
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags anywhere on the line, not only before the first
// operand as the flag package does: "backup FILE --data-dir DIR" works.
// "--" ends the flags; what follows is operands even if it starts with
// "-". Afterwards fs.Args() are the operands in their order. A command
// that takes no operands refuses any.
func (fs *flagSet) parse(args []string) error {
	var operands []string
	for {
		if err := fs.FlagSet.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		// Parse stops at the first operand, or just after a "--" it consumed.
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			operands = append(operands, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		operands, args = append(operands, rest[0]), rest[1:]
	}
	if fs.operands == "" && len(operands) > 0 {
		hint := fs.stray
		if hint == "" {
			hint = "this command takes flags only; see -h"
		}
		return fmt.Errorf("%s: unexpected argument %q (%s)", strings.TrimPrefix(fs.Name(), "faced "), operands[0], hint)
	}
	// Re-parse just the operands, after "--", so that fs.Args() and
	// fs.NArg() report them; the flags keep the values set above.
	return fs.FlagSet.Parse(append([]string{"--"}, operands...))
}
