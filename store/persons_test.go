package store

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPersonRoundTrip(t *testing.T) {
	clk := newClock()
	db, _ := openTest(t, Options{Now: clk.Now})
	mustGalleries(t, db, "staff", "vip")

	in := Person{
		ExternalID: "cust-42", Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000",
		Meta: Metadata{"badge": float64(7), "tags": []any{"a", "b"}, "nested": map[string]any{"x": true}},
	}
	p, faces, err := db.CreatePerson(ctx, in, []NewFace{face(1, "staff"), face(2, "staff", "vip")})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ID) != 32 {
		t.Errorf("generated id %q, want 32 hex chars", p.ID)
	}
	if !p.CreatedAt.Equal(clk.Now()) || !p.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("timestamps %v %v, want %v", p.CreatedAt, p.UpdatedAt, clk.Now())
	}
	got, err := db.GetPerson(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("GetPerson = %+v\nwant %+v", got, p)
	}
	byExt, err := db.GetPersonByExternalID(ctx, "cust-42")
	if err != nil || !reflect.DeepEqual(byExt, p) {
		t.Errorf("GetPersonByExternalID = %+v, %v", byExt, err)
	}
	if len(faces) != 2 || faces[0].ID == 0 || faces[1].ID <= faces[0].ID {
		t.Fatalf("face ids %v", faces)
	}
	for _, f := range faces {
		if f.PersonID != p.ID {
			t.Errorf("face %d person %q, want %q", f.ID, f.PersonID, p.ID)
		}
		g, err := db.GetFace(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, f) {
			t.Errorf("GetFace = %+v\nwant %+v", g, f)
		}
	}
	mustCheck(t, db)
}

func TestCreatePersonErrors(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g")
	if _, _, err := db.CreatePerson(ctx, Person{ID: "p1", ExternalID: "x1"}, nil); err != nil {
		t.Fatal(err)
	}
	noGallery := face(1)
	nan := face(2, "g")
	nan.Face.Embedding[3] = float32(math.NaN())
	tests := []struct {
		name  string
		p     Person
		faces []NewFace
		want  error
	}{
		{"duplicate id", Person{ID: "p1"}, nil, ErrDuplicate},
		{"duplicate external id", Person{ID: "p2", ExternalID: "x1"}, nil, ErrDuplicate},
		{"id with NUL", Person{ID: "a\x00b"}, nil, ErrInvalid},
		{"id too long", Person{ID: strings.Repeat("x", 129)}, nil, ErrInvalid},
		{"name not utf-8", Person{ID: "p3", Name: "\xff"}, nil, ErrInvalid},
		{"meta not json", Person{ID: "p3", Meta: Metadata{"f": func() {}}}, nil, ErrInvalid},
		{"face in no gallery", Person{ID: "p3"}, []NewFace{noGallery}, ErrInvalid},
		{"face in missing gallery", Person{ID: "p3"}, []NewFace{face(1, "g", "nope")}, ErrNotFound},
		{"face in badly named gallery", Person{ID: "p3"}, []NewFace{face(1, "bad name")}, ErrInvalid},
		{"NaN in embedding", Person{ID: "p3"}, []NewFace{nan}, ErrInvalid},
		{"ok", Person{ID: "p3"}, []NewFace{face(1, "g")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := db.CreatePerson(ctx, tt.p, tt.faces)
			wantErr(t, "CreatePerson", err, tt.want)
		})
	}
	// The failed "missing gallery" enrolment wrote nothing: p3 exists once
	// with one face, and the face sequence was not burnt by the rollback.
	page, err := db.ListFaces(ctx, ListOptions{PersonID: "p3"})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != 1 {
		t.Fatalf("faces of p3 = %+v, %v; want exactly face 1", page.Items, err)
	}
	if !strings.Contains(fmt.Sprint(mustErr(db.CreatePerson(ctx, Person{ID: "p9"}, []NewFace{face(1, "nope")}))), `"nope"`) {
		t.Error("missing-gallery error does not name the gallery")
	}
	mustCheck(t, db)
}

func mustErr(_ Person, _ []Face, err error) error { return err }

// TestCheckPersonAgreesWithCreate: CheckPerson, which enrolment calls
// before running the models, refuses what CreatePerson refuses for the
// person's own fields, and accepts an empty id (generated later).
func TestCheckPersonAgreesWithCreate(t *testing.T) {
	db, _ := openTest(t, Options{})
	for _, p := range []Person{
		{ID: "a\x00b"}, {ID: strings.Repeat("x", 129)}, {ID: "p", Name: "\xff"},
		{ID: "p", Email: "a\u202eb"}, {ID: "p", Meta: Metadata{"f": func() {}}},
	} {
		if err := CheckPerson(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckPerson(%+v) = %v, want ErrInvalid", p, err)
		}
		if _, _, err := db.CreatePerson(ctx, p, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreatePerson(%+v) = %v, want ErrInvalid", p, err)
		}
	}
	for _, p := range []Person{{}, {ID: "ok", Name: "Zoë", Meta: Metadata{"k": 1}}} {
		if err := CheckPerson(p); err != nil {
			t.Errorf("CheckPerson(%+v) = %v, want nil", p, err)
		}
	}
}

func TestPersonNotFound(t *testing.T) {
	db, _ := openTest(t, Options{})
	_, err := db.GetPerson(ctx, "ghost")
	wantErr(t, "GetPerson", err, ErrNotFound)
	_, err = db.GetPersonByExternalID(ctx, "ghost")
	wantErr(t, "GetPersonByExternalID", err, ErrNotFound)
	_, err = db.UpdatePerson(ctx, "ghost", func(*Person) error { return nil })
	wantErr(t, "UpdatePerson", err, ErrNotFound)
	_, err = db.DeletePerson(ctx, "ghost")
	wantErr(t, "DeletePerson", err, ErrNotFound)
	_, err = db.AddFaces(ctx, "ghost", []NewFace{face(1, "g")})
	wantErr(t, "AddFaces", err, ErrNotFound)
}

func TestUpdatePerson(t *testing.T) {
	clk := newClock()
	db, _ := openTest(t, Options{Now: clk.Now})
	a, _, _ := db.CreatePerson(ctx, Person{ID: "a", ExternalID: "ext-a"}, nil)
	db.CreatePerson(ctx, Person{ID: "b", ExternalID: "ext-b"}, nil)
	clk.Advance(time.Hour)

	got, err := db.UpdatePerson(ctx, "a", func(p *Person) error {
		p.Name, p.ExternalID = "Alice", "ext-a2"
		p.Meta = Metadata{"k": "v"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Alice" || !got.UpdatedAt.Equal(clk.Now()) || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("updated = %+v", got)
	}
	if _, err := db.GetPersonByExternalID(ctx, "ext-a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old external id still resolves: %v", err)
	}
	if p, err := db.GetPersonByExternalID(ctx, "ext-a2"); err != nil || p.ID != "a" {
		t.Errorf("new external id: %+v %v", p, err)
	}

	boom := errors.New("boom")
	tests := []struct {
		name string
		fn   func(*Person) error
		want error
	}{
		{"external id taken", func(p *Person) error { p.ExternalID = "ext-b"; return nil }, ErrDuplicate},
		{"id immutable", func(p *Person) error { p.ID = "z"; return nil }, ErrInvalid},
		{"created immutable", func(p *Person) error { p.CreatedAt = p.CreatedAt.Add(1); return nil }, ErrInvalid},
		{"fn error aborts", func(p *Person) error { p.Name = "lost"; return boom }, boom},
		{"invalid email", func(p *Person) error { p.Email = strings.Repeat("e", 600); return nil }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.UpdatePerson(ctx, "a", tt.fn)
			wantErr(t, "UpdatePerson", err, tt.want)
			if p, _ := db.GetPerson(ctx, "a"); !reflect.DeepEqual(p, got) {
				t.Errorf("failed update changed the person: %+v", p)
			}
		})
	}
	// Clearing the external id frees it.
	if _, err := db.UpdatePerson(ctx, "a", func(p *Person) error { p.ExternalID = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreatePerson(ctx, Person{ID: "c", ExternalID: "ext-a2"}, nil); err != nil {
		t.Errorf("freed external id not reusable: %v", err)
	}
	mustCheck(t, db)
}

func TestDeletePerson(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g", "h")
	img := []byte("\xff\xd8jpeg")
	withImg := face(3, "h")
	withImg.Image = img
	p, faces, err := db.CreatePerson(ctx, Person{ExternalID: "e"}, []NewFace{face(1, "g"), face(2, "g", "h"), withImg})
	if err != nil {
		t.Fatal(err)
	}
	other, otherFaces, _ := db.CreatePerson(ctx, Person{}, []NewFace{face(4, "g")})
	ev, _ := db.AddEvent(ctx, Event{CameraID: "c", PersonID: p.ID, FaceID: faces[0].ID, Matched: true}, nil, nil)

	deleted, err := db.DeletePerson(ctx, p.ID, OutboxMessage{Topic: "persons/deleted", Payload: []byte(p.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{faces[0].ID, faces[1].ID, faces[2].ID}; !reflect.DeepEqual(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	for _, f := range faces {
		if _, err := db.GetFace(ctx, f.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("face %d survives: %v", f.ID, err)
		}
		if _, err := db.FaceImage(ctx, f.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("image of face %d survives: %v", f.ID, err)
		}
	}
	if _, err := db.GetPersonByExternalID(ctx, "e"); !errors.Is(err, ErrNotFound) {
		t.Errorf("external id survives: %v", err)
	}
	if n, _ := db.GalleryFaceCount(ctx, "g"); n != 1 {
		t.Errorf("gallery g has %d faces, want 1 (the other person's)", n)
	}
	if f, err := db.GetFace(ctx, otherFaces[0].ID); err != nil || f.PersonID != other.ID {
		t.Errorf("other person's face: %+v %v", f, err)
	}
	if e, err := db.GetEvent(ctx, ev.ID); err != nil || e.PersonID != p.ID {
		t.Errorf("event lost its history: %+v %v", e, err)
	}
	if msgs, _ := db.PeekOutbox(ctx, 10); len(msgs) != 1 || string(msgs[0].Payload) != p.ID {
		t.Errorf("outbox = %+v", msgs)
	}
	mustCheck(t, db)
}

func TestListPersonsPagination(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g")
	want := map[string]bool{}
	for i := range 250 {
		var faces []NewFace
		if i%2 == 0 {
			faces = []NewFace{face(uint64(i), "g")}
		}
		p, _, err := db.CreatePerson(ctx, Person{Name: fmt.Sprint(i)}, faces)
		if err != nil {
			t.Fatal(err)
		}
		want[p.ID] = true
	}

	seen := map[string]int{}
	cursor, pages := "", 0
	for {
		page, err := db.ListPersons(ctx, ListOptions{Cursor: cursor, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, p := range page.Items {
			seen[p.ID]++
		}
		// Insert between pages, at random positions in id order: the
		// cursor names a key, so nothing already listed comes back and
		// nothing not yet listed is skipped.
		for range 5 {
			if _, _, err := db.CreatePerson(ctx, Person{}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("person %s listed %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("person %s listed %d times", id, n)
		}
	}

	// Gallery filter: the 125 persons with a face in g, in pages.
	count, cursor := 0, ""
	for {
		page, err := db.ListPersons(ctx, ListOptions{Gallery: "g", Cursor: cursor, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		count += len(page.Items)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if count != 125 {
		t.Errorf("gallery g lists %d persons, want 125", count)
	}

	bad := []ListOptions{
		{Cursor: "%%%"},
		{Cursor: encodeCursor(cursorFaces, u64(1))}, // a faces cursor
		{Limit: -1},
		{PersonID: "x"},
	}
	for _, o := range bad {
		if _, err := db.ListPersons(ctx, o); !errors.Is(err, ErrInvalid) {
			t.Errorf("ListPersons(%+v) = %v, want ErrInvalid", o, err)
		}
	}
	if _, err := db.ListPersons(ctx, ListOptions{Gallery: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing gallery filter: %v", err)
	}
	st, _ := db.Stats(ctx)
	if page, _ := db.ListPersons(ctx, ListOptions{Limit: 5000}); len(page.Items) != st.Persons || page.Next != "" {
		t.Errorf("limit above max returned %d persons of %d, next %q", len(page.Items), st.Persons, page.Next)
	}
}
