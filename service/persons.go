package service

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/store"
)

// FaceInput is what enrolment needs besides the photos.
type FaceInput struct {
	// Galleries of the new faces; empty means the default gallery.
	Galleries []string
	Meta      store.Metadata
	CameraID  string
	// Selector picks the face of a photo: biggest (the default) or reject
	// (several faces → *face.ErrTooManyFaces). All is not allowed: one photo
	// enrols one face.
	Selector face.Selector
	// RejectDuplicates refuses a photo whose face already matches another
	// person at the strict preset (*DuplicateFaceError). The native API
	// sets it unless the client passes allow_duplicate=true; vendor
	// dialects and fleet sync, whose documents allow such enrolments,
	// leave it off.
	RejectDuplicates bool
}

// DuplicateFaceError refuses an enrolment whose photo already matches
// another person at the strict preset: the same face under two ids would
// make identify answer with either.
type DuplicateFaceError struct {
	Photo      int    // 0-based, in request order
	PersonID   string // the person it matches
	Confidence float32
}

func (e *DuplicateFaceError) Error() string {
	return fmt.Sprintf("photo %d matches person %q at the strict preset (confidence %.2f)", e.Photo, e.PersonID, e.Confidence)
}

// Unwrap makes errors.Is(err, store.ErrDuplicate) true.
func (e *DuplicateFaceError) Unwrap() error { return store.ErrDuplicate }

// EnrollRequest creates a person with one face per photo.
type EnrollRequest struct {
	Person store.Person
	Photos [][]byte
	FaceInput
}

// Enroll creates a person and its faces atomically: either the person and
// every face are stored and searchable, or nothing is. A photo without a
// face fails the whole request with a NoFaceError naming it.
func (s *Service) Enroll(ctx context.Context, req EnrollRequest) (store.Person, []store.Face, error) {
	if len(req.Photos) == 0 {
		return store.Person{}, nil, fmt.Errorf("%w: enrol needs at least one photo", ErrInvalid)
	}
	if err := store.CheckPerson(req.Person); err != nil {
		return store.Person{}, nil, fmt.Errorf("service: enrol: %w", err)
	}
	faces, err := s.newFaces(ctx, req.Photos, req.FaceInput)
	if err != nil {
		return store.Person{}, nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// Checked under writeMu: two concurrent enrolments of one face cannot
	// both pass.
	if err := s.checkDuplicates(ctx, faces, req.Person.ID, req.FaceInput); err != nil {
		return store.Person{}, nil, err
	}
	p, stored, err := s.store.CreatePerson(ctx, req.Person, faces)
	if err != nil {
		return store.Person{}, nil, fmt.Errorf("service: enrol: %w", err)
	}
	if err := s.indexFaces(stored); err != nil {
		return store.Person{}, nil, err
	}
	return p, stored, nil
}

// AddFaces enrols more photos of an existing person.
func (s *Service) AddFaces(ctx context.Context, personID string, photos [][]byte, in FaceInput) ([]store.Face, error) {
	if len(photos) == 0 {
		return nil, fmt.Errorf("%w: add faces needs at least one photo", ErrInvalid)
	}
	if _, err := s.store.GetPerson(ctx, personID); err != nil {
		return nil, notFound(fmt.Errorf("service: add faces: person %q: %w", personID, err), "person", personID)
	}
	faces, err := s.newFaces(ctx, photos, in)
	if err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.checkDuplicates(ctx, faces, personID, in); err != nil {
		return nil, err
	}
	stored, err := s.store.AddFaces(ctx, personID, faces)
	if err != nil {
		return nil, fmt.Errorf("service: add faces: %w", err)
	}
	return stored, s.indexFaces(stored)
}

// newFaces runs the pipeline on every photo (before any write, so a bad
// photo leaves nothing behind).
func (s *Service) newFaces(ctx context.Context, photos [][]byte, in FaceInput) ([]store.NewFace, error) {
	sel := in.Selector
	switch sel {
	case "":
		sel = face.SelectBiggest
	case face.SelectAll:
		return nil, fmt.Errorf("%w: enrolment takes one face per photo: use biggest or reject", ErrInvalid)
	}
	galleries := in.Galleries
	if len(galleries) == 0 {
		galleries = []string{s.cfg.DefaultGallery}
	}
	// Before the photos run the models: a misnamed gallery fails fast.
	if err := s.galleriesExist(ctx, galleries); err != nil {
		return nil, err
	}
	out := make([]store.NewFace, 0, len(photos))
	for i, photo := range photos {
		faces, err := s.embedFaces(ctx, photo, sel, s.cfg.KeepImages)
		if err != nil {
			return nil, fmt.Errorf("photo %d: %w", i, err)
		}
		if len(faces) == 0 {
			return nil, &NoFaceError{Photo: i}
		}
		nf := storedFace(photo, faces[0], s.cfg.KeepImages)
		nf.Face.Galleries = slices.Clone(galleries)
		nf.Face.Meta, nf.Face.CameraID = in.Meta, in.CameraID
		out = append(out, nf)
	}
	return out, nil
}

// checkDuplicates refuses, when in.RejectDuplicates is set, a new face
// that matches a person other than self (the person being enrolled or
// extended; empty for a new one) at the strict preset, searched over
// every gallery.
func (s *Service) checkDuplicates(ctx context.Context, faces []store.NewFace, self string, in FaceInput) error {
	if !in.RejectDuplicates {
		return nil
	}
	req := IdentifyRequest{N: 2, Threshold: Threshold{Value: Presets["strict"]}}
	for i, f := range faces {
		if f.Face.EmbedderID != s.embedder {
			continue
		}
		matches, err := s.matchPersons(ctx, f.Face.Embedding, req)
		if err != nil {
			return fmt.Errorf("service: duplicate check: %w", err)
		}
		for _, m := range matches {
			if m.Person.ID != self {
				return &DuplicateFaceError{Photo: i, PersonID: m.Person.ID, Confidence: m.Confidence}
			}
		}
	}
	return nil
}

// galleriesExist fails with a NotFoundError naming the first gallery that
// does not exist.
func (s *Service) galleriesExist(ctx context.Context, names []string) error {
	for _, g := range names {
		if _, err := s.store.GetGallery(ctx, g); err != nil {
			return notFound(fmt.Errorf("service: gallery %q: %w", g, err), "gallery", g)
		}
	}
	return nil
}

// storedFace is the face f of photo as the store keeps it, with its
// aligned crop when keepImage is set.
func storedFace(photo []byte, f face.Face, keepImage bool) store.NewFace {
	nf := store.NewFace{Face: store.Face{
		Box:        [4]float32{f.Box.X1, f.Box.Y1, f.Box.X2, f.Box.Y2},
		PhotoHash:  models.SHA256Hex(photo),
		Embedding:  f.Embedding,
		EmbedderID: f.EmbedderID,
		Quality:    f.Quality.Score,
	}}
	if keepImage {
		nf.Image = f.Aligned
	}
	return nf
}

// indexFaces makes stored faces searchable. Called with writeMu held.
func (s *Service) indexFaces(faces []store.Face) error {
	for _, f := range faces {
		if f.EmbedderID != s.embedder {
			continue
		}
		if err := s.index.Add(f.ID, f.Embedding, f.Galleries); err != nil {
			return fmt.Errorf("service: index face %d: %w", f.ID, err)
		}
	}
	return nil
}

// GetPerson returns a person.
func (s *Service) GetPerson(ctx context.Context, id string) (store.Person, error) {
	p, err := s.store.GetPerson(ctx, id)
	return p, notFound(err, "person", id)
}

// GetPersonByExternalID returns the person with a customer id.
func (s *Service) GetPersonByExternalID(ctx context.Context, ext string) (store.Person, error) {
	return s.store.GetPersonByExternalID(ctx, ext)
}

// ListPersons pages through persons.
func (s *Service) ListPersons(ctx context.Context, opts store.ListOptions) (store.Page[store.Person], error) {
	return s.store.ListPersons(ctx, opts)
}

// UpdatePerson changes a person's fields and metadata.
func (s *Service) UpdatePerson(ctx context.Context, id string, fn func(*store.Person) error) (store.Person, error) {
	p, err := s.store.UpdatePerson(ctx, id, fn)
	return p, notFound(err, "person", id)
}

// DeletePerson removes a person with its faces and stored images; from the
// moment it returns, no search finds them. Events keep the ids only.
func (s *Service) DeletePerson(ctx context.Context, id string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	faces, err := s.store.DeletePerson(ctx, id)
	if err != nil {
		return notFound(fmt.Errorf("service: delete person %q: %w", id, err), "person", id)
	}
	for _, f := range faces {
		s.index.Remove(f)
	}
	return nil
}

// GetFace returns a stored face.
func (s *Service) GetFace(ctx context.Context, id uint64) (store.Face, error) {
	f, err := s.store.GetFace(ctx, id)
	return f, notFound(err, "face", strconv.FormatUint(id, 10))
}

// FaceImage returns a face's stored crop, if kept.
func (s *Service) FaceImage(ctx context.Context, id uint64) ([]byte, error) {
	return s.store.FaceImage(ctx, id)
}

// ListFaces pages through faces (filters: gallery, person).
func (s *Service) ListFaces(ctx context.Context, opts store.ListOptions) (store.Page[store.Face], error) {
	return s.store.ListFaces(ctx, opts)
}

// FaceUpdate changes a face's metadata, person or galleries. Nil fields are
// left alone; Galleries applies Set, then Del, then Add.
type FaceUpdate struct {
	Meta      *store.Metadata
	PersonID  *string
	Galleries *GalleryChange
}

// GalleryChange edits a membership list (FindFace's galleries add/del/set).
type GalleryChange struct {
	Set      []string
	SetGiven bool // Set was given (an empty Set is meaningful: refused, a face needs a gallery)
	Add, Del []string
}

// Apply returns the new membership.
func (c GalleryChange) Apply(cur []string) []string {
	out := slices.Clone(cur)
	if c.SetGiven {
		out = slices.Clone(c.Set)
	}
	out = slices.DeleteFunc(out, func(g string) bool { return slices.Contains(c.Del, g) })
	for _, g := range c.Add {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// UpdateFace applies an update; the index follows the new galleries.
func (s *Service) UpdateFace(ctx context.Context, id uint64, u FaceUpdate) (store.Face, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	f, err := s.store.UpdateFace(ctx, id, func(f *store.Face) error {
		if u.Meta != nil {
			f.Meta = *u.Meta
		}
		if u.PersonID != nil {
			f.PersonID = *u.PersonID
		}
		if u.Galleries != nil {
			f.Galleries = u.Galleries.Apply(f.Galleries)
			if len(f.Galleries) == 0 {
				return fmt.Errorf("%w: a face must stay in at least one gallery", store.ErrInvalid)
			}
		}
		return nil
	})
	if err != nil {
		return store.Face{}, fmt.Errorf("service: update face %d: %w", id, err)
	}
	if f.EmbedderID == s.embedder {
		if err := s.index.SetGalleries(f.ID, f.Galleries); err != nil {
			return store.Face{}, fmt.Errorf("service: update face %d: %w", id, err)
		}
	}
	return f, nil
}

// DeleteFace removes one face; it leaves search at once.
func (s *Service) DeleteFace(ctx context.Context, id uint64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.store.DeleteFace(ctx, id); err != nil {
		return fmt.Errorf("service: delete face %d: %w", id, err)
	}
	s.index.Remove(id)
	return nil
}

// CreateGallery adds a gallery (name rule [a-zA-Z0-9_-]{1,48}).
func (s *Service) CreateGallery(ctx context.Context, g store.Gallery) (store.Gallery, error) {
	return s.store.CreateGallery(ctx, g)
}

// ListGalleries pages through galleries.
func (s *Service) ListGalleries(ctx context.Context, opts store.ListOptions) (store.Page[store.Gallery], error) {
	return s.store.ListGalleries(ctx, opts)
}

// DeleteGallery removes a gallery. With withFaces, faces only in it are
// deleted; without, it is refused if any face would be left in no gallery.
func (s *Service) DeleteGallery(ctx context.Context, name string, withFaces bool) error {
	if name == s.cfg.DefaultGallery {
		return fmt.Errorf("%w: the default gallery %q cannot be deleted", ErrInvalid, name)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	deleted, err := s.store.DeleteGallery(ctx, name, withFaces)
	if err != nil {
		return notFound(fmt.Errorf("service: delete gallery %q: %w", name, err), "gallery", name)
	}
	for _, id := range deleted {
		s.index.Remove(id)
	}
	s.index.DropGallery(name)
	return nil
}

// RecordEvent stores a match event.
func (s *Service) RecordEvent(ctx context.Context, e store.Event, snapshot []byte) (store.Event, error) {
	return s.RecordEventWith(ctx, e, snapshot, nil)
}

// RecordEventWith stores an event like RecordEvent, and queues more's
// messages (a door's webhook deliveries and MQTT messages) in the same
// transaction as the event and its sync message.
func (s *Service) RecordEventWith(ctx context.Context, e store.Event, snapshot []byte, more store.EventQueue) (store.Event, error) {
	if e.Time.IsZero() {
		e.Time = s.cfg.Now()
	}
	queue := s.cfg.EventQueue
	if more != nil {
		base := queue
		queue = func(e store.Event) ([]store.OutboxMessage, error) {
			var out []store.OutboxMessage
			if base != nil {
				msgs, err := base(e)
				if err != nil {
					return nil, err
				}
				out = msgs
			}
			msgs, err := more(e)
			if err != nil {
				return nil, err
			}
			return append(out, msgs...), nil
		}
	}
	return s.store.AddEvent(ctx, e, snapshot, queue)
}

// ListEvents searches the event history (person, cameras, time range,
// match status), newest first.
func (s *Service) ListEvents(ctx context.Context, q store.EventQuery) (store.Page[store.Event], error) {
	return s.store.ListEvents(ctx, q)
}
