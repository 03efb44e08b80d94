package models

import (
	"fmt"
	"slices"

	"github.com/facedhq/faced/accel"
)

// Embedder decodes a face embedding network: an aligned face (framed as
// Spec.Geometry says) in, a unit-length vector out. Vectors of different
// embedders live in different spaces, so every vector carries its
// embedder's ID.
type Embedder struct {
	spec Spec
}

// NewEmbedder returns the decoder for an embedding model of the catalogue.
func NewEmbedder(spec Spec) (*Embedder, error) {
	if spec.Task != TaskEmbed {
		return nil, fmt.Errorf("models: %s is a %s model, not an embedder", spec.Name, spec.Task)
	}
	if spec.Dim <= 0 {
		return nil, fmt.Errorf("models: embedder %s has no dim in the manifest", spec.Name)
	}
	return &Embedder{spec: spec}, nil
}

// Spec is the model this embedder decodes.
func (e *Embedder) Spec() Spec { return e.spec }

// ID names the embedding space: the model name and the first 12 hex digits
// of its file's sha256, so replacing the weights under the same name still
// yields a new, incompatible ID.
func (e *Embedder) ID() string { return EmbedderID(e.spec) }

// EmbedderID is the embedding-space ID of an embedding model.
func EmbedderID(spec Spec) string { return spec.Name + "@" + spec.SHA256[:12] }

// Decode returns the L2-normalised embedding of the first batch row.
func (e *Embedder) Decode(outs []accel.Tensor) ([]float32, error) {
	if len(outs) == 0 || len(outs[0].Shape) == 0 {
		return nil, fmt.Errorf("models: %s: no output", e.spec.Name)
	}
	t := outs[0]
	if e.spec.Output != "" {
		i := slices.IndexFunc(outs, func(t accel.Tensor) bool { return t.Name == e.spec.Output })
		if i < 0 {
			names := make([]string, len(outs))
			for j, o := range outs {
				names[j] = o.Name
			}
			return nil, fmt.Errorf("models: %s: no output named %q (the model has %q)", e.spec.Name, e.spec.Output, names)
		}
		t = outs[i]
	}
	if len(t.Shape) == 0 {
		return nil, fmt.Errorf("models: %s: output %q has no shape", e.spec.Name, t.Name)
	}
	dim := int(t.Shape[len(t.Shape)-1])
	if dim != e.spec.Dim || len(t.Data) < dim {
		return nil, fmt.Errorf("models: %s: output shape %v", e.spec.Name, t.Shape)
	}
	v := append([]float32(nil), t.Data[:dim]...)
	if !finite(v) {
		return nil, fmt.Errorf("models: %s: non-finite embedding", e.spec.Name)
	}
	return L2Normalize(v), nil
}

// Cosine is the cosine similarity of two unit vectors (their dot product).
func Cosine(a, b []float32) float32 {
	var s float32
	for i := range min(len(a), len(b)) {
		s += a[i] * b[i]
	}
	return s
}
