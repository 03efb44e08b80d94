package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// Metadata is free-form, JSON-shaped data attached by callers. It round-trips
// through JSON: numbers come back as float64.
type Metadata = map[string]any

// Person is someone who can be recognised. ID is the store's key;
// ExternalID is the customer's own id for the same person and is unique
// when set.
type Person struct {
	ID, ExternalID, Name, Email, Phone string
	Meta                               Metadata
	// Access, for doors: a disabled person is never admitted; before
	// ValidFrom or from ValidUntil on (either zero: no bound) access has
	// expired; CardNumber (decimal digits) is what a Wiegand output sends
	// an access panel for them.
	Disabled              bool
	ValidFrom, ValidUntil time.Time
	CardNumber            string
	CreatedAt, UpdatedAt  time.Time
}

// personRecord is a person on disk. Persons are read one at a time and
// rarely in bulk, so JSON's ability to grow fields without a migration
// beats the bytes a binary layout would save. The id is the key.
type personRecord struct {
	ExternalID string          `json:"x,omitempty"`
	Name       string          `json:"n,omitempty"`
	Email      string          `json:"e,omitempty"`
	Phone      string          `json:"p,omitempty"`
	Meta       json.RawMessage `json:"m,omitempty"`
	Disabled   bool            `json:"d,omitempty"`
	ValidFrom  int64           `json:"vf,omitempty"`
	ValidUntil int64           `json:"vu,omitempty"`
	CardNumber string          `json:"k,omitempty"`
	CreatedAt  int64           `json:"c"`
	UpdatedAt  int64           `json:"u"`
}

func encodePerson(p *Person) ([]byte, error) {
	meta, err := encodeMeta(p.Meta)
	if err != nil {
		return nil, err
	}
	r := personRecord{
		ExternalID: p.ExternalID, Name: p.Name, Email: p.Email, Phone: p.Phone,
		Meta: meta, Disabled: p.Disabled, CardNumber: p.CardNumber,
		CreatedAt: unixNano(p.CreatedAt), UpdatedAt: unixNano(p.UpdatedAt),
	}
	if !p.ValidFrom.IsZero() {
		r.ValidFrom = unixNano(p.ValidFrom)
	}
	if !p.ValidUntil.IsZero() {
		r.ValidUntil = unixNano(p.ValidUntil)
	}
	return json.Marshal(r)
}

func decodePerson(id string, v []byte) (Person, error) {
	var r personRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return Person{}, fmt.Errorf("%w: person %q: %v", ErrCorrupt, id, err)
	}
	meta, err := decodeMeta(r.Meta)
	if err != nil {
		return Person{}, fmt.Errorf("person %q: %w", id, err)
	}
	p := Person{
		ID: id, ExternalID: r.ExternalID, Name: r.Name, Email: r.Email, Phone: r.Phone,
		Meta: meta, Disabled: r.Disabled, CardNumber: r.CardNumber,
		CreatedAt: fromUnixNano(r.CreatedAt), UpdatedAt: fromUnixNano(r.UpdatedAt),
	}
	if r.ValidFrom != 0 {
		p.ValidFrom = fromUnixNano(r.ValidFrom)
	}
	if r.ValidUntil != 0 {
		p.ValidUntil = fromUnixNano(r.ValidUntil)
	}
	return p, nil
}

func checkPerson(p *Person) error {
	if err := checkID("person id", p.ID); err != nil {
		return err
	}
	if p.ExternalID != "" {
		if err := checkID("external id", p.ExternalID); err != nil {
			return err
		}
	}
	for _, f := range []struct{ what, s string }{{"name", p.Name}, {"email", p.Email}, {"phone", p.Phone}} {
		if err := checkText(f.what, f.s, maxTextLen); err != nil {
			return err
		}
	}
	if err := checkCardNumber(p.CardNumber); err != nil {
		return err
	}
	if !p.ValidFrom.IsZero() && !p.ValidUntil.IsZero() && !p.ValidUntil.After(p.ValidFrom) {
		return fmt.Errorf("%w: valid_until %s is not after valid_from %s", ErrInvalid,
			p.ValidUntil.Format(time.RFC3339), p.ValidFrom.Format(time.RFC3339))
	}
	return nil
}

// CheckPerson reports whether CreatePerson would accept p's fields and
// metadata (an empty ID stands for a generated one), so a caller can
// refuse bad input before slower work: running the models, or searching
// for duplicates.
func CheckPerson(p Person) error {
	if p.ID == "" {
		p.ID = "generated"
	}
	err := checkPerson(&p)
	if err == nil {
		_, err = normMeta(p.Meta)
	}
	if err != nil {
		return fmt.Errorf("store: person %q: %w", p.ID, err)
	}
	return nil
}

func getPerson(tx *bbolt.Tx, id string) (Person, error) {
	v := tx.Bucket(bucketPersons).Get([]byte(id))
	if v == nil {
		return Person{}, ErrNotFound
	}
	return decodePerson(id, v)
}

func putPerson(tx *bbolt.Tx, p *Person) error {
	rec, err := encodePerson(p)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketPersons).Put([]byte(p.ID), rec)
}

// CreatePerson stores p, its faces and the outbox messages out in one
// transaction: either the person is enrolled with every face, vector and
// image and the messages are queued, or nothing is written. An empty p.ID
// gets a random one. CreatedAt and UpdatedAt default to now.
func (db *DB) CreatePerson(ctx context.Context, p Person, faces []NewFace, out ...OutboxMessage) (Person, []Face, error) {
	if p.ID == "" {
		p.ID = newID()
	}
	created, err := db.createPerson(ctx, &p, faces, out)
	if err != nil {
		return Person{}, nil, fmt.Errorf("store: create person %q: %w", p.ID, err)
	}
	return p, created, nil
}

func (db *DB) createPerson(ctx context.Context, p *Person, faces []NewFace, out []OutboxMessage) ([]Face, error) {
	if err := checkPerson(p); err != nil {
		return nil, err
	}
	now := db.now()
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = now
	}
	p.CreatedAt, p.UpdatedAt = normTime(p.CreatedAt), normTime(p.UpdatedAt)
	var err error
	if p.Meta, err = normMeta(p.Meta); err != nil {
		return nil, err
	}
	prepared, err := db.prepareFaces(faces)
	if err != nil {
		return nil, err
	}
	var created []Face
	err = db.update(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketPersons).Get([]byte(p.ID)) != nil {
			return fmt.Errorf("%w: person id %q", ErrDuplicate, p.ID)
		}
		if p.ExternalID != "" {
			ext := tx.Bucket(bucketPersonsByExt)
			if owner := ext.Get([]byte(p.ExternalID)); owner != nil {
				return fmt.Errorf("%w: external id %q belongs to person %q", ErrDuplicate, p.ExternalID, owner)
			}
			if err := ext.Put([]byte(p.ExternalID), []byte(p.ID)); err != nil {
				return err
			}
		}
		if err := putPerson(tx, p); err != nil {
			return err
		}
		var err error
		if created, err = insertFaces(tx, p.ID, prepared); err != nil {
			return err
		}
		return db.enqueue(tx, out)
	})
	return created, err
}

// GetPerson returns the person with the given id.
func (db *DB) GetPerson(ctx context.Context, id string) (Person, error) {
	var p Person
	err := db.view(ctx, func(tx *bbolt.Tx) (err error) {
		p, err = getPerson(tx, id)
		return err
	})
	if err != nil {
		return Person{}, fmt.Errorf("store: get person %q: %w", id, err)
	}
	return p, nil
}

// GetPersonByExternalID returns the person whose ExternalID is ext.
func (db *DB) GetPersonByExternalID(ctx context.Context, ext string) (Person, error) {
	var p Person
	err := db.view(ctx, func(tx *bbolt.Tx) (err error) {
		id := tx.Bucket(bucketPersonsByExt).Get([]byte(ext))
		if id == nil {
			return ErrNotFound
		}
		if p, err = getPerson(tx, string(id)); errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: external id index names missing person %q", ErrCorrupt, id)
		}
		return err
	})
	if err != nil {
		return Person{}, fmt.Errorf("store: get person by external id %q: %w", ext, err)
	}
	return p, nil
}

// UpdatePerson loads the person, lets fn change it and stores the result,
// all in one transaction, so concurrent updates never lose each other's
// changes. An error from fn aborts the update and is returned wrapped. ID
// and CreatedAt cannot change; UpdatedAt is set by the store. fn runs
// inside the write transaction and must not call back into the DB.
func (db *DB) UpdatePerson(ctx context.Context, id string, fn func(*Person) error) (Person, error) {
	var p Person
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		old, err := getPerson(tx, id)
		if err != nil {
			return err
		}
		p = old
		if err := fn(&p); err != nil {
			return err
		}
		if p.ID != old.ID {
			return fmt.Errorf("%w: person id is immutable", ErrInvalid)
		}
		if !p.CreatedAt.Equal(old.CreatedAt) {
			return fmt.Errorf("%w: created time is immutable", ErrInvalid)
		}
		p.CreatedAt = old.CreatedAt
		p.UpdatedAt = db.now()
		if err := checkPerson(&p); err != nil {
			return err
		}
		if p.Meta, err = normMeta(p.Meta); err != nil {
			return err
		}
		if p.ExternalID != old.ExternalID {
			ext := tx.Bucket(bucketPersonsByExt)
			if p.ExternalID != "" {
				if owner := ext.Get([]byte(p.ExternalID)); owner != nil {
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
		return putPerson(tx, &p)
	})
	if err != nil {
		return Person{}, fmt.Errorf("store: update person %q: %w", id, err)
	}
	return p, nil
}

// DeletePerson removes the person with every face, vector, stored image and
// gallery membership, and queues out, in one transaction. Events that
// matched the person keep its id (and face ids) as history. It returns the
// ids of the deleted faces so the caller can drop them from the index.
func (db *DB) DeletePerson(ctx context.Context, id string, out ...OutboxMessage) ([]uint64, error) {
	var deleted []uint64
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		p, err := getPerson(tx, id)
		if err != nil {
			return err
		}
		prefix := indexPrefix(id)
		c := tx.Bucket(bucketFacesByPerson).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			deleted = append(deleted, getU64(k[len(prefix):]))
		}
		for _, fid := range deleted {
			if err := deleteFace(tx, fid); err != nil {
				return err
			}
		}
		if p.ExternalID != "" {
			if err := tx.Bucket(bucketPersonsByExt).Delete([]byte(p.ExternalID)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketPersons).Delete([]byte(id)); err != nil {
			return err
		}
		return db.enqueue(tx, out)
	})
	if err != nil {
		return nil, fmt.Errorf("store: delete person %q: %w", id, err)
	}
	return deleted, nil
}

// ListPersons pages through persons in id order. With Gallery set it lists
// the persons with at least one face in that gallery.
func (db *DB) ListPersons(ctx context.Context, o ListOptions) (Page[Person], error) {
	var page Page[Person]
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		if o.PersonID != "" {
			return fmt.Errorf("%w: persons cannot be filtered by person id", ErrInvalid)
		}
		limit, err := pageLimit(o.Limit)
		if err != nil {
			return err
		}
		after, err := decodeCursor(cursorPersons, o.Cursor)
		if err != nil {
			return err
		}
		if o.Gallery == "" {
			page, err = scanPage(tx.Bucket(bucketPersons).Cursor(), nil, after, cursorPersons, limit,
				func(k, v []byte) (Person, bool, error) {
					p, err := decodePerson(string(k), v)
					return p, err == nil, err
				})
			return err
		}
		if err := galleryExists(tx, o.Gallery); err != nil {
			return err
		}
		prefix := indexPrefix(o.Gallery)
		page, err = scanPage(tx.Bucket(bucketPersonsByGallery).Cursor(), prefix, after, cursorPersons, limit,
			func(k, _ []byte) (Person, bool, error) {
				id := string(k[len(prefix):])
				p, err := getPerson(tx, id)
				if errors.Is(err, ErrNotFound) {
					return p, false, fmt.Errorf("%w: gallery %q lists missing person %q", ErrCorrupt, o.Gallery, id)
				}
				return p, err == nil, err
			})
		return err
	})
	if err != nil {
		return Page[Person]{}, fmt.Errorf("store: list persons: %w", err)
	}
	return page, nil
}

// checkCardNumber accepts 1 to 10 decimal digits (up to 4294967295, the
// widest card field of the common Wiegand formats), or empty.
func checkCardNumber(s string) error {
	if s == "" {
		return nil
	}
	if _, err := strconv.ParseUint(s, 10, 32); err != nil || len(s) > 10 || strings.TrimLeft(s, "0123456789") != "" {
		return fmt.Errorf("%w: card number %q: want 1 to 10 decimal digits, at most 4294967295", ErrInvalid, s)
	}
	return nil
}
