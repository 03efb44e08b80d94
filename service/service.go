// Package service holds the operations every front end shares: the native
// API, the vendor dialects and fleet sync all call it, and nothing else
// touches the store, the index or the pipeline together.
//
// Consistency: the store is the truth. Every write goes to the store in one
// transaction first and to the in-memory index after it commits; the index
// is rebuilt from the store at start-up, so a crash between the two loses
// nothing. Similarities are cosines of unit embeddings, reported on the 0–1
// confidence scale of Calibration.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/index"
	"github.com/facedhq/faced/store"
)

// Errors callers branch on (the APIs map them to status codes). Store
// errors (store.ErrNotFound, store.ErrDuplicate, store.ErrInvalid) and the
// pipeline's (face.ErrCorrupt, *face.ErrTooManyFaces, ...) pass through
// wrapped.
var (
	ErrInvalid = errors.New("invalid request")
	// ErrNoFace reports a photo in which no face was found; NoFaceError
	// says which.
	ErrNoFace = errors.New("no face found")
)

// NotFoundError says which person, face or gallery a request named does
// not exist, so each API can say so in its own terms. Its text and chain
// are those of the store error it wraps (errors.Is(err,
// store.ErrNotFound) holds), so callers that print or match them see no
// change.
type NotFoundError struct {
	Kind string // "person", "face" or "gallery"
	ID   string
	Err  error
}

func (e *NotFoundError) Error() string { return e.Err.Error() }

func (e *NotFoundError) Unwrap() error { return e.Err }

// notFound wraps err in a NotFoundError for kind and id when it is the
// store's ErrNotFound; other errors pass unchanged.
func notFound(err error, kind, id string) error {
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return &NotFoundError{Kind: kind, ID: id, Err: err}
}

// NoFaceError names the photo (0-based, in request order) without a face.
type NoFaceError struct{ Photo int }

func (e *NoFaceError) Error() string { return fmt.Sprintf("no face found in photo %d", e.Photo) }

// Unwrap makes errors.Is(err, ErrNoFace) true.
func (e *NoFaceError) Unwrap() error { return ErrNoFace }

// Config tunes the service.
type Config struct {
	// DefaultGallery receives faces enrolled without a gallery; it is
	// created at start-up.
	DefaultGallery string
	// KeepImages stores each enrolled photo's aligned face crop (JPEG) with
	// the face; off, only the embedding and metadata are kept.
	KeepImages bool
	// Threshold used when a request gives none.
	Threshold Threshold
	// EventQueue, when set, turns every recorded event into the outbox
	// messages that announce it (fleet sync), queued in the transaction
	// that stores the event.
	EventQueue store.EventQueue
	// Now is the clock (tests).
	Now func() time.Time
	// Calibrations add to (and override) the built-in Calibrations, by
	// embedder model name: the thresholds of a custom embedder declared
	// in the configuration.
	Calibrations map[string]Calibration
}

// Service is safe for concurrent use.
type Service struct {
	store    *store.DB
	pipeline *face.Pipeline
	index    *index.Index
	calib    Calibration
	embedder string // the pipeline's embedder ID
	cfg      Config
	logger   *slog.Logger

	// writeMu serialises writes that must reach the store and the index
	// in the same order.
	writeMu sync.Mutex

	// threshold, once set (SetThreshold), replaces cfg.Threshold.
	threshold atomic.Pointer[Threshold]

	// reembedMu serialises Reembed runs; reembedding reports one.
	reembedMu   sync.Mutex
	reembedding atomic.Bool
}

// New opens the service: it makes sure the default gallery exists and
// builds the index from every stored face of the pipeline's embedder.
func New(ctx context.Context, st *store.DB, p *face.Pipeline, cfg Config, logger *slog.Logger) (*Service, error) {
	if cfg.DefaultGallery == "" {
		cfg.DefaultGallery = "default"
	}
	if cfg.Threshold == (Threshold{}) {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	embedder := p.EmbedderID()
	if embedder == "" {
		return nil, errors.New("service: the pipeline has no embedder")
	}
	name, _, _ := strings.Cut(embedder, "@")
	calib, ok := LookupCalibration(name, cfg.Calibrations)
	if !ok {
		return nil, fmt.Errorf("service: embedder %s has no calibration (run faced eval verify and add it)", name)
	}
	idx, err := index.New(index.Options{Dim: p.EmbedderDim()})
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	s := &Service{store: st, pipeline: p, index: idx, calib: calib, embedder: embedder, cfg: cfg, logger: logger}
	if _, err := st.CreateGallery(ctx, store.Gallery{Name: cfg.DefaultGallery}); err != nil && !errors.Is(err, store.ErrDuplicate) {
		return nil, fmt.Errorf("service: default gallery: %w", err)
	}
	if err := s.rebuildIndex(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// rebuildIndex bulk-loads every face of this embedder into the index.
// Faces of another embedder stay stored but unsearchable until re-enrolled.
func (s *Service) rebuildIndex(ctx context.Context) error {
	start := time.Now()
	var n, skipped int
	stalePersons := map[string]bool{}
	var walkErr error
	loadErr := s.index.Load(func(yield func(index.Entry) bool) {
		walkErr = s.store.ForEachEmbedding(ctx, func(f store.Face) error {
			if f.EmbedderID != s.embedder {
				skipped++
				stalePersons[f.PersonID] = true
				return nil
			}
			if !yield(index.Entry{ID: f.ID, Vec: f.Embedding, Galleries: f.Galleries}) {
				return errStopWalk
			}
			n++
			return nil
		})
	})
	if err := errors.Join(loadErr, ignore(walkErr, errStopWalk)); err != nil {
		return fmt.Errorf("service: rebuild index: %w", err)
	}
	s.logger.Info("index built", "faces", n, "other_embedder", skipped, "took", time.Since(start))
	if skipped > 0 {
		// Counts only: person ids are listed by GET /v1/reembed.
		s.logger.Warn("faces of another embedder are not searchable: their persons need re-enrolment, or re-embedding of kept crops (GET /v1/reembed)",
			"embedder", s.embedder, "faces", skipped, "persons", len(stalePersons), "keep_images", s.cfg.KeepImages)
	}
	return nil
}

// errStopWalk ends a store walk early because the index refused an entry
// (Load then reports why).
var errStopWalk = errors.New("stop")

func ignore(err, target error) error {
	if errors.Is(err, target) {
		return nil
	}
	return err
}

// EmbedderID names the embedding space of this service.
func (s *Service) EmbedderID() string { return s.embedder }

// Pipeline is the vision pipeline the service runs.
func (s *Service) Pipeline() *face.Pipeline { return s.pipeline }

// IndexSize is the number of searchable faces.
func (s *Service) IndexSize() int { return s.index.Len() }

// GallerySize is the number of searchable faces in a gallery.
func (s *Service) GallerySize(name string) int { return s.index.GallerySize(name) }

// GalleryCount is a gallery and its number of searchable faces.
type GalleryCount struct {
	Name  string
	Faces int
}

// GalleryCounts lists up to limit galleries (by name) with their searchable
// face counts, for metrics; more reports that galleries were left out. The
// names come from the store, so empty galleries are listed with 0.
func (s *Service) GalleryCounts(ctx context.Context, limit int) (counts []GalleryCount, more bool, err error) {
	o := store.ListOptions{Limit: store.MaxLimit}
	for {
		page, err := s.store.ListGalleries(ctx, o)
		if err != nil {
			return nil, false, err
		}
		for _, g := range page.Items {
			if len(counts) >= limit {
				return counts, true, nil
			}
			counts = append(counts, GalleryCount{Name: g.Name, Faces: s.index.GallerySize(g.Name)})
		}
		if page.Next == "" {
			return counts, false, nil
		}
		o.Cursor = page.Next
	}
}

// OutboxStats describes the fleet outbox queue.
func (s *Service) OutboxStats(ctx context.Context) (store.OutboxStats, error) {
	return s.store.OutboxStats(ctx)
}

// Confidence maps a cosine to the 0–1 confidence scale.
func (s *Service) Confidence(cos float32) float32 { return s.calib.Confidence(cos) }

// Calibration is the running embedder's: its preset cosines and the map
// between similarity and confidence.
func (s *Service) Calibration() Calibration { return s.calib }

// SimilarityThreshold reads a threshold given on the similarity (cosine)
// scale, a number from -1 to 1, as the confidence threshold that selects
// the same matches.
func (s *Service) SimilarityThreshold(v string) (Threshold, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 32)
	if err != nil || math.IsNaN(f) || f < -1 || f > 1 {
		return Threshold{}, fmt.Errorf("%w: similarity_threshold %q: want a cosine from -1 to 1", ErrInvalid, v)
	}
	return Threshold{Value: s.calib.Confidence(float32(f))}, nil
}

// Threshold parses a request's threshold with the service default.
func (s *Service) Threshold(v string) (Threshold, error) {
	return ParseThreshold(v, s.CurrentThreshold())
}
