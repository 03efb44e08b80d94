// Command faced is the on-device face recognition daemon and its tools.
//
//	faced serve    run the daemon
//	faced eval     measure accuracy: verify, detect, liveness
//	faced bench    measure speed: pipeline
//	faced models   list the model catalogue and verify the files
//	faced backup   snapshot the store; faced restore brings one back
//	faced version  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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
  version   print the version

Run 'faced <command> -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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

// subcommand splits "eval verify ..." into the verb and its arguments.
func subcommand(args []string, verbs string, stderr io.Writer) (string, []string, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(stderr, "want one of: %s\n", verbs)
		return "", nil, flag.ErrHelp
	}
	return args[0], args[1:], nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("faced "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
