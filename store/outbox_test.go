package store

import (
	"errors"
	"fmt"
	"testing"
)

func TestOutboxFIFOAndAck(t *testing.T) {
	clk := newClock()
	db, _ := openTest(t, Options{Now: clk.Now})
	for i := range 5 {
		if err := db.EnqueueOutbox(ctx, OutboxMessage{Topic: "t", Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := db.PeekOutbox(ctx, 3)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("PeekOutbox = %v, %v", msgs, err)
	}
	for i, m := range msgs {
		if string(m.Payload) != fmt.Sprint(i) || m.Seq != uint64(i+1) || !m.CreatedAt.Equal(clk.Now()) {
			t.Errorf("message %d = %+v", i, m)
		}
	}
	// Ack out of order, twice, and an unknown seq: all fine.
	if err := db.AckOutbox(ctx, 2, 1, 2, 99); err != nil {
		t.Fatal(err)
	}
	msgs, _ = db.PeekOutbox(ctx, 0)
	if len(msgs) != 3 || msgs[0].Seq != 3 {
		t.Errorf("after ack: %+v", msgs)
	}
	st, _ := db.OutboxStats(ctx)
	if st.Count != 3 || st.Bytes != 3*2 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
	if err := db.EnqueueOutbox(ctx, OutboxMessage{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("message without topic: %v", err)
	}
	mustCheck(t, db)
}

func TestOutboxBound(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		enqueue    int
		wantSeqs   []uint64
		wantDrop   uint64
		wantReject bool
	}{
		// payloads are 10 bytes, topic "t": 11 bytes a message
		{"count", Options{OutboxMaxCount: 3}, 5, []uint64{3, 4, 5}, 2, false},
		{"bytes", Options{OutboxMaxBytes: 25}, 5, []uint64{4, 5}, 3, false},
		{"both", Options{OutboxMaxCount: 4, OutboxMaxBytes: 33}, 6, []uint64{4, 5, 6}, 3, false},
		{"unbounded", Options{}, 4, []uint64{1, 2, 3, 4}, 0, false},
		{"message bigger than the bound", Options{OutboxMaxBytes: 5}, 1, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, path := openTest(t, tt.opts)
			for range tt.enqueue {
				err := db.EnqueueOutbox(ctx, OutboxMessage{Topic: "t", Payload: []byte("0123456789")})
				if tt.wantReject {
					wantErr(t, "EnqueueOutbox", err, ErrInvalid)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			check := func(db *DB) {
				t.Helper()
				msgs, _ := db.PeekOutbox(ctx, 100)
				var seqs []uint64
				for _, m := range msgs {
					seqs = append(seqs, m.Seq)
				}
				if fmt.Sprint(seqs) != fmt.Sprint(tt.wantSeqs) {
					t.Errorf("queue %v, want %v", seqs, tt.wantSeqs)
				}
				st, _ := db.OutboxStats(ctx)
				if st.Dropped != tt.wantDrop || st.Count != len(tt.wantSeqs) || st.Bytes != int64(11*len(tt.wantSeqs)) {
					t.Errorf("stats %+v, want %d dropped", st, tt.wantDrop)
				}
				mustCheck(t, db)
			}
			check(db)
			// Dropped is persisted: it survives a reopen.
			db.Close()
			db2, err := Open(path, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			check(db2)
		})
	}
}

func TestOutboxAtomicWithData(t *testing.T) {
	db, _ := openTest(t, Options{OutboxMaxCount: 2})
	mustGalleries(t, db, "g")
	msg := OutboxMessage{Topic: "persons/created", Payload: []byte("{}")}
	// A failed enrolment queues nothing...
	if _, _, err := db.CreatePerson(ctx, Person{}, []NewFace{face(1, "missing")}, msg); err == nil {
		t.Fatal("enrolment into a missing gallery succeeded")
	}
	if st, _ := db.OutboxStats(ctx); st.Count != 0 {
		t.Errorf("failed enrolment queued %d messages", st.Count)
	}
	// ...and an outbox failure (no topic) fails the enrolment.
	if _, _, err := db.CreatePerson(ctx, Person{ID: "x"}, nil, OutboxMessage{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("CreatePerson with bad message: %v", err)
	}
	if _, err := db.GetPerson(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("person stored although its message was refused: %v", err)
	}
	// The bound applies to messages queued by CreatePerson too.
	for range 3 {
		if _, _, err := db.CreatePerson(ctx, Person{}, []NewFace{face(1, "g")}, msg); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := db.OutboxStats(ctx); st.Count != 2 || st.Dropped != 1 {
		t.Errorf("stats %+v, want 2 queued and 1 dropped", st)
	}
	mustCheck(t, db)
}
