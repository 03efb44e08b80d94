package face

import (
	"context"
	"fmt"

	"github.com/facedhq/faced/models"
)

// EmbedAligned embeds an aligned face crop kept from an earlier enrolment
// (Options.KeepAligned: a JPEG of the 112x112 ArcFace-aligned face), without
// detecting or aligning again. It is how stored faces move to a new
// embedder when the crops were kept. The crop went through JPEG once, so
// the vector is close to, not bit-identical with, the one the original
// photo gives.
func (p *Pipeline) EmbedAligned(ctx context.Context, crop []byte) ([]float32, error) {
	if p.embedder == nil {
		return nil, fmt.Errorf("%w: embedding", ErrStageDisabled)
	}
	img, err := Decode(crop, p.cfg.Limits)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	if img.Mat.Cols() != models.AlignedSize || img.Mat.Rows() != models.AlignedSize {
		return nil, fmt.Errorf("face: aligned crop is %dx%d, want %dx%d",
			img.Mat.Cols(), img.Mat.Rows(), models.AlignedSize, models.AlignedSize)
	}
	return p.embed(ctx, img.Mat)
}
