package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// TestServeRetention: the real daemon expires recorded events and kept
// face crops by the store.retention settings, at start and on its
// schedule, and says so on /metrics. Crops are kept only while
// service.keep_images is on (issue 18: keep_images had no test).
func TestServeRetention(t *testing.T) {
	dir := t.TempDir()
	// A store written 200 days ago: three events from then, two recent.
	past := time.Now().Add(-200 * 24 * time.Hour)
	db, err := store.Open(daemon.DBPath(dir), store.Options{Now: func() time.Time { return past }})
	if err != nil {
		t.Fatal(err)
	}
	key, err := service.CreateAPIKey(context.Background(), db, "retention", []string{"read", "write"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Time{past, past.Add(time.Hour), past.Add(2 * time.Hour), time.Now().Add(-2 * time.Hour), time.Now().Add(-time.Hour)} {
		if _, err := db.AddEvent(context.Background(), store.Event{CameraID: "gate", Time: at, PersonID: fmt.Sprint("p", i)}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	config := func(keepImages bool) string {
		path := filepath.Join(t.TempDir(), "faced.yaml")
		text := fmt.Sprintf(`service: {keep_images: %v}
store:
  retention:
    events_max_age: 720h
    events_max_count: 1000
    images_max_age: 0s
    images_max_count: 1
    interval: 1h
`, keepImages)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	addr := freeAddr(t)
	serve := func(keepImages bool) *child {
		c := startChild(t, nil, nil, false, "serve", "--config", config(keepImages), "--data-dir", dir, "--listen", addr, "--attributes=false")
		c.waitLog(t, "msg=serving")
		return c
	}
	call := func(method, path string, body []byte) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
		}
		return b
	}
	metric := func(name string) float64 {
		t.Helper()
		b := call("GET", "/metrics", nil)
		m := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	poll := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30 s", what)
			}
		}
	}
	events := func() int {
		var page struct{ Items []json.RawMessage }
		json.Unmarshal(call("GET", "/v1/events?camera_id=gate", nil), &page)
		return len(page.Items)
	}
	photo := base64.StdEncoding.EncodeToString(testenv.ReadPhoto(t, "deepface/img1.jpg"))
	enrol := func(id string) {
		// One photo under several ids, on purpose.
		call("POST", "/v1/persons", []byte(`{"id":"`+id+`","photo":"`+photo+`","allow_duplicate":true}`))
	}
	hasImage := func(id string) bool {
		var p struct {
			Faces []struct {
				HasImage bool `json:"has_image"`
			}
		}
		if err := json.Unmarshal(call("GET", "/v1/persons/"+id, nil), &p); err != nil || len(p.Faces) != 1 {
			t.Fatalf("person %s: %v %+v", id, err, p)
		}
		return p.Faces[0].HasImage
	}

	c := serve(true)
	// Pruned once at start: the three events older than 30 days go.
	poll("events pruned at start", func() bool { return events() == 2 })
	poll("pruned events counted", func() bool { return metric(`faced_retention_pruned_total{kind="events"}`) == 3 })
	if v := metric("faced_retention_last_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("faced_retention_last_success_timestamp_seconds = %v, want about now", v)
	}
	// keep_images on: both crops are stored.
	enrol("first")
	enrol("second")
	if !hasImage("first") || !hasImage("second") {
		t.Fatal("keep_images: true, yet a face has no stored crop")
	}
	c.signal(t, syscall.SIGTERM)
	c.wait(t)

	// The next start prunes the crops beyond images_max_count (the oldest
	// go; the faces stay); keep_images off stores none for new faces.
	c = serve(false)
	poll("crop pruned at start", func() bool { return !hasImage("first") })
	if !hasImage("second") {
		t.Error("the newest crop was pruned too")
	}
	enrol("third")
	if hasImage("third") {
		t.Error("keep_images: false, yet the face has a stored crop")
	}
	if v := metric(`faced_retention_pruned_total{kind="images"}`); v != 1 {
		t.Errorf(`faced_retention_pruned_total{kind="images"} = %v, want 1`, v)
	}
	if events() != 2 {
		t.Errorf("recent events: %d, want 2", events())
	}
	c.signal(t, syscall.SIGTERM)
	c.wait(t)
}
