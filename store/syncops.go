package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"
)

// Errors of ApplySync's revision check.
var (
	// ErrStaleRevision: the gallery is already at or past the revision.
	ErrStaleRevision = errors.New("revision already applied")
	// ErrRevisionGap: revisions between the gallery's and the operation's
	// are missing.
	ErrRevisionGap = errors.New("revision gap")
)

// SyncChange is what a gallery operation did to faces, for the caller to
// bring the in-memory index along: faces removed, faces whose gallery
// memberships changed (Galleries holds the new list) and faces added.
type SyncChange struct {
	Removed     []uint64
	Regalleried []Face
	Added       []Face
}

// SyncTx applies one fleet gallery operation to its gallery inside a write
// transaction (see ApplySync). Its methods must only be called from the
// function given to ApplySync.
type SyncTx struct {
	db      *DB
	tx      *bbolt.Tx
	gallery string
	change  SyncChange
	out     []OutboxMessage
}

// Enqueue queues msgs in the operation's transaction, after ApplySync's
// own: an acknowledgement that can only be written once the operation
// has run (a snapshot's skipped persons) still commits with it.
func (s *SyncTx) Enqueue(msgs ...OutboxMessage) { s.out = append(s.out, msgs...) }

// ApplySync runs fn as the operation taking gallery to revision rev, then
// records rev and queues out (its acknowledgement), all in one
// transaction: an operation is applied exactly when its revision is
// recorded. fn may add messages with SyncTx.Enqueue once it knows what it
// did. A held copy of the operation (HoldSync) is dropped with it.
// Unless snapshot is set, rev must be the gallery's revision plus one
// (ErrStaleRevision if not above it, ErrRevisionGap if beyond); a
// snapshot replaces the gallery's state and needs only rev at or above the
// current revision.
func (db *DB) ApplySync(ctx context.Context, gallery string, rev uint64, snapshot bool, fn func(*SyncTx) error, out ...OutboxMessage) (SyncChange, error) {
	var change SyncChange
	err := func() error {
		if err := checkGalleryName(gallery); err != nil {
			return err
		}
		if rev == 0 {
			return fmt.Errorf("%w: revision 0", ErrInvalid)
		}
		return db.update(ctx, func(tx *bbolt.Tx) error {
			revs := tx.Bucket(bucketSyncRevisions)
			if err := CheckRevision(getU64(revs.Get([]byte(gallery))), rev, snapshot); err != nil {
				return err
			}
			st := &SyncTx{db: db, tx: tx, gallery: gallery}
			if err := fn(st); err != nil {
				return err
			}
			change = st.change
			if err := revs.Put([]byte(gallery), u64(rev)); err != nil {
				return err
			}
			if !snapshot {
				// The operation is no longer held, if it was (see HoldSync).
				// A snapshot's held operations are the caller's to answer.
				if err := tx.Bucket(bucketSyncHeld).Delete(heldKey(gallery, rev)); err != nil {
					return err
				}
			}
			return db.enqueue(tx, append(out, st.out...))
		})
	}()
	if err != nil {
		return SyncChange{}, fmt.Errorf("store: apply sync revision %d of %q: %w", rev, gallery, err)
	}
	return change, nil
}

// CheckRevision is the ordering rule of gallery operations: an operation
// must be the gallery's revision cur plus one (ErrStaleRevision if not
// above it, ErrRevisionGap if beyond); a snapshot must not be older than
// cur.
func CheckRevision(cur, rev uint64, snapshot bool) error {
	switch {
	case snapshot && rev < cur, !snapshot && rev <= cur:
		return fmt.Errorf("%w: gallery is at %d, operation is %d", ErrStaleRevision, cur, rev)
	case !snapshot && rev > cur+1:
		return fmt.Errorf("%w: gallery is at %d, operation is %d", ErrRevisionGap, cur, rev)
	}
	return nil
}

// CreateGallery makes sure the gallery exists.
func (s *SyncTx) CreateGallery() error {
	b := s.tx.Bucket(bucketGalleries)
	if b.Get([]byte(s.gallery)) != nil {
		return nil
	}
	rec, err := json.Marshal(galleryRecord{CreatedAt: unixNano(normTime(s.db.now()))})
	if err != nil {
		return err
	}
	return b.Put([]byte(s.gallery), rec)
}

// DeleteGallery removes the gallery if it exists: faces only in it are
// deleted, the others lose the membership; persons left without any face
// are deleted.
func (s *SyncTx) DeleteGallery() error {
	if s.tx.Bucket(bucketGalleries).Get([]byte(s.gallery)) == nil {
		return nil
	}
	for _, id := range s.galleryPersons() {
		if err := s.RemovePerson(id); err != nil {
			return err
		}
	}
	// Faces of persons the gallery index missed cannot exist, but a face
	// left behind would reference a deleted gallery: check.
	prefix := indexPrefix(s.gallery)
	if k, _ := s.tx.Bucket(bucketFacesByGallery).Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
		return fmt.Errorf("%w: gallery %q still has faces after removing its persons", ErrCorrupt, s.gallery)
	}
	return s.tx.Bucket(bucketGalleries).Delete([]byte(s.gallery))
}

// UpsertPerson creates or updates p (p.ID required; CreatedAt is kept for
// an existing person) and makes faces exactly the person's faces in the
// gallery, which is created if missing. Each face's galleries are set to
// this gallery.
func (s *SyncTx) UpsertPerson(p Person, faces []NewFace) error {
	if err := checkID("person id", p.ID); err != nil {
		return err
	}
	if err := s.CreateGallery(); err != nil {
		return err
	}
	for i := range faces {
		faces[i].Face.Galleries = []string{s.gallery}
	}
	prepared, err := s.db.prepareFaces(faces)
	if err != nil {
		return err
	}
	if err := s.putPerson(&p); err != nil {
		return err
	}
	if err := s.dropFromGallery(p.ID); err != nil {
		return err
	}
	added, err := insertFaces(s.tx, p.ID, prepared)
	if err != nil {
		return err
	}
	s.change.Added = append(s.change.Added, added...)
	return nil
}

// ValidatePerson reports whether the store accepts p's fields (ids, text
// and metadata), without a transaction: callers check before costly work
// such as embedding a person's photos.
func ValidatePerson(p Person) error {
	if err := checkPerson(&p); err != nil {
		return err
	}
	_, err := normMeta(p.Meta)
	return err
}

// CheckPerson reports, without writing, whether UpsertPerson would refuse
// p with faces for what they are: ErrInvalid for fields or faces the store
// does not accept, ErrDuplicate for an external id another person owns.
// A snapshot skips such a person and applies the rest; any other error of
// UpsertPerson after a passing check is the device's failure.
func (s *SyncTx) CheckPerson(p Person, faces []NewFace) error {
	if err := ValidatePerson(p); err != nil {
		return err
	}
	in := make([]NewFace, len(faces))
	for i, f := range faces {
		f.Face.Galleries = []string{s.gallery}
		in[i] = f
	}
	if _, err := s.db.prepareFaces(in); err != nil {
		return err
	}
	if p.ExternalID != "" {
		if owner := s.tx.Bucket(bucketPersonsByExt).Get([]byte(p.ExternalID)); owner != nil && string(owner) != p.ID {
			return fmt.Errorf("%w: external id %q belongs to person %q", ErrDuplicate, p.ExternalID, owner)
		}
	}
	return nil
}

// putPerson writes p over any stored person of the same id, keeping
// CreatedAt and the external-id index right.
func (s *SyncTx) putPerson(p *Person) error {
	now := s.db.now()
	old, err := getPerson(s.tx, p.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		p.CreatedAt = now
	case err != nil:
		return err
	default:
		p.CreatedAt = old.CreatedAt
	}
	p.UpdatedAt = now
	p.CreatedAt, p.UpdatedAt = normTime(p.CreatedAt), normTime(p.UpdatedAt)
	if err := checkPerson(p); err != nil {
		return err
	}
	if p.Meta, err = normMeta(p.Meta); err != nil {
		return err
	}
	if p.ExternalID != old.ExternalID {
		ext := s.tx.Bucket(bucketPersonsByExt)
		if p.ExternalID != "" {
			if owner := ext.Get([]byte(p.ExternalID)); owner != nil && string(owner) != p.ID {
				return fmt.Errorf("%w: external id %q belongs to person %q", ErrDuplicate, p.ExternalID, owner)
			}
			if err := ext.Put([]byte(p.ExternalID), []byte(p.ID)); err != nil {
				return err
			}
		}
		if old.ExternalID != "" {
			if err := ext.Delete([]byte(old.ExternalID)); err != nil {
				return err
			}
		}
	}
	return putPerson(s.tx, p)
}

// RemovePerson takes the person's faces out of the gallery (deleting
// those in no other gallery) and deletes the person if no face is left.
// An unknown person is not an error: the operation may be a redelivery.
func (s *SyncTx) RemovePerson(id string) error {
	p, err := getPerson(s.tx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := s.dropFromGallery(id); err != nil {
		return err
	}
	prefix := indexPrefix(id)
	if k, _ := s.tx.Bucket(bucketFacesByPerson).Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
		return nil // still has faces elsewhere
	}
	if p.ExternalID != "" {
		if err := s.tx.Bucket(bucketPersonsByExt).Delete([]byte(p.ExternalID)); err != nil {
			return err
		}
	}
	return s.tx.Bucket(bucketPersons).Delete([]byte(id))
}

// RetainPersons removes from the gallery every person not in keep.
func (s *SyncTx) RetainPersons(keep map[string]bool) error {
	for _, id := range s.galleryPersons() {
		if !keep[id] {
			if err := s.RemovePerson(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// galleryPersons lists the ids of persons with a face in the gallery.
func (s *SyncTx) galleryPersons() []string {
	var ids []string
	prefix := indexPrefix(s.gallery)
	c := s.tx.Bucket(bucketPersonsByGallery).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

// dropFromGallery takes the person's faces out of the gallery.
func (s *SyncTx) dropFromGallery(personID string) error {
	var ids []uint64
	prefix := indexPrefix(personID)
	c := s.tx.Bucket(bucketFacesByPerson).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, getU64(k[len(prefix):]))
	}
	for _, id := range ids {
		f, err := loadFace(s.tx, id, false)
		if err != nil {
			return err
		}
		if !slices.Contains(f.Galleries, s.gallery) {
			continue
		}
		if len(f.Galleries) == 1 {
			if err := deleteFace(s.tx, id); err != nil {
				return err
			}
			s.change.Removed = append(s.change.Removed, id)
			continue
		}
		nf := f
		nf.Galleries = slices.DeleteFunc(slices.Clone(f.Galleries), func(g string) bool { return g == s.gallery })
		if err := replaceFace(s.tx, &f, &nf); err != nil {
			return err
		}
		s.change.Regalleried = append(s.change.Regalleried, nf)
	}
	return nil
}
