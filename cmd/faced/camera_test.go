package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image/jpeg"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/cliptest"
	"github.com/facedhq/faced/internal/mqtttest"
	"github.com/facedhq/faced/internal/rtsptest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/store"
	fleetsync "github.com/facedhq/faced/sync"
)

// A camera configured in faced.yaml, fed by a real RTSP server: its
// decision reaches GET /v1/events?camera_id= with the contract's fields,
// the camera API and metrics report it, and kill -9 loses no event that
// the API had already shown.
func TestCameraEndToEndSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	clip := cliptest.Approach{Photo: testenv.DataDir(t) + "/deepface/img2.jpg"}.Make(t, dir)
	rtsp := rtsptest.Start(t, "")
	broker := mqtttest.Start(t, mqtttest.Options{})
	backend := mqtttest.NewBackend(t, broker.URL(), "backend-cam", "faced/door-1/cameras", "faced/door-1/events")
	const keyID, secret = "0123456789ab", "Zk3v9QwPq0wU4jx2pIY1n0m9V1sZl8H3yX5cR4k7Qw1"
	sum := sha256.Sum256([]byte(secret))
	token := keyID + "." + secret
	config := filepath.Join(dir, "faced.yaml")
	err := os.WriteFile(config, fmt.Appendf(nil, `
data_dir: %s
listen: 127.0.0.1:0
vision:
  attributes: false
keys:
  - {id: %s, name: door, secret_sha256: %s, scopes: [read, write]}
mqtt:
  url: %s
  device_id: door-1
cameras:
  - id: door-cam
    url: %s
    fps: 10
    require_liveness: true
`, data, keyID, hex.EncodeToString(sum[:]), broker.URL(), rtsp.URL("door")), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	c := startChild(t, nil, nil, false, "serve", "--config", config)
	var addr string
	waitUntil(t, "serving", 60*time.Second, func() bool {
		if m := servingAddr.FindStringSubmatch(c.log.String()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	// Enrol before the stream starts: the camera retries until it does.
	enrolHTTP(t, addr, token, "angelina", "img1.jpg")
	var cams struct {
		Cameras []struct {
			ID    string `json:"id"`
			State string `json:"state"`
			Error string `json:"error"`
		} `json:"cameras"`
	}
	getJSON(t, addr, token, "/v1/cameras", &cams)
	if len(cams.Cameras) != 1 || cams.Cameras[0].ID != "door-cam" || cams.Cameras[0].State == "running" {
		t.Fatalf("cameras before the stream: %+v, want door-cam not running", cams)
	}
	rtsp.Publish(t, cliptest.FFmpeg(t), clip, "door")

	type event struct {
		ID                uint64  `json:"id"`
		CameraID          string  `json:"camera_id"`
		TrackID           *uint64 `json:"track_id"`
		PersonID          *string `json:"person_id"`
		DecisionLatencyMS *int64  `json:"decision_latency_ms"`
		Live              *bool   `json:"live"`
	}
	var events struct {
		Events []event `json:"items"`
	}
	waitUntil(t, "a camera event", 90*time.Second, func() bool {
		getJSON(t, addr, token, "/v1/events?camera_id=door-cam", &events)
		return len(events.Events) > 0
	})
	e := events.Events[0]
	if e.CameraID != "door-cam" || e.TrackID == nil || e.PersonID == nil || *e.PersonID != "angelina" ||
		e.DecisionLatencyMS == nil || e.Live == nil || !*e.Live {
		t.Fatalf("event %+v: want door-cam, a track id, angelina, a decision latency, live", e)
	}
	t.Logf("decision latency %d ms", *e.DecisionLatencyMS)

	var st struct {
		State        string  `json:"state"`
		ProcessedFPS float64 `json:"processed_fps"`
		Decisions    int     `json:"decisions"`
	}
	getJSON(t, addr, token, "/v1/cameras/door-cam", &st)
	if st.State != "running" || st.Decisions < 1 {
		t.Fatalf("camera status %+v, want running with a decision", st)
	}
	frame := apiDo(t, "GET", "http://"+addr+"/v1/cameras/door-cam/frame.jpg", token, nil)
	if _, err := jpeg.Decode(bytes.NewReader(frame)); err != nil {
		t.Fatalf("frame.jpg: %v", err)
	}
	checkMJPEG(t, addr, token)
	metrics := string(apiDo(t, "GET", "http://"+addr+"/metrics", "", nil))
	for _, want := range []string{`faced_camera_up{camera="door-cam"} 1`, `faced_camera_decision_latency_seconds_count{camera="door-cam"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/cameras/nope", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown camera: %v %v, want 404", resp, err)
	}

	// The fleet heard the camera fail to connect, then run, and got the
	// decision with its track.
	backend.WaitFor("/cameras", 30*time.Second, func(msgs []mqtttest.Msg) bool {
		states := map[string]bool{}
		for _, m := range mqtttest.Decode[fleetsync.CameraEvent](t, msgs) {
			if m.CameraID == "door-cam" {
				states[m.State] = true
			}
		}
		return states["reconnecting"] && states["running"]
	})
	backend.WaitFor("/events", 30*time.Second, func(msgs []mqtttest.Msg) bool {
		for _, m := range mqtttest.Decode[fleetsync.MatchEvent](t, msgs) {
			if m.CameraID == "door-cam" && m.TrackID == *e.TrackID && m.PersonID == "angelina" && m.DecisionLatencyMS != nil {
				return true
			}
		}
		return false
	})

	c.signal(t, syscall.SIGKILL)
	<-c.done
	db, err := store.Open(daemon.DBPath(data), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.GetEvent(context.Background(), e.ID)
	if err != nil || got.Track == nil || got.PersonID != "angelina" {
		t.Fatalf("after kill -9: event %d: %+v, %v; want it kept with its track", e.ID, got, err)
	}
}

// checkMJPEG reads the first part of the camera's live stream.
func checkMJPEG(t *testing.T, addr, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/cameras/door-cam/mjpeg", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	readMJPEGPart(t, http.DefaultClient, req)
}

// readMJPEGPart reads the first part of an MJPEG stream and checks it is
// a JPEG.
func readMJPEGPart(t *testing.T, client *http.Client, req *http.Request) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" {
		t.Fatalf("mjpeg content type %q (%v)", resp.Header.Get("Content-Type"), err)
	}
	part, err := multipart.NewReader(bufio.NewReader(resp.Body), params["boundary"]).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(part)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("mjpeg part: %v", err)
	}
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}
