package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestGalleryNameRules(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"staff", true},
		{"A", true},
		{"site_1-door-B", true},
		{"0123456789", true},
		{strings.Repeat("x", 48), true},
		{"", false},
		{strings.Repeat("x", 49), false},
		{"with space", false},
		{"dot.name", false},
		{"slash/name", false},
		{"ünïcode", false},
		{"nul\x00", false},
		{"emoji🙂", false},
		{"tab\t", false},
	}
	db, _ := openTest(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidGalleryName(tt.name); got != tt.ok {
				t.Errorf("ValidGalleryName(%q) = %v, want %v", tt.name, got, tt.ok)
			}
			_, err := db.CreateGallery(ctx, Gallery{Name: tt.name})
			if tt.ok {
				wantErr(t, "CreateGallery", err, nil)
			} else {
				wantErr(t, "CreateGallery", err, ErrInvalid)
			}
		})
	}
}

func TestGalleryRoundTrip(t *testing.T) {
	clk := newClock()
	db, _ := openTest(t, Options{Now: clk.Now})
	g, err := db.CreateGallery(ctx, Gallery{Name: "lobby", Meta: Metadata{"site": "HQ"}})
	if err != nil {
		t.Fatal(err)
	}
	if !g.CreatedAt.Equal(clk.Now()) {
		t.Errorf("CreatedAt %v", g.CreatedAt)
	}
	got, err := db.GetGallery(ctx, "lobby")
	if err != nil || !reflect.DeepEqual(got, g) {
		t.Errorf("GetGallery = %+v, %v; want %+v", got, err, g)
	}
	if _, err := db.CreateGallery(ctx, Gallery{Name: "lobby"}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := db.GetGallery(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	for _, n := range []string{"b", "c", "d", "e"} {
		mustGalleries(t, db, n)
	}
	var names []string
	cursor := ""
	for {
		page, err := db.ListGalleries(ctx, ListOptions{Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range page.Items {
			names = append(names, g.Name)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if want := []string{"b", "c", "d", "e", "lobby"}; !reflect.DeepEqual(names, want) {
		t.Errorf("listed %v, want %v", names, want)
	}
	if _, err := db.ListGalleries(ctx, ListOptions{Gallery: "b"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("filtered gallery list: %v", err)
	}
}

func TestDeleteGallery(t *testing.T) {
	setup := func(t *testing.T) (*DB, []Face) {
		db, _ := openTest(t, Options{})
		mustGalleries(t, db, "doomed", "keep")
		_, faces, err := db.CreatePerson(ctx, Person{ID: "p"}, []NewFace{
			face(1, "doomed"), face(2, "doomed", "keep"), face(3, "keep"),
		})
		if err != nil {
			t.Fatal(err)
		}
		return db, faces
	}

	t.Run("refused when a face would be left in no gallery", func(t *testing.T) {
		db, faces := setup(t)
		_, err := db.DeleteGallery(ctx, "doomed", false)
		wantErr(t, "DeleteGallery", err, ErrInvalid)
		if _, err := db.GetGallery(ctx, "doomed"); err != nil {
			t.Errorf("gallery gone after refusal: %v", err)
		}
		if f, _ := db.GetFace(ctx, faces[1].ID); len(f.Galleries) != 2 {
			t.Errorf("refusal changed memberships: %v", f.Galleries)
		}
		mustCheck(t, db)
	})
	t.Run("drops memberships when every face stays somewhere", func(t *testing.T) {
		db, faces := setup(t)
		if err := db.DeleteFace(ctx, faces[0].ID); err != nil {
			t.Fatal(err)
		}
		deleted, err := db.DeleteGallery(ctx, "doomed", false)
		if err != nil || len(deleted) != 0 {
			t.Fatalf("DeleteGallery = %v, %v", deleted, err)
		}
		if f, _ := db.GetFace(ctx, faces[1].ID); !reflect.DeepEqual(f.Galleries, []string{"keep"}) {
			t.Errorf("galleries %v", f.Galleries)
		}
		mustCheck(t, db)
	})
	t.Run("with faces", func(t *testing.T) {
		db, faces := setup(t)
		deleted, err := db.DeleteGallery(ctx, "doomed", true)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(deleted, []uint64{faces[0].ID}) {
			t.Errorf("deleted %v, want [%d]", deleted, faces[0].ID)
		}
		if _, err := db.GetFace(ctx, faces[0].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("face only in the gallery survives: %v", err)
		}
		if n, _ := db.GalleryFaceCount(ctx, "keep"); n != 2 {
			t.Errorf("keep has %d faces, want 2", n)
		}
		if _, err := db.GalleryFaceCount(ctx, "doomed"); !errors.Is(err, ErrNotFound) {
			t.Errorf("count of deleted gallery: %v", err)
		}
		// The name can be reused, empty.
		mustGalleries(t, db, "doomed")
		if n, _ := db.GalleryFaceCount(ctx, "doomed"); n != 0 {
			t.Errorf("recreated gallery has %d faces", n)
		}
		mustCheck(t, db)
	})
	t.Run("missing", func(t *testing.T) {
		db, _ := setup(t)
		_, err := db.DeleteGallery(ctx, "nope", true)
		wantErr(t, "DeleteGallery", err, ErrNotFound)
	})
}
