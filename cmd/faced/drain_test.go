package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
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

// heldRequest sends a detect request whose body stops halfway, on a raw
// connection (the HTTP client would keep waiting on its own body), and
// returns once its handler runs (it holds an inference slot). got
// receives what the server sent back when it closes the connection.
func heldRequest(t *testing.T, addr, token string, photo []byte) (got <-chan string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST /v1/detect HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", addr, token, len(photo))
	if _, err := conn.Write(append([]byte(head), photo[:len(photo)/2]...)); err != nil {
		t.Fatal(err)
	}
	res := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn) // until the server closes it
		res <- string(b)
	}()
	for deadline := time.Now().Add(30 * time.Second); !inFlight(t, addr); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached its handler")
		}
	}
	return res
}

// readKey makes a store in a new data directory with one read key.
func readKey(t *testing.T) (dir, token string) {
	t.Helper()
	dir = t.TempDir()
	db, err := store.Open(daemon.DBPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := service.CreateAPIKey(context.Background(), db, "drain", []string{"read"}, time.Now())
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir, key.Token
}

// TestServeDrainCap: a request that never finishes does not hold shutdown
// up beyond the drain cap (15 s in the binary, shortened here through
// serve's parameter): serve returns a drain error after the cap, having
// cut the request's connection, and closes the store.
func TestServeDrainCap(t *testing.T) {
	const drainCap = 2 * time.Second
	dir, token := readKey(t)
	photo := testenv.ReadPhoto(t, "deepface/img1.jpg")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &testenv.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, drainCap, []string{"--data-dir", dir, "--listen", "127.0.0.1:0", "--attributes=false"}, io.Discard, log)
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
	got := heldRequest(t, addr, token, photo)

	start := time.Now()
	cancel() // SIGTERM, with a request whose body never ends
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("serve still draining a minute after a %v cap:\n%s", drainCap, log)
	}
	if waited := time.Since(start); waited < drainCap {
		t.Errorf("serve returned %v after shutdown began, before the %v cap: the request was not waited for", waited, drainCap)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "drain") {
		t.Errorf("serve after the cap: %v, want a drain error with context.DeadlineExceeded", err)
	}
	select {
	case resp := <-got:
		if strings.HasPrefix(resp, "HTTP/1.1 200") {
			t.Errorf("the held request was answered although its body never ended: %q", resp)
		}
	case <-time.After(30 * time.Second):
		t.Error("the held request's connection is still open after the cap")
	}
	// The store was closed: it opens again.
	db, oerr := store.Open(daemon.DBPath(dir), store.Options{Timeout: 5 * time.Second})
	if oerr != nil {
		t.Fatalf("store after the capped drain: %v", oerr)
	}
	db.Close()
}

// TestServeSecondSIGTERMKills: SIGTERM starts the drain; a second one
// while it drains kills the real process at once (by the signal), not
// after the drain or its cap.
func TestServeSecondSIGTERMKills(t *testing.T) {
	dir, token := readKey(t)
	photo := testenv.ReadPhoto(t, "deepface/img1.jpg")
	addr := freeAddr(t)
	c := startChild(t, nil, nil, false, "serve", "--data-dir", dir, "--listen", addr, "--attributes=false")
	c.waitLog(t, "msg=serving")
	heldRequest(t, addr, token, photo)

	c.signal(t, syscall.SIGTERM)
	c.waitLog(t, "shutting down")
	c.signal(t, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(60 * time.Second):
		t.Fatal("faced still running a minute after the second SIGTERM")
	}
	// Ignoring the second signal would end the process only after the
	// drain cap, with exit status 2 (a drain error): the way it ended
	// tells the two apart without timing it.
	var ee *exec.ExitError
	if !errors.As(c.err, &ee) {
		t.Fatalf("faced after a second SIGTERM: %v, want killed by SIGTERM", c.err)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("faced after a second SIGTERM: %v, want killed by SIGTERM", c.err)
	}
	if strings.Contains(c.log.String(), "msg=stopped") {
		t.Error("faced logged a clean stop: the second SIGTERM did not kill it")
	}
}
