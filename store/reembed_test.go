package store

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// ReplaceEmbedding swaps the vector and its embedder id and nothing else;
// the walk that rebuilds the index sees the new one.
func TestReplaceEmbedding(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g")
	p, _, _ := db.CreatePerson(ctx, Person{}, nil)
	nf := face(1, "g")
	nf.Image = []byte("\xff\xd8\xff crop")
	faces, err := db.AddFaces(ctx, p.ID, []NewFace{nf})
	if err != nil {
		t.Fatal(err)
	}
	old := faces[0]
	newVec := vec(192, 9)
	if err := db.ReplaceEmbedding(ctx, old.ID, "mine@0123456789ab", newVec); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetFace(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.EmbedderID != "mine@0123456789ab" || !slices.Equal(got.Embedding, newVec) {
		t.Errorf("after replace: embedder %q, %d values", got.EmbedderID, len(got.Embedding))
	}
	got.EmbedderID, got.Embedding = old.EmbedderID, old.Embedding
	if !reflect.DeepEqual(got, old) {
		t.Errorf("other fields changed:\n got %+v\nwant %+v", got, old)
	}
	if img, err := db.FaceImage(ctx, old.ID); err != nil || !bytes.Equal(img, nf.Image) {
		t.Errorf("image after replace: %q, %v", img, err)
	}
	var walked []string
	if err := db.ForEachEmbedding(ctx, func(f Face) error {
		walked = append(walked, f.EmbedderID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(walked, []string{"mine@0123456789ab"}) {
		t.Errorf("walk sees %v", walked)
	}
	mustCheck(t, db)

	for name, tc := range map[string]struct {
		id       uint64
		embedder string
		vec      []float32
		want     error
	}{
		"missing face": {old.ID + 1, "x@1", newVec, ErrNotFound},
		"no embedder":  {old.ID, "", newVec, ErrInvalid},
		"empty vector": {old.ID, "x@1", nil, ErrInvalid},
		"NaN":          {old.ID, "x@1", []float32{float32(math.NaN())}, ErrInvalid},
		// Three fused embedders of the longest declarable names, with flip.
		"longest fused id": {old.ID, strings.Repeat("a", 48) + "+" + strings.Repeat("b", 48) + "+" + strings.Repeat("c", 48) + "+flip@" + strings.Repeat("0", 18), newVec, nil},
		"id too long":      {old.ID, strings.Repeat("a", 190) + "@12", newVec, ErrInvalid},
	} {
		if err := db.ReplaceEmbedding(ctx, tc.id, tc.embedder, tc.vec); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
