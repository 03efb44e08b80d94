package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/mqtttest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// TestServeFleetSync runs the real daemon against a real broker, killing
// it the way power cuts do: the retained status goes offline through the
// last will, and events recorded while the broker was down, still in the
// outbox when the daemon died, are all delivered after the restart.
func TestServeFleetSync(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	backend := mqtttest.NewBackend(t, broker.URL(), "backend-e2e", "faced/door-9/status", "faced/door-9/events")
	dir := t.TempDir()
	db, err := store.Open(daemon.DBPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := service.CreateAPIKey(context.Background(), db, "e2e", []string{"write"}, time.Now())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	serve := func() *child {
		c := startChild(t, nil, nil, false, "serve", "--data-dir", dir, "--listen", addr, "--attributes=false",
			"--mqtt", broker.URL(), "--device-id", "door-9")
		c.waitLog(t, "msg=serving")
		return c
	}
	photo := testenv.ReadPhoto(t, "deepface/img1.jpg")
	var recorded []uint64
	identify := func(n int) {
		t.Helper()
		for range n {
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/identify?record=true&camera_id=gate", bytes.NewReader(photo))
			req.Header.Set("Content-Type", "image/jpeg")
			req.Header.Set("Authorization", "Bearer "+key.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("identify: %s: %s", resp.Status, body)
			}
			var out struct {
				Faces []struct {
					EventID uint64 `json:"event_id"`
				} `json:"faces"`
			}
			if err := json.Unmarshal(body, &out); err != nil || len(out.Faces) != 1 || out.Faces[0].EventID == 0 {
				t.Fatalf("identify answered %s (%v), want one face with an event", body, err)
			}
			recorded = append(recorded, out.Faces[0].EventID)
		}
	}
	lastStatus := func(state, reason string) {
		t.Helper()
		backend.WaitFor("/status", wait, func(msgs []mqtttest.Msg) bool {
			if len(msgs) == 0 {
				return false
			}
			var st struct{ State, Reason string }
			json.Unmarshal(msgs[len(msgs)-1].Payload, &st)
			return st.State == state && st.Reason == reason
		})
	}

	c := serve()
	lastStatus("online", "")
	identify(2)
	if got := backend.WaitEvents(2, wait); !slices.Equal(got, recorded) {
		t.Fatalf("events %v, want %v", got, recorded)
	}
	c.cmd.Process.Kill()
	<-c.done
	lastStatus("offline", "connection lost") // the last will

	// Events recorded with the broker down wait in the outbox; the daemon
	// dies with them there.
	broker.Stop()
	c = serve()
	identify(5)
	c.cmd.Process.Kill()
	<-c.done
	broker.Start()
	c = serve()
	if got := backend.WaitEvents(len(recorded), 60*time.Second); !slices.Equal(got, recorded) {
		t.Errorf("after the restart, events %v, want %v", got, recorded)
	}
	// A clean stop says so in the retained status.
	c.signal(t, syscall.SIGTERM)
	c.wait(t)
	lastStatus("offline", "shutdown")
	t.Logf("%d events delivered across a kill and a broker outage", len(recorded))
}

const wait = 30 * time.Second
