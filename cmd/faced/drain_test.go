package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// TestServeDrainsInFlight: a request in flight when shutdown starts (its
// body still arriving) completes with its answer, and serve then exits
// cleanly: SIGTERM loses no accepted request.
func TestServeDrainsInFlight(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(dir, 0o750)
	db, err := store.Open(daemon.DBPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := service.CreateAPIKey(context.Background(), db, "drain", []string{"read"}, time.Now())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	photo := testenv.ReadPhoto(t, "deepface/img1.jpg")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &testenv.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--attributes=false"}, io.Discard, log)
	}()
	var addr string
	for deadline := time.Now().Add(60 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if m := servingAddr.FindStringSubmatch(log.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", log)
		}
	}

	body, feed := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/detect", body)
	req.ContentLength = int64(len(photo))
	req.Header.Set("Content-Type", "image/jpeg")
	req.Header.Set("Authorization", "Bearer "+key.Token)
	type result struct {
		resp *http.Response
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		got <- result{resp, err}
	}()
	// Send part of the body, then wait until the server shows the request
	// in flight: its handler is running, reading the body (it takes an
	// inference slot only once the body is read).
	go feed.Write(photo[:len(photo)/2])
	for deadline := time.Now().Add(30 * time.Second); !inFlight(t, addr); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached its handler")
		}
	}
	cancel() // shutdown starts with the request in flight
	feed.Write(photo[len(photo)/2:])
	feed.Close()

	r := <-got
	if r.err != nil {
		t.Fatalf("in-flight request lost: %v", r.err)
	}
	defer r.resp.Body.Close()
	var out struct {
		Faces []json.RawMessage `json:"faces"`
	}
	if err := json.NewDecoder(r.resp.Body).Decode(&out); err != nil || r.resp.StatusCode != http.StatusOK || len(out.Faces) != 1 {
		t.Fatalf("in-flight request: status %d, %d faces, %v", r.resp.StatusCode, len(out.Faces), err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after draining")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
}

// inFlight reads /metrics: is a request in flight beside the scrape?
func inFlight(t *testing.T, addr string) bool {
	return metric(t, addr, "faced_http_requests_in_flight") >= 2
}
