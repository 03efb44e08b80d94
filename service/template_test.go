package service_test

import (
	"context"
	"math"
	"testing"

	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// TestPersonTemplate: a person enrolled from three photos is one match
// (identify ranks persons, not faces), scored against the normalised mean
// of their faces, in identify and in verify alike; the face named is
// their closest.
func TestPersonTemplate(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	enrollPeople(t, f.svc)
	_, faces, err := f.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: "angelina3"},
		Photos: [][]byte{photo(t, "img4.jpg"), photo(t, "img5.jpg"), photo(t, "img6.jpg")}})
	if err != nil || len(faces) != 3 {
		t.Fatalf("enrol: %d faces, %v", len(faces), err)
	}
	res := identify(t, f.svc, service.IdentifyRequest{Photo: photo(t, "img2.jpg"), N: 5, Threshold: service.Threshold{None: true}})
	if len(res) != 1 {
		t.Fatalf("%d faces in the probe", len(res))
	}
	probe := res[0].Face.Embedding
	seen := map[string]bool{}
	var got service.Match
	for _, m := range res[0].Matches {
		if seen[m.Person.ID] {
			t.Fatalf("person %s listed twice: %+v", m.Person.ID, res[0].Matches)
		}
		seen[m.Person.ID] = true
		if m.Person.ID == "angelina3" {
			got = m
		}
	}
	if got.Person.ID == "" {
		t.Fatalf("angelina3 not among %+v", res[0].Matches)
	}
	// The template, computed here from the stored vectors.
	mean := make([]float64, len(probe))
	best, bestFace := -2.0, uint64(0)
	for _, sf := range faces {
		stored, err := f.db.GetFace(ctx, sf.ID)
		if err != nil {
			t.Fatal(err)
		}
		var c float64
		for i, x := range stored.Embedding {
			mean[i] += float64(x)
			c += float64(x) * float64(probe[i])
		}
		if c > best {
			best, bestFace = c, sf.ID
		}
	}
	var norm, dot float64
	for i, x := range mean {
		norm += x * x
		dot += x * float64(probe[i])
	}
	want := dot / math.Sqrt(norm)
	if math.Abs(float64(got.Similarity)-want) > 1e-4 {
		t.Errorf("identify similarity %.5f, want the template's %.5f (best single face %.5f)", got.Similarity, want, best)
	}
	if got.FaceID != bestFace {
		t.Errorf("identify names face %d, want the closest face %d", got.FaceID, bestFace)
	}
	vr, err := f.svc.Verify(ctx, service.VerifyRequest{PhotoA: photo(t, "img2.jpg"), PersonID: "angelina3", Threshold: service.DefaultThreshold})
	if err != nil {
		t.Fatal(err)
	}
	if p := vr.Pairs[0]; math.Abs(float64(p.Similarity)-want) > 1e-4 || p.FaceID != bestFace || !vr.Verified {
		t.Errorf("verify: similarity %.5f face %d verified %v, want %.5f, face %d, verified", p.Similarity, p.FaceID, vr.Verified, want, bestFace)
	}
}
