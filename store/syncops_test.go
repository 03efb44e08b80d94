package store

import (
	"errors"
	"slices"
	"testing"
)

func upsert(p Person, faces ...NewFace) func(*SyncTx) error {
	return func(s *SyncTx) error { return s.UpsertPerson(p, faces) }
}

func TestApplySyncRevisions(t *testing.T) {
	db, _ := openTest(t, Options{})
	ack := OutboxMessage{Topic: "acks", Payload: []byte("1")}
	ch, err := db.ApplySync(ctx, "staff", 1, false, upsert(Person{ID: "ann", Name: "Ann"}, face(1)), ack)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Added) != 1 || !slices.Equal(ch.Added[0].Galleries, []string{"staff"}) {
		t.Fatalf("change = %+v, want one face added to staff", ch)
	}
	if _, err := db.GetGallery(ctx, "staff"); err != nil {
		t.Errorf("upsert should create the gallery: %v", err)
	}
	if msgs, _ := db.PeekOutbox(ctx, 0); len(msgs) != 1 {
		t.Errorf("acknowledgement not queued: %+v", msgs)
	}
	// A redelivery of revision 1 and a jump to 3 change nothing.
	if _, err := db.ApplySync(ctx, "staff", 1, false, upsert(Person{ID: "bob"}, face(2))); !errors.Is(err, ErrStaleRevision) {
		t.Errorf("revision 1 again: %v, want ErrStaleRevision", err)
	}
	if _, err := db.ApplySync(ctx, "staff", 3, false, upsert(Person{ID: "bob"}, face(2))); !errors.Is(err, ErrRevisionGap) {
		t.Errorf("revision 3 after 1: %v, want ErrRevisionGap", err)
	}
	if _, err := db.GetPerson(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused operations must not write: bob = %v", err)
	}
	// A failing operation writes nothing, revision included.
	boom := errors.New("boom")
	if _, err := db.ApplySync(ctx, "staff", 2, false, func(*SyncTx) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("failing fn: %v", err)
	}
	if rev, _ := db.SyncRevision(ctx, "staff"); rev != 1 {
		t.Errorf("revision after a failed operation = %d, want 1", rev)
	}
	// A snapshot may jump ahead, but not back.
	if _, err := db.ApplySync(ctx, "staff", 10, true, func(s *SyncTx) error { return s.RetainPersons(nil) }); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplySync(ctx, "staff", 9, true, func(s *SyncTx) error { return nil }); !errors.Is(err, ErrStaleRevision) {
		t.Errorf("older snapshot: %v, want ErrStaleRevision", err)
	}
	if _, err := db.GetPerson(ctx, "ann"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an empty snapshot should remove ann: %v", err)
	}
}

func TestSyncUpsertReplacesGalleryFaces(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "local")
	// ann was enrolled locally in another gallery, then synced to staff.
	_, local, err := db.CreatePerson(ctx, Person{ID: "ann", ExternalID: "e-ann"}, []NewFace{face(1, "local")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplySync(ctx, "staff", 1, false, upsert(Person{ID: "ann", Name: "Ann", ExternalID: "e-ann"}, face(2), face(3))); err != nil {
		t.Fatal(err)
	}
	ch, err := db.ApplySync(ctx, "staff", 2, false, upsert(Person{ID: "ann", Name: "Ann B"}, face(4)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Removed) != 2 || len(ch.Added) != 1 {
		t.Errorf("second upsert change = %+v, want the 2 staff faces removed and 1 added", ch)
	}
	p, err := db.GetPerson(ctx, "ann")
	if err != nil || p.Name != "Ann B" || p.ExternalID != "" {
		t.Errorf("person after upsert = %+v, %v", p, err)
	}
	if _, err := db.GetPersonByExternalID(ctx, "e-ann"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the dropped external id still resolves: %v", err)
	}
	if _, err := db.GetFace(ctx, local[0].ID); err != nil {
		t.Errorf("the local gallery's face must survive: %v", err)
	}
	// Removing ann from staff keeps her (she has a local face).
	if _, err := db.ApplySync(ctx, "staff", 3, false, func(s *SyncTx) error { return s.RemovePerson("ann") }); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.GalleryFaceCount(ctx, "staff"); n != 0 {
		t.Errorf("staff has %d faces after removing ann", n)
	}
	if _, err := db.GetPerson(ctx, "ann"); err != nil {
		t.Errorf("ann has a local face and must stay: %v", err)
	}
	// Deleting the gallery twice is fine; a person only there goes with it.
	if _, err := db.ApplySync(ctx, "staff", 4, false, upsert(Person{ID: "bob"}, face(5))); err != nil {
		t.Fatal(err)
	}
	for rev := uint64(5); rev <= 6; rev++ {
		if _, err := db.ApplySync(ctx, "staff", rev, false, func(s *SyncTx) error { return s.DeleteGallery() }); err != nil {
			t.Fatalf("delete gallery at %d: %v", rev, err)
		}
	}
	if _, err := db.GetPerson(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob only had staff faces: %v", err)
	}
	if _, err := db.GetGallery(ctx, "staff"); !errors.Is(err, ErrNotFound) {
		t.Errorf("staff still exists: %v", err)
	}
	// An external id owned by another person refuses the whole operation.
	if _, err := db.ApplySync(ctx, "staff", 7, false, upsert(Person{ID: "eve", ExternalID: "e-ann2"}, face(6))); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplySync(ctx, "staff", 8, false, upsert(Person{ID: "mallory", ExternalID: "e-ann2"}, face(7))); !errors.Is(err, ErrDuplicate) {
		t.Errorf("stolen external id: %v, want ErrDuplicate", err)
	}
}
