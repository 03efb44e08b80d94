package store

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// v1Face is what the v1 fixture holds for one face, for comparing after
// the migration.
type v1Face struct {
	id        uint64
	person    string
	galleries []string
	hash      string
	embedding []float32
	meta      Metadata
	image     []byte
	created   time.Time
}

// writeV1Fixture builds a store file of the previous schema version (1)
// with raw bbolt, the way a v1 build wrote it: every face one JSON document
// with its embedding inline. It deliberately spells the records out as
// literal JSON and maps rather than reusing this package's encoders, so a
// change to the current encoders cannot silently change the fixture.
func writeV1Fixture(t *testing.T, path string, corruptFace bool) (persons map[string]string, faces []v1Face) {
	t.Helper()
	b, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	created := time.Date(2024, 6, 1, 8, 0, 0, 123456789, time.UTC)
	persons = map[string]string{"p-ada": "Ada", "p-bob": "Bob", "p-cy": "Cy"}
	faces = []v1Face{
		{id: 1, person: "p-ada", galleries: []string{"staff"}, hash: photoHash("ada"), embedding: vec(512, 1), created: created},
		{id: 2, person: "p-ada", galleries: []string{"staff", "vip"}, embedding: vec(512, 2), meta: Metadata{"pose": "left", "n": float64(2)}, created: created.Add(time.Second)},
		{id: 4, person: "p-bob", galleries: []string{"vip"}, hash: photoHash("bob"), embedding: vec(512, 4), image: []byte("\xff\xd8bob"), created: created.Add(2 * time.Second)},
		{id: 5, person: "p-cy", galleries: []string{"staff"}, embedding: vec(192, 5), created: created.Add(3 * time.Second)},
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		for _, name := range bucketsV1 {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		bk := tx.Bucket
		put := func(bucket []byte, k, v []byte) {
			if err == nil {
				err = bk(bucket).Put(k, v)
			}
		}
		be := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
		put(bucketMeta, []byte("schema_version"), be(1))
		for _, g := range []string{"staff", "vip"} {
			put(bucketGalleries, []byte(g), []byte(`{"c":1717228800000000000}`))
		}
		for id, name := range persons {
			put(bucketPersons, []byte(id), fmt.Appendf(nil, `{"x":"ext-%s","n":%q,"c":1717228800000000000,"u":1717228800000000000}`, id, name))
			put(bucketPersonsByExt, []byte("ext-"+id), []byte(id))
		}
		perGallery := map[string]uint32{}
		for _, f := range faces {
			rec := map[string]any{
				"person_id": f.person, "galleries": f.galleries, "box": []float32{1, 2, 3, 4},
				"embedding": f.embedding, "embedder_id": "arcface-r512", "quality": 0.75,
				"camera_id": "cam", "created_at": f.created, "has_image": f.image != nil,
			}
			if f.hash != "" {
				rec["photo_hash"] = f.hash
			}
			if f.meta != nil {
				rec["meta"] = f.meta
			}
			v, _ := json.Marshal(rec)
			if corruptFace && f.id == 4 {
				v = []byte(`{"person_id":`)
			}
			put(bucketFaces, be(f.id), v)
			put(bucketFacesByPerson, append([]byte(f.person+"\x00"), be(f.id)...), nil)
			for _, g := range f.galleries {
				put(bucketFacesByGallery, append([]byte(g+"\x00"), be(f.id)...), nil)
				perGallery[g+"\x00"+f.person]++
			}
			if f.hash != "" {
				h := mustHex(f.hash)
				put(bucketFacesByPhoto, append(h, be(f.id)...), nil)
			}
			if f.image != nil {
				put(bucketFaceImages, be(f.id), f.image)
			}
		}
		for k, n := range perGallery {
			put(bucketPersonsByGallery, []byte(k), binary.BigEndian.AppendUint32(nil, n))
		}
		if err != nil {
			return err
		}
		return bk(bucketFaces).SetSequence(5) // face 3 was deleted under v1
	})
	if err != nil {
		t.Fatal(err)
	}
	return persons, faces
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// rawVersion reads the schema version without the store, and whether the
// embeddings bucket exists.
func rawVersion(t *testing.T, path string) (int, bool) {
	t.Helper()
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var v int
	var emb bool
	b.View(func(tx *bbolt.Tx) error {
		v, _ = readVersion(tx)
		emb = tx.Bucket(bucketEmbeddings) != nil
		return nil
	})
	return v, emb
}

// A v1 file goes through every migration: v2's binary faces, v3's sync
// revisions bucket, v4's held sync operations, v5's deliveries queue.
func TestMigrateV1ToCurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	persons, faces := writeV1Fixture(t, path, false)

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.SchemaVersion() != 5 || CurrentSchemaVersion != 5 {
		t.Fatalf("schema version %d", db.SchemaVersion())
	}
	if n, dropped, err := db.DeliveryStats(ctx, ""); err != nil || n != 0 || dropped != 0 {
		t.Fatalf("deliveries after migration = %d, %d, %v; want an empty queue", n, dropped, err)
	}
	if revs, err := db.SyncRevisions(ctx); err != nil || len(revs) != 0 {
		t.Fatalf("sync revisions after migration = %v, %v; want none", revs, err)
	}
	if st, err := db.HeldSyncStats(ctx); err != nil || st.Count != 0 {
		t.Fatalf("held sync operations after migration = %+v, %v; want none", st, err)
	}
	for id, name := range persons {
		p, err := db.GetPerson(ctx, id)
		if err != nil || p.Name != name || p.ExternalID != "ext-"+id {
			t.Errorf("person %s = %+v, %v", id, p, err)
		}
	}
	for _, want := range faces {
		f, err := db.GetFace(ctx, want.id)
		if err != nil {
			t.Fatalf("face %d: %v", want.id, err)
		}
		if f.PersonID != want.person || !slices.Equal(f.Galleries, want.galleries) || f.PhotoHash != want.hash ||
			!slices.Equal(f.Embedding, want.embedding) || f.EmbedderID != "arcface-r512" ||
			!reflect.DeepEqual(f.Meta, want.meta) || !f.CreatedAt.Equal(want.created) ||
			f.HasImage != (want.image != nil) || f.Box != [4]float32{1, 2, 3, 4} || f.Quality != 0.75 {
			t.Errorf("face %d after migration = %+v", want.id, f)
		}
		if want.image != nil {
			if img, err := db.FaceImage(ctx, want.id); err != nil || string(img) != string(want.image) {
				t.Errorf("face %d image %q, %v", want.id, img, err)
			}
		}
	}
	n := 0
	db.ForEachEmbedding(ctx, func(Face) error { n++; return nil })
	if n != len(faces) {
		t.Errorf("ForEachEmbedding saw %d faces, want %d", n, len(faces))
	}
	if hits, _ := db.FacesByPhotoHash(ctx, photoHash("bob")); len(hits) != 1 || hits[0].ID != 4 {
		t.Errorf("photo index after migration: %+v", hits)
	}
	mustCheck(t, db)
	// The sequence survived: the next face is 6, not a reused 3.
	added, err := db.AddFaces(ctx, "p-cy", []NewFace{face(9, "vip")})
	if err != nil || added[0].ID != 6 {
		t.Errorf("next face id %v, %v; want 6", added, err)
	}
	db.Close()

	// Reopening a v2 file migrates nothing and changes nothing.
	db2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db2)
	db2.Close()
}

func TestFailedMigrationLeavesV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	writeV1Fixture(t, path, true)
	before, _ := os.ReadFile(path)
	_, err := Open(path, Options{})
	wantErr(t, "Open", err, ErrCorrupt)
	if v, emb := rawVersion(t, path); v != 1 || emb {
		t.Errorf("after a failed migration: version %d, embeddings bucket %v; want 1, false", v, emb)
	}
	// bbolt rewrote nothing but possibly its meta page: the data is intact.
	after, _ := os.ReadFile(path)
	if len(after) != len(before) {
		t.Errorf("file size %d → %d", len(before), len(after))
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.db")
	db, err := Open(newer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Update(func(tx *bbolt.Tx) error { return writeVersion(tx, CurrentSchemaVersion+1) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	foreign := filepath.Join(dir, "foreign.db")
	b, _ := bbolt.Open(foreign, 0o600, nil)
	b.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("theirs")); return err })
	b.Close()

	garbage := filepath.Join(dir, "garbage.db")
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	writeFile(t, garbage, junk)

	tests := []struct {
		name, path string
		want       error
	}{
		{"newer schema", newer, ErrSchema},
		{"foreign bbolt file", foreign, ErrSchema},
		{"not bbolt at all", garbage, ErrSchema},
		{"directory", dir, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(tt.path, Options{})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
		})
	}
	if v, _ := rawVersion(t, newer); v != CurrentSchemaVersion+1 {
		t.Errorf("newer file downgraded to %d", v)
	}
}

func TestOpenLocked(t *testing.T) {
	_, path := openTest(t, Options{})
	// Without the timeout bbolt waits for the lock forever: returning
	// ErrLocked at all shows it was honoured. The 30 s is a deadline for
	// the test, not a bound on Open.
	errc := make(chan error, 1)
	go func() {
		db, err := Open(path, Options{Timeout: 50 * time.Millisecond})
		if err == nil {
			db.Close()
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		wantErr(t, "second Open", err, ErrLocked)
	case <-time.After(30 * time.Second):
		t.Fatal("second Open still waiting for the lock: its timeout was not honoured")
	}
}
