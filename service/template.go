package service

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/facedhq/faced/index"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/store"
)

// Persons with several faces are compared through a template: the
// normalised mean of their face embeddings. Measured on LFW (people with
// four or more photos; `faced eval verify`, README "Choosing the models"),
// enrolling three photos instead of one raises the share of probes found
// at the medium preset from 93.6 % to 98.4 % with the template, at a
// false-accept rate of 1.2e-4, the preset's nominal 1e-4. Taking the best
// of the three faces finds about as many (98.6 %) but accepts strangers
// twice as often (2.3e-4): every extra face is another chance for an
// impostor to score high. The template keeps the presets' meaning however
// many faces a person has.

// candidateFactor: identify searches this many faces per person asked
// for, so that persons with several faces still fill n after grouping.
const candidateFactor = 4

// minCandidates is the least number of faces identify looks at.
const minCandidates = 16

// rankPersons finds the persons whose templates are closest to a query
// embedding, at most req.N, best first, whatever the threshold (the
// caller keeps those it accepts: see accepted). The best candidate of an
// unmatched face is kept as evidence in its event.
func (s *Service) rankPersons(ctx context.Context, q []float32, req IdentifyRequest) ([]Match, error) {
	k := max(req.N*candidateFactor, minCandidates)
	hits, err := s.index.Search(ctx, q, k, req.Galleries, index.Auto)
	if err != nil {
		return nil, fmt.Errorf("service: identify: %w", err)
	}
	if req.Faces {
		var out []Match
		for _, h := range hits[:min(len(hits), req.N)] {
			sim := ClampSimilarity(h.Score)
			if m, ok := s.matchOf(ctx, h, s.calib.Confidence(sim)); ok {
				m.Similarity = sim
				out = append(out, m)
			}
		}
		return out, nil
	}
	seen := make(map[string]bool, len(hits))
	var out []Match
	for _, h := range hits { // best face first: the first hit of a person is their closest face
		m, ok := s.matchOf(ctx, h, 0)
		if !ok || seen[m.Person.ID] {
			continue
		}
		seen[m.Person.ID] = true
		m.Similarity = ClampSimilarity(h.Score)
		faces, err := s.personFaces(ctx, m.Person.ID)
		if err != nil {
			return nil, fmt.Errorf("service: identify: faces of a candidate: %w", err)
		}
		if len(faces) > 1 {
			m.Similarity = templateSimilarity(q, faces)
		}
		m.Confidence = s.calib.Confidence(m.Similarity)
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b Match) int { return cmp.Compare(b.Similarity, a.Similarity) })
	return out[:min(len(out), req.N)], nil
}

// matchPersons finds the persons whose templates match a query embedding
// best, at most req.N, best first, each above the threshold.
func (s *Service) matchPersons(ctx context.Context, q []float32, req IdentifyRequest) ([]Match, error) {
	candidates, err := s.rankPersons(ctx, q, req)
	if err != nil {
		return nil, err
	}
	return accepted(candidates, req.Threshold), nil
}

// accepted keeps the candidates (best first) that pass the threshold.
func accepted(candidates []Match, t Threshold) []Match {
	var out []Match
	for _, m := range candidates {
		if t.Accepts(m.Confidence) {
			out = append(out, m)
		}
	}
	return out
}

// personFaces returns a person's faces of the running embedder, with
// their vectors.
func (s *Service) personFaces(ctx context.Context, personID string) ([]store.Face, error) {
	page, err := s.store.ListFaces(ctx, store.ListOptions{PersonID: personID, Limit: 1000})
	if err != nil {
		return nil, err
	}
	var out []store.Face
	// Lists leave vectors out; a person has few faces, so fetch each.
	for _, lf := range page.Items {
		if lf.EmbedderID != s.embedder {
			continue
		}
		f, err := s.store.GetFace(ctx, lf.ID)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, f)
	}
	return out, nil
}

// templateSimilarity is the cosine between a query and the normalised
// mean of a person's face embeddings, clamped to [-1, 1].
func templateSimilarity(q []float32, faces []store.Face) float32 {
	if len(faces) == 1 {
		return ClampSimilarity(models.Cosine(q, faces[0].Embedding))
	}
	mean := make([]float32, len(q))
	for _, f := range faces {
		for i, x := range f.Embedding[:min(len(f.Embedding), len(mean))] {
			mean[i] += x
		}
	}
	return ClampSimilarity(models.Cosine(q, models.L2Normalize(mean)))
}
