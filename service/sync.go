package service

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/store"
)

// Fleet sync: the backend numbers the operations of each gallery, and the
// device applies them in order, each exactly once (store.ApplySync). The
// sync package decodes them from the wire; this file turns them into store
// and index changes.

// SyncKind is what a gallery operation does.
type SyncKind int

const (
	SyncCreateGallery SyncKind = iota + 1
	SyncDeleteGallery
	SyncUpsertPerson // Persons[0] becomes the person's faces in the gallery
	SyncDeletePerson // PersonID leaves the gallery
	SyncSnapshot     // Persons become the gallery's whole content
)

// SyncOp is one gallery operation at a revision.
type SyncOp struct {
	Kind     SyncKind
	Gallery  string
	Revision uint64
	Persons  []SyncPerson
	PersonID string
}

// SyncPerson is a person with its faces for one gallery.
type SyncPerson struct {
	Person store.Person
	Faces  []SyncFace
}

// SyncFace is a face as the backend sends it: an embedding with the id of
// the embedder that made it, a photo, or both. An embedding from another
// embedder than the device's is useless here; the photo is then embedded
// again, and without one the face is refused.
type SyncFace struct {
	Embedding  []float32
	EmbedderID string
	Photo      []byte
}

// SyncStatus is the outcome of an operation.
type SyncStatus string

const (
	SyncApplied   SyncStatus = "applied"
	SyncDuplicate SyncStatus = "duplicate" // already at or past its revision
	SyncGap       SyncStatus = "gap"       // revisions missing before it; nothing done
	SyncRejected  SyncStatus = "rejected"  // invalid; the revision is passed without change
)

// SyncResult says what became of an operation. Revision is the gallery's
// revision afterwards; Skipped lists persons of a snapshot left out (with
// why), which does not stop the rest of the snapshot.
type SyncResult struct {
	Status   SyncStatus
	Gallery  string
	Revision uint64
	Reason   string
	Faces    int // faces added
	Skipped  []SyncSkipped
}

// SyncSkipped is a snapshot's person that could not be applied.
type SyncSkipped struct {
	PersonID string
	Reason   string
}

// SyncAck builds the acknowledgement of a result, queued in the
// transaction that records it.
type SyncAck func(SyncResult) []store.OutboxMessage

// SyncRevisions returns the last applied revision of every synced gallery.
func (s *Service) SyncRevisions(ctx context.Context) (map[string]uint64, error) {
	return s.store.SyncRevisions(ctx)
}

// ApplySync applies op if it is the gallery's next revision (a snapshot:
// any revision not older than the gallery's) and reports the result, with
// ack's messages queued atomically with it. Duplicates and gaps change
// nothing; an invalid operation (a face from another embedder without a
// photo, a photo without a face, a clash of external ids...) is rejected
// and its revision passed, so one bad operation does not stall the
// gallery. An error means the device failed (storage, context) and the
// operation should be retried.
func (s *Service) ApplySync(ctx context.Context, op SyncOp, ack SyncAck) (SyncResult, error) {
	res := SyncResult{Gallery: op.Gallery, Revision: op.Revision}
	if !store.ValidGalleryName(op.Gallery) {
		return res, fmt.Errorf("%w: gallery name %q", ErrInvalid, op.Gallery)
	}
	cur, err := s.store.SyncRevision(ctx, op.Gallery)
	if err != nil {
		return res, err
	}
	if r, done := revisionCheck(op, cur); done {
		return r, nil
	}

	// The expensive part (embedding photos) runs before the write lock.
	persons, skipped, rejectErr := s.prepareSync(ctx, op)
	if rejectErr == nil && op.Kind == SyncDeleteGallery && op.Gallery == s.cfg.DefaultGallery {
		rejectErr = fmt.Errorf("the default gallery %q cannot be deleted", op.Gallery)
	}
	if rejectErr != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return s.rejectSync(ctx, op, rejectErr, ack)
	}
	res.Status, res.Skipped = SyncApplied, skipped
	for _, p := range persons {
		res.Faces += len(p.faces)
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	change, err := s.store.ApplySync(ctx, op.Gallery, op.Revision, op.Kind == SyncSnapshot, func(tx *store.SyncTx) error {
		var err error
		switch op.Kind {
		case SyncCreateGallery:
			err = tx.CreateGallery()
		case SyncDeleteGallery:
			err = tx.DeleteGallery()
		case SyncDeletePerson:
			err = tx.RemovePerson(op.PersonID)
		case SyncUpsertPerson:
			p := persons[0]
			if err = tx.UpsertPerson(p.person, p.faces); err != nil {
				err = fmt.Errorf("person %q: %w", p.person.ID, err)
			}
		case SyncSnapshot:
			err = s.applySnapshot(tx, persons, &res)
		}
		if err != nil {
			return err
		}
		// The ack is written last: a snapshot knows what it skipped only
		// now.
		tx.Enqueue(ackOf(ack, res)...)
		return nil
	})
	switch {
	case errors.Is(err, store.ErrStaleRevision), errors.Is(err, store.ErrRevisionGap):
		return s.lostRace(ctx, op)
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrDuplicate), errors.Is(err, store.ErrNotFound):
		return s.rejectSync(ctx, op, err, ack)
	case err != nil:
		return res, fmt.Errorf("service: sync %s revision %d: %w", op.Gallery, op.Revision, err)
	}
	s.applyChange(change)
	if op.Kind == SyncDeleteGallery {
		s.index.DropGallery(op.Gallery)
	}
	return res, nil
}

// applySnapshot makes persons the gallery's content. A person the store
// refuses (an id too long, a control character, an external id another
// person owns) is skipped, listed in res.Skipped and left out of the
// gallery; the rest is applied.
func (s *Service) applySnapshot(tx *store.SyncTx, persons []preparedPerson, res *SyncResult) error {
	keep := make(map[string]bool, len(persons))
	for _, p := range persons {
		keep[p.person.ID] = true
	}
	if err := tx.CreateGallery(); err != nil {
		return err
	}
	// Persons leaving the gallery go first: they may free external ids
	// the snapshot gives to others.
	if err := tx.RetainPersons(keep); err != nil {
		return err
	}
	for _, p := range persons {
		err := tx.CheckPerson(p.person, p.faces)
		if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrDuplicate) {
			res.Skipped = append(res.Skipped, SyncSkipped{p.person.ID, err.Error()})
			res.Faces -= len(p.faces)
			// Not in the backend's gallery as the device knows it: a stale
			// copy must not stay searchable.
			if err := tx.RemovePerson(p.person.ID); err != nil {
				return fmt.Errorf("person %q: %w", p.person.ID, err)
			}
			continue
		}
		if err == nil {
			err = tx.UpsertPerson(p.person, p.faces)
		}
		if err != nil {
			return fmt.Errorf("person %q: %w", p.person.ID, err)
		}
	}
	return nil
}

// revisionCheck answers duplicates and gaps without touching anything
// (store.CheckRevision is the rule ApplySync enforces again atomically).
func revisionCheck(op SyncOp, cur uint64) (SyncResult, bool) {
	res := SyncResult{Gallery: op.Gallery, Revision: cur}
	switch err := store.CheckRevision(cur, op.Revision, op.Kind == SyncSnapshot); {
	case errors.Is(err, store.ErrStaleRevision):
		res.Status = SyncDuplicate
		return res, true
	case errors.Is(err, store.ErrRevisionGap):
		res.Status = SyncGap
		return res, true
	}
	return res, false
}

// lostRace answers an operation whose revision check passed, but which
// another delivery of the gallery's operations overtook before the write.
func (s *Service) lostRace(ctx context.Context, op SyncOp) (SyncResult, error) {
	cur, err := s.store.SyncRevision(ctx, op.Gallery)
	if err != nil {
		return SyncResult{Gallery: op.Gallery, Revision: op.Revision}, err
	}
	res, _ := revisionCheck(op, cur)
	return res, nil
}

// rejectSync passes the operation's revision without applying it.
func (s *Service) rejectSync(ctx context.Context, op SyncOp, why error, ack SyncAck) (SyncResult, error) {
	res := SyncResult{Status: SyncRejected, Gallery: op.Gallery, Revision: op.Revision, Reason: why.Error()}
	_, err := s.store.ApplySync(ctx, op.Gallery, op.Revision, op.Kind == SyncSnapshot, func(*store.SyncTx) error { return nil }, ackOf(ack, res)...)
	if errors.Is(err, store.ErrStaleRevision) || errors.Is(err, store.ErrRevisionGap) {
		return s.lostRace(ctx, op)
	}
	if err != nil {
		return res, fmt.Errorf("service: sync %s revision %d: %w", op.Gallery, op.Revision, err)
	}
	s.logger.Warn("sync operation rejected", "gallery", op.Gallery, "revision", op.Revision, "reason", res.Reason)
	return res, nil
}

func ackOf(ack SyncAck, res SyncResult) []store.OutboxMessage {
	if ack == nil {
		return nil
	}
	return ack(res)
}

type preparedPerson struct {
	person store.Person
	faces  []store.NewFace
}

// prepareSync validates the operation and turns its faces into store
// faces of this device's embedder. For a snapshot, a bad person is
// skipped; for an upsert, it rejects the operation.
func (s *Service) prepareSync(ctx context.Context, op SyncOp) ([]preparedPerson, []SyncSkipped, error) {
	switch op.Kind {
	case SyncCreateGallery, SyncDeleteGallery:
		return nil, nil, nil
	case SyncDeletePerson:
		if op.PersonID == "" {
			return nil, nil, errors.New("delete_person needs a person id")
		}
		return nil, nil, nil
	case SyncUpsertPerson:
		if len(op.Persons) != 1 {
			return nil, nil, fmt.Errorf("upsert_person needs one person, got %d", len(op.Persons))
		}
		p, err := s.prepareSyncPerson(ctx, op.Persons[0])
		if err != nil {
			return nil, nil, err
		}
		return []preparedPerson{p}, nil, nil
	case SyncSnapshot:
		var out []preparedPerson
		var skipped []SyncSkipped
		seen := map[string]bool{}
		for _, sp := range op.Persons {
			if seen[sp.Person.ID] {
				skipped = append(skipped, SyncSkipped{sp.Person.ID, "listed twice in the snapshot"})
				continue
			}
			seen[sp.Person.ID] = true
			p, err := s.prepareSyncPerson(ctx, sp)
			if err != nil {
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				skipped = append(skipped, SyncSkipped{sp.Person.ID, err.Error()})
				continue
			}
			out = append(out, p)
		}
		return out, skipped, nil
	}
	return nil, nil, fmt.Errorf("unknown operation kind %d", op.Kind)
}

func (s *Service) prepareSyncPerson(ctx context.Context, sp SyncPerson) (preparedPerson, error) {
	if sp.Person.ID == "" {
		return preparedPerson{}, errors.New("person has no id")
	}
	if len(sp.Faces) == 0 {
		return preparedPerson{}, fmt.Errorf("person %q has no face", sp.Person.ID)
	}
	// Refused before its photos are embedded, which is the costly part.
	if err := store.ValidatePerson(sp.Person); err != nil {
		return preparedPerson{}, err
	}
	p := preparedPerson{person: sp.Person}
	for i, sf := range sp.Faces {
		nf, err := s.syncFace(ctx, sf)
		if err != nil {
			return preparedPerson{}, fmt.Errorf("person %q face %d: %w", sp.Person.ID, i, err)
		}
		p.faces = append(p.faces, nf)
	}
	return p, nil
}

// syncFace uses the embedding when it is of this device's embedder, and
// embeds the photo otherwise.
func (s *Service) syncFace(ctx context.Context, sf SyncFace) (store.NewFace, error) {
	if len(sf.Embedding) > 0 && sf.EmbedderID == s.embedder {
		if dim := s.pipeline.EmbedderDim(); len(sf.Embedding) != dim {
			return store.NewFace{}, fmt.Errorf("embedding has %d values, embedder %s makes %d", len(sf.Embedding), s.embedder, dim)
		}
		// Cosines assume unit vectors; the backend's may be unnormalised.
		var norm float64
		for _, x := range sf.Embedding {
			norm += float64(x) * float64(x)
		}
		if norm == 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
			return store.NewFace{}, errors.New("embedding is zero or not finite")
		}
		vec := models.L2Normalize(slices.Clone(sf.Embedding))
		return store.NewFace{Face: store.Face{Embedding: vec, EmbedderID: s.embedder}}, nil
	}
	if len(sf.Photo) == 0 {
		if len(sf.Embedding) > 0 {
			return store.NewFace{}, fmt.Errorf("embedder mismatch: the face was embedded by %q, this device runs %q; send its photo or an embedding from %q", sf.EmbedderID, s.embedder, s.embedder)
		}
		return store.NewFace{}, errors.New("face has neither an embedding nor a photo")
	}
	faces, err := s.embedFaces(ctx, sf.Photo, face.SelectBiggest, s.cfg.KeepImages)
	if err != nil {
		return store.NewFace{}, err
	}
	if len(faces) == 0 {
		return store.NewFace{}, ErrNoFace
	}
	return storedFace(sf.Photo, faces[0], s.cfg.KeepImages), nil
}

// applyChange brings the index along with a committed sync change. Called
// with writeMu held. Faces added and removed in the same operation (a
// snapshot listing a person twice) end removed.
func (s *Service) applyChange(ch store.SyncChange) {
	removed := make(map[uint64]bool, len(ch.Removed))
	for _, id := range ch.Removed {
		removed[id] = true
		s.index.Remove(id)
	}
	for _, f := range ch.Regalleried {
		if !removed[f.ID] && f.EmbedderID == s.embedder {
			if err := s.index.SetGalleries(f.ID, f.Galleries); err != nil {
				s.logger.Error("sync: index gallery change", "face", f.ID, "error", err)
			}
		}
	}
	for _, f := range ch.Added {
		if !removed[f.ID] && f.EmbedderID == s.embedder {
			if err := s.index.Add(f.ID, f.Embedding, f.Galleries); err != nil {
				s.logger.Error("sync: index face", "face", f.ID, "error", err)
			}
		}
	}
}

// HoldSync keeps an operation received ahead of a revision gap, durably
// (store.HoldSync): false if that revision is already held,
// store.ErrHoldFull past lim.
func (s *Service) HoldSync(ctx context.Context, op store.HeldOp, lim store.HoldLimits) (bool, error) {
	return s.store.HoldSync(ctx, op, lim)
}

// HeldSync returns the gallery's held operations up to revision upTo, in
// revision order.
func (s *Service) HeldSync(ctx context.Context, gallery string, upTo uint64) ([]store.HeldOp, error) {
	return s.store.HeldSync(ctx, gallery, upTo)
}

// DropHeldSync forgets held operations, queueing their acknowledgements
// in the same transaction.
func (s *Service) DropHeldSync(ctx context.Context, gallery string, revs []uint64, out ...store.OutboxMessage) error {
	return s.store.DropHeldSync(ctx, gallery, revs, out...)
}

// HeldSyncStats counts the held operations.
func (s *Service) HeldSyncStats(ctx context.Context) (store.HeldStats, error) {
	return s.store.HeldSyncStats(ctx)
}
