package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// CurrentSchemaVersion is the schema this build writes. Open migrates older
// files forward to it and refuses newer ones.
//
// History:
//
//	1  faces held their embedding as a JSON array inside a JSON face record.
//	2  embeddings move to their own bucket as little-endian float32 behind
//	   the embedder id, and face records become binary: a start-up index
//	   rebuild copies vectors instead of parsing text, and a 512-d vector
//	   takes 2 KB instead of ~5 KB of decimal digits.
//	3  adds sync_revisions: the last fleet-sync revision applied to each
//	   gallery, so gallery operations stay idempotent across restarts.
//	4  adds sync_held: gallery operations received ahead of a revision
//	   gap, kept until the missing ones (or a snapshot) arrive, so the
//	   device can acknowledge them to the broker at once.
//	5  adds deliveries: door webhook messages waiting for their receiver,
//	   queued in the transaction that records the decision's event.
const CurrentSchemaVersion = 5

// Top-level buckets. Keys are documented where each is written.
var (
	bucketMeta             = []byte("meta")
	bucketPersons          = []byte("persons")
	bucketPersonsByExt     = []byte("persons_by_ext")
	bucketFaces            = []byte("faces")
	bucketEmbeddings       = []byte("embeddings")
	bucketFaceImages       = []byte("face_images")
	bucketFacesByPerson    = []byte("faces_by_person")
	bucketFacesByGallery   = []byte("faces_by_gallery")
	bucketPersonsByGallery = []byte("persons_by_gallery")
	bucketFacesByPhoto     = []byte("faces_by_photo")
	bucketGalleries        = []byte("galleries")
	bucketEvents           = []byte("events")
	bucketEventsByID       = []byte("events_by_id")
	bucketEventsByPerson   = []byte("events_by_person")
	bucketEventSnapshots   = []byte("event_snapshots")
	bucketAPIKeys          = []byte("api_keys")
	bucketAPIKeysByHash    = []byte("api_keys_by_hash")
	bucketOutbox           = []byte("outbox")
	bucketSyncRevisions    = []byte("sync_revisions")
	bucketSyncHeld         = []byte("sync_held")
	bucketDeliveries       = []byte("deliveries")
)

// Keys in the meta bucket.
var (
	metaVersion       = []byte("schema_version")
	metaOutboxCount   = []byte("outbox_count")
	metaOutboxBytes   = []byte("outbox_bytes")
	metaOutboxDropped = []byte("outbox_dropped")
)

// bucketsV1 is the previous schema's bucket set; v2 added embeddings.
var bucketsV1 = [][]byte{
	bucketMeta, bucketPersons, bucketPersonsByExt, bucketFaces, bucketFaceImages,
	bucketFacesByPerson, bucketFacesByGallery, bucketPersonsByGallery, bucketFacesByPhoto,
	bucketGalleries, bucketEvents, bucketEventsByID, bucketEventsByPerson,
	bucketEventSnapshots, bucketAPIKeys, bucketAPIKeysByHash, bucketOutbox,
}

var bucketsV2 = append(append([][]byte(nil), bucketsV1...), bucketEmbeddings)

var bucketsV3 = append(append([][]byte(nil), bucketsV2...), bucketSyncRevisions)

var bucketsV4 = append(append([][]byte(nil), bucketsV3...), bucketSyncHeld)

var bucketsV5 = append(append([][]byte(nil), bucketsV4...), bucketDeliveries)

// buckets is the current schema's bucket set.
var buckets = bucketsV5

// migrations[v] turns a version-v file into version v+1 inside the caller's
// transaction. Open runs the whole chain in one write transaction, so a
// crash or an error anywhere leaves the file exactly at its old version,
// and a file is never seen half-migrated. Migrations only go forward.
var migrations = map[int]func(tx *bbolt.Tx) error{
	1: migrateV1toV2,
	2: migrateV2toV3,
	3: migrateV3toV4,
	4: migrateV4toV5,
}

// readVersion returns the schema version of an open file: 0 for an empty
// file (no buckets at all), ErrSchema for a bbolt file that is not ours.
func readVersion(tx *bbolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bbolt.Bucket) error { empty = false; return nil })
		if empty {
			return 0, nil
		}
		return 0, fmt.Errorf("%w: no meta bucket, not a faced store", ErrSchema)
	}
	v := meta.Get(metaVersion)
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: schema version missing", ErrSchema)
	}
	n := binary.BigEndian.Uint64(v)
	if n == 0 || n > 1<<16 {
		return 0, fmt.Errorf("%w: schema version %d", ErrSchema, n)
	}
	return int(n), nil
}

func writeVersion(tx *bbolt.Tx, v int) error {
	return tx.Bucket(bucketMeta).Put(metaVersion, u64(uint64(v)))
}

// upgrade brings tx to CurrentSchemaVersion. A new file is created at the
// current version directly: running history on an empty file proves
// nothing and costs start-up time.
func upgrade(tx *bbolt.Tx) (from int, err error) {
	from, err = readVersion(tx)
	if err != nil {
		return from, err
	}
	if from > CurrentSchemaVersion {
		return from, errNewer(from)
	}
	if from == 0 {
		for _, name := range buckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return from, fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return from, writeVersion(tx, CurrentSchemaVersion)
	}
	for v := from; v < CurrentSchemaVersion; v++ {
		m, ok := migrations[v]
		if !ok {
			return from, fmt.Errorf("%w: no migration from version %d", ErrSchema, v)
		}
		if err := m(tx); err != nil {
			return from, fmt.Errorf("migrate v%d to v%d: %w", v, v+1, err)
		}
		if err := writeVersion(tx, v+1); err != nil {
			return from, err
		}
	}
	return from, nil
}

// errNewer refuses a file from a newer build. Guessing would corrupt it, and
// migrations only go forward, so the only safe answer is to stop.
func errNewer(v int) error {
	return fmt.Errorf("%w: file has schema version %d, this build knows up to %d; refusing to downgrade", ErrSchema, v, CurrentSchemaVersion)
}

// checkBuckets makes sure a file that claims the current version has every
// bucket this code will dereference.
func checkBuckets(tx *bbolt.Tx) error {
	for _, name := range buckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("%w: bucket %s missing", ErrCorrupt, name)
		}
	}
	return nil
}

// faceRecordV1 is a face as schema version 1 stored it: one JSON document,
// vector included. It is kept only to read old files.
type faceRecordV1 struct {
	PersonID   string    `json:"person_id"`
	Galleries  []string  `json:"galleries"`
	Box        []float32 `json:"box"`
	PhotoHash  string    `json:"photo_hash,omitempty"`
	Embedding  []float32 `json:"embedding"`
	EmbedderID string    `json:"embedder_id"`
	Quality    float32   `json:"quality"`
	Meta       Metadata  `json:"meta,omitempty"`
	CameraID   string    `json:"camera_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	HasImage   bool      `json:"has_image,omitempty"`
}

// migrateV1toV2 splits every v1 face into a binary face record and a
// binary embedding. Everything else kept its encoding.
//
// bbolt cursors are invalidated by writes to their own bucket, so the new
// face records are collected while iterating and written afterwards; the
// vectors go to another bucket and are written as we go. The whole
// migration is one transaction, so its dirty pages (about 4 KB per face)
// sit in memory until commit: ~400 MB for 100 000 faces, which the
// devices we support have.
func migrateV1toV2(tx *bbolt.Tx) error {
	emb, err := tx.CreateBucket(bucketEmbeddings)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketEmbeddings, err)
	}
	emb.FillPercent = appendFill
	faces := tx.Bucket(bucketFaces)
	if faces == nil {
		return fmt.Errorf("%w: bucket %s missing", ErrCorrupt, bucketFaces)
	}
	type rewrite struct{ key, val []byte }
	var rewrites []rewrite
	err = faces.ForEach(func(k, v []byte) error {
		id := getU64(k)
		if len(k) != 8 {
			return fmt.Errorf("%w: face key %x", ErrCorrupt, k)
		}
		var old faceRecordV1
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber() // keep metadata numbers exact until re-encoded
		if err := dec.Decode(&old); err != nil {
			return fmt.Errorf("%w: face %d: %v", ErrCorrupt, id, err)
		}
		if len(old.Box) != 4 {
			return fmt.Errorf("%w: face %d: box has %d values", ErrCorrupt, id, len(old.Box))
		}
		if len(old.Embedding) == 0 || old.EmbedderID == "" {
			return fmt.Errorf("%w: face %d: no embedding", ErrCorrupt, id)
		}
		hash, err := normPhotoHash(old.PhotoHash)
		if err != nil {
			return fmt.Errorf("%w: face %d: %v", ErrCorrupt, id, err)
		}
		f := Face{
			ID: id, PersonID: old.PersonID, Galleries: old.Galleries,
			Box:       [4]float32{old.Box[0], old.Box[1], old.Box[2], old.Box[3]},
			PhotoHash: hash, Quality: old.Quality, Meta: old.Meta,
			CameraID: old.CameraID, CreatedAt: old.CreatedAt, HasImage: old.HasImage,
		}
		rec, err := encodeFace(&f)
		if err != nil {
			return fmt.Errorf("face %d: %w", id, err)
		}
		rewrites = append(rewrites, rewrite{append([]byte(nil), k...), rec})
		return emb.Put(k, encodeEmbedding(old.EmbedderID, old.Embedding))
	})
	if err != nil {
		return err
	}
	for _, r := range rewrites {
		if err := faces.Put(r.key, r.val); err != nil {
			return err
		}
	}
	return nil
}

// migrateV2toV3 adds the (empty) sync revisions bucket: a store that never
// synced has applied no revision of any gallery.
func migrateV2toV3(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucket(bucketSyncRevisions); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketSyncRevisions, err)
	}
	return nil
}

// migrateV3toV4 adds the (empty) bucket of held gallery operations: a
// device upgraded during a revision gap held its operations in memory and
// unacknowledged, so the broker delivers them again.
func migrateV3toV4(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucket(bucketSyncHeld); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketSyncHeld, err)
	}
	return nil
}

// migrateV4toV5 adds the deliveries queue (door webhooks).
func migrateV4toV5(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucket(bucketDeliveries); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketDeliveries, err)
	}
	return nil
}
