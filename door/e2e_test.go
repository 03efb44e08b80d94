package door_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/facedhq/faced/camera"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/door"
	"github.com/facedhq/faced/door/gpiofake"
	"github.com/facedhq/faced/internal/cliptest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/internal/visiontest"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// vision is loaded once: model loading dominates these tests' time.
var vision *daemon.Vision

func TestMain(m *testing.M) { visiontest.Main(m, &vision) }

// receiver is a webhook receiver on loopback that checks signatures.
type receiver struct {
	mu     sync.Mutex
	bodies []map[string]any
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if door.Verify([]byte(webhookSecret), r.Header.Get("X-Faced-Timestamp"), r.Header.Get("X-Faced-Signature"), b, time.Now(), time.Minute) != nil {
		rc.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	rc.bodies = append(rc.bodies, m)
}

func (rc *receiver) got() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.bodies...)
}

const webhookSecret = "0123456789abcdef-door-secret"

type fixture struct {
	svc   *service.Service
	db    *store.DB
	chip  *gpiofake.Chip
	recv  *receiver
	ctrl  *door.Controller
	relay *door.Relay
	wieg  *door.WiegandOut
}

// newFixture enrols angelina (staff, card 4242, valid) and an expired
// person, and makes two doors: front (open at all times) and night (a
// schedule that is never open now), both driving a fake relay and Wiegand
// line and a real webhook receiver.
func newFixture(t *testing.T) *fixture {
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
	ctx := context.Background()
	for _, g := range []string{"staff"} {
		if _, err := svc.CreateGallery(ctx, store.Gallery{Name: g}); err != nil {
			t.Fatal(err)
		}
	}
	enrol := func(p store.Person, photo string) {
		if _, _, err := svc.Enroll(ctx, service.EnrollRequest{Person: p, Photos: [][]byte{testenv.ReadPhoto(t, "deepface/"+photo)},
			FaceInput: service.FaceInput{Galleries: []string{"staff"}}}); err != nil {
			t.Fatalf("enrol %s: %v", p.ID, err)
		}
	}
	enrol(store.Person{ID: "angelina", CardNumber: "4242"}, "img1.jpg")
	enrol(store.Person{ID: "former", ValidUntil: time.Now().Add(-time.Hour)}, "img38.jpg")

	f := &fixture{svc: svc, db: db, chip: gpiofake.New(), recv: &receiver{}}
	srv := httptest.NewServer(f.recv)
	t.Cleanup(srv.Close)
	wh, err := door.NewWebhook(door.WebhookConfig{DoorID: "front", Index: 2, URL: srv.URL + "/hook", Secret: webhookSecret}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); wh.Run(wctx) }()
	t.Cleanup(func() { stop(); <-done })
	if f.relay, err = door.NewRelay(f.chip, door.RelayConfig{DoorID: "front", Chip: "gpiochip0", Line: 17, Pulse: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if f.wieg, err = door.NewWiegand(f.chip, door.WiegandConfig{DoorID: "front", Chip: "gpiochip0", D0: 22, D1: 23, Format: door.Wiegand26, Facility: 18}); err != nil {
		t.Fatal(err)
	}
	nightRelay, err := door.NewRelay(f.chip, door.RelayConfig{DoorID: "night", Chip: "gpiochip0", Line: 5})
	if err != nil {
		t.Fatal(err)
	}
	// A window on no day: the night door's schedule is never open.
	never := &door.Schedule{Windows: []door.Window{{From: 0, To: 1440}}, Location: time.UTC}
	front := door.NewDoor(door.Config{ID: "front", Cameras: []string{"door-cam"},
		Rules: door.Rules{Galleries: []string{"staff"}, RequireLiveness: true}}, []door.Output{f.relay, f.wieg, wh})
	night := door.NewDoor(door.Config{ID: "night", Rules: door.Rules{Schedule: never, RequireLiveness: true}}, []door.Output{nightRelay})
	if f.ctrl, err = door.NewController(svc, []*door.Door{front, night}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.ctrl.Close() })
	return f
}

func (f *fixture) decide(t *testing.T, doorID, photo string) door.Result {
	t.Helper()
	res, err := f.ctrl.DecidePhoto(context.Background(), doorID, testenv.ReadPhoto(t, photo))
	if err != nil {
		t.Fatalf("decide %s at %s: %v", photo, doorID, err)
	}
	return res
}

// pulses counts the relay's rising edges.
func pulses(chip *gpiofake.Chip, line int) int {
	n := 0
	for _, e := range chip.Edges("gpiochip0", line) {
		if e.Value == 1 {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// wiegandFrame rebuilds the last frame sent on D0/D1 from the fake's edges.
func wiegandFrame(chip *gpiofake.Chip) door.Frame {
	type bit struct {
		at  time.Time
		one bool
	}
	var bits []bit
	for _, l := range []struct {
		line int
		one  bool
	}{{22, false}, {23, true}} {
		for _, e := range chip.Edges("gpiochip0", l.line) {
			if e.Value == 1 {
				bits = append(bits, bit{e.Time, l.one})
			}
		}
	}
	sort.Slice(bits, func(i, j int) bool { return bits[i].at.Before(bits[j].at) })
	var frame door.Frame
	for _, b := range bits {
		frame = append(frame, b.one)
	}
	return frame
}

// The decide scenarios, through the real pipeline: granted opens
// (relay pulse, Wiegand card, signed webhook), and each denial says why.
func TestDecideScenarios(t *testing.T) {
	f := newFixture(t)
	res := f.decide(t, "front", "deepface/img2.jpg")
	if res.Decision != door.Granted || res.PersonID != "angelina" || res.EventID == 0 {
		t.Fatalf("angelina at front: %+v, want granted", res)
	}
	waitFor(t, "the relay pulse", func() bool { return pulses(f.chip, 17) == 1 && f.chip.Value("gpiochip0", 17) == 0 })
	edges := f.chip.Edges("gpiochip0", 17)
	if d := edges[len(edges)-1].Time.Sub(edges[len(edges)-2].Time); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("relay pulse lasted %v, want about 200ms", d)
	}
	waitFor(t, "the Wiegand frame", func() bool { return len(wiegandFrame(f.chip)) == 26 })
	if _, fac, card, err := door.Decode(wiegandFrame(f.chip)); err != nil || fac != 18 || card != 4242 {
		t.Fatalf("Wiegand frame decodes to facility %d card %d (%v), want 18 / 4242", fac, card, err)
	}

	// Again at once: still granted, but one passage is one opening.
	again := f.decide(t, "front", "deepface/img4.jpg")
	if again.Decision != door.Granted || !again.Cooldown {
		t.Fatalf("second decision %+v, want granted within the cooldown", again)
	}

	for _, c := range []struct {
		door, photo, want string
	}{
		{"night", "deepface/img2.jpg", door.DeniedSchedule},
		{"front", "deepface/img39.jpg", door.DeniedExpired},            // former, valid_until passed
		{"front", "deepface/img17.jpg", door.DeniedUnknown},            // never enrolled
		{"front", "nuaa/nuaa-0001_00_00_01_0_F.jpg", door.DeniedSpoof}, // a printed photo
	} {
		res := f.decide(t, c.door, c.photo)
		if res.Decision != c.want || res.Reason == "" || res.EventID == 0 {
			t.Errorf("%s at %s: %+v, want %s with a reason and an event", c.photo, c.door, res, c.want)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := pulses(f.chip, 17); n != 1 {
		t.Errorf("front relay pulsed %d times, want once (cooldown and denials do not open)", n)
	}
	if n := pulses(f.chip, 5); n != 0 {
		t.Errorf("night relay pulsed %d times outside its schedule", n)
	}

	// Every front decision reached the webhook, signed, in order; the
	// cooldown repeat fired nothing.
	waitFor(t, "the webhook deliveries", func() bool { return len(f.recv.got()) == 4 })
	var decisions []string
	for _, b := range f.recv.got() {
		decisions = append(decisions, b["decision"].(string))
		for _, k := range []string{"event_id", "door_id", "decision", "person_id", "time"} {
			if _, ok := b[k]; !ok {
				t.Errorf("webhook body lacks %s: %v", k, b)
			}
		}
	}
	want := []string{door.Granted, door.DeniedExpired, door.DeniedUnknown, door.DeniedSpoof}
	if fmt.Sprint(decisions) != fmt.Sprint(want) {
		t.Errorf("webhook decisions %v, want %v", decisions, want)
	}
	if f.recv.bad != 0 {
		t.Errorf("%d webhook requests failed their signature", f.recv.bad)
	}
	page, err := f.db.ListEvents(context.Background(), store.EventQuery{DoorIDs: []string{"front"}})
	if err != nil || len(page.Items) != 5 {
		t.Fatalf("front's events: %d, %v; want 5", len(page.Items), err)
	}
	st := f.wieg.Stats()
	t.Logf("relay start latency p95 %v; Wiegand pulse error mean %v max %v, interval error mean %v max %v",
		f.relay.Stats().StartLatencyP95, st.PulseMeanErr, st.PulseMaxErr, st.IntervalMeanErr, st.IntervalMaxErr)
}

// A camera's decision opens the door it watches: the enrolled person
// walking up (a clip) is granted once and the relay pulses.
func TestCameraOpensDoor(t *testing.T) {
	f := newFixture(t)
	clip := cliptest.Approach{Photo: testenv.DataDir(t) + "/deepface/img2.jpg"}.Make(t, t.TempDir())
	m, err := camera.NewManager([]camera.Config{{ID: "door-cam", URL: "file://" + clip, RequireLiveness: true}}, f.svc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.OnDecision(func(ctx context.Context, cameraID string, d camera.Decision) {
		f.ctrl.FromCamera(ctx, door.CameraDecision{CameraID: cameraID, TrackID: d.TrackID, Matched: d.Matched,
			PersonID: d.Person.PersonID, FaceID: d.Person.FaceID, Confidence: d.Person.Confidence, Liveness: d.Liveness, Live: d.Live})
	})
	m.Run(context.Background())
	page, err := f.db.ListEvents(context.Background(), store.EventQuery{DoorIDs: []string{"front"}})
	if err != nil || len(page.Items) != 1 || page.Items[0].Door.Decision != door.Granted || page.Items[0].PersonID != "angelina" {
		t.Fatalf("front's events %+v, %v; want one grant for angelina", page.Items, err)
	}
	if page.Items[0].CameraID != "door-cam" {
		t.Errorf("the door's event names camera %q", page.Items[0].CameraID)
	}
	waitFor(t, "the relay pulse", func() bool { return pulses(f.chip, 17) == 1 })
}
