package service

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/index"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/store"
)

// DetectOptions are the per-request switches of Detect.
type DetectOptions = face.Options

// Detect finds faces and runs the requested stages on each.
func (s *Service) Detect(ctx context.Context, photo []byte, opts DetectOptions) ([]face.Face, error) {
	faces, err := s.pipeline.Detect(ctx, photo, opts)
	if err != nil {
		return nil, fmt.Errorf("service: detect: %w", err)
	}
	return faces, nil
}

// Liveness scores every face of a photo (real/spoof, 0.5 is the boundary).
func (s *Service) Liveness(ctx context.Context, photo []byte, sel face.Selector) ([]face.Face, error) {
	return s.Detect(ctx, photo, face.Options{Liveness: true, Selector: sel})
}

// embedFaces detects and embeds every face of a photo under the selector.
func (s *Service) embedFaces(ctx context.Context, photo []byte, sel face.Selector, keepCrop bool) ([]face.Face, error) {
	return s.Detect(ctx, photo, face.Options{Embed: true, Selector: sel, KeepAligned: keepCrop})
}

// VerifyRequest compares the faces of photo A with those of photo B, or
// with the stored faces of a person.
type VerifyRequest struct {
	PhotoA, PhotoB []byte
	PersonID       string // instead of PhotoB
	Threshold      Threshold
	Selector       face.Selector // applied to each photo
}

// VerifyPair is one face of A against one face of B (or the best-matching
// stored face of the person).
type VerifyPair struct {
	A, B       face.Box
	FaceID     uint64 // the person's face, when verifying against a person
	Similarity float32
	Confidence float32
	Match      bool // false when the threshold is none
}

// VerifyResult lists every pair; Verified is true when any pair matches.
type VerifyResult struct {
	FacesA, FacesB []face.Face
	Pairs          []VerifyPair
	Verified       bool
}

// Verify compares faces. A photo without a face is a NoFaceError (photo 0
// is A, photo 1 is B).
func (s *Service) Verify(ctx context.Context, req VerifyRequest) (VerifyResult, error) {
	if (req.PhotoB == nil) == (req.PersonID == "") {
		return VerifyResult{}, fmt.Errorf("%w: verify needs a second photo or a person id, not both", ErrInvalid)
	}
	var res VerifyResult
	var err error
	if res.FacesA, err = s.facesOf(ctx, req.PhotoA, req.Selector, 0); err != nil {
		return VerifyResult{}, err
	}
	var candidates []store.Face
	if req.PersonID != "" {
		if _, err := s.store.GetPerson(ctx, req.PersonID); err != nil {
			return VerifyResult{}, notFound(fmt.Errorf("service: verify: person %q: %w", req.PersonID, err), "person", req.PersonID)
		}
		if candidates, err = s.personFaces(ctx, req.PersonID); err != nil {
			return VerifyResult{}, fmt.Errorf("service: verify: faces of %q: %w", req.PersonID, err)
		}
		if len(candidates) == 0 {
			return VerifyResult{}, fmt.Errorf("service: verify: person %q has no face of embedder %s: %w", req.PersonID, s.embedder, store.ErrNotFound)
		}
	} else if res.FacesB, err = s.facesOf(ctx, req.PhotoB, req.Selector, 1); err != nil {
		return VerifyResult{}, err
	}

	for _, a := range res.FacesA {
		if candidates != nil {
			best := VerifyPair{A: a.Box, Similarity: -2}
			for _, c := range candidates {
				if sim := models.Cosine(a.Embedding, c.Embedding); sim > best.Similarity {
					best.Similarity, best.FaceID = sim, c.ID
					best.B = face.Box{X1: c.Box[0], Y1: c.Box[1], X2: c.Box[2], Y2: c.Box[3]}
				}
			}
			// The decision is the person's template's; the face named is
			// their closest one.
			best.Similarity = templateSimilarity(a.Embedding, candidates)
			res.Pairs = append(res.Pairs, s.decide(best, req.Threshold))
			continue
		}
		for _, b := range res.FacesB {
			p := VerifyPair{A: a.Box, B: b.Box, Similarity: models.Cosine(a.Embedding, b.Embedding)}
			res.Pairs = append(res.Pairs, s.decide(p, req.Threshold))
		}
	}
	for _, p := range res.Pairs {
		res.Verified = res.Verified || p.Match
	}
	return res, nil
}

func (s *Service) decide(p VerifyPair, t Threshold) VerifyPair {
	p.Similarity = ClampSimilarity(p.Similarity)
	p.Confidence = s.calib.Confidence(p.Similarity)
	p.Match = !t.None && t.Accepts(p.Confidence)
	return p
}

// facesOf embeds a photo's faces, turning "none found" into a NoFaceError.
func (s *Service) facesOf(ctx context.Context, photo []byte, sel face.Selector, n int) ([]face.Face, error) {
	faces, err := s.embedFaces(ctx, photo, sel, false)
	if err != nil {
		return nil, err
	}
	if len(faces) == 0 {
		return nil, &NoFaceError{Photo: n}
	}
	return faces, nil
}

// IdentifyRequest searches the galleries for the faces of a photo.
type IdentifyRequest struct {
	Photo     []byte
	Galleries []string // empty: every gallery
	N         int      // matching persons per face; 0 means 1
	// Faces ranks faces instead of persons, each scored on its own (a
	// person may appear once per face): for vendor APIs whose documents
	// define identify over faces (FindFace).
	Faces     bool
	Threshold Threshold
	Selector  face.Selector
	// Record stores a match event per face (and queues it for sync), with
	// CameraID and, when Snapshot is set, the face's aligned crop.
	Record   bool
	CameraID string
	Snapshot bool
	// Liveness scores every face (off by default); under LivenessGate a
	// face that is not live gets no match.
	Liveness LivenessMode
}

// LivenessMode says whether identify checks liveness, and what a face
// that fails it gets.
type LivenessMode int

const (
	// LivenessOff: no liveness check.
	LivenessOff LivenessMode = iota
	// LivenessGate: each face is scored, and one that is not live (score
	// below LiveThreshold) gets no match: the door stays shut for a print.
	LivenessGate
	// LivenessReport: each face is scored and reported; matches are
	// decided by similarity alone (the client decides).
	LivenessReport
)

// LiveThreshold is the liveness model's boundary: a score at or above it
// is a live face.
const LiveThreshold = 0.5

// RefusedNotLive is IdentifiedFace.Refused for a face whose match was
// refused because it failed the liveness check.
const RefusedNotLive = "not_live"

// Match is one person matching a query face. Similarity is to the
// person's template (the normalised mean of their faces of this
// embedder, see templateSimilarity); FaceID is their face closest to the
// query, Galleries that face's galleries.
type Match struct {
	FaceID     uint64
	Galleries  []string // the face's galleries
	Person     store.Person
	Similarity float32
	Confidence float32
}

// IdentifiedFace is a face of the query photo with its matches, best
// first; EventID is set when the request recorded events. Best is the
// closest person whatever the threshold (nil in an empty gallery): an
// unmatched face's event keeps it, so thresholds can be tuned from the
// history. Refused says why a face got no match although a candidate
// passed the threshold (RefusedNotLive).
type IdentifiedFace struct {
	Face    face.Face
	Matches []Match
	Best    *Match
	Refused string
	EventID uint64
}

// Live reports whether the face passed the liveness check (false when it
// was not checked).
func (f IdentifiedFace) Live() bool {
	return f.Face.Liveness != nil && *f.Face.Liveness >= LiveThreshold
}

// maxN bounds the matches per face one request may ask for.
const maxN = 100

// Identify finds the best matches of every face in the photo. A photo
// without faces gives an empty result, not an error.
func (s *Service) Identify(ctx context.Context, req IdentifyRequest) ([]IdentifiedFace, error) {
	if req.N == 0 {
		req.N = 1
	}
	if req.N < 0 || req.N > maxN {
		return nil, fmt.Errorf("%w: n must be 1..%d", ErrInvalid, maxN)
	}
	if err := s.galleriesExist(ctx, req.Galleries); err != nil {
		return nil, err
	}
	faces, err := s.Detect(ctx, req.Photo, face.Options{Embed: true, Selector: req.Selector,
		KeepAligned: req.Record && req.Snapshot, Liveness: req.Liveness != LivenessOff})
	if err != nil {
		return nil, err
	}
	out := make([]IdentifiedFace, 0, len(faces))
	for _, f := range faces {
		id := IdentifiedFace{Face: f}
		candidates, err := s.rankPersons(ctx, f.Embedding, req)
		if err != nil {
			return nil, err
		}
		if len(candidates) > 0 {
			id.Best = &candidates[0]
		}
		id.Matches = accepted(candidates, req.Threshold)
		if req.Liveness == LivenessGate && !id.Live() && len(id.Matches) > 0 {
			id.Matches, id.Refused = nil, RefusedNotLive
		}
		if req.Record {
			if id.EventID, err = s.recordMatch(ctx, req, id); err != nil {
				return nil, err
			}
		}
		out = append(out, id)
	}
	return out, nil
}

// matchOf resolves an index hit to its face and person. A face deleted
// between the search and the lookup is dropped.
func (s *Service) matchOf(ctx context.Context, h index.Hit, conf float32) (Match, bool) {
	f, err := s.store.GetFace(ctx, h.ID)
	if err != nil {
		return Match{}, false
	}
	p, err := s.store.GetPerson(ctx, f.PersonID)
	if err != nil {
		return Match{}, false
	}
	return Match{FaceID: f.ID, Galleries: f.Galleries, Person: p, Similarity: h.Score, Confidence: conf}, true
}

// matchedGallery names the gallery an event's match came from: the first
// of the face's galleries that the request searched (any, when it named
// none).
func matchedGallery(faceGalleries, searched []string) string {
	for _, g := range faceGalleries {
		if len(searched) == 0 || slices.Contains(searched, g) {
			return g
		}
	}
	return ""
}

// recordMatch stores the event of one identified face.
func (s *Service) recordMatch(ctx context.Context, req IdentifyRequest, id IdentifiedFace) (uint64, error) {
	b := id.Face.Box
	e := store.Event{CameraID: req.CameraID, Time: s.cfg.Now(), Box: [4]float32{b.X1, b.Y1, b.X2, b.Y2}}
	// An unmatched face keeps its best candidate and that candidate's
	// confidence (Matched false): the evidence to tune thresholds with.
	if m := id.Best; m != nil {
		e.Matched = len(id.Matches) > 0
		e.PersonID, e.FaceID, e.Confidence = m.Person.ID, m.FaceID, m.Confidence
		e.Gallery = matchedGallery(m.Galleries, req.Galleries)
	}
	if l := id.Face.Liveness; l != nil {
		e.Meta = store.Metadata{"liveness": *l}
		if id.Refused != "" {
			e.Meta["refused"] = id.Refused
		}
	}
	var snapshot []byte
	if req.Snapshot {
		snapshot = id.Face.Aligned
	}
	ev, err := s.store.AddEvent(ctx, e, snapshot, s.cfg.EventQueue)
	if err != nil {
		return 0, fmt.Errorf("service: record event: %w", err)
	}
	return ev.ID, nil
}

// IsClientError reports errors caused by the request rather than the
// device, which APIs answer with 4xx.
func IsClientError(err error) bool {
	var many *face.ErrTooManyFaces
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrNoFace) || errors.As(err, &many) ||
		errors.Is(err, face.ErrEmpty) || errors.Is(err, face.ErrCorrupt) || errors.Is(err, face.ErrTooSmall) ||
		errors.Is(err, face.ErrTooManyPixels) || errors.Is(err, face.ErrTooLarge) || errors.Is(err, face.ErrUnsupportedFormat) ||
		errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDuplicate) || errors.Is(err, store.ErrInvalid)
}
