package store

import (
	"errors"
	"testing"
)

func TestSyncRevisions(t *testing.T) {
	db, path := openTest(t, Options{})
	var err error
	if rev, err := db.SyncRevision(ctx, "staff"); err != nil || rev != 0 {
		t.Fatalf("SyncRevision of an unsynced gallery = %d, %v; want 0", rev, err)
	}
	ack := OutboxMessage{Topic: "faced/d1/acks", Payload: []byte(`{"revision":7}`)}
	if err := db.SetSyncRevision(ctx, "staff", 7, ack); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSyncRevision(ctx, "visitors", 2); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSyncRevision(ctx, "bad name!", 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetSyncRevision with a bad gallery name: %v, want ErrInvalid", err)
	}
	// The acknowledgement was queued with the revision.
	if msgs, _ := db.PeekOutbox(ctx, 0); len(msgs) != 1 || msgs[0].Topic != ack.Topic {
		t.Errorf("outbox = %+v, want the acknowledgement", msgs)
	}
	db.Close()
	if db, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	revs, err := db.SyncRevisions(ctx)
	if err != nil || len(revs) != 2 || revs["staff"] != 7 || revs["visitors"] != 2 {
		t.Fatalf("SyncRevisions after reopen = %v, %v", revs, err)
	}
	if err := db.SetSyncRevision(ctx, "visitors", 0); err != nil {
		t.Fatal(err)
	}
	if revs, _ := db.SyncRevisions(ctx); len(revs) != 1 {
		t.Errorf("revision 0 should forget the gallery: %v", revs)
	}
}
