// Package store is faced's durable state: persons, their faces and
// embeddings, galleries, match events, API keys and the sync outbox, in one
// file on the device.
//
// # Why bbolt
//
// The store is built on go.etcd.io/bbolt. A door controller has no database
// server to talk to and no operator to run one, so the store must be embedded
// and live in a single file that a backup can copy and a package upgrade can
// leave alone. bbolt gives exactly that with full ACID transactions: every
// commit is fsynced (the store never sets NoSync), so an acknowledged enroll
// survives a power cut or kill -9, and a transaction that returns an error
// leaves nothing behind. It is pure Go (no cgo on the ARM boards we ship to),
// serialises writers while readers run on an MVCC snapshot, and is the
// field's standard: etcd, Consul and many others keep their state in it.
// Only this package imports bbolt; everything above it sees the types below.
//
// # Layout
//
// Every logical operation is one transaction. Records live in top-level
// buckets (see schema.go); the hot ones are binary, the rest JSON:
//
//	persons            person id → JSON
//	faces              8-byte big-endian face id → binary face record (no vector)
//	embeddings         face id → embedder id + little-endian float32 vector
//	face_images        face id → JPEG, only when the caller asked to keep it
//	galleries          name → JSON
//	events             8-byte time + 8-byte id → binary event record
//	event_snapshots    event id → JPEG
//	api_keys           key id → JSON (hash of the secret, never the secret)
//	outbox             8-byte sequence → message
//	sync_revisions     gallery → last applied fleet-sync revision
//	sync_held          gallery NUL 8-byte revision → gallery operation held
//	                   behind a revision gap (bounded by the caller)
//	meta               schema version, outbox counters
//
// and secondary indexes whose keys carry the answer, so a lookup is a prefix
// scan that decodes only the records it returns: persons_by_ext,
// faces_by_person, faces_by_gallery, persons_by_gallery, faces_by_photo,
// events_by_id, events_by_person, api_keys_by_hash. Check verifies that
// records and indexes agree.
//
// Face ids and event ids come from bucket sequences, so they only grow and
// are never reused even after deletes; lists page through opaque cursors
// that name the last key returned, which stay valid while others write.
//
// # Schema
//
// The file records its schema version. Open brings an older file forward
// in a single transaction (a crash mid-migration leaves the old version
// intact) and refuses a newer one with ErrSchema rather than guess.
package store
