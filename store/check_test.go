package store

import (
	"errors"
	"testing"

	"go.etcd.io/bbolt"
)

// TestCheckFindsDamage breaks one invariant at a time behind the store's
// back and expects Check to notice: the crash and concurrency tests lean on
// Check, so it must be able to fail.
func TestCheckFindsDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(tx *bbolt.Tx, f Face) error
	}{
		{"embedding missing", func(tx *bbolt.Tx, f Face) error {
			return tx.Bucket(bucketEmbeddings).Delete(u64(f.ID))
		}},
		{"person missing", func(tx *bbolt.Tx, f Face) error {
			return tx.Bucket(bucketPersons).Delete([]byte(f.PersonID))
		}},
		{"gallery index entry missing", func(tx *bbolt.Tx, f Face) error {
			return tx.Bucket(bucketFacesByGallery).Delete(indexKey("g", u64(f.ID)))
		}},
		{"orphan person index entry", func(tx *bbolt.Tx, f Face) error {
			return tx.Bucket(bucketFacesByPerson).Put(indexKey(f.PersonID, u64(999)), nil)
		}},
		{"gallery person count off", func(tx *bbolt.Tx, f Face) error {
			return tx.Bucket(bucketPersonsByGallery).Put(indexKey("g", []byte(f.PersonID)), []byte{0, 0, 0, 9})
		}},
		{"image without flag", func(tx *bbolt.Tx, f Face) error {
			return tx.Bucket(bucketFaceImages).Put(u64(f.ID), []byte("jpeg"))
		}},
		{"truncated face record", func(tx *bbolt.Tx, f Face) error {
			return tx.Bucket(bucketFaces).Put(u64(f.ID), []byte{recordFormat, 5})
		}},
		{"outbox counter off", func(tx *bbolt.Tx, f Face) error {
			return setMetaU64(tx, metaOutboxCount, 7)
		}},
		{"event id index missing", func(tx *bbolt.Tx, f Face) error {
			return tx.Bucket(bucketEventsByID).Delete(u64(1))
		}},
		{"api key hash index missing", func(tx *bbolt.Tx, f Face) error {
			return tx.Bucket(bucketAPIKeysByHash).Delete([]byte("hash"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t, Options{})
			mustGalleries(t, db, "g")
			_, faces, err := db.CreatePerson(ctx, Person{ExternalID: "x"}, []NewFace{face(1, "g")}, OutboxMessage{Topic: "t"})
			if err != nil {
				t.Fatal(err)
			}
			db.AddEvent(ctx, Event{PersonID: "someone"}, []byte("snap"), nil)
			db.PutAPIKey(ctx, APIKey{ID: "k", Hash: []byte("hash")})
			mustCheck(t, db)
			if err := db.bolt.Update(func(tx *bbolt.Tx) error { return tt.damage(tx, faces[0]) }); err != nil {
				t.Fatal(err)
			}
			if err := db.Check(ctx); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Check = %v, want ErrCorrupt", err)
			}
		})
	}
}

// FuzzDecodeRecords feeds arbitrary bytes to every binary decoder: a
// damaged record must come back as an error, never a panic or a huge
// allocation.
func FuzzDecodeRecords(f *testing.F) {
	nf := face(1, "g", "h")
	nf.Face.Meta = Metadata{"k": "v"}
	rec, _ := encodeFace(&nf.Face)
	f.Add(rec)
	f.Add(encodeEmbedding("arcface", []float32{1, 2}))
	ev, _ := encodeEvent(&Event{CameraID: "c", PersonID: "p", Gallery: "g", Meta: Metadata{"a": 1.0}})
	f.Add(ev)
	f.Add(encodeOutbox(&OutboxMessage{Topic: "t", Payload: []byte("x")}))
	f.Add([]byte{recordFormat, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		key := u64(1)
		if _, err := decodeFace(key, b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeFace: %v", err)
		}
		if _, _, err := decodeEmbedding(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeEmbedding: %v", err)
		}
		if _, err := decodeEvent(make([]byte, eventKeyLen), b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeEvent: %v", err)
		}
		if _, err := decodeOutbox(key, b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeOutbox: %v", err)
		}
	})
}
