package store

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// Fleet sync numbers the operations on each gallery; the store keeps the
// last revision applied per gallery (bucket sync_revisions: gallery name →
// u64 revision) so that a restarted device knows where it stands and an
// operation delivered twice is recognised.

// SyncRevisions returns the last applied revision of every gallery that
// has one.
func (db *DB) SyncRevisions(ctx context.Context) (map[string]uint64, error) {
	revs := map[string]uint64{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSyncRevisions).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("%w: sync revision of %q", ErrCorrupt, k)
			}
			revs[string(k)] = getU64(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: sync revisions: %w", err)
	}
	return revs, nil
}

// SyncRevision returns a gallery's last applied revision, 0 if none.
func (db *DB) SyncRevision(ctx context.Context, gallery string) (uint64, error) {
	var rev uint64
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		rev = getU64(tx.Bucket(bucketSyncRevisions).Get([]byte(gallery)))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: sync revision of %q: %w", gallery, err)
	}
	return rev, nil
}

// SetSyncRevision records rev as the gallery's last applied revision and
// queues out (the acknowledgement) in the same transaction, so a device
// never acknowledges a revision it has not recorded, nor records one it
// will not acknowledge. A revision of 0 forgets the gallery.
func (db *DB) SetSyncRevision(ctx context.Context, gallery string, rev uint64, out ...OutboxMessage) error {
	if err := checkGalleryName(gallery); err != nil {
		return fmt.Errorf("store: set sync revision: %w", err)
	}
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSyncRevisions)
		var err error
		if rev == 0 {
			err = b.Delete([]byte(gallery))
		} else {
			err = b.Put([]byte(gallery), u64(rev))
		}
		if err != nil {
			return err
		}
		return db.enqueue(tx, out)
	})
	if err != nil {
		return fmt.Errorf("store: set sync revision of %q: %w", gallery, err)
	}
	return nil
}
