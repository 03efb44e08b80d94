package camera_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/internal/visiontest"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// vision is loaded once: model loading dominates the package's test time.
var vision *daemon.Vision

func TestMain(m *testing.M) { visiontest.Main(m, &vision) }

// newService opens a service on a fresh store with the given persons
// enrolled (id → deepface photo).
func newService(t *testing.T, enrol map[string]string) (*service.Service, *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "faced.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := service.New(context.Background(), db, vision.Pipeline, service.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, photo := range enrol {
		_, _, err := svc.Enroll(context.Background(), service.EnrollRequest{
			Person: store.Person{ID: id, Name: id},
			Photos: [][]byte{testenv.ReadPhoto(t, "deepface/"+photo)},
		})
		if err != nil {
			t.Fatalf("enrol %s: %v", id, err)
		}
	}
	return svc, db
}

// cameraEvents lists the events a camera recorded, oldest first.
func cameraEvents(t *testing.T, db *store.DB, cameraID string) []store.Event {
	t.Helper()
	page, err := db.ListEvents(context.Background(), store.EventQuery{CameraIDs: []string{cameraID}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := page.Items
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
