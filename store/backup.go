package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// Backup writes a consistent snapshot of the whole file to w while the
// daemon keeps serving: it is a read transaction, so writers carry on
// (readers never block bbolt's writer, except when the file must grow).
// The output is itself a store file; Restore puts it back. Cancelling ctx
// fails the next write to w.
func (db *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := db.view(ctx, func(tx *bbolt.Tx) (err error) {
		n, err = tx.WriteTo(ctxWriter{ctx, w})
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup: %w", err)
	}
	return n, nil
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (cw ctxWriter) Write(p []byte) (int, error) {
	if err := cw.ctx.Err(); err != nil {
		return 0, err
	}
	return cw.w.Write(p)
}

// lockProbe is how long Restore waits for the target's lock. The daemon
// holds it for as long as it runs, so waiting longer changes nothing.
const lockProbe = 200 * time.Millisecond

// Restore replaces the store at dbPath with the backup at backupPath. The
// daemon must be stopped: if dbPath is locked Restore fails with ErrLocked
// and changes nothing.
//
// The backup is copied next to dbPath, fsynced and checked there (bbolt's
// page-level consistency check plus a schema version this build can open,
// possibly after migrating), then renamed over dbPath and the directory
// fsynced. A crash at any point leaves either the old store or the restored
// one, never a mix; the backup file itself is only read.
func Restore(backupPath, dbPath string) error {
	return RestoreWith(backupPath, dbPath, RestoreOptions{Replace: true})
}

// RestoreOptions say what Restore may do to an existing store.
type RestoreOptions struct {
	// Replace allows replacing an existing store; without it RestoreWith
	// fails with ErrDuplicate when dbPath exists.
	Replace bool
	// Keep, if set, is where the replaced store is kept: a hard link to
	// the old file (a copy where links are not possible), made while the
	// lock is held, just before the rename. An existing Keep is not
	// overwritten (the store an earlier restore kept may be the only good
	// one); RestoreWith then fails with ErrDuplicate and changes nothing.
	Keep string
}

// RestoreWith is Restore with options. The lock is checked first, so a
// running daemon is reported (ErrLocked) before anything else.
func RestoreWith(backupPath, dbPath string, opts RestoreOptions) error {
	if err := restore(backupPath, dbPath, opts); err != nil {
		return fmt.Errorf("store: restore %s from %s: %w", dbPath, backupPath, err)
	}
	return nil
}

func restore(backupPath, dbPath string, opts RestoreOptions) (err error) {
	// Hold the target's lock (shared, read-only: nothing is written to it)
	// until the rename, so a daemon starting meanwhile waits.
	exists := false
	if _, err := os.Stat(dbPath); err == nil {
		exists = true
		guard, err := bbolt.Open(dbPath, 0o600, &bbolt.Options{Timeout: lockProbe, ReadOnly: true})
		switch {
		case errors.Is(err, bberrors.ErrTimeout):
			return ErrLocked
		case err == nil:
			defer guard.Close()
		}
		// Any other error means the current file is damaged or not ours;
		// replacing it is what a restore is for.
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if exists && !opts.Replace {
		return fmt.Errorf("%w: a store exists at %s", ErrDuplicate, dbPath)
	}
	keep := exists && opts.Keep != ""
	if keep {
		if _, err := os.Lstat(opts.Keep); err == nil {
			return fmt.Errorf("%w: %s (kept by an earlier restore)", ErrDuplicate, opts.Keep)
		}
	}

	dir, base := filepath.Split(dbPath)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".restore-*")
	if err != nil {
		return err
	}
	tmpPath := tmp.Name()
	defer func() {
		if err != nil {
			os.Remove(tmpPath)
		}
	}()
	if err := copyInto(tmp, backupPath); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := validateBackup(tmpPath); err != nil {
		return err
	}
	if keep {
		if err := keepFile(dbPath, opts.Keep); err != nil {
			return fmt.Errorf("keep the replaced store: %w", err)
		}
	}
	if err := os.Rename(tmpPath, dbPath); err != nil {
		if keep {
			os.Remove(opts.Keep)
		}
		return err
	}
	return syncDir(dir)
}

// keepFile makes keep name the content of path: a hard link (instant, no
// space), else an fsynced copy.
func keepFile(path, keep string) error {
	if err := os.Link(path, keep); err == nil {
		return nil
	} else if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s", ErrDuplicate, keep)
	}
	f, err := os.OpenFile(keep, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := copyInto(f, path); err != nil {
		f.Close()
		os.Remove(keep)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(keep)
		return err
	}
	return nil
}

func copyInto(dst *os.File, srcPath string) error {
	src, err := os.Open(srcPath)
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	return dst.Sync()
}

// Verify checks that a file (a backup) is a whole, consistent faced store
// of a schema version this build can open, without modifying it.
func Verify(path string) error { return validateBackup(path) }

// validateBackup opens path read-only and checks it is a whole bbolt file
// of a schema version Open can bring forward.
func validateBackup(path string) error {
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockProbe, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("backup does not open: %w", boltOpenErr(err))
	}
	defer b.Close()
	return b.View(func(tx *bbolt.Tx) error {
		// Read-only opens do not load the freelist, so nothing past the
		// meta pages has been touched yet and a short file is caught here.
		if err := checkTruncated(tx, path); err != nil {
			return err
		}
		// Drain the whole channel: the checker goroutine reads the
		// transaction's pages and must finish before the transaction ends.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return fmt.Errorf("%w: backup fails consistency check: %v", ErrCorrupt, first)
		}
		v, err := readVersion(tx)
		if err != nil {
			return err
		}
		if v == 0 || v > CurrentSchemaVersion {
			return fmt.Errorf("%w: backup has schema version %d, this build knows 1..%d", ErrSchema, v, CurrentSchemaVersion)
		}
		return nil
	})
}

// syncDir makes a rename durable: the new directory entry is only on disk
// once the directory itself is fsynced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
