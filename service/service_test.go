package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// vision is loaded once: model loading dominates the package's test time.
var vision *daemon.Vision

func TestMain(m *testing.M) {
	cfg := daemon.DefaultVision()
	cfg.Attributes = false
	var err error
	if vision, err = daemon.OpenVision(context.Background(), cfg); err != nil {
		fmt.Println("load models:", err, "(run make deps)")
		os.Exit(1)
	}
	if db := os.Getenv(crashDBEnv); db != "" {
		err := runCrashChild(db, os.Getenv(crashPhotoEnv))
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	code := m.Run()
	vision.Close()
	os.Exit(code)
}

type fixture struct {
	svc  *service.Service
	db   *store.DB
	path string
}

func newFixture(t *testing.T, path string) *fixture {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "faced.db")
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(context.Background(), db, vision.Pipeline, service.Config{}, nil)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	f := &fixture{svc: svc, db: db, path: path}
	t.Cleanup(func() { db.Close() })
	return f
}

func photo(t *testing.T, name string) []byte {
	return testenv.ReadPhoto(t, "deepface/"+name)
}

// People of master.csv: two photos each of the same person.
var people = []struct{ id, enroll, probe string }{
	{"angelina", "img1.jpg", "img2.jpg"},
	{"p13", "img13.jpg", "img14.jpg"},
	{"p8", "img8.jpg", "img9.jpg"},
}

func enrollPeople(t *testing.T, s *service.Service) {
	t.Helper()
	for _, p := range people {
		_, faces, err := s.Enroll(context.Background(), service.EnrollRequest{
			Person: store.Person{ID: p.id, Name: p.id},
			Photos: [][]byte{photo(t, p.enroll)},
		})
		if err != nil || len(faces) != 1 {
			t.Fatalf("enrol %s: %d faces, %v", p.id, len(faces), err)
		}
	}
}

func identify(t *testing.T, s *service.Service, req service.IdentifyRequest) []service.IdentifiedFace {
	t.Helper()
	res, err := s.Identify(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func topPerson(res []service.IdentifiedFace) string {
	if len(res) == 0 || len(res[0].Matches) == 0 {
		return ""
	}
	return res[0].Matches[0].Person.ID
}

func TestEnrollIdentifyDelete(t *testing.T) {
	f := newFixture(t, "")
	enrollPeople(t, f.svc)
	for _, p := range people {
		res := identify(t, f.svc, service.IdentifyRequest{Photo: photo(t, p.probe), Threshold: service.DefaultThreshold})
		if got := topPerson(res); got != p.id {
			t.Errorf("%s identified as %q", p.probe, got)
		}
		if m := res[0].Matches[0]; m.Confidence < 0.75 || m.Confidence > 1 || m.Similarity <= 0 {
			t.Errorf("%s: match %+v", p.probe, m)
		}
	}
	// An unenrolled person matches nobody at the default threshold.
	if got := topPerson(identify(t, f.svc, service.IdentifyRequest{Photo: photo(t, "img20.jpg"), Threshold: service.DefaultThreshold})); got != "" {
		t.Errorf("stranger identified as %q", got)
	}
	if err := f.svc.DeletePerson(context.Background(), "p13"); err != nil {
		t.Fatal(err)
	}
	res := identify(t, f.svc, service.IdentifyRequest{Photo: photo(t, "img14.jpg"), N: 3, Threshold: service.Threshold{None: true}})
	for _, m := range res[0].Matches {
		if m.Person.ID == "p13" {
			t.Fatal("deleted person still found")
		}
	}
	if _, err := f.svc.GetPerson(context.Background(), "p13"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted person: %v", err)
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t, "")
	enrollPeople(t, f.svc)
	ctx := context.Background()
	same, err := f.svc.Verify(ctx, service.VerifyRequest{PhotoA: photo(t, "img1.jpg"), PhotoB: photo(t, "img4.jpg"), Threshold: service.DefaultThreshold})
	if err != nil || !same.Verified || len(same.Pairs) != 1 {
		t.Fatalf("same person: %+v, %v", same, err)
	}
	diff, err := f.svc.Verify(ctx, service.VerifyRequest{PhotoA: photo(t, "img1.jpg"), PhotoB: photo(t, "img13.jpg"), Threshold: service.DefaultThreshold})
	if err != nil || diff.Verified {
		t.Fatalf("different people verified: %+v, %v", diff, err)
	}
	toPerson, err := f.svc.Verify(ctx, service.VerifyRequest{PhotoA: photo(t, "img9.jpg"), PersonID: "p8", Threshold: service.DefaultThreshold})
	if err != nil || !toPerson.Verified || toPerson.Pairs[0].FaceID == 0 {
		t.Fatalf("photo to person: %+v, %v", toPerson, err)
	}
	// Couple vs Angelina: one pair per face of A, the left face matches.
	couple, err := f.svc.Verify(ctx, service.VerifyRequest{PhotoA: photo(t, "couple.jpg"), PhotoB: photo(t, "img1.jpg"), Threshold: service.DefaultThreshold})
	if err != nil || len(couple.Pairs) != 2 || !couple.Verified {
		t.Fatalf("couple: %+v, %v", couple.Pairs, err)
	}
	none, err := f.svc.Verify(ctx, service.VerifyRequest{PhotoA: photo(t, "img1.jpg"), PhotoB: photo(t, "img4.jpg"), Threshold: service.Threshold{None: true}})
	if err != nil || none.Verified || none.Pairs[0].Confidence == 0 {
		t.Fatalf("threshold none must report similarity without a verdict: %+v, %v", none, err)
	}
	if _, err := f.svc.Verify(ctx, service.VerifyRequest{PhotoA: photo(t, "img1.jpg"), PersonID: "nobody"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown person: %v", err)
	}
	if _, err := f.svc.Verify(ctx, service.VerifyRequest{PhotoA: grey(t), PhotoB: photo(t, "img1.jpg")}); !errors.Is(err, service.ErrNoFace) {
		t.Fatalf("no face: %v", err)
	}
}

func grey(t *testing.T) []byte {
	var buf bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 320, 240))
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFailedEnrollLeavesNothing: a bad photo among good ones stores nothing.
func TestFailedEnrollLeavesNothing(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	_, _, err := f.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: "x"}, Photos: [][]byte{photo(t, "img1.jpg"), grey(t)}})
	var nf *service.NoFaceError
	if !errors.As(err, &nf) || nf.Photo != 1 {
		t.Fatalf("err = %v, want NoFaceError for photo 1", err)
	}
	_, _, err = f.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: "y"}, Photos: [][]byte{photo(t, "couple.jpg")}, FaceInput: service.FaceInput{Selector: face.SelectReject}})
	var many *face.ErrTooManyFaces
	if !errors.As(err, &many) {
		t.Fatalf("err = %v, want too many faces", err)
	}
	page, err := f.svc.ListPersons(ctx, store.ListOptions{})
	if err != nil || len(page.Items) != 0 || f.svc.IndexSize() != 0 {
		t.Fatalf("after failed enrols: %d persons, %d indexed, %v", len(page.Items), f.svc.IndexSize(), err)
	}
	// biggest takes the larger face of the couple.
	if _, faces, err := f.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: "z"}, Photos: [][]byte{photo(t, "couple.jpg")}}); err != nil || len(faces) != 1 {
		t.Fatalf("biggest: %v", err)
	}
	if _, _, err := f.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: "z"}, Photos: [][]byte{photo(t, "img1.jpg")}}); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("duplicate id: %v", err)
	}
}

func TestGalleries(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	if _, err := f.svc.CreateGallery(ctx, store.Gallery{Name: "staff"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateGallery(ctx, store.Gallery{Name: "visitors"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateGallery(ctx, store.Gallery{Name: "bad name!"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad gallery name: %v", err)
	}
	_, faces, err := f.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: "a"}, Photos: [][]byte{photo(t, "img1.jpg")}, FaceInput: service.FaceInput{Galleries: []string{"staff"}}})
	if err != nil {
		t.Fatal(err)
	}
	probe := photo(t, "img2.jpg")
	find := func(galleries ...string) string {
		return topPerson(identify(t, f.svc, service.IdentifyRequest{Photo: probe, Galleries: galleries, Threshold: service.DefaultThreshold}))
	}
	if find("staff") != "a" || find() != "a" || find("visitors") != "" {
		t.Fatalf("staff=%q all=%q visitors=%q", find("staff"), find(), find("visitors"))
	}
	if _, err := f.svc.UpdateFace(ctx, faces[0].ID, service.FaceUpdate{Galleries: &service.GalleryChange{Add: []string{"visitors"}, Del: []string{"staff"}}}); err != nil {
		t.Fatal(err)
	}
	if find("staff") != "" || find("visitors") != "a" {
		t.Fatal("gallery change not visible to search")
	}
	if _, err := f.svc.Identify(ctx, service.IdentifyRequest{Photo: probe, Galleries: []string{"nope"}}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown gallery: %v", err)
	}
	if err := f.svc.DeleteGallery(ctx, "visitors", true); err != nil {
		t.Fatal(err)
	}
	if find() != "" || f.svc.IndexSize() != 0 {
		t.Fatal("faces of a deleted gallery still searchable")
	}
	if err := f.svc.DeleteGallery(ctx, "default", false); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("deleting the default gallery: %v", err)
	}
}

// TestGalleryCountsAndOutbox: the metrics views list galleries with their
// searchable sizes (bounded) and the outbox queue's state.
func TestGalleryCountsAndOutbox(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	for _, g := range []string{"staff", "visitors"} {
		if _, err := f.svc.CreateGallery(ctx, store.Gallery{Name: g}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: "a"}, Photos: [][]byte{photo(t, "img1.jpg")}, FaceInput: service.FaceInput{Galleries: []string{"staff"}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: "b"}, Photos: [][]byte{photo(t, "img13.jpg")}}); err != nil {
		t.Fatal(err)
	}
	counts, more, err := f.svc.GalleryCounts(ctx, 10)
	want := []service.GalleryCount{{"default", 1}, {"staff", 1}, {"visitors", 0}}
	if err != nil || more || !slices.Equal(counts, want) {
		t.Fatalf("GalleryCounts = %v, more %v, %v; want %v", counts, more, err, want)
	}
	if counts, more, err := f.svc.GalleryCounts(ctx, 2); err != nil || !more || !slices.Equal(counts, want[:2]) {
		t.Fatalf("GalleryCounts(2) = %v, more %v, %v", counts, more, err)
	}
	if err := f.db.EnqueueOutbox(ctx, store.OutboxMessage{Topic: "t", Payload: []byte("12345"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if st, err := f.svc.OutboxStats(ctx); err != nil || st.Count != 1 || st.Bytes != 6 {
		t.Fatalf("OutboxStats = %+v, %v", st, err)
	}
}

// TestRestartRebuildsIndex: enrolments survive closing the store, and the
// index is rebuilt from it.
func TestRestartRebuildsIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faced.db")
	f := newFixture(t, path)
	enrollPeople(t, f.svc)
	f.db.Close()
	g := newFixture(t, path)
	if g.svc.IndexSize() != len(people) {
		t.Fatalf("index has %d faces after restart, want %d", g.svc.IndexSize(), len(people))
	}
	if got := topPerson(identify(t, g.svc, service.IdentifyRequest{Photo: photo(t, "img9.jpg"), Threshold: service.DefaultThreshold})); got != "p8" {
		t.Fatalf("after restart img9 identified as %q", got)
	}
}

func TestEventsRecordedAndSearched(t *testing.T) {
	f := newFixture(t, "")
	enrollPeople(t, f.svc)
	ctx := context.Background()
	for _, ph := range []string{"img2.jpg", "img20.jpg"} {
		res := identify(t, f.svc, service.IdentifyRequest{Photo: photo(t, ph), Threshold: service.DefaultThreshold, Record: true, CameraID: "door-1", Snapshot: true})
		if res[0].EventID == 0 {
			t.Fatalf("%s: no event recorded", ph)
		}
	}
	matched := true
	page, err := f.svc.ListEvents(ctx, store.EventQuery{CameraIDs: []string{"door-1"}, Matched: &matched})
	if err != nil || len(page.Items) != 1 || page.Items[0].PersonID != "angelina" {
		t.Fatalf("matched events: %+v, %v", page.Items, err)
	}
	all, err := f.svc.ListEvents(ctx, store.EventQuery{From: time.Now().Add(-time.Hour)})
	if err != nil || len(all.Items) != 2 {
		t.Fatalf("all events: %d, %v", len(all.Items), err)
	}
	byPerson, err := f.svc.ListEvents(ctx, store.EventQuery{PersonID: "angelina"})
	if err != nil || len(byPerson.Items) != 1 {
		t.Fatalf("events by person: %d, %v", len(byPerson.Items), err)
	}
}

// TestConcurrentEnrollIdentifyDelete runs writers and readers together; run
// under -race it proves the service's locking.
func TestConcurrentEnrollIdentifyDelete(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	probe := photo(t, "img2.jpg")
	enrollPhoto := photo(t, "img1.jpg")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 2 {
		wg.Go(func() {
			for i := range 4 {
				id := fmt.Sprintf("w%d-%d", w, i)
				if _, _, err := f.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: id}, Photos: [][]byte{enrollPhoto}}); err != nil {
					errs <- err
					return
				}
				if i%2 == 0 {
					if err := f.svc.DeletePerson(ctx, id); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for range 6 {
			if _, err := f.svc.Identify(ctx, service.IdentifyRequest{Photo: probe, N: 5, Threshold: service.DefaultThreshold}); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	page, err := f.svc.ListPersons(ctx, store.ListOptions{})
	if err != nil || len(page.Items) != 4 || f.svc.IndexSize() != 4 {
		t.Fatalf("%d persons and %d indexed faces, want 4 and 4 (%v)", len(page.Items), f.svc.IndexSize(), err)
	}
}
