package service

import (
	"context"
	"fmt"
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
