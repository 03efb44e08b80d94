package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/facedhq/faced/daemon"
)

// cmdConfig checks a configuration or prints the default one.
func cmdConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "config", map[string]command{
		"check":   cmdConfigCheck,
		"default": cmdConfigDefault,
	}, args, stdout, stderr)
}

// cmdConfigCheck validates a file layered as serve layers it (defaults,
// file, FACED_* environment) and loads its TLS certificate, printing every
// problem, one a line, each naming its setting or variable.
func cmdConfigCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config check", "", stderr)
	file := fs.String("config", "", "YAML configuration file to check (the package's is /etc/faced/faced.yaml; none: the defaults)")
	if err := fs.parse(args); err != nil {
		return err
	}
	loader := daemon.Loader{File: *file, Environ: os.Environ()}
	cfg, err := loader.Load()
	problems := daemon.Problems(err)
	if cfg.TLS.CertFile != "" && cfg.TLS.KeyFile != "" {
		if _, err := daemon.LoadCertificate(cfg.TLS); err != nil {
			problems = append(problems, err)
		}
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	what := *file
	if what == "" {
		what = "the defaults"
	}
	if len(problems) > 0 {
		return fmt.Errorf("config check: %s: %d problem(s)", what, len(problems))
	}
	for _, e := range loader.EnvSettings() {
		fmt.Fprintf(stdout, "%s overrides %s\n", e.Var, e.Field)
	}
	fmt.Fprintf(stdout, "%s: ok\n", what)
	return nil
}

// cmdConfigDefault prints the commented default configuration.
func cmdConfigDefault(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config default", "", stderr)
	if err := fs.parse(args); err != nil {
		return err
	}
	_, err := stdout.Write(daemon.DefaultYAML())
	return err
}
