package service_test

import (
	"context"
	"testing"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// embeddingOf embeds a photo's biggest face the way a backend would.
func embeddingOf(t *testing.T, f *fixture, name string) []float32 {
	t.Helper()
	faces, err := f.svc.Detect(context.Background(), photo(t, name), face.Options{Embed: true, Selector: face.SelectBiggest})
	if err != nil || len(faces) != 1 {
		t.Fatalf("embed %s: %d faces, %v", name, len(faces), err)
	}
	return faces[0].Embedding
}

func identifiedAs(t *testing.T, f *fixture, name, gallery string) string {
	t.Helper()
	res, err := f.svc.Identify(context.Background(), service.IdentifyRequest{Photo: photo(t, name), Galleries: []string{gallery}, Threshold: service.DefaultThreshold})
	if err != nil {
		t.Fatalf("identify %s in %s: %v", name, gallery, err)
	}
	if len(res) == 0 || len(res[0].Matches) == 0 {
		return ""
	}
	return res[0].Matches[0].Person.ID
}

func TestApplySync(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	emb := f.svc.EmbedderID()
	var acks []service.SyncResult
	ack := func(r service.SyncResult) []store.OutboxMessage {
		acks = append(acks, r)
		return []store.OutboxMessage{{Topic: "acks", Payload: []byte(r.Status)}}
	}
	upsert := func(rev uint64, id string, faces ...service.SyncFace) service.SyncOp {
		return service.SyncOp{Kind: service.SyncUpsertPerson, Gallery: "staff", Revision: rev,
			Persons: []service.SyncPerson{{Person: store.Person{ID: id, Name: id}, Faces: faces}}}
	}
	apply := func(op service.SyncOp) service.SyncResult {
		t.Helper()
		r, err := f.svc.ApplySync(ctx, op, ack)
		if err != nil {
			t.Fatalf("ApplySync(%d): %v", op.Revision, err)
		}
		return r
	}

	// Revision 1: an embedding of this device's embedder, made from the
	// enrolment photo; the probe photo is then identified as angelina.
	r := apply(upsert(1, "angelina", service.SyncFace{Embedding: embeddingOf(t, f, "img1.jpg"), EmbedderID: emb}))
	if r.Status != service.SyncApplied || r.Revision != 1 || r.Faces != 1 {
		t.Fatalf("revision 1 = %+v", r)
	}
	if got := identifiedAs(t, f, "img2.jpg", "staff"); got != "angelina" {
		t.Errorf("probe identified as %q, want angelina", got)
	}
	// A redelivery is a duplicate; a jump is a gap; neither changes state.
	if r := apply(upsert(1, "other", service.SyncFace{Photo: photo(t, "img13.jpg")})); r.Status != service.SyncDuplicate || r.Revision != 1 {
		t.Errorf("redelivered revision 1 = %+v", r)
	}
	if r := apply(upsert(3, "p13", service.SyncFace{Photo: photo(t, "img13.jpg")})); r.Status != service.SyncGap || r.Revision != 1 {
		t.Errorf("revision 3 at 1 = %+v", r)
	}
	if got := identifiedAs(t, f, "img14.jpg", "staff"); got != "" {
		t.Errorf("a refused operation enrolled %q", got)
	}
	// Another embedder's vector without a photo is refused with a reason,
	// and the revision passes; with a photo it is embedded again.
	foreign := service.SyncFace{Embedding: make([]float32, 128), EmbedderID: "facenet-128@000000000000"}
	foreign.Embedding[0] = 1
	if r := apply(upsert(2, "p13", foreign)); r.Status != service.SyncRejected || r.Revision != 2 || r.Reason == "" {
		t.Errorf("foreign embedding = %+v, want rejected at 2 with a reason", r)
	}
	foreign.Photo = photo(t, "img13.jpg")
	if r := apply(upsert(3, "p13", foreign)); r.Status != service.SyncApplied {
		t.Errorf("foreign embedding with photo = %+v", r)
	}
	if got := identifiedAs(t, f, "img14.jpg", "staff"); got != "p13" {
		t.Errorf("p13's probe identified as %q", got)
	}
	// A snapshot makes the gallery exactly its persons.
	snap := service.SyncOp{Kind: service.SyncSnapshot, Gallery: "staff", Revision: 10, Persons: []service.SyncPerson{
		{Person: store.Person{ID: "p8"}, Faces: []service.SyncFace{{Photo: photo(t, "img8.jpg")}}},
		{Person: store.Person{ID: "nobody"}, Faces: []service.SyncFace{{Embedding: []float32{1}, EmbedderID: "x"}}},
	}}
	if r := apply(snap); r.Status != service.SyncApplied || r.Revision != 10 || len(r.Skipped) != 1 || r.Skipped[0].PersonID != "nobody" {
		t.Errorf("snapshot = %+v, want applied at 10 with nobody skipped", r)
	}
	if got := identifiedAs(t, f, "img14.jpg", "staff"); got != "" {
		t.Errorf("p13 survived the snapshot: %q", got)
	}
	if got := identifiedAs(t, f, "img9.jpg", "staff"); got != "p8" {
		t.Errorf("p8's probe identified as %q", got)
	}
	if revs, _ := f.svc.SyncRevisions(ctx); revs["staff"] != 10 {
		t.Errorf("revisions = %v", revs)
	}
	// Deleting the gallery takes its faces out of search.
	if r := apply(service.SyncOp{Kind: service.SyncDeleteGallery, Gallery: "staff", Revision: 11}); r.Status != service.SyncApplied {
		t.Fatalf("delete gallery = %+v", r)
	}
	if f.svc.IndexSize() != 0 {
		t.Errorf("index still holds %d faces", f.svc.IndexSize())
	}
	// Every applied or rejected operation queued exactly one ack.
	if len(acks) != 5 {
		t.Errorf("%d acks built, want 5 (applied, rejected, applied, snapshot, delete; duplicates and gaps queue none)", len(acks))
	}
	if st, _ := f.db.OutboxStats(ctx); st.Count != len(acks) {
		t.Errorf("outbox holds %d messages, want %d", st.Count, len(acks))
	}
}
