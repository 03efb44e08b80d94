package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/facedhq/faced/store"
)

// Switching embedders. Every stored face carries the id of the embedder
// that made its vector (name@sha256-prefix); only faces of the running
// embedder are searchable. After a switch, the others stay stored until
// they are re-embedded or their persons re-enrolled:
//
//   - ReembedStatus lists the persons with faces of another embedder
//     (GET /v1/reembed), and start-up logs their counts.
//   - Reembed moves every such face whose aligned crop was kept
//     (service.keep_images at enrolment) to the running embedder; the
//     daemon runs it in the background at start-up when keep_images is on.
//     Faces without a crop need their persons re-enrolled from a photo.

// ReembedReport says how the stored faces stand against the running
// embedder.
type ReembedReport struct {
	// Embedder is the running embedder's id.
	Embedder string `json:"embedder"`
	// Faces are all stored faces; Current those of the running embedder
	// (searchable); Stale those of another embedder.
	Faces   int `json:"faces"`
	Current int `json:"current"`
	Stale   int `json:"stale"`
	// Reembeddable of the stale faces have a kept crop.
	Reembeddable int `json:"reembeddable"`
	// Reembedded faces were moved to the running embedder by this call
	// (Reembed only); Failed kept crops could not be (unreadable, no
	// longer a face the embedder accepts).
	Reembedded int `json:"reembedded"`
	Failed     int `json:"failed"`
	// Running reports a Reembed in progress (ReembedStatus only).
	Running bool `json:"running"`
	// Persons have at least one stale face, by id.
	Persons []StalePerson `json:"persons"`
}

// StalePerson is a person with faces of another embedder.
type StalePerson struct {
	ID string `json:"id"`
	// Faces of another embedder; Reembeddable of them have a kept crop;
	// Current faces of the running embedder (0: the person cannot be
	// found until re-enrolled or re-embedded).
	Faces        int      `json:"faces"`
	Reembeddable int      `json:"reembeddable"`
	Current      int      `json:"current"`
	Embedders    []string `json:"embedders"`
}

// ReembedStatus reports which persons need re-enrolment (or re-embedding)
// for the running embedder. It reads face records only, not vectors.
func (s *Service) ReembedStatus(ctx context.Context) (ReembedReport, error) {
	r, _, err := s.staleFaces(ctx)
	r.Running = s.reembedding.Load()
	return r, err
}

// staleFaces walks every face (records only) and returns the report with
// the stale faces that have a crop.
func (s *Service) staleFaces(ctx context.Context) (ReembedReport, []uint64, error) {
	r := ReembedReport{Embedder: s.embedder, Persons: []StalePerson{}}
	persons := map[string]*StalePerson{}
	current := map[string]int{}
	var withCrop []uint64
	o := store.ListOptions{Limit: store.MaxLimit}
	for {
		page, err := s.store.ListFaces(ctx, o)
		if err != nil {
			return ReembedReport{}, nil, fmt.Errorf("service: re-embed status: %w", err)
		}
		for _, f := range page.Items {
			r.Faces++
			if f.EmbedderID == s.embedder {
				r.Current++
				current[f.PersonID]++
				continue
			}
			r.Stale++
			p := persons[f.PersonID]
			if p == nil {
				p = &StalePerson{ID: f.PersonID}
				persons[f.PersonID] = p
			}
			p.Faces++
			if !slices.Contains(p.Embedders, f.EmbedderID) {
				p.Embedders = append(p.Embedders, f.EmbedderID)
			}
			if f.HasImage {
				r.Reembeddable++
				p.Reembeddable++
				withCrop = append(withCrop, f.ID)
			}
		}
		if page.Next == "" {
			break
		}
		o.Cursor = page.Next
	}
	for _, id := range slices.Sorted(maps.Keys(persons)) {
		p := persons[id]
		p.Current = current[id]
		slices.Sort(p.Embedders)
		r.Persons = append(r.Persons, *p)
	}
	return r, withCrop, nil
}

// Reembed moves every face of another embedder that has a kept crop to the
// running embedder, one face per store transaction, each searchable as soon
// as it is stored; it returns the report after the run. A crop that does
// not embed is counted in Failed and left as it was. Calls are serialised;
// a cancelled ctx stops between faces, keeping what was done.
func (s *Service) Reembed(ctx context.Context) (ReembedReport, error) {
	s.reembedMu.Lock()
	defer s.reembedMu.Unlock()
	s.reembedding.Store(true)
	defer s.reembedding.Store(false)

	start := time.Now()
	_, ids, err := s.staleFaces(ctx)
	if err != nil {
		return ReembedReport{}, err
	}
	var done, failed int
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return ReembedReport{}, err
		}
		switch err := s.reembedFace(ctx, id); {
		case err == nil:
			done++
		case errors.Is(err, store.ErrNotFound): // deleted meanwhile
		case ctx.Err() != nil:
			return ReembedReport{}, ctx.Err()
		default:
			failed++
			s.logger.Warn("kept face crop not re-embedded", "embedder", s.embedder, "err", err)
		}
	}
	r, _, err := s.staleFaces(ctx)
	if err != nil {
		return ReembedReport{}, err
	}
	r.Reembedded, r.Failed = done, failed
	if len(ids) > 0 {
		s.logger.Info("kept face crops re-embedded", "embedder", s.embedder, "faces", done, "failed", failed,
			"still_stale", r.Stale, "persons_needing_reenrolment", countUnfound(r.Persons), "took", time.Since(start))
	}
	return r, nil
}

// countUnfound counts the persons that no search can find: every face of
// theirs is of another embedder.
func countUnfound(ps []StalePerson) int {
	n := 0
	for _, p := range ps {
		if p.Current == 0 {
			n++
		}
	}
	return n
}

// reembedFace embeds one face's kept crop with the running embedder,
// stores the vector and makes the face searchable.
func (s *Service) reembedFace(ctx context.Context, id uint64) error {
	crop, err := s.store.FaceImage(ctx, id)
	if err != nil {
		return err
	}
	vec, err := s.pipeline.EmbedAligned(ctx, crop)
	if err != nil {
		return fmt.Errorf("service: re-embed face: %w", err)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.store.ReplaceEmbedding(ctx, id, s.embedder, vec); err != nil {
		return err
	}
	// The galleries as they are now: writeMu orders this after every
	// membership change.
	f, err := s.store.GetFace(ctx, id)
	if err != nil {
		return err
	}
	if err := s.index.Add(f.ID, f.Embedding, f.Galleries); err != nil {
		return fmt.Errorf("service: index re-embedded face: %w", err)
	}
	return nil
}
