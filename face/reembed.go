package face

import (
	"context"
	"fmt"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/models"
)

// EmbedAligned embeds an aligned face crop kept from an earlier enrolment
// (Options.KeepAligned: a JPEG of the 112x112 ArcFace-aligned face), without
// detecting or aligning again. It is how stored faces move to a new
// embedder when the crops were kept. The crop went through JPEG once, so
// the vector is close to, not bit-identical with, the one the original
// photo gives.
//
// An embedder framed otherwise (models.Spec.AlignZoom, AlignShiftY, or an
// input side other than 112) gets the kept crop warped by the similarity
// between the two templates. What its framing shows beyond the kept crop
// (with a zoom below 1, or a shift, part of the forehead or chin) is black
// here, and a crop enlarged to a bigger side is interpolated: such an
// embedding is slightly worse than one made from the photo.
func (p *Pipeline) EmbedAligned(ctx context.Context, crop []byte) ([]float32, error) {
	if len(p.embedders) == 0 {
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
	crops, err := p.embedderCrops(img.Mat, func(g models.Geometry) (gocv.Mat, error) { return reframe(img.Mat, g) })
	if err != nil {
		return nil, err
	}
	defer closeCrops(crops)
	return p.embed(ctx, crops)
}

// reframe warps an ArcFace crop into geometry g's framing: the similarity
// taking the ArcFace template onto g's is exact, as g's template is the
// ArcFace one scaled and shifted.
func reframe(arcface gocv.Mat, g models.Geometry) (gocv.Mat, error) {
	m, ok := fitSimilarity(templatePoints(models.ArcFaceGeometry), templatePoints(g))
	if !ok {
		return gocv.Mat{}, fmt.Errorf("face: cannot map the ArcFace template to geometry %+v", g)
	}
	return warpAligned(arcface, m, g.Side)
}
