package camera_test

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facedhq/faced/camera"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/cliptest"
	"github.com/facedhq/faced/internal/rtsptest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/store"
)

// clips are made once per test binary: encoding is the slow part.
var clips struct {
	once     sync.Once
	dir      string
	approach string // angelina (deepface img2), enrolled from img1
	stranger string // deepface img38, never enrolled
}

func approachClips(t *testing.T) (approach, stranger string) {
	t.Helper()
	clips.once.Do(func() {
		dir, err := os.MkdirTemp("", "faced-camera-clips-")
		if err != nil {
			t.Fatal(err)
		}
		clips.dir = dir
		data := testenv.DataDir(t)
		clips.approach = cliptest.Approach{Photo: data + "/deepface/img2.jpg"}.Make(t, dir)
		clips.stranger = cliptest.Approach{Photo: data + "/deepface/img38.jpg"}.Make(t, dir)
	})
	if clips.approach == "" {
		t.Fatal("clips were not made (see the first test's failure)")
	}
	return clips.approach, clips.stranger
}

// runFor runs a camera until it has recorded want events or the deadline
// passes, then stops it and returns its events.
func runUntil(t *testing.T, cam *camera.Camera, db *store.DB, want int, deadline time.Duration) []store.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cam.Run(ctx) }()
	defer func() { cancel(); <-done }()
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		if evs := cameraEvents(t, db, cam.ID()); len(evs) >= want {
			return evs
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("camera %s: %d events after %v, want %d; status %+v", cam.ID(), len(cameraEvents(t, db, cam.ID())), deadline, want, cam.Status())
	return nil
}

func waitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A stranger walking up is one unknown event, with the best candidate kept
// as evidence and no person id.
func TestClipDecidesStrangerUnknown(t *testing.T) {
	_, stranger := approachClips(t)
	svc, db := newService(t, map[string]string{"angelina": "img1.jpg"})
	cam, err := camera.New(camera.Config{ID: "door-cam", URL: "file://" + stranger, RequireLiveness: true}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	cam.Run(context.Background())
	evs := cameraEvents(t, db, "door-cam")
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1: %+v", len(evs), evs)
	}
	e := evs[0]
	if e.Matched || e.Track == nil || e.Meta["decision"] != "unknown" {
		t.Fatalf("event %+v meta %v, want one unknown decision", e, e.Meta)
	}
	// The best candidate stays as evidence (unmatched: the API shows it
	// as candidate_person_id, never person_id).
	if e.PersonID != "angelina" || e.Confidence <= 0 || e.Confidence >= 0.75 {
		t.Fatalf("evidence: candidate %q confidence %.3f; want angelina below the medium preset", e.PersonID, e.Confidence)
	}
}

// Over real RTSP (gortsplib relaying ffmpeg): the enrolled person is
// decided once; when the server dies mid-stream the camera reports it,
// reconnects once it is back, and the same person seen again in the
// restarted stream is not a second decision.
func TestRTSPReconnectsWithoutDuplicateDecision(t *testing.T) {
	approach, _ := approachClips(t)
	svc, db := newService(t, map[string]string{"angelina": "img1.jpg"})
	ffmpeg := cliptest.FFmpeg(t)
	srv := rtsptest.Start(t, "")
	pub := srv.Publish(t, ffmpeg, approach, "door")
	cam, err := camera.New(camera.Config{ID: "door-cam", URL: srv.URL("door"), RequireLiveness: true}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cam.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the first decision", 60*time.Second, func() bool { return len(cameraEvents(t, db, "door-cam")) == 1 })
	e := cameraEvents(t, db, "door-cam")[0]
	if e.PersonID != "angelina" || e.Track == nil {
		t.Fatalf("event %+v, want angelina's decision", e)
	}
	t.Logf("decided over RTSP in %v", e.Track.Latency)

	pub.Stop()
	srv.Close()
	waitFor(t, "the camera to notice the stream stopped", 30*time.Second, func() bool {
		return cam.Status().State == camera.StateReconnecting
	})
	if st := cam.Status(); st.Error == "" {
		t.Fatalf("status %+v: a reconnecting camera must say why", st)
	}
	srv2 := rtsptest.Start(t, srv.Addr)
	srv2.Publish(t, ffmpeg, approach, "door")
	frames := cam.Status().Frames
	waitFor(t, "frames after the restart", 60*time.Second, func() bool {
		st := cam.Status()
		return st.State == camera.StateRunning && st.Frames > frames+100 // 4 s: one whole pass of the clip
	})
	if st := cam.Status(); st.Reconnects < 1 {
		t.Fatalf("status %+v: want at least one reconnect", st)
	}
	time.Sleep(time.Second) // let the restarted pass's track be decided
	if evs := cameraEvents(t, db, "door-cam"); len(evs) != 1 {
		t.Fatalf("%d events after the restart, want still 1 (the same passage)", len(evs))
	}
	if st := cam.Status(); st.Repeats < 1 {
		t.Fatalf("status %+v: the person seen again should count as a repeat", st)
	}
}

// mjpegServer serves frames as multipart/x-mixed-replace at about fps.
func mjpegServer(t *testing.T, frames func(i int) []byte, fps int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mw := multipart.NewWriter(w)
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+mw.Boundary())
		for i := 0; ; i++ {
			data := frames(i)
			if data == nil {
				return
			}
			part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"image/jpeg"}})
			if err != nil {
				return
			}
			if _, err := part.Write(data); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second / time.Duration(fps)):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// framed puts a photo on a 1280x720 grey frame at the given height.
func framed(t *testing.T, photo []byte, height int) []byte {
	t.Helper()
	src, err := jpeg.Decode(bytes.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	b := src.Bounds()
	w := b.Dx() * height / b.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	for i := range dst.Pix {
		dst.Pix[i] = 0x60
	}
	x0, y0 := (1280-w)/2, (720-height)/2
	for y := range height {
		for x := range w {
			dst.Set(x0+x, y0+y, src.At(b.Min.X+x*b.Dx()/w, b.Min.Y+y*b.Dy()/height))
		}
	}
	var out bytes.Buffer
	if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// An HTTP MJPEG camera (a test server) is decided like RTSP.
func TestMJPEGSourceDecides(t *testing.T) {
	svc, db := newService(t, map[string]string{"angelina": "img1.jpg"})
	frame := framed(t, testenv.ReadPhoto(t, "deepface/img2.jpg"), 600)
	srv := mjpegServer(t, func(int) []byte { return frame }, 15)
	cam, err := camera.New(camera.Config{ID: "lobby", URL: srv.URL + "/stream.mjpg"}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := runUntil(t, cam, db, 1, 60*time.Second)
	if evs[0].PersonID != "angelina" {
		t.Fatalf("event %+v, want angelina", evs[0])
	}
}

// A JPEG snapshot URL is polled.
func TestSnapshotSourceDecides(t *testing.T) {
	svc, db := newService(t, map[string]string{"angelina": "img1.jpg"})
	frame := framed(t, testenv.ReadPhoto(t, "deepface/img2.jpg"), 600)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(frame)
	}))
	defer srv.Close()
	cam, err := camera.New(camera.Config{ID: "gate", URL: srv.URL + "/snapshot.jpg", FPS: 5}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if evs := runUntil(t, cam, db, 1, 60*time.Second); evs[0].PersonID != "angelina" {
		t.Fatalf("event %+v, want angelina", evs[0])
	}
}

// Faults never take the daemon down: each leaves the camera reconnecting
// with a reason, and nothing is recorded.
func TestSourceFaultsAreReportedNotFatal(t *testing.T) {
	approach, _ := approachClips(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mp4")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a video "), 5000), 0o644)
	whole, err := os.ReadFile(approach)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mp4")
	os.WriteFile(truncated, whole[:len(whole)/3], 0o644)

	// A TCP server that accepts and never says a word.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// An MJPEG stream whose second part is a JPEG header declaring
	// 60000x60000 pixels, and one whose part is cut short.
	good := framed(t, testenv.ReadPhoto(t, "deepface/img2.jpg"), 400)
	bomb := jpegBomb(t, good)
	bombSrv := mjpegServer(t, func(int) []byte { return bomb }, 10)
	cutSrv := mjpegServer(t, func(i int) []byte { return good[:len(good)/2] }, 10)

	svc, db := newService(t, nil)
	for _, c := range []struct {
		name, url string
		lim       face.Limits
		want      string
	}{
		{"garbage file", "file://" + garbage, face.Limits{}, ""},
		{"silent rtsp server", "rtsp://" + silent.Addr().String() + "/x", face.Limits{}, ""},
		{"silent http server", "http://" + silent.Addr().String() + "/x.mjpg", face.Limits{}, ""},
		{"frame over the pixel limit", "file://" + approach, face.Limits{MaxPixels: 1_000_000}, "pixels"},
		{"mjpeg bomb", bombSrv.URL, face.Limits{}, "pixels"},
		{"mjpeg truncated part", cutSrv.URL, face.Limits{}, "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cam, err := camera.New(camera.Config{ID: "faulty", URL: c.url, Limits: c.lim}, svc, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); cam.Run(ctx) }()
			waitFor(t, "the fault to be reported", 30*time.Second, func() bool {
				st := cam.Status()
				return st.State == camera.StateReconnecting && st.Error != ""
			})
			st := cam.Status()
			cancel()
			<-done
			if c.want != "" && !strings.Contains(st.Error, c.want) {
				t.Fatalf("error %q, want it to mention %q", st.Error, c.want)
			}
			t.Logf("%s: %s", c.name, st.Error)
		})
	}
	// A truncated clip plays what it has (or fails to open); either way
	// the camera ends or reports, and the process is alive to check.
	cam, err := camera.New(camera.Config{ID: "cut", URL: "file://" + truncated}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cam.Run(ctx)
	if st := cam.Status(); st.State != camera.StateEnded && st.State != camera.StateStopped {
		t.Fatalf("truncated clip: status %+v", st)
	}
	if n := len(cameraEvents(t, db, "faulty")); n != 0 {
		t.Fatalf("%d events from faulty sources, want 0", n)
	}
}

// jpegBomb is a real JPEG whose frame header is rewritten to declare
// 60000x60000 pixels.
func jpegBomb(t *testing.T, good []byte) []byte {
	t.Helper()
	b := bytes.Clone(good)
	for i := 2; i+9 < len(b); i++ {
		if b[i] == 0xFF && (b[i+1] == 0xC0 || b[i+1] == 0xC2) {
			b[i+5], b[i+6], b[i+7], b[i+8] = 0xEA, 0x60, 0xEA, 0x60 // height, width
			return b
		}
	}
	t.Fatal("no SOF marker in the test JPEG")
	return nil
}
