package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero. bbolt's own default is to wait forever, which
// turns a second daemon started by mistake into a silent hang.
const DefaultTimeout = time.Second

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Timeout bounds the wait for the file lock held by another process;
	// zero means DefaultTimeout. Open then fails with ErrLocked.
	Timeout time.Duration
	// Now is the clock used for timestamps and retention; nil means
	// time.Now. Tests inject a fake one.
	Now func() time.Time
	// OutboxMaxCount and OutboxMaxBytes bound the sync outbox (bytes count
	// topic plus payload). When an enqueue would exceed either, the oldest
	// messages are dropped in the same transaction and counted in
	// OutboxStats.Dropped: a device offline for weeks must keep enrolling,
	// and the newest state matters most to a fleet. Zero means unlimited.
	OutboxMaxCount int
	OutboxMaxBytes int64
}

// DB is an open store. Its methods are safe for concurrent use: bbolt runs
// one writer at a time and any number of readers on consistent snapshots.
type DB struct {
	bolt    *bbolt.DB
	path    string
	opts    Options
	version int
}

// pageSize is the bbolt page size of files this package creates (existing
// files keep theirs; bbolt records it in the meta page). A 512-d vector is
// 2 KB plus its key and headers, so on the usual 4 KB OS page only one fits
// per page and each face wastes ~2 KB; 8 KB pages hold three, which halves
// the per-face overhead (measured 2.5 KB → 1.2 KB, see size_test.go) while
// keeping the pages a small commit rewrites small. 16 KB would save another
// ~450 B a face but doubles what every outbox ack or event commit writes.
const pageSize = 8192

// allocSize is how much the file grows at a time once past it. bbolt's
// default, 16 MiB, would be up to 16 MiB of zeroes at the end of a device's
// data file; 1 MiB still makes growth (a truncate plus fsync) rare.
const allocSize = 1 << 20

// Open opens the store at path, creating it if needed, and migrates it to
// CurrentSchemaVersion before returning. Every commit is fsynced.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OutboxMaxCount < 0 || opts.OutboxMaxBytes < 0 {
		return nil, fmt.Errorf("store: open %s: %w: negative outbox bound", path, ErrInvalid)
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout, PageSize: pageSize, MmapFlags: mmapFlags})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, boltOpenErr(err))
	}
	b.AllocSize = allocSize
	db := &DB{bolt: b, path: path, opts: opts}

	// Read first: a newer or foreign file must be refused without taking a
	// write transaction, which would at least rewrite its meta page.
	var version int
	err = b.View(func(tx *bbolt.Tx) (err error) {
		if err := checkTruncated(tx, path); err != nil {
			return err
		}
		version, err = readVersion(tx)
		return err
	})
	if err == nil && version > CurrentSchemaVersion {
		err = errNewer(version)
	}
	if err == nil && version < CurrentSchemaVersion {
		err = b.Update(func(tx *bbolt.Tx) error {
			_, err := upgrade(tx)
			return err
		})
	}
	if err == nil {
		err = b.View(checkBuckets)
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.version = CurrentSchemaVersion
	return db, nil
}

// boltOpenErr maps bbolt's open failures onto the store's sentinels.
func boltOpenErr(err error) error {
	switch {
	case errors.Is(err, bberrors.ErrTimeout):
		return ErrLocked
	case errors.Is(err, bberrors.ErrInvalid), errors.Is(err, bberrors.ErrVersionMismatch),
		errors.Is(err, bberrors.ErrChecksum):
		return fmt.Errorf("%w: not a bbolt file: %v", ErrSchema, err)
	}
	return err
}

// checkTruncated compares the file's size with the pages its meta page
// says are in use. bbolt maps the file without checking, and touching a
// mapped page past the end of a short file is SIGBUS, a crash no recover
// catches: a backup cut short by a full disk or a broken copy must fail
// here with ErrCorrupt instead.
func checkTruncated(tx *bbolt.Tx, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() < tx.Size() {
		return fmt.Errorf("%w: file is %d bytes but its pages reach %d: truncated", ErrCorrupt, fi.Size(), tx.Size())
	}
	return nil
}

// Close releases the file. It waits for running transactions.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", db.path, err)
	}
	return nil
}

// SchemaVersion is the version of the open file, always
// CurrentSchemaVersion once Open has returned.
func (db *DB) SchemaVersion() int { return db.version }

// Path is the file the store was opened from.
func (db *DB) Path() string { return db.path }

// now is the store's clock, normalised the way times are stored so that
// what a write returns equals what a read returns.
func (db *DB) now() time.Time { return normTime(db.opts.Now()) }

// update runs fn in one write transaction: all of it commits (and is
// fsynced) or none of it does. A context cancelled before the commit
// abandons the transaction; once bbolt has committed, the write stands.
func (db *DB) update(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return ctx.Err()
	})
	if noSpace(err) {
		// bbolt rolled the transaction back: nothing was written.
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// noSpace reports a full file system or quota. bbolt returns write errors
// as they come (*os.PathError), but formats a failed file growth with %s,
// losing the errno, so its text is matched too.
func noSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// view runs fn on a consistent read-only snapshot.
func (db *DB) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.View(fn)
}

// Stats counts what the store holds.
type Stats struct {
	Persons, Faces, Galleries, Events int
	// Images and Snapshots count stored face images and event snapshots,
	// the two things retention removes.
	Images, Snapshots int
	// FileBytes is the size of the file on disk, free pages included.
	FileBytes int64
}

// Stats walks the buckets' pages (not their values), so it costs
// milliseconds even for large stores.
func (db *DB) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		n := func(name []byte) int { return tx.Bucket(name).Stats().KeyN }
		s.Persons = n(bucketPersons)
		s.Faces = n(bucketFaces)
		s.Galleries = n(bucketGalleries)
		s.Events = n(bucketEventsByID)
		s.Images = n(bucketFaceImages)
		s.Snapshots = n(bucketEventSnapshots)
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	fi, err := os.Stat(db.path)
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	s.FileBytes = fi.Size()
	return s, nil
}

// appendFill is the fill percent for buckets keyed by a growing sequence
// (faces, embeddings, events, outbox). bbolt splits pages at 50% by default,
// which suits random inserts; with append-only keys the left half is never
// written again and would stay half empty forever. bbolt does not persist
// FillPercent, so every write sets it on the buckets it appends to.
const appendFill = 0.95
