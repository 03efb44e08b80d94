package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/facedhq/faced/models"
)

// cmdModels lists the catalogue or verifies the model files on disk.
func cmdModels(_ context.Context, args []string, stdout, stderr io.Writer) error {
	verb, rest, err := subcommand(args, "list, verify", stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("models "+verb, stderr)
	depsDir := fs.String("deps-dir", "", "folder with lib/ and models/ (default: installed package or .deps)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	m, err := models.LoadManifest()
	if err != nil {
		return err
	}
	dir := *depsDir
	if dir == "" {
		dir = models.FindDir()
	}
	switch verb {
	case "list":
		tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tTASK\tFORMAT\tMB\tSHA256\tSOURCE\tLICENCE")
		for _, s := range m.Models {
			mb := "-"
			if st, err := os.Stat(filepath.Join(dir, s.File)); err == nil {
				mb = fmt.Sprintf("%.1f", float64(st.Size())/1e6)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Task, s.Format, mb, s.SHA256[:12], s.Source, s.License)
		}
		return tw.Flush()
	case "verify":
		bad := 0
		var first error
		for _, s := range m.Models {
			if _, err := s.Load(dir); err != nil {
				fmt.Fprintf(stdout, "FAIL %s: %v\n", s.Name, err)
				bad++
				if first == nil {
					first = fmt.Errorf("%s: %w", s.Name, err)
				}
				continue
			}
			fmt.Fprintf(stdout, "ok   %s\n", s.Name)
		}
		if bad > 0 {
			// Wrap the first failure so callers (and the exit message) see
			// why, e.g. models.ErrChecksum.
			return fmt.Errorf("%d model file(s) failed verification; first: %w", bad, first)
		}
		return nil
	}
	return fmt.Errorf("models: unknown verb %q (want list or verify)", verb)
}
