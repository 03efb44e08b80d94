package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// Face is one enrolled face of a person: where it was in the source photo,
// which galleries it belongs to, and its embedding with the id of the
// model that produced it (vectors of different embedders never compare).
type Face struct {
	ID        uint64
	PersonID  string
	Galleries []string
	Box       [4]float32 // x1, y1, x2, y2 in source-image pixels
	PhotoHash string     // sha256 hex of the source photo, "" if unknown
	Embedding []float32
	// EmbedderID names the model that produced Embedding.
	EmbedderID string
	Quality    float32
	Meta       Metadata
	CameraID   string
	CreatedAt  time.Time
	// HasImage reports that an image (the photo or the aligned crop) is
	// stored with the face; FaceImage returns it. Retention may remove it.
	HasImage bool
}

// NewFace is a face to enrol. Face.ID, Face.PersonID and Face.HasImage are
// set by the store; Image, if not empty, is kept (a JPEG of the photo or the
// aligned crop) so the face can be re-embedded when the model changes.
type NewFace struct {
	Face  Face
	Image []byte
}

// AddFaces enrols more faces for an existing person, with out queued in
// the same transaction.
func (db *DB) AddFaces(ctx context.Context, personID string, faces []NewFace, out ...OutboxMessage) ([]Face, error) {
	var created []Face
	err := func() error {
		prepared, err := db.prepareFaces(faces)
		if err != nil {
			return err
		}
		return db.update(ctx, func(tx *bbolt.Tx) error {
			if tx.Bucket(bucketPersons).Get([]byte(personID)) == nil {
				return fmt.Errorf("person %q: %w", personID, ErrNotFound)
			}
			if created, err = insertFaces(tx, personID, prepared); err != nil {
				return err
			}
			return db.enqueue(tx, out)
		})
	}()
	if err != nil {
		return nil, fmt.Errorf("store: add faces to person %q: %w", personID, err)
	}
	return created, nil
}

// GetFace returns a face with its embedding.
func (db *DB) GetFace(ctx context.Context, id uint64) (Face, error) {
	var f Face
	err := db.view(ctx, func(tx *bbolt.Tx) (err error) {
		f, err = loadFace(tx, id, true)
		return err
	})
	if err != nil {
		return Face{}, fmt.Errorf("store: get face %d: %w", id, err)
	}
	return f, nil
}

// FaceImage returns the image stored with a face; ErrNotFound if the face
// does not exist or has no image (never kept, or removed by retention).
func (db *DB) FaceImage(ctx context.Context, id uint64) ([]byte, error) {
	var img []byte
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		key := u64(id)
		if tx.Bucket(bucketFaces).Get(key) == nil {
			return fmt.Errorf("face %d: %w", id, ErrNotFound)
		}
		v := tx.Bucket(bucketFaceImages).Get(key)
		if v == nil {
			return fmt.Errorf("face %d has no stored image: %w", id, ErrNotFound)
		}
		img = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: face image %d: %w", id, err)
	}
	return img, nil
}

// UpdateFace lets fn change a face's Meta, Galleries (each must exist, at
// least one) and PersonID (must exist), in one transaction. Everything else
// describes what was enrolled (the vector above all: the index trusts it)
// and changing it is ErrInvalid; re-enrol instead. fn runs inside the write
// transaction and must not call back into the DB.
func (db *DB) UpdateFace(ctx context.Context, id uint64, fn func(*Face) error) (Face, error) {
	var f Face
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		old, err := loadFace(tx, id, true)
		if err != nil {
			return err
		}
		f = old
		f.Galleries = slices.Clone(old.Galleries)
		f.Embedding = slices.Clone(old.Embedding)
		if f.Meta, err = normMeta(old.Meta); err != nil { // a copy fn may mutate
			return err
		}
		if err := fn(&f); err != nil {
			return err
		}
		if f.ID != old.ID || f.Box != old.Box || f.PhotoHash != old.PhotoHash ||
			!slices.Equal(f.Embedding, old.Embedding) || f.EmbedderID != old.EmbedderID ||
			f.Quality != old.Quality || f.CameraID != old.CameraID ||
			!f.CreatedAt.Equal(old.CreatedAt) || f.HasImage != old.HasImage {
			return fmt.Errorf("%w: only meta, galleries and person can change", ErrInvalid)
		}
		if f.Galleries, err = normGalleries(f.Galleries); err != nil {
			return err
		}
		for _, g := range f.Galleries {
			if err := galleryExists(tx, g); err != nil {
				return err
			}
		}
		if f.PersonID != old.PersonID {
			if err := checkID("person id", f.PersonID); err != nil {
				return err
			}
			if tx.Bucket(bucketPersons).Get([]byte(f.PersonID)) == nil {
				return fmt.Errorf("person %q: %w", f.PersonID, ErrNotFound)
			}
		}
		if f.Meta, err = normMeta(f.Meta); err != nil {
			return err
		}
		return replaceFace(tx, &old, &f)
	})
	if err != nil {
		return Face{}, fmt.Errorf("store: update face %d: %w", id, err)
	}
	return f, nil
}

// DeleteFace removes one face with its vector, image and memberships, and
// queues out, in one transaction. The person stays, even with no faces.
func (db *DB) DeleteFace(ctx context.Context, id uint64, out ...OutboxMessage) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		if err := deleteFace(tx, id); err != nil {
			return err
		}
		return db.enqueue(tx, out)
	})
	if err != nil {
		return fmt.Errorf("store: delete face %d: %w", id, err)
	}
	return nil
}

// ListFaces pages through faces in id (enrolment) order, optionally only
// one person's and/or one gallery's. Listed faces carry EmbedderID but no
// Embedding: a page of 1000 vectors is 2 MB nobody asked for. GetFace or
// ForEachEmbedding return vectors.
func (db *DB) ListFaces(ctx context.Context, o ListOptions) (Page[Face], error) {
	var page Page[Face]
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		limit, err := pageLimit(o.Limit)
		if err != nil {
			return err
		}
		after, err := decodeCursor(cursorFaces, o.Cursor)
		if err != nil {
			return err
		}
		if after != nil && len(after) != 8 {
			return fmt.Errorf("%w: cursor %q", ErrInvalid, o.Cursor)
		}
		if o.Gallery != "" {
			if err := galleryExists(tx, o.Gallery); err != nil {
				return err
			}
		}
		if o.PersonID != "" && tx.Bucket(bucketPersons).Get([]byte(o.PersonID)) == nil {
			return fmt.Errorf("person %q: %w", o.PersonID, ErrNotFound)
		}
		// Scan the narrowest index; the person's faces are few, so with both
		// filters we walk those and test gallery membership.
		var c *bbolt.Cursor
		var prefix []byte
		switch {
		case o.PersonID != "":
			c, prefix = tx.Bucket(bucketFacesByPerson).Cursor(), indexPrefix(o.PersonID)
		case o.Gallery != "":
			c, prefix = tx.Bucket(bucketFacesByGallery).Cursor(), indexPrefix(o.Gallery)
		default:
			c = tx.Bucket(bucketFaces).Cursor()
		}
		byGallery := tx.Bucket(bucketFacesByGallery)
		page, err = scanPage(c, prefix, after, cursorFaces, limit, func(k, v []byte) (Face, bool, error) {
			key := k[len(prefix):]
			if o.PersonID != "" && o.Gallery != "" && byGallery.Get(indexKey(o.Gallery, key)) == nil {
				return Face{}, false, nil
			}
			if prefix != nil {
				if v = tx.Bucket(bucketFaces).Get(key); v == nil {
					return Face{}, false, fmt.Errorf("%w: index names missing face %d", ErrCorrupt, getU64(key))
				}
			}
			f, err := decodeFace(key, v)
			if err == nil {
				err = attachEmbedding(tx, &f, false)
			}
			return f, err == nil, err
		})
		return err
	})
	if err != nil {
		return Page[Face]{}, fmt.Errorf("store: list faces: %w", err)
	}
	return page, nil
}

// FacesByPhotoHash returns every face enrolled from the photo with the
// given sha256, with embeddings, so a re-upload can be recognised as such.
// No match is an empty slice, not an error.
func (db *DB) FacesByPhotoHash(ctx context.Context, hash string) ([]Face, error) {
	var faces []Face
	err := func() error {
		norm, err := normPhotoHash(hash)
		if err != nil {
			return err
		}
		if norm == "" {
			return fmt.Errorf("%w: empty photo hash", ErrInvalid)
		}
		prefix, _ := hex.DecodeString(norm)
		return db.view(ctx, func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketFacesByPhoto).Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				f, err := loadFace(tx, getU64(k[len(prefix):]), true)
				if err != nil {
					if errors.Is(err, ErrNotFound) {
						err = fmt.Errorf("%w: photo index: %v", ErrCorrupt, err)
					}
					return err
				}
				faces = append(faces, f)
			}
			return nil
		})
	}()
	if err != nil {
		return nil, fmt.Errorf("store: faces by photo hash %q: %w", hash, err)
	}
	return faces, nil
}

// embeddingSlab is how many vectors ForEachEmbedding allocates at once.
// One allocation per face would be 100 000 small allocations at start-up;
// slabs cut that to a few hundred.
const embeddingSlab = 256

// ForEachEmbedding calls fn for every face, in id order, with its
// embedding: the start-up path that rebuilds the vector index. It reads one
// consistent snapshot, walking the faces and embeddings buckets side by side
// (same keys, same order) instead of looking each vector up.
//
// fn may keep the Face and its Embedding (vectors are copied out of the
// file into slabs shared by neighbouring faces). fn runs inside a read
// transaction: it must not write to the DB, and a slow fn delays writers
// that need to grow the file. An error from fn stops the walk and is
// returned wrapped.
func (db *DB) ForEachEmbedding(ctx context.Context, fn func(f Face) error) error {
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		fc := tx.Bucket(bucketFaces).Cursor()
		ec := tx.Bucket(bucketEmbeddings).Cursor()
		ek, ev := ec.First()
		var slab []float32
		in := interner{}
		n := 0
		for k, v := fc.First(); k != nil; k, v = fc.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if !bytes.Equal(k, ek) {
				return fmt.Errorf("%w: face %d has no embedding", ErrCorrupt, getU64(k))
			}
			f, err := decodeFaceIn(k, v, in)
			if err != nil {
				return err
			}
			embedder, raw, err := decodeEmbeddingIn(ev, in)
			if err != nil {
				return fmt.Errorf("face %d: %w", f.ID, err)
			}
			dim := len(raw) / 4
			if len(slab) < dim {
				slab = make([]float32, dim*embeddingSlab)
			}
			f.EmbedderID = embedder
			f.Embedding = floatsInto(slab[:dim:dim], raw)
			slab = slab[dim:]
			if err := fn(f); err != nil {
				return err
			}
			ek, ev = ec.Next()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: for each embedding: %w", err)
	}
	return nil
}
