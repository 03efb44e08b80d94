package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"
)

// Gallery operations that arrive ahead of a revision gap are held in the
// store (bucket sync_held: gallery NUL u64 revision → the operation as
// received) until the missing ones or a snapshot arrive. Held durably, an
// operation can be acknowledged to the broker at once, so a gap never
// fills the broker's in-flight window, and a restart loses none of them.
// The store does not read the payloads: the caller encodes and decodes.

// ErrHoldFull: holding the operation would pass the bound.
var ErrHoldFull = errors.New("held operations at their bound")

// HeldOp is a gallery operation received ahead of its turn.
type HeldOp struct {
	Gallery  string
	Revision uint64
	Payload  []byte
}

// HoldLimits bound the held operations of all galleries together; zero
// means no bound.
type HoldLimits struct {
	MaxCount int
	MaxBytes int64
}

// HeldStats counts the held operations.
type HeldStats struct {
	Count int
	Bytes int64
	// Galleries maps each gallery with held operations to their number.
	Galleries map[string]int
}

func heldKey(gallery string, rev uint64) []byte { return indexKey(gallery, u64(rev)) }

// HoldSync keeps op until its gallery reaches op.Revision-1. It reports
// false if the gallery's operation at that revision is already held (the
// first one is kept), and ErrHoldFull if lim leaves no room for it.
func (db *DB) HoldSync(ctx context.Context, op HeldOp, lim HoldLimits) (bool, error) {
	if err := checkGalleryName(op.Gallery); err != nil {
		return false, fmt.Errorf("store: hold sync operation: %w", err)
	}
	if op.Revision == 0 {
		return false, fmt.Errorf("store: hold sync operation: %w: revision 0", ErrInvalid)
	}
	held := false
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSyncHeld)
		key := heldKey(op.Gallery, op.Revision)
		if b.Get(key) != nil {
			return nil
		}
		st := heldStats(tx)
		if lim.MaxCount > 0 && st.Count+1 > lim.MaxCount {
			return fmt.Errorf("%w: %d operations held, limit %d", ErrHoldFull, st.Count, lim.MaxCount)
		}
		if lim.MaxBytes > 0 && st.Bytes+int64(len(op.Payload)) > lim.MaxBytes {
			return fmt.Errorf("%w: %d bytes held, %d more would pass the limit of %d", ErrHoldFull, st.Bytes, len(op.Payload), lim.MaxBytes)
		}
		held = true
		return b.Put(key, op.Payload)
	})
	if err != nil {
		return false, fmt.Errorf("store: hold revision %d of %q: %w", op.Revision, op.Gallery, err)
	}
	return held, nil
}

// HeldSync returns the gallery's held operations at or below revision
// upTo, in revision order.
func (db *DB) HeldSync(ctx context.Context, gallery string, upTo uint64) ([]HeldOp, error) {
	var out []HeldOp
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		prefix := indexPrefix(gallery)
		c := tx.Bucket(bucketSyncHeld).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+8 {
				return fmt.Errorf("%w: held operation key %q", ErrCorrupt, k)
			}
			rev := getU64(k[len(prefix):])
			if rev > upTo {
				break
			}
			out = append(out, HeldOp{Gallery: gallery, Revision: rev, Payload: slices.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: held operations of %q: %w", gallery, err)
	}
	return out, nil
}

// DropHeldSync forgets the gallery's held operations at revs and queues
// out (their acknowledgements) in the same transaction.
func (db *DB) DropHeldSync(ctx context.Context, gallery string, revs []uint64, out ...OutboxMessage) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSyncHeld)
		for _, rev := range revs {
			if err := b.Delete(heldKey(gallery, rev)); err != nil {
				return err
			}
		}
		return db.enqueue(tx, out)
	})
	if err != nil {
		return fmt.Errorf("store: drop held operations of %q: %w", gallery, err)
	}
	return nil
}

// HeldSyncStats counts the held operations.
func (db *DB) HeldSyncStats(ctx context.Context) (HeldStats, error) {
	var st HeldStats
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		st = heldStats(tx)
		return nil
	})
	if err != nil {
		return HeldStats{}, fmt.Errorf("store: held operations: %w", err)
	}
	return st, nil
}

// heldStats walks the bucket: it holds at most the caller's bound (a
// thousand operations by default), and a count that cannot drift is
// worth the walk.
func heldStats(tx *bbolt.Tx) HeldStats {
	st := HeldStats{Galleries: map[string]int{}}
	c := tx.Bucket(bucketSyncHeld).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		st.Count++
		st.Bytes += int64(len(v))
		if i := bytes.IndexByte(k, 0); i > 0 {
			st.Galleries[string(k[:i])]++
		}
	}
	return st
}
