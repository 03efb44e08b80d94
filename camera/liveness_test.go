package camera_test

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/facedhq/faced/camera"
	"github.com/facedhq/faced/internal/cliptest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// nuaaFrames lists one NUAA subject's photos of a kind: "F" printed-photo
// attacks, "T" live captures, in file order.
func nuaaFrames(t *testing.T, subject, kind string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(testenv.DataDir(t), "nuaa", "nuaa-"+subject+"_*_"+kind+".jpg"))
	if err != nil || len(all) < 6 {
		t.Fatalf("nuaa subject %s %s: %d photos (%v)", subject, kind, len(all), err)
	}
	sort.Strings(all)
	return all
}

// A printed photo held up to a camera (the NUAA attacks, as a clip) is a
// liveness failure; the same subject live is not. Neither is enrolled.
func TestPrintedPhotoClipFailsLiveness(t *testing.T) {
	svc, db := newService(t, map[string]string{"angelina": "img1.jpg"})
	dir := t.TempDir()
	for _, c := range []struct {
		kind     string
		wantLive bool
		decision string
	}{
		{"F", false, "spoof"},
		{"T", true, "unknown"},
	} {
		clip := cliptest.Slideshow(t, dir, "nuaa-0001-"+c.kind, nuaaFrames(t, "0001", c.kind), 0.4, 640, 480)
		id := "nuaa-" + strings.ToLower(c.kind)
		cam, err := camera.New(camera.Config{ID: id, URL: "file://" + clip, RequireLiveness: true}, svc, nil)
		if err != nil {
			t.Fatal(err)
		}
		cam.Run(context.Background())
		evs := cameraEvents(t, db, id)
		if len(evs) == 0 {
			t.Fatalf("%s: no decision; status %+v", c.kind, cam.Status())
		}
		for _, e := range evs {
			if e.Track == nil || e.Track.Liveness == nil {
				t.Fatalf("%s: event %+v without liveness evidence", c.kind, e)
			}
			t.Logf("%s: track %d decision %v liveness %.3f", c.kind, e.Track.TrackID, e.Meta["decision"], *e.Track.Liveness)
			if e.Track.Live != c.wantLive || e.Meta["decision"] != c.decision || e.Matched {
				t.Fatalf("%s: live %v decision %v matched %v; want live %v decision %s", c.kind, e.Track.Live, e.Meta["decision"], e.Matched, c.wantLive, c.decision)
			}
		}
	}
}

// An unknown face whose crop the camera kept can be enrolled from its
// event; the same person walking up again is then decided by name.
func TestEnrolUnknownFromEvent(t *testing.T) {
	_, stranger := approachClips(t)
	svc, db := newService(t, map[string]string{"angelina": "img1.jpg"})
	cam, err := camera.New(camera.Config{ID: "entry", URL: "file://" + stranger, KeepCrops: true}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	cam.Run(context.Background())
	evs := cameraEvents(t, db, "entry")
	if len(evs) != 1 || evs[0].Matched || !evs[0].HasSnapshot {
		t.Fatalf("events %+v, want one unknown decision with its crop kept", evs)
	}
	if _, _, err := svc.EnrollFromEvent(context.Background(), store.Person{ID: "visitor"}, evs[0].ID, service.FaceInput{}); err != nil {
		t.Fatal(err)
	}
	again, err := camera.New(camera.Config{ID: "entry-2", URL: "file://" + stranger}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	again.Run(context.Background())
	if evs := cameraEvents(t, db, "entry-2"); len(evs) != 1 || evs[0].PersonID != "visitor" {
		t.Fatalf("second passage: %+v, want one decision naming visitor", evs)
	}
	// Without keep_crops there is nothing to enrol from: a clear error.
	plain, err := camera.New(camera.Config{ID: "entry-3", URL: "file://" + stranger}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain.Run(context.Background())
	evs = cameraEvents(t, db, "entry-3")
	if len(evs) != 1 || evs[0].HasSnapshot {
		t.Fatalf("events %+v, want one decision without a crop", evs)
	}
	if _, _, err := svc.EnrollFromEvent(context.Background(), store.Person{ID: "nobody"}, evs[0].ID, service.FaceInput{}); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("enrol from an event without a crop: %v, want ErrInvalid", err)
	}
}
