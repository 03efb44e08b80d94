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

// cmdBackup writes a consistent snapshot of the store to FILE, online: with
// the daemon running it asks the daemon over its control socket (bbolt's
// read transaction keeps the copy consistent while requests write), else
// it opens the store itself.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", "FILE", stderr)
	dataDir := fs.String("data-dir", "./data", "state directory")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("backup: want exactly one FILE")
	}
	out := fs.Arg(0)
	tmp, err := os.CreateTemp(filepath.Dir(out), ".faced-backup-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := snapshot(ctx, *dataDir, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// The snapshot must open as a faced store before it replaces anything.
	if err := store.Verify(tmp.Name()); err != nil {
		return fmt.Errorf("backup: the snapshot does not verify: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup: %d bytes written to %s\n", n, out)
	return nil
}

// snapshot copies the store: directly when no daemon holds it, else through
// the running daemon's control socket.
func snapshot(ctx context.Context, dataDir string, w io.Writer) (int64, error) {
	db, err := store.Open(daemon.DBPath(dataDir), store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return daemon.BackupFromDaemon(ctx, dataDir, w)
	}
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return db.Backup(ctx, w)
}

// keptSuffix names the store a restore replaced, beside it.
const keptSuffix = ".before-restore"

// cmdRestore replaces the store with a backup. The daemon must be stopped;
// an existing store is replaced only with --force, and kept as
// <store>.before-restore.
func cmdRestore(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", "FILE", stderr)
	dataDir := fs.String("data-dir", "./data", "state directory")
	force := fs.Bool("force", false, "replace an existing store (it is kept as <store>"+keptSuffix+")")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("restore: want exactly one FILE")
	}
	if err := os.MkdirAll(*dataDir, 0o750); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	db, from := daemon.DBPath(*dataDir), fs.Arg(0)
	kept := db + keptSuffix
	err := store.RestoreWith(from, db, store.RestoreOptions{Replace: *force, Keep: kept})
	switch {
	case errors.Is(err, store.ErrLocked):
		return fmt.Errorf("restore: faced is running and holds %s; stop it (systemctl stop faced) first, then restore, then start it again", db)
	case errors.Is(err, store.ErrDuplicate) && !*force:
		return fmt.Errorf("restore: %s already holds a store; add --force to replace it (the replaced store is kept as %s)", db, kept)
	case errors.Is(err, store.ErrDuplicate):
		return fmt.Errorf("restore: %s exists from an earlier restore and is not overwritten; move it away (or delete it) and run the restore again", kept)
	case err != nil:
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restore: %s restored from %s\n", db, from)
	if _, err := os.Lstat(kept); err == nil && *force {
		fmt.Fprintf(stdout, "restore: the replaced store is kept as %s (delete it once the restored one is good)\n", kept)
	}
	return nil
}
