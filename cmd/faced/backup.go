package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/store"
)

// cmdBackup writes a consistent snapshot of the store to FILE. It opens the
// store itself, so it works while the daemon is stopped; bbolt's read
// transaction makes the copy consistent even while this process writes.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", stderr)
	dataDir := fs.String("data-dir", "./data", "state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("backup: want exactly one FILE")
	}
	db, err := store.Open(daemon.DBPath(*dataDir), store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("backup: %w: the daemon is running; stop it first (an online backup endpoint comes with the admin API)", err)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	out := fs.Arg(0)
	tmp, err := os.CreateTemp(filepath.Dir(out), ".faced-backup-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := db.Backup(ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup: %d bytes written to %s\n", n, out)
	return nil
}

// cmdRestore replaces the store with a backup (the daemon must be stopped).
func cmdRestore(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", stderr)
	dataDir := fs.String("data-dir", "./data", "state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("restore: want exactly one FILE")
	}
	if err := os.MkdirAll(*dataDir, 0o750); err != nil {
		return err
	}
	if err := store.Restore(fs.Arg(0), daemon.DBPath(*dataDir)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restore: %s restored from %s\n", daemon.DBPath(*dataDir), fs.Arg(0))
	return nil
}
