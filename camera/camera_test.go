package camera_test

import (
	"context"
	"testing"
	"time"

	"github.com/facedhq/faced/camera"
	"github.com/facedhq/faced/internal/cliptest"
	"github.com/facedhq/faced/internal/testenv"
)

// An enrolled person walking up to a camera (a clip of another photo of
// them) is decided once, by name, with its latency recorded.
func TestClipDecidesEnrolledPersonOnce(t *testing.T) {
	svc, db := newService(t, map[string]string{"angelina": "img1.jpg"})
	clip := cliptest.Approach{Photo: testenv.DataDir(t) + "/deepface/img2.jpg"}.Make(t, t.TempDir())
	cam, err := camera.New(camera.Config{ID: "door-cam", URL: "file://" + clip, RequireLiveness: true}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	cam.Run(ctx)
	t.Logf("ran %v: %+v", time.Since(start), cam.Status())
	evs := cameraEvents(t, db, "door-cam")
	if len(evs) != 1 {
		for _, e := range evs {
			t.Logf("event %+v track %+v", e, *e.Track)
		}
		t.Fatalf("%d events, want 1", len(evs))
	}
	e := evs[0]
	if !e.Matched || e.PersonID != "angelina" || e.Track == nil {
		t.Fatalf("event %+v, want a matched decision naming angelina", e)
	}
	t.Logf("decision: confidence %.3f, latency %v, liveness %v live %v", e.Confidence, e.Track.Latency, *e.Track.Liveness, e.Track.Live)
	if st := cam.Status(); st.State != camera.StateEnded || st.Processed == 0 {
		t.Fatalf("status %+v, want ended after processing frames", st)
	}
}

// A region of interest that excludes where the person walks decides
// nothing; the faces are ignored, not tracked.
func TestROIIgnoresFacesOutside(t *testing.T) {
	approach, _ := approachClips(t)
	svc, db := newService(t, map[string]string{"angelina": "img1.jpg"})
	cam, err := camera.New(camera.Config{ID: "corner", URL: "file://" + approach, ROI: &camera.ROI{X: 0, Y: 0, W: 0.2, H: 0.2}}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	cam.Run(context.Background())
	if evs := cameraEvents(t, db, "corner"); len(evs) != 0 {
		t.Fatalf("%d events from faces outside the region, want 0", len(evs))
	}
	if st := cam.Status(); st.Processed == 0 {
		t.Fatalf("status %+v: the clip was not processed", st)
	}
}
