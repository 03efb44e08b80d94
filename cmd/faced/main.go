// Command faced is the on-device face recognition daemon and its tools.
//
//	faced serve    run the daemon
//	faced eval     measure accuracy: verify, detect, liveness
//	faced bench    measure speed: pipeline
//	faced models   list the model catalogue and verify the files
//	faced backup   snapshot the store; faced restore brings one back
//	faced keys     manage API keys (add | list | revoke | hash)
//	faced config   check a configuration file, print the default one
//	faced version  print the version
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
	"slices"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: faced <command> [flags]

commands:
  serve     run the daemon
  eval      measure accuracy (verify | detect | liveness)
  bench     measure speed (pipeline)
  models    list the model catalogue and verify the files (list | verify)
  backup    write a consistent snapshot of the store: backup [--data-dir DIR] FILE
  restore   replace the store with a snapshot: restore [--data-dir DIR] FILE
  keys      manage API keys, also on a running daemon (add | list | revoke | hash)
  detect    print the faces of photos as JSON: detect [--config FILE] [model flags] PHOTO...
  config    check [--config FILE] (file and FACED_* environment) | default (print every setting)
  version   print the version

Run 'faced <command> -h' for a command's flags.
`

// main runs a command until it ends or SIGTERM/SIGINT arrives, which
// cancels its context (serve then drains and stops). A second signal while
// it stops kills the process the default way. Serve handles SIGHUP itself.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default action for the next signal
	}()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "faced:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
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
		fmt.Fprintln(stdout, "faced", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// command is one verb of the command line.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// dispatch runs the verb args[0] of a command that has several
// ("faced eval verify ...").
func dispatch(ctx context.Context, name string, verbs map[string]command, args []string, stdout, stderr io.Writer) error {
	names := strings.Join(slices.Sorted(maps.Keys(verbs)), ", ")
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(stderr, "usage: faced %s <%s> [flags]\n", name, names)
		return flag.ErrHelp
	}
	fn, ok := verbs[args[0]]
	if !ok {
		return fmt.Errorf("%s: unknown verb %q (want one of %s)", name, args[0], names)
	}
	return fn(ctx, args[1:], stdout, stderr)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("faced "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
