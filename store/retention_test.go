package store

import (
	"errors"
	"testing"
	"time"
)

func TestPruneEvents(t *testing.T) {
	tests := []struct {
		name      string
		policy    RetentionPolicy
		wantLeft  int // of 30 events, one a day, newest at "now"
		wantSnaps int
	}{
		{"by age", RetentionPolicy{EventsMaxAge: 10*24*time.Hour - time.Minute}, 10, 10},
		{"by count", RetentionPolicy{EventsMaxCount: 7}, 7, 12},
		{"age and count: the stricter wins", RetentionPolicy{EventsMaxAge: 10*24*time.Hour - time.Minute, EventsMaxCount: 4}, 4, 13},
		{"unlimited", RetentionPolicy{}, 30, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(n int) { pruneBatch = n }(pruneBatch)
			pruneBatch = 3 // exercise batching
			clk := newClock()
			db, _ := openTest(t, Options{Now: clk.Now})
			start := clk.Now()
			var ids []uint64
			for i := range 30 {
				var snap []byte
				if i%2 == 0 {
					snap = []byte("frame")
				}
				e, err := db.AddEvent(ctx, Event{CameraID: "c", PersonID: "p", Matched: true, Time: start.Add(time.Duration(i) * 24 * time.Hour)}, snap, nil)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, e.ID)
			}
			clk.Advance(29 * 24 * time.Hour)
			st, err := db.Prune(ctx, tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			if st.Events != 30-tt.wantLeft || st.Snapshots != tt.wantSnaps || st.Images != 0 {
				t.Errorf("PruneStats %+v, want %d events %d snapshots", st, 30-tt.wantLeft, tt.wantSnaps)
			}
			// The newest survive, the oldest are gone.
			for i, id := range ids {
				_, err := db.GetEvent(ctx, id)
				if keep := i >= 30-tt.wantLeft; keep != (err == nil) {
					t.Errorf("event %d (day %d): %v, keep %v", id, i, err, keep)
				}
			}
			if page, _ := db.ListEvents(ctx, EventQuery{PersonID: "p"}); len(page.Items) != tt.wantLeft {
				t.Errorf("person index lists %d events, want %d", len(page.Items), tt.wantLeft)
			}
			mustCheck(t, db)
		})
	}
}

func TestPruneImages(t *testing.T) {
	tests := []struct {
		name     string
		policy   RetentionPolicy
		wantLeft int // of 10 images, one face a day
	}{
		{"by age", RetentionPolicy{ImagesMaxAge: 4*24*time.Hour + time.Minute}, 4}, // days 7..11 but 8
		{"by count", RetentionPolicy{ImagesMaxCount: 6}, 6},
		{"both", RetentionPolicy{ImagesMaxAge: 5*24*time.Hour + time.Minute, ImagesMaxCount: 2}, 2},
		{"age keeps all", RetentionPolicy{ImagesMaxAge: 100 * 24 * time.Hour}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(n int) { pruneBatch = n }(pruneBatch)
			pruneBatch = 3
			clk := newClock()
			db, _ := openTest(t, Options{Now: clk.Now})
			mustGalleries(t, db, "g")
			var faces []Face
			for i := range 12 {
				nf := face(uint64(i), "g")
				if i != 3 && i != 8 { // two faces without an image among them
					nf.Image = []byte("jpeg")
				}
				_, fs, err := db.CreatePerson(ctx, Person{}, []NewFace{nf})
				if err != nil {
					t.Fatal(err)
				}
				faces = append(faces, fs...)
				clk.Advance(24 * time.Hour)
			}
			clk.Advance(-24 * time.Hour) // now = the last face's day
			st, err := db.Prune(ctx, tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			if st.Images != 10-tt.wantLeft || st.Events != 0 {
				t.Errorf("PruneStats %+v, want %d images", st, 10-tt.wantLeft)
			}
			left := 0
			for _, f := range faces {
				got, err := db.GetFace(ctx, f.ID)
				if err != nil {
					t.Fatalf("face %d went with its image: %v", f.ID, err)
				}
				_, imgErr := db.FaceImage(ctx, f.ID)
				if got.HasImage != (imgErr == nil) {
					t.Errorf("face %d: HasImage %v, image error %v", f.ID, got.HasImage, imgErr)
				}
				if got.HasImage {
					left++
				} else if !errors.Is(imgErr, ErrNotFound) {
					t.Errorf("face %d: image error %v, want ErrNotFound", f.ID, imgErr)
				}
			}
			if left != tt.wantLeft {
				t.Errorf("%d images left, want %d", left, tt.wantLeft)
			}
			// What is left is the newest.
			if f, _ := db.GetFace(ctx, faces[11].ID); !f.HasImage {
				t.Error("newest image pruned")
			}
			mustCheck(t, db)
		})
	}
	t.Run("negative", func(t *testing.T) {
		db, _ := openTest(t, Options{})
		_, err := db.Prune(ctx, RetentionPolicy{EventsMaxCount: -1})
		wantErr(t, "Prune", err, ErrInvalid)
	})
}
