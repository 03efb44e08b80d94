package service

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/store"
)

// BestMatch returns the person closest to a unit embedding in the
// galleries (every gallery when none is named), whatever their confidence,
// so that a camera can keep the best candidate of an unknown face as
// evidence; ok is false when the galleries hold no face. Confidence is on
// the API's scale: the caller applies its threshold.
func (s *Service) BestMatch(ctx context.Context, embedding []float32, galleries []string) (Match, bool, error) {
	if len(embedding) != s.pipeline.EmbedderDim() {
		return Match{}, false, fmt.Errorf("%w: embedding of %d values, the embedder makes %d", ErrInvalid, len(embedding), s.pipeline.EmbedderDim())
	}
	ms, err := s.matchPersons(ctx, embedding, IdentifyRequest{N: 1, Galleries: galleries, Threshold: Threshold{None: true}})
	if err != nil || len(ms) == 0 {
		return Match{}, false, err
	}
	return ms[0], true, nil
}

// EnrollFromEvent creates a person whose face is the crop an event kept: a
// camera's unknown face (cameras keep crops with keep_crops), or an
// identify event recorded with a snapshot. The crop is the aligned face,
// so it is embedded without detecting again.
func (s *Service) EnrollFromEvent(ctx context.Context, person store.Person, eventID uint64, in FaceInput) (store.Person, []store.Face, error) {
	nf, err := s.eventFace(ctx, eventID, in)
	if err != nil {
		return store.Person{}, nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.checkDuplicates(ctx, []store.NewFace{nf}, person.ID, in); err != nil {
		return store.Person{}, nil, err
	}
	p, stored, err := s.store.CreatePerson(ctx, person, []store.NewFace{nf})
	if err != nil {
		return store.Person{}, nil, fmt.Errorf("service: enrol: %w", err)
	}
	if err := s.indexFaces(stored); err != nil {
		return store.Person{}, nil, err
	}
	return p, stored, nil
}

// AddFaceFromEvent adds the crop an event kept to an existing person, as
// AddFaces adds a photo (the admin page's "enrol this face" for a known
// person: a second, more recent face).
func (s *Service) AddFaceFromEvent(ctx context.Context, personID string, eventID uint64, in FaceInput) ([]store.Face, error) {
	if _, err := s.store.GetPerson(ctx, personID); err != nil {
		return nil, notFound(fmt.Errorf("service: add face from event: person %q: %w", personID, err), "person", personID)
	}
	nf, err := s.eventFace(ctx, eventID, in)
	if err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.checkDuplicates(ctx, []store.NewFace{nf}, personID, in); err != nil {
		return nil, err
	}
	stored, err := s.store.AddFaces(ctx, personID, []store.NewFace{nf})
	if err != nil {
		return nil, fmt.Errorf("service: add face from event: %w", err)
	}
	if err := s.indexFaces(stored); err != nil {
		return nil, err
	}
	return stored, nil
}

// EventCrop returns the face crop an event kept (a JPEG), or an error
// wrapping store.ErrNotFound when it kept none.
func (s *Service) EventCrop(ctx context.Context, eventID uint64) ([]byte, error) {
	crop, err := s.store.EventSnapshot(ctx, eventID)
	if err != nil {
		return nil, notFound(fmt.Errorf("service: event %d crop: %w", eventID, err), "event", strconv.FormatUint(eventID, 10))
	}
	return crop, nil
}

// GetEvent returns one recorded event.
func (s *Service) GetEvent(ctx context.Context, id uint64) (store.Event, error) {
	ev, err := s.store.GetEvent(ctx, id)
	if err != nil {
		return store.Event{}, notFound(fmt.Errorf("service: event %d: %w", id, err), "event", strconv.FormatUint(id, 10))
	}
	return ev, nil
}

// eventFace embeds the crop event eventID kept as a new face.
func (s *Service) eventFace(ctx context.Context, eventID uint64, in FaceInput) (store.NewFace, error) {
	ev, err := s.store.GetEvent(ctx, eventID)
	if err != nil {
		return store.NewFace{}, fmt.Errorf("service: enrol from event %d: %w", eventID, err)
	}
	if !ev.HasSnapshot {
		return store.NewFace{}, fmt.Errorf("%w: event %d kept no face crop (a camera keeps them with keep_crops: true)", ErrInvalid, eventID)
	}
	crop, err := s.store.EventSnapshot(ctx, eventID)
	if err != nil {
		return store.NewFace{}, fmt.Errorf("service: enrol from event %d: %w", eventID, err)
	}
	emb, err := s.pipeline.EmbedAligned(ctx, crop)
	if err != nil {
		return store.NewFace{}, fmt.Errorf("service: enrol from event %d: %w", eventID, err)
	}
	galleries := in.Galleries
	if len(galleries) == 0 {
		galleries = []string{s.cfg.DefaultGallery}
	}
	nf := store.NewFace{Face: store.Face{
		Box: ev.Box, PhotoHash: models.SHA256Hex(crop), Embedding: emb, EmbedderID: s.pipeline.EmbedderID(),
		Galleries: slices.Clone(galleries), Meta: in.Meta, CameraID: ev.CameraID,
	}}
	if s.cfg.KeepImages {
		nf.Image = crop
	}
	return nf, nil
}
