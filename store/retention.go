package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// RetentionPolicy says how much history to keep. Zero fields are
// unlimited. Images are the photos or crops stored with faces: pruning one
// keeps the face (its embedding still matches), only HasImage turns false.
type RetentionPolicy struct {
	EventsMaxAge   time.Duration
	EventsMaxCount int
	ImagesMaxAge   time.Duration
	ImagesMaxCount int
}

// PruneStats counts what Prune removed; Snapshots are those that went with
// their events.
type PruneStats struct {
	Events, Snapshots, Images int
}

// pruneBatch bounds each prune transaction. Deleting a year of events in
// one transaction would hold the writer (and enrolments) for seconds and
// keep every dirty page in memory; batches let other writes in between.
// A variable so tests can lower it.
var pruneBatch = 2000

// Prune enforces p: events older than EventsMaxAge or beyond the newest
// EventsMaxCount go with their snapshots, and stored face images older than
// ImagesMaxAge (by the face's CreatedAt) or beyond the newest ImagesMaxCount
// (by face id, i.e. enrolment order) are removed. Ages are measured against
// Options.Now. It runs in batches of transactions, so a cancelled context
// stops it between batches with what was pruned so far committed and
// counted.
func (db *DB) Prune(ctx context.Context, p RetentionPolicy) (PruneStats, error) {
	var st PruneStats
	if p.EventsMaxAge < 0 || p.EventsMaxCount < 0 || p.ImagesMaxAge < 0 || p.ImagesMaxCount < 0 {
		return st, fmt.Errorf("store: prune: %w: negative retention", ErrInvalid)
	}
	now := db.now()
	if p.EventsMaxAge > 0 || p.EventsMaxCount > 0 {
		for {
			n, snaps, err := db.pruneEvents(ctx, p, now)
			st.Events += n
			st.Snapshots += snaps
			if err != nil {
				return st, fmt.Errorf("store: prune events: %w", err)
			}
			if n < pruneBatch {
				break
			}
		}
	}
	if p.ImagesMaxAge > 0 || p.ImagesMaxCount > 0 {
		var from []byte
		for {
			n, next, err := db.pruneImages(ctx, p, now, from)
			st.Images += n
			if err != nil {
				return st, fmt.Errorf("store: prune images: %w", err)
			}
			if next == nil {
				break
			}
			from = next
		}
	}
	return st, nil
}

// pruneEvents deletes up to pruneBatch of the oldest events that are
// expired by age or count. Events are keyed by time, so the expired ones
// are always a prefix of the bucket.
func (db *DB) pruneEvents(ctx context.Context, p RetentionPolicy, now time.Time) (events, snaps int, err error) {
	err = db.update(ctx, func(tx *bbolt.Tx) error {
		var cutoff []byte
		if p.EventsMaxAge > 0 {
			cutoff = eventTimeKey(now.Add(-p.EventsMaxAge))
		}
		excess := 0
		if p.EventsMaxCount > 0 {
			excess = tx.Bucket(bucketEventsByID).Stats().KeyN - p.EventsMaxCount
		}
		type victim struct{ k, v []byte }
		var victims []victim
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.First(); k != nil && len(victims) < pruneBatch; k, v = c.Next() {
			old := cutoff != nil && bytes.Compare(k, cutoff) < 0
			if !old && len(victims) >= excess {
				break
			}
			victims = append(victims, victim{bytes.Clone(k), bytes.Clone(v)})
		}
		for _, vi := range victims {
			hadSnap, err := deleteEvent(tx, vi.k, vi.v)
			if err != nil {
				return err
			}
			if hadSnap {
				snaps++
			}
		}
		events = len(victims)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return events, snaps, nil
}

// pruneImages examines up to pruneBatch stored images from the key `from`
// on and removes the expired ones. Unlike events, images are keyed by face
// id, not time, so age needs a look at each face's record; count keeps the
// highest ids. It returns the first key it did not examine, nil when done.
func (db *DB) pruneImages(ctx context.Context, p RetentionPolicy, now time.Time, from []byte) (n int, next []byte, err error) {
	err = db.update(ctx, func(tx *bbolt.Tx) error {
		images, faces := tx.Bucket(bucketFaceImages), tx.Bucket(bucketFaces)
		// Earlier batches removed every count victim before `from` (they
		// come first), so the excess is still measured from `from`.
		excess := 0
		if p.ImagesMaxCount > 0 {
			excess = images.Stats().KeyN - p.ImagesMaxCount
		}
		var cutoff time.Time
		if p.ImagesMaxAge > 0 {
			cutoff = now.Add(-p.ImagesMaxAge)
		}
		var victims [][]byte
		c := images.Cursor()
		k, _ := c.First()
		if from != nil {
			k, _ = c.Seek(from)
		}
		for examined := 0; k != nil; k, _ = c.Next() {
			if examined == pruneBatch {
				next = bytes.Clone(k)
				break
			}
			examined++
			if len(victims) < excess {
				victims = append(victims, bytes.Clone(k))
				continue
			}
			if cutoff.IsZero() {
				break // only the count applied, and it is satisfied
			}
			fv := faces.Get(k)
			if fv == nil {
				return fmt.Errorf("%w: image of missing face %d", ErrCorrupt, getU64(k))
			}
			f, err := decodeFace(k, fv)
			if err != nil {
				return err
			}
			if f.CreatedAt.Before(cutoff) {
				victims = append(victims, bytes.Clone(k))
			}
		}
		for _, k := range victims {
			f, err := decodeFace(k, faces.Get(k))
			if err != nil {
				return err
			}
			f.HasImage = false
			rec, err := encodeFace(&f)
			if err != nil {
				return err
			}
			if err := faces.Put(k, rec); err != nil {
				return err
			}
			if err := images.Delete(k); err != nil {
				return err
			}
		}
		n = len(victims)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return n, next, nil
}
