package service_test

import (
	"context"
	"slices"
	"testing"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Faces of another embedder: ReembedStatus lists their persons; Reembed
// moves those with a kept crop to the running embedder (searchable at
// once), counts a crop that does not embed as failed and leaves faces
// without a crop for re-enrolment.
func TestReembed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	crop := func(name string) []byte {
		faces, err := vision.Pipeline.Detect(ctx, photo(t, name), face.Options{KeepAligned: true, Selector: face.SelectBiggest})
		if err != nil || len(faces) == 0 {
			t.Fatalf("%s: %d faces, %v", name, len(faces), err)
		}
		return faces[0].Aligned
	}
	old := func(seed float32, image []byte) store.NewFace {
		vec := make([]float32, 192)
		vec[int(seed)%192] = 1
		return store.NewFace{Face: store.Face{Galleries: []string{"default"}, Embedding: vec, EmbedderID: "mobilefacenet-192@d8ba40c0127f"}, Image: image}
	}
	for _, p := range []struct {
		id    string
		faces []store.NewFace
	}{
		{"kept", []store.NewFace{old(1, crop("img13.jpg"))}},
		{"bare", []store.NewFace{old(2, nil)}},
		{"broken", []store.NewFace{old(3, []byte("\xff\xd8\xff not a jpeg"))}},
	} {
		if _, _, err := f.db.CreatePerson(ctx, store.Person{ID: p.id}, p.faces); err != nil {
			t.Fatal(err)
		}
	}
	// A person enrolled with the running embedder is not reported.
	if _, _, err := f.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: "now"}, Photos: [][]byte{photo(t, "img8.jpg")}}); err != nil {
		t.Fatal(err)
	}
	top := func(name string) string {
		res, err := f.svc.Identify(ctx, service.IdentifyRequest{Photo: photo(t, name), Threshold: service.DefaultThreshold})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) == 0 || len(res[0].Matches) == 0 {
			return ""
		}
		return res[0].Matches[0].Person.ID
	}

	st, err := f.svc.ReembedStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ps []service.StalePerson) (out []string) {
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	if st.Embedder != f.svc.EmbedderID() || st.Faces != 4 || st.Current != 1 || st.Stale != 3 || st.Reembeddable != 2 ||
		!slices.Equal(ids(st.Persons), []string{"bare", "broken", "kept"}) || st.Persons[2].Reembeddable != 1 ||
		!slices.Equal(st.Persons[0].Embedders, []string{"mobilefacenet-192@d8ba40c0127f"}) {
		t.Fatalf("status: %+v", st)
	}
	if got := top("img14.jpg"); got != "" {
		t.Fatalf("a face of another embedder was searched: %q", got)
	}

	r, err := f.svc.Reembed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reembedded != 1 || r.Failed != 1 || r.Stale != 2 || r.Current != 2 || !slices.Equal(ids(r.Persons), []string{"bare", "broken"}) {
		t.Fatalf("after Reembed: %+v", r)
	}
	if got := top("img14.jpg"); got != "kept" {
		t.Fatalf("re-embedded face: identify img14 = %q, want kept", got)
	}
	if got := top("img9.jpg"); got != "now" {
		t.Fatalf("identify img9 = %q, want now", got)
	}
	// Nothing left to do: a second run changes nothing.
	if r, err = f.svc.Reembed(ctx); err != nil || r.Reembedded != 0 || r.Failed != 1 || r.Stale != 2 {
		t.Fatalf("second run: %+v, %v", r, err)
	}
	// The index is what a restart rebuilds from the store.
	f.db.Close()
	h := newFixture(t, f.path)
	if got := h.svc.IndexSize(); got != 2 {
		t.Fatalf("rebuilt index holds %d faces, want 2", got)
	}
}
