package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func held(gallery string, rev uint64, payload string) HeldOp {
	return HeldOp{Gallery: gallery, Revision: rev, Payload: []byte(payload)}
}

func heldRevs(t *testing.T, db *DB, gallery string, upTo uint64) []uint64 {
	t.Helper()
	ops, err := db.HeldSync(ctx, gallery, upTo)
	if err != nil {
		t.Fatal(err)
	}
	var revs []uint64
	for _, op := range ops {
		if op.Gallery != gallery {
			t.Errorf("held op of %q listed for %q", op.Gallery, gallery)
		}
		revs = append(revs, op.Revision)
	}
	return revs
}

// Held operations are bounded in count and bytes, all galleries together;
// a revision already held keeps its first copy; they survive a reopen.
func TestHoldSyncBoundsAndPersists(t *testing.T) {
	db, path := openTest(t, Options{})
	lim := HoldLimits{MaxCount: 3, MaxBytes: 25}
	for _, op := range []HeldOp{held("staff", 5, "five"), held("staff", 3, "three"), held("visit", 9, "nine")} {
		if ok, err := db.HoldSync(ctx, op, lim); !ok || err != nil {
			t.Fatalf("hold %d: %v, %v", op.Revision, ok, err)
		}
	}
	if ok, err := db.HoldSync(ctx, held("staff", 5, "other"), lim); ok || err != nil {
		t.Errorf("holding revision 5 again = %v, %v; want false, nil", ok, err)
	}
	if _, err := db.HoldSync(ctx, held("staff", 6, "6"), lim); !errors.Is(err, ErrHoldFull) {
		t.Errorf("a fourth operation: %v, want ErrHoldFull (count)", err)
	}
	if _, err := db.HoldSync(ctx, held("staff", 6, "6"), HoldLimits{MaxCount: 10, MaxBytes: 13}); !errors.Is(err, ErrHoldFull) {
		t.Errorf("a 14th byte: %v, want ErrHoldFull (bytes)", err)
	}
	if ok, err := db.HoldSync(ctx, held("staff", 6, "6"), HoldLimits{MaxCount: 4, MaxBytes: 14}); !ok || err != nil {
		t.Errorf("exactly at both bounds: %v, %v", ok, err)
	}
	for _, bad := range []HeldOp{held("no/gallery", 2, "x"), held("staff", 0, "x")} {
		if _, err := db.HoldSync(ctx, bad, HoldLimits{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("hold %+v: %v, want ErrInvalid", bad, err)
		}
	}
	st, err := db.HeldSyncStats(ctx)
	if err != nil || st.Count != 4 || st.Bytes != 14 || st.Galleries["staff"] != 3 || st.Galleries["visit"] != 1 {
		t.Fatalf("stats = %+v, %v", st, err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := heldRevs(t, db, "staff", 100); !slices.Equal(got, []uint64{3, 5, 6}) {
		t.Errorf("after a reopen staff holds %v, want [3 5 6] in order", got)
	}
	if got := heldRevs(t, db, "staff", 5); !slices.Equal(got, []uint64{3, 5}) {
		t.Errorf("held up to 5 = %v", got)
	}
	ops, _ := db.HeldSync(ctx, "staff", 5)
	if string(ops[1].Payload) != "five" {
		t.Errorf("revision 5 holds %q, want the first copy", ops[1].Payload)
	}
	// A gallery whose name is another's prefix is not mixed in.
	if _, err := db.HoldSync(ctx, held("staf", 4, "x"), HoldLimits{}); err != nil {
		t.Fatal(err)
	}
	if got := heldRevs(t, db, "staf", 100); !slices.Equal(got, []uint64{4}) {
		t.Errorf("staf holds %v", got)
	}
}

// Applying an operation drops its held copy in the same transaction; a
// snapshot leaves its gallery's held operations for the caller to answer,
// and DropHeldSync answers them atomically.
func TestHeldDroppedWithTheirOperation(t *testing.T) {
	db, _ := openTest(t, Options{})
	for rev := uint64(2); rev <= 4; rev++ {
		if _, err := db.HoldSync(ctx, held("staff", rev, fmt.Sprint(rev)), HoldLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	for rev := uint64(1); rev <= 2; rev++ {
		if _, err := db.ApplySync(ctx, "staff", rev, false, func(*SyncTx) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if got := heldRevs(t, db, "staff", 100); !slices.Equal(got, []uint64{3, 4}) {
		t.Errorf("after applying 2: held %v, want [3 4]", got)
	}
	if _, err := db.ApplySync(ctx, "staff", 4, true, func(*SyncTx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := heldRevs(t, db, "staff", 100); !slices.Equal(got, []uint64{3, 4}) {
		t.Errorf("after a snapshot at 4: held %v, want [3 4] left to answer", got)
	}
	acks := []OutboxMessage{{Topic: "acks", Payload: []byte("3")}, {Topic: "acks", Payload: []byte("4")}}
	if err := db.DropHeldSync(ctx, "staff", []uint64{3, 4}, acks...); err != nil {
		t.Fatal(err)
	}
	if st, _ := db.HeldSyncStats(ctx); st.Count != 0 {
		t.Errorf("%d still held", st.Count)
	}
	if msgs, _ := db.PeekOutbox(ctx, 0); len(msgs) != 2 {
		t.Errorf("acks queued: %d, want 2", len(msgs))
	}
}

// CheckPerson refuses what UpsertPerson would, without writing, and
// Enqueue's messages commit with the operation.
func TestSyncCheckPersonAndEnqueue(t *testing.T) {
	db, _ := openTest(t, Options{})
	if _, err := db.ApplySync(ctx, "staff", 1, false, upsert(Person{ID: "ann", ExternalID: "ext-1"}, face(1))); err != nil {
		t.Fatal(err)
	}
	noFace := face(2)
	noFace.Face.Embedding = nil
	for name, tc := range map[string]struct {
		p    Person
		f    NewFace
		want error
	}{
		"id too long":       {Person{ID: strings.Repeat("x", 129)}, face(2), ErrInvalid},
		"control character": {Person{ID: "bell\x07"}, face(2), ErrInvalid},
		"name":              {Person{ID: "b", Name: "a\nb"}, face(2), ErrInvalid},
		"face":              {Person{ID: "b"}, noFace, ErrInvalid},
		"external id taken": {Person{ID: "b", ExternalID: "ext-1"}, face(2), ErrDuplicate},
		"fine":              {Person{ID: "b", ExternalID: "ext-2"}, face(2), nil},
		"own external id":   {Person{ID: "ann", ExternalID: "ext-1"}, face(2), nil},
	} {
		_, err := db.ApplySync(ctx, "staff", 2, false, func(tx *SyncTx) error {
			if err := tx.CheckPerson(tc.p, []NewFace{tc.f}); err != nil {
				return err
			}
			return errors.New("rolled back")
		})
		if tc.want != nil && !errors.Is(err, tc.want) || tc.want == nil && !strings.Contains(fmt.Sprint(err), "rolled back") {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if _, err := db.GetPerson(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CheckPerson wrote: %v", err)
	}
	if _, err := db.ApplySync(ctx, "staff", 2, false, func(tx *SyncTx) error {
		tx.Enqueue(OutboxMessage{Topic: "acks", Payload: []byte("late")})
		return nil
	}, OutboxMessage{Topic: "acks", Payload: []byte("early")}); err != nil {
		t.Fatal(err)
	}
	msgs, _ := db.PeekOutbox(ctx, 0)
	if len(msgs) != 2 || string(msgs[0].Payload) != "early" || string(msgs[1].Payload) != "late" {
		t.Errorf("outbox = %+v, want early then late", msgs)
	}
}
