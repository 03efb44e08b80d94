package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// Gallery is a named set of faces searched together (a site, a door group,
// a watch list). A face can be in several.
type Gallery struct {
	Name      string
	CreatedAt time.Time
	Meta      Metadata
}

type galleryRecord struct {
	CreatedAt int64           `json:"c"`
	Meta      json.RawMessage `json:"m,omitempty"`
}

func decodeGallery(name string, v []byte) (Gallery, error) {
	var r galleryRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return Gallery{}, fmt.Errorf("%w: gallery %q: %v", ErrCorrupt, name, err)
	}
	meta, err := decodeMeta(r.Meta)
	if err != nil {
		return Gallery{}, fmt.Errorf("gallery %q: %w", name, err)
	}
	return Gallery{Name: name, CreatedAt: fromUnixNano(r.CreatedAt), Meta: meta}, nil
}

// CreateGallery creates a gallery. The name must match [a-zA-Z0-9_-]{1,48}
// (ErrInvalid) and be new (ErrDuplicate). CreatedAt defaults to now.
func (db *DB) CreateGallery(ctx context.Context, g Gallery) (Gallery, error) {
	err := func() error {
		if err := checkGalleryName(g.Name); err != nil {
			return err
		}
		if g.CreatedAt.IsZero() {
			g.CreatedAt = db.now()
		}
		g.CreatedAt = normTime(g.CreatedAt)
		meta, err := encodeMeta(g.Meta)
		if err != nil {
			return err
		}
		if g.Meta, err = decodeMeta(meta); err != nil {
			return err
		}
		rec, err := json.Marshal(galleryRecord{CreatedAt: unixNano(g.CreatedAt), Meta: meta})
		if err != nil {
			return err
		}
		return db.update(ctx, func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketGalleries)
			if b.Get([]byte(g.Name)) != nil {
				return ErrDuplicate
			}
			return b.Put([]byte(g.Name), rec)
		})
	}()
	if err != nil {
		return Gallery{}, fmt.Errorf("store: create gallery %q: %w", g.Name, err)
	}
	return g, nil
}

// GetGallery returns the named gallery.
func (db *DB) GetGallery(ctx context.Context, name string) (Gallery, error) {
	var g Gallery
	err := db.view(ctx, func(tx *bbolt.Tx) (err error) {
		v := tx.Bucket(bucketGalleries).Get([]byte(name))
		if v == nil {
			return ErrNotFound
		}
		g, err = decodeGallery(name, v)
		return err
	})
	if err != nil {
		return Gallery{}, fmt.Errorf("store: get gallery %q: %w", name, err)
	}
	return g, nil
}

// ListGalleries pages through galleries by name. It takes no filters.
func (db *DB) ListGalleries(ctx context.Context, o ListOptions) (Page[Gallery], error) {
	var page Page[Gallery]
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		if o.Gallery != "" || o.PersonID != "" {
			return fmt.Errorf("%w: galleries cannot be filtered", ErrInvalid)
		}
		limit, err := pageLimit(o.Limit)
		if err != nil {
			return err
		}
		after, err := decodeCursor(cursorGalleries, o.Cursor)
		if err != nil {
			return err
		}
		page, err = scanPage(tx.Bucket(bucketGalleries).Cursor(), nil, after, cursorGalleries, limit,
			func(k, v []byte) (Gallery, bool, error) {
				g, err := decodeGallery(string(k), v)
				return g, err == nil, err
			})
		return err
	})
	if err != nil {
		return Page[Gallery]{}, fmt.Errorf("store: list galleries: %w", err)
	}
	return page, nil
}

// DeleteGallery removes a gallery in one transaction. A face must always be
// in some gallery (the index has nowhere else to search for it), so:
//
//   - without withFaces, faces that are also in other galleries just lose
//     this membership, and if any face is only in this gallery nothing is
//     changed and the error is ErrInvalid;
//   - with withFaces, faces only in this gallery are deleted (vectors,
//     images and all) and the others lose the membership.
//
// It returns the ids of the deleted faces.
func (db *DB) DeleteGallery(ctx context.Context, name string, withFaces bool) ([]uint64, error) {
	var deleted []uint64
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		if err := galleryExists(tx, name); err != nil {
			return err
		}
		prefix := indexPrefix(name)
		var ids []uint64
		c := tx.Bucket(bucketFacesByGallery).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, getU64(k[len(prefix):]))
		}
		for _, id := range ids {
			f, err := loadFace(tx, id, false)
			if err != nil {
				return err
			}
			if len(f.Galleries) == 1 {
				if !withFaces {
					return fmt.Errorf("%w: face %d of person %q is only in this gallery; delete it with its faces or move them first", ErrInvalid, id, f.PersonID)
				}
				if err := deleteFace(tx, id); err != nil {
					return err
				}
				deleted = append(deleted, id)
				continue
			}
			nf := f
			nf.Galleries = slices.DeleteFunc(slices.Clone(f.Galleries), func(g string) bool { return g == name })
			if err := replaceFace(tx, &f, &nf); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketGalleries).Delete([]byte(name))
	})
	if err != nil {
		return nil, fmt.Errorf("store: delete gallery %q: %w", name, err)
	}
	return deleted, nil
}

// GalleryFaceCount counts the faces in a gallery by walking its index keys.
func (db *DB) GalleryFaceCount(ctx context.Context, name string) (int, error) {
	n := 0
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		if err := galleryExists(tx, name); err != nil {
			return err
		}
		prefix := indexPrefix(name)
		c := tx.Bucket(bucketFacesByGallery).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: gallery face count %q: %w", name, err)
	}
	return n, nil
}
