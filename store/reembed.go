package store

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// ReplaceEmbedding gives a face a vector from another embedder, in one
// transaction: the way a kept face crop moves to a new model without
// re-enrolment. It changes only the vector and its embedder id; the face
// keeps its id, person, galleries and image. A face deleted meanwhile is
// ErrNotFound.
func (db *DB) ReplaceEmbedding(ctx context.Context, id uint64, embedderID string, vec []float32) error {
	err := func() error {
		if n := len(vec); n == 0 || n > maxEmbeddingDim {
			return fmt.Errorf("%w: embedding has %d values, want 1..%d", ErrInvalid, n, maxEmbeddingDim)
		}
		if !finite(vec...) {
			return fmt.Errorf("%w: embedding has NaN or Inf", ErrInvalid)
		}
		if embedderID == "" {
			return fmt.Errorf("%w: embedder id is empty", ErrInvalid)
		}
		if err := checkText("embedder id", embedderID, maxEmbedderLen); err != nil {
			return err
		}
		return db.update(ctx, func(tx *bbolt.Tx) error {
			key := u64(id)
			if tx.Bucket(bucketFaces).Get(key) == nil {
				return fmt.Errorf("face %d: %w", id, ErrNotFound)
			}
			return tx.Bucket(bucketEmbeddings).Put(key, encodeEmbedding(embedderID, vec))
		})
	}()
	if err != nil {
		return fmt.Errorf("store: replace embedding of face %d: %w", id, err)
	}
	return nil
}
