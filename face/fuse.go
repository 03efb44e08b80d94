package face

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/models"
)

// MaxFused is how many embedders one pipeline may fuse (Config.Embedder
// and up to two in Config.FuseEmbedder). Each costs an embedder run per
// face; beyond three the measured gain is gone.
const MaxFused = 3

// embedStage is one embedder of the pipeline, in fusion order, with the
// framing of the aligned crop it sees.
type embedStage struct {
	net      *net
	embedder *models.Embedder
	geometry models.Geometry
}

func newEmbedStage(n *net) (embedStage, error) {
	e, err := models.NewEmbedder(n.spec)
	if err != nil {
		return embedStage{}, err
	}
	return embedStage{net: n, embedder: e, geometry: n.spec.Geometry()}, nil
}

// SplitFused splits an embedder setting ("a", "a+b" or "a+b+c") into its
// names, refusing an empty name, more than MaxFused names and a name given
// twice: the configuration, the CLI and New all read it this way. Its
// errors quote the setting and leave the prefix to the caller.
func SplitFused(s string) ([]string, error) {
	names := strings.Split(s, "+")
	if len(names) > MaxFused {
		return nil, fmt.Errorf("%q fuses %d embedders: at most %d can be fused", s, len(names), MaxFused)
	}
	for i, n := range names {
		if n == "" {
			return nil, fmt.Errorf("%q: want one embedder, or up to %d joined by '+'", s, MaxFused)
		}
		if slices.Contains(names[:i], n) {
			return nil, fmt.Errorf("%q fuses embedder %s with itself: name each embedder once", s, n)
		}
	}
	return names, nil
}

// loadFused loads the embedders Config.FuseEmbedder names ("b" or "b+c")
// after the first. Each must be an embedder other than Config.Embedder,
// which must be set, and other than each other.
func (p *Pipeline) loadFused(ctx context.Context, m *models.Manifest, fuse string) error {
	if len(p.embedders) == 0 {
		return fmt.Errorf("face: fusing embedder %s needs an embedder to fuse it with", fuse)
	}
	names, err := SplitFused(p.embedders[0].net.spec.Name + "+" + fuse)
	if err != nil {
		return fmt.Errorf("face: %w", err)
	}
	for _, name := range names[1:] {
		spec, err := m.Model(name)
		if err != nil {
			return err
		}
		if spec.Task != models.TaskEmbed {
			return fmt.Errorf("face: model %s is a %s model, configured as a fused embedder", name, spec.Task)
		}
		n, err := p.load(ctx, spec)
		if err != nil {
			return err
		}
		st, err := newEmbedStage(n)
		if err != nil {
			n.pool.Close()
			return err
		}
		p.embedders = append(p.embedders, st)
		p.manifests = append(p.manifests, spec)
	}
	if d := p.EmbedderDim(); d > models.MaxDim {
		return fmt.Errorf("face: embedders %s make %d values a face together, more than the %d a face may have", strings.Join(names, "+"), d, models.MaxDim)
	}
	return nil
}

// embed runs every embedder, one after another, on the crop of its
// geometry, and joins their unit vectors each scaled by 1/sqrt(n): the
// result is unit length, and its cosine with another fused embedding is
// the mean of the n embedders' cosines.
func (p *Pipeline) embed(ctx context.Context, crops map[models.Geometry]gocv.Mat) ([]float32, error) {
	if len(p.embedders) == 1 {
		st := p.embedders[0]
		return p.embedOne(ctx, st.net, st.embedder, crops[st.geometry])
	}
	w := float32(1 / math.Sqrt(float64(len(p.embedders))))
	out := make([]float32, 0, p.EmbedderDim())
	for _, st := range p.embedders {
		v, err := p.embedOne(ctx, st.net, st.embedder, crops[st.geometry])
		if err != nil {
			return nil, err
		}
		for _, x := range v {
			out = append(out, x*w)
		}
	}
	return out, nil
}

// distinctGeometries lists the distinct framings the embedders need: one
// warp each per face.
func (p *Pipeline) distinctGeometries() []models.Geometry {
	var out []models.Geometry
	for _, st := range p.embedders {
		if !slices.Contains(out, st.geometry) {
			out = append(out, st.geometry)
		}
	}
	return out
}
