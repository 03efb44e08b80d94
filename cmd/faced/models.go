package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/facedhq/faced/models"
)

// cmdModels lists the catalogue or verifies the model files on disk.
func cmdModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "models", map[string]command{"list": modelsList, "verify": modelsVerify}, args, stdout, stderr)
}

// modelsFlags parses the verbs' one flag and returns the manifest and the
// dependency folder.
func modelsFlags(verb string, args []string, stderr io.Writer) (*models.Manifest, string, error) {
	fs := newFlagSet("models "+verb, "", stderr)
	depsDir := fs.String("deps-dir", "", "folder with lib/ and models/ (default: $FACED_DEPS_DIR, the installed package, or .deps)")
	if err := fs.parse(args); err != nil {
		return nil, "", err
	}
	m, err := models.LoadManifest()
	if err != nil {
		return nil, "", err
	}
	if *depsDir == "" {
		*depsDir = models.FindDir()
	}
	return m, *depsDir, nil
}

func modelsList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	m, dir, err := modelsFlags("list", args, stderr)
	if err != nil {
		return err
	}
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
}

func modelsVerify(_ context.Context, args []string, stdout, stderr io.Writer) error {
	m, dir, err := modelsFlags("verify", args, stderr)
	if err != nil {
		return err
	}
	if dir, err = findDeps(dir); err != nil {
		return fmt.Errorf("models verify: %w", err)
	}
	// A folder holding none of the files is the wrong folder: say so once.
	missing := 0
	for _, s := range m.Models {
		if _, err := os.Stat(filepath.Join(dir, s.File)); errors.Is(err, os.ErrNotExist) {
			missing++
		}
	}
	if missing == len(m.Models) {
		return fmt.Errorf("models verify: none of the %d model files is in %s: %s", missing, dir, depsHint)
	}
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
