package store

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestFaceRoundTrip(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g", "h")
	p, _, _ := db.CreatePerson(ctx, Person{}, nil)

	nf := face(7, "h", "g", "h") // repeat collapses, order kept
	nf.Face.PhotoHash = strings.ToUpper(photoHash("x"))
	nf.Face.Meta = Metadata{"source": "kiosk", "n": float64(3)}
	nf.Face.Embedding[0] = float32(math.Copysign(0, -1)) // exact bits survive
	nf.Face.Embedding[1] = math.SmallestNonzeroFloat32
	nf.Image = []byte("\xff\xd8\xff crop")
	plain := face(8, "g")
	plain.Face.PhotoHash = ""

	faces, err := db.AddFaces(ctx, p.ID, []NewFace{nf, plain})
	if err != nil {
		t.Fatal(err)
	}
	f := faces[0]
	if !reflect.DeepEqual(f.Galleries, []string{"h", "g"}) {
		t.Errorf("galleries %v", f.Galleries)
	}
	if f.PhotoHash != photoHash("x") {
		t.Errorf("photo hash %q not normalised", f.PhotoHash)
	}
	if !f.HasImage || faces[1].HasImage {
		t.Errorf("HasImage %v %v", f.HasImage, faces[1].HasImage)
	}
	for _, want := range faces {
		got, err := db.GetFace(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetFace = %+v\nwant %+v", got, want)
		}
	}
	if math.Float32bits(f.Embedding[0]) != 1<<31 {
		t.Error("negative zero lost")
	}
	img, err := db.FaceImage(ctx, f.ID)
	if err != nil || !bytes.Equal(img, nf.Image) {
		t.Errorf("FaceImage = %q, %v", img, err)
	}
	if _, err := db.FaceImage(ctx, faces[1].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("FaceImage without image: %v", err)
	}
	byHash, err := db.FacesByPhotoHash(ctx, photoHash("x"))
	if err != nil || len(byHash) != 1 || !reflect.DeepEqual(byHash[0], f) {
		t.Errorf("FacesByPhotoHash = %+v, %v", byHash, err)
	}
	if none, err := db.FacesByPhotoHash(ctx, photoHash("never")); err != nil || len(none) != 0 {
		t.Errorf("FacesByPhotoHash(unknown) = %v, %v", none, err)
	}
	if _, err := db.FacesByPhotoHash(ctx, "abc"); !errors.Is(err, ErrInvalid) {
		t.Errorf("FacesByPhotoHash(bad) = %v", err)
	}
	mustCheck(t, db)
}

func TestAddFacesInvalid(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g")
	p, _, _ := db.CreatePerson(ctx, Person{}, nil)
	mod := func(fn func(*NewFace)) NewFace { nf := face(1, "g"); fn(&nf); return nf }
	tests := []struct {
		name string
		nf   NewFace
		want error
	}{
		{"no galleries", mod(func(f *NewFace) { f.Face.Galleries = nil }), ErrInvalid},
		{"missing gallery", mod(func(f *NewFace) { f.Face.Galleries = []string{"g", "missing"} }), ErrNotFound},
		{"empty embedding", mod(func(f *NewFace) { f.Face.Embedding = nil }), ErrInvalid},
		{"huge embedding", mod(func(f *NewFace) { f.Face.Embedding = make([]float32, 5000) }), ErrInvalid},
		{"inf in embedding", mod(func(f *NewFace) { f.Face.Embedding[0] = float32(math.Inf(1)) }), ErrInvalid},
		{"no embedder", mod(func(f *NewFace) { f.Face.EmbedderID = "" }), ErrInvalid},
		{"NaN box", mod(func(f *NewFace) { f.Face.Box[2] = float32(math.NaN()) }), ErrInvalid},
		{"bad photo hash", mod(func(f *NewFace) { f.Face.PhotoHash = "xyz" }), ErrInvalid},
		{"image too big", mod(func(f *NewFace) { f.Image = make([]byte, MaxImageBytes+1) }), ErrInvalid},
		{"ok", face(1, "g"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.AddFaces(ctx, p.ID, []NewFace{face(2, "g"), tt.nf})
			wantErr(t, "AddFaces", err, tt.want)
		})
	}
	// Only the "ok" call committed, both its faces.
	if page, _ := db.ListFaces(ctx, ListOptions{}); len(page.Items) != 2 {
		t.Errorf("%d faces stored, want 2", len(page.Items))
	}
	mustCheck(t, db)
}

func TestUpdateFace(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g", "h")
	a, faces, _ := db.CreatePerson(ctx, Person{ID: "a"}, []NewFace{face(1, "g")})
	b, _, _ := db.CreatePerson(ctx, Person{ID: "b"}, nil)
	id := faces[0].ID

	got, err := db.UpdateFace(ctx, id, func(f *Face) error {
		f.Galleries = []string{"h"}
		f.PersonID = b.ID
		f.Meta = Metadata{"moved": true}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.PersonID != "b" || !reflect.DeepEqual(got.Galleries, []string{"h"}) || got.Meta["moved"] != true {
		t.Errorf("updated face %+v", got)
	}
	if page, _ := db.ListFaces(ctx, ListOptions{PersonID: a.ID}); len(page.Items) != 0 {
		t.Errorf("person a still lists %d faces", len(page.Items))
	}
	if page, _ := db.ListPersons(ctx, ListOptions{Gallery: "h"}); len(page.Items) != 1 || page.Items[0].ID != "b" {
		t.Errorf("gallery h persons %+v", page.Items)
	}
	if n, _ := db.GalleryFaceCount(ctx, "g"); n != 0 {
		t.Errorf("gallery g keeps %d faces", n)
	}

	tests := []struct {
		name string
		fn   func(*Face) error
		want error
	}{
		{"embedding immutable", func(f *Face) error { f.Embedding[0]++; return nil }, ErrInvalid},
		{"embedder immutable", func(f *Face) error { f.EmbedderID = "other"; return nil }, ErrInvalid},
		{"box immutable", func(f *Face) error { f.Box[0] = 1; return nil }, ErrInvalid},
		{"id immutable", func(f *Face) error { f.ID++; return nil }, ErrInvalid},
		{"no gallery", func(f *Face) error { f.Galleries = nil; return nil }, ErrInvalid},
		{"missing gallery", func(f *Face) error { f.Galleries = []string{"zzz"}; return nil }, ErrNotFound},
		{"missing person", func(f *Face) error { f.PersonID = "ghost"; return nil }, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.UpdateFace(ctx, id, tt.fn)
			wantErr(t, "UpdateFace", err, tt.want)
			if f, _ := db.GetFace(ctx, id); !reflect.DeepEqual(f, got) {
				t.Errorf("failed update changed the face: %+v", f)
			}
		})
	}
	if _, err := db.UpdateFace(ctx, 999, func(*Face) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateFace(missing) = %v", err)
	}
	mustCheck(t, db)
}

func TestDeleteFace(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g")
	nf := face(1, "g")
	nf.Image = []byte("img")
	p, faces, _ := db.CreatePerson(ctx, Person{}, []NewFace{nf, face(2, "g")})
	if err := db.DeleteFace(ctx, faces[0].ID, OutboxMessage{Topic: "faces/deleted"}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteFace(ctx, faces[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := db.GetPerson(ctx, p.ID); err != nil {
		t.Errorf("person went with its face: %v", err)
	}
	// Ids are never reused.
	more, _ := db.AddFaces(ctx, p.ID, []NewFace{face(3, "g")})
	if more[0].ID <= faces[1].ID {
		t.Errorf("new face id %d reuses a deleted id", more[0].ID)
	}
	if hits, _ := db.FacesByPhotoHash(ctx, faces[0].PhotoHash); slices.ContainsFunc(hits, func(f Face) bool { return f.ID == faces[0].ID }) {
		t.Error("photo index keeps the deleted face")
	}
	mustCheck(t, db)
}

func TestListFaces(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g", "h")
	a, _, _ := db.CreatePerson(ctx, Person{ID: "a"}, []NewFace{face(1, "g"), face(2, "h"), face(3, "g", "h")})
	db.CreatePerson(ctx, Person{ID: "b"}, []NewFace{face(4, "g"), face(5, "h")})

	ids := func(o ListOptions) []uint64 {
		t.Helper()
		var out []uint64
		for {
			page, err := db.ListFaces(ctx, o)
			if err != nil {
				t.Fatalf("ListFaces(%+v): %v", o, err)
			}
			for _, f := range page.Items {
				if f.Embedding != nil || f.EmbedderID == "" {
					t.Fatalf("listed face %d: embedding %d values, embedder %q", f.ID, len(f.Embedding), f.EmbedderID)
				}
				out = append(out, f.ID)
			}
			if page.Next == "" {
				return out
			}
			o.Cursor = page.Next
		}
	}
	tests := []struct {
		name string
		o    ListOptions
		want []uint64
	}{
		{"all", ListOptions{Limit: 2}, []uint64{1, 2, 3, 4, 5}},
		{"gallery", ListOptions{Gallery: "g", Limit: 1}, []uint64{1, 3, 4}},
		{"person", ListOptions{PersonID: a.ID, Limit: 2}, []uint64{1, 2, 3}},
		{"person and gallery", ListOptions{PersonID: a.ID, Gallery: "h", Limit: 1}, []uint64{2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(tt.o); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ids %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := db.ListFaces(ctx, ListOptions{PersonID: "ghost"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown person: %v", err)
	}
	if _, err := db.ListFaces(ctx, ListOptions{Cursor: encodeCursor(cursorFaces, []byte("short"))}); !errors.Is(err, ErrInvalid) {
		t.Errorf("malformed cursor: %v", err)
	}
}

func TestForEachEmbedding(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g")
	want := map[uint64][]float32{}
	for i := range 20 {
		nf := face(uint64(i), "g")
		nf.Face.Embedding = vec(128+i, uint64(i)) // dims vary: slabs must cope
		_, faces, err := db.CreatePerson(ctx, Person{}, []NewFace{nf})
		if err != nil {
			t.Fatal(err)
		}
		want[faces[0].ID] = nf.Face.Embedding
	}
	var kept []Face
	err := db.ForEachEmbedding(ctx, func(f Face) error {
		kept = append(kept, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != len(want) {
		t.Fatalf("%d faces, want %d", len(kept), len(want))
	}
	for _, f := range kept { // checked after the walk: retained vectors stay valid
		if !slices.Equal(f.Embedding, want[f.ID]) || f.EmbedderID != "arcface-r512" || f.PersonID == "" {
			t.Errorf("face %d: embedding or fields wrong", f.ID)
		}
	}
	stop := errors.New("stop")
	n := 0
	err = db.ForEachEmbedding(ctx, func(Face) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("fn error: %v after %d calls", err, n)
	}
}
