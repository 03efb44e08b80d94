package face

import (
	"context"
	"fmt"
	"math"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/models"
)

// fusedEmbedder is Config.FuseEmbedder: a second embedder whose vector is
// joined to the first's.
type fusedEmbedder struct {
	net      *net
	embedder *models.Embedder
}

// loadFused loads the second embedder of a fused pair. It must be an
// embedder other than Config.Embedder, which must be set.
func (p *Pipeline) loadFused(ctx context.Context, m *models.Manifest, name string) (*fusedEmbedder, error) {
	if p.embedder == nil {
		return nil, fmt.Errorf("face: fusing embedder %s needs an embedder to fuse it with", name)
	}
	if name == p.embedder.Spec().Name {
		return nil, fmt.Errorf("face: embedder %s cannot be fused with itself", name)
	}
	spec, err := m.Model(name)
	if err != nil {
		return nil, err
	}
	if spec.Task != models.TaskEmbed {
		return nil, fmt.Errorf("face: model %s is a %s model, configured as the fused embedder", name, spec.Task)
	}
	n, err := p.load(ctx, spec)
	if err != nil {
		return nil, err
	}
	e, err := models.NewEmbedder(spec)
	if err != nil {
		n.pool.Close()
		return nil, err
	}
	return &fusedEmbedder{net: n, embedder: e}, nil
}

// embed runs the embedder on an aligned face, and the fused embedder with
// Config.FuseEmbedder, joining their unit vectors each scaled by 1/sqrt(2):
// the result is unit length, and its cosine with another fused embedding
// is the mean of the two embedders' cosines.
func (p *Pipeline) embed(ctx context.Context, aligned gocv.Mat) ([]float32, error) {
	v, err := p.embedOne(ctx, p.nets[models.TaskEmbed], p.embedder, aligned)
	if err != nil || p.fused == nil {
		return v, err
	}
	w, err := p.embedOne(ctx, p.fused.net, p.fused.embedder, aligned)
	if err != nil {
		return nil, err
	}
	const half = math.Sqrt2 / 2
	out := make([]float32, len(v)+len(w))
	for i, x := range v {
		out[i] = x * half
	}
	for i, x := range w {
		out[len(v)+i] = x * half
	}
	return out, nil
}
