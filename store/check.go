package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"go.etcd.io/bbolt"
)

// Check verifies the file and the store's own invariants on one snapshot:
// bbolt's page-level check, then that every face has its person, embedding
// and index entries, every index entry points at a record, per-gallery
// person counts add up, and the outbox counters match the queue. It reads
// everything, so it is for tests, `faced backup verify` and support, not
// for a hot path. The first problem found is returned, wrapping ErrCorrupt.
func (db *DB) Check(ctx context.Context) error {
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, first)
		}
		return checkInvariants(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: check: %w", err)
	}
	return nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func checkInvariants(ctx context.Context, tx *bbolt.Tx) error {
	b := tx.Bucket
	// Persons and the external-id index agree both ways.
	nExt := 0
	err := b(bucketPersons).ForEach(func(k, v []byte) error {
		p, err := decodePerson(string(k), v)
		if err != nil {
			return err
		}
		if p.ExternalID != "" {
			nExt++
			if owner := b(bucketPersonsByExt).Get([]byte(p.ExternalID)); !bytes.Equal(owner, k) {
				return corrupt("person %q: external id %q indexed to %q", k, p.ExternalID, owner)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n := b(bucketPersonsByExt).Stats().KeyN; n != nExt {
		return corrupt("%d external ids indexed, %d persons have one", n, nExt)
	}

	// Every face: person, embedding, image flag, and each index entry.
	want := map[string]int{} // expected index entries per index bucket
	galleryPersons := map[string]uint32{}
	err = b(bucketFaces).ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := decodeFace(k, v)
		if err != nil {
			return err
		}
		if b(bucketPersons).Get([]byte(f.PersonID)) == nil {
			return corrupt("face %d: person %q missing", f.ID, f.PersonID)
		}
		if err := attachEmbedding(tx, &f, false); err != nil {
			return err
		}
		if hasImg := b(bucketFaceImages).Get(k) != nil; hasImg != f.HasImage {
			return corrupt("face %d: HasImage %v but image stored %v", f.ID, f.HasImage, hasImg)
		}
		if len(f.Galleries) == 0 {
			return corrupt("face %d: in no gallery", f.ID)
		}
		if b(bucketFacesByPerson).Get(indexKey(f.PersonID, k)) == nil {
			return corrupt("face %d: missing from person index", f.ID)
		}
		want[string(bucketFacesByPerson)]++
		for _, g := range f.Galleries {
			if b(bucketGalleries).Get([]byte(g)) == nil {
				return corrupt("face %d: gallery %q missing", f.ID, g)
			}
			if b(bucketFacesByGallery).Get(indexKey(g, k)) == nil {
				return corrupt("face %d: missing from gallery %q index", f.ID, g)
			}
			want[string(bucketFacesByGallery)]++
			galleryPersons[string(indexKey(g, []byte(f.PersonID)))]++
		}
		if f.PhotoHash != "" {
			h, _ := hex.DecodeString(f.PhotoHash)
			if b(bucketFacesByPhoto).Get(append(h, k...)) == nil {
				return corrupt("face %d: missing from photo index", f.ID)
			}
			want[string(bucketFacesByPhoto)]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range [][]byte{bucketFacesByPerson, bucketFacesByGallery, bucketFacesByPhoto} {
		if n := b(name).Stats().KeyN; n != want[string(name)] {
			return corrupt("%s has %d entries, faces account for %d", name, n, want[string(name)])
		}
	}
	if n, m := b(bucketEmbeddings).Stats().KeyN, b(bucketFaces).Stats().KeyN; n != m {
		return corrupt("%d embeddings for %d faces", n, m)
	}
	if n := b(bucketFaceImages).Stats().KeyN; n > b(bucketFaces).Stats().KeyN {
		return corrupt("%d images for fewer faces", n)
	}
	err = b(bucketPersonsByGallery).ForEach(func(k, v []byte) error {
		if len(v) != 4 || binary.BigEndian.Uint32(v) != galleryPersons[string(k)] {
			return corrupt("persons_by_gallery %q: count %x, faces say %d", k, v, galleryPersons[string(k)])
		}
		delete(galleryPersons, string(k))
		return nil
	})
	if err != nil {
		return err
	}
	if len(galleryPersons) != 0 {
		return corrupt("%d gallery/person pairs missing from persons_by_gallery", len(galleryPersons))
	}

	// Events and their two indexes.
	nPerson := 0
	err = b(bucketEvents).ForEach(func(k, v []byte) error {
		e, err := decodeEvent(k, v)
		if err != nil {
			return err
		}
		if !bytes.Equal(b(bucketEventsByID).Get(u64(e.ID)), k) {
			return corrupt("event %d: id index disagrees", e.ID)
		}
		if e.Matched && e.PersonID != "" {
			nPerson++
			if b(bucketEventsByPerson).Get(indexKey(e.PersonID, k)) == nil {
				return corrupt("event %d: missing from person index", e.ID)
			}
		}
		if hasSnap := b(bucketEventSnapshots).Get(u64(e.ID)) != nil; hasSnap != e.HasSnapshot {
			return corrupt("event %d: HasSnapshot %v but snapshot stored %v", e.ID, e.HasSnapshot, hasSnap)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n, m := b(bucketEventsByID).Stats().KeyN, b(bucketEvents).Stats().KeyN; n != m {
		return corrupt("%d event ids for %d events", n, m)
	}
	if n := b(bucketEventsByPerson).Stats().KeyN; n != nPerson {
		return corrupt("events_by_person has %d entries, events account for %d", n, nPerson)
	}

	// API keys and their hash index.
	nKeys := 0
	err = b(bucketAPIKeys).ForEach(func(k, v []byte) error {
		key, err := decodeAPIKey(string(k), v)
		if err != nil {
			return err
		}
		nKeys++
		if !bytes.Equal(b(bucketAPIKeysByHash).Get(key.Hash), k) {
			return corrupt("api key %q: hash index disagrees", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n := b(bucketAPIKeysByHash).Stats().KeyN; n != nKeys {
		return corrupt("%d key hashes for %d keys", n, nKeys)
	}

	// Outbox counters.
	var got OutboxStats
	err = b(bucketOutbox).ForEach(func(k, v []byte) error {
		m, err := decodeOutbox(k, v)
		got.Count++
		got.Bytes += m.size()
		return err
	})
	if err != nil {
		return err
	}
	if st := outboxStats(tx); st.Count != got.Count || st.Bytes != got.Bytes {
		return corrupt("outbox counters say %d messages/%d bytes, queue has %d/%d", st.Count, st.Bytes, got.Count, got.Bytes)
	}
	return nil
}
