package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facedhq/faced/door"
)

// The doors API on a real daemon: decide with a door-scoped key (the
// contract's answer), the scopes that refuse other doors and manual
// openings, a relay that cannot be driven (no GPIO chip here) reported
// unhealthy without holding up the webhook, manual openings audited with
// the key, and door events filtered by door.
func TestDoorsAPI(t *testing.T) {
	const secret = "webhook-secret-for-the-test"
	var (
		mu     sync.Mutex
		bodies []map[string]any
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := door.Verify([]byte(secret), r.Header.Get("X-Faced-Timestamp"), r.Header.Get("X-Faced-Signature"), b, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
	}))
	defer recv.Close()

	dir := t.TempDir()
	type key struct{ id, secret string }
	doorKey := key{"d0000000f001", "Zk3v9QwPq0wU4jx2pIY1n0m9V1sZl8H3yX5cR4k7Qw1"}
	adminKey := key{"ad00000000a1", "Q0wU4jx2pIY1n0m9V1sZl8H3yX5cR4k7Qw1Zk3v9Qwp"}
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	config := filepath.Join(dir, "faced.yaml")
	err := os.WriteFile(config, fmt.Appendf(nil, `
data_dir: %s
listen: 127.0.0.1:0
vision:
  attributes: false
keys:
  - {id: %s, name: front door, secret_sha256: %s, scopes: [read, "door:front"]}
  - {id: %s, name: admin, secret_sha256: %s, scopes: [admin]}
doors:
  - id: front
    galleries: [staff]
    outputs:
      - {type: gpio, chip: gpiochip0, line: 17}
      - {type: webhook, url: "%s/hook", secret: %s}
  - id: back
    outputs:
      - {type: webhook, url: "%s/back", secret: %s}
`, filepath.Join(dir, "data"), doorKey.id, hash(doorKey.secret), adminKey.id, hash(adminKey.secret), recv.URL, secret, recv.URL, secret), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startServe(t, "--config", config)
	door1, admin := doorKey.id+"."+doorKey.secret, adminKey.id+"."+adminKey.secret
	base := "http://" + addr

	apiDo(t, "POST", base+"/v1/galleries", admin, map[string]any{"name": "staff"})
	apiDo(t, "POST", base+"/v1/persons", admin, map[string]any{"id": "angelina", "galleries": []string{"staff"},
		"card_number": "4242", "photo": deepface(t, "img1.jpg")})

	decide := func(doorID, token, photo string, want int) map[string]any {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"photo": deepface(t, photo)})
		req, _ := http.NewRequest("POST", base+"/v1/doors/"+doorID+"/decide", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("decide at %s: %d %s, want %d", doorID, resp.StatusCode, body, want)
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		return m
	}
	res := decide("front", door1, "img2.jpg", http.StatusOK)
	if res["decision"] != "granted" || res["person_id"] != "angelina" || res["event_id"] == nil {
		t.Fatalf("decide answered %v, want granted for angelina with an event id", res)
	}
	decide("back", door1, "img2.jpg", http.StatusForbidden) // the key may open front only
	if res := decide("back", admin, "img17.jpg", http.StatusOK); res["decision"] != "denied_unknown" || res["person_id"] != nil {
		t.Fatalf("a stranger at back: %v, want denied_unknown with person_id null", res)
	}

	var doors struct {
		Doors []struct {
			ID      string `json:"id"`
			Healthy bool   `json:"healthy"`
			Outputs []struct {
				Type, Error string
			} `json:"outputs"`
		} `json:"doors"`
	}
	getJSON(t, addr, door1, "/v1/doors", &doors)
	if len(doors.Doors) != 2 || doors.Doors[0].Healthy || !strings.Contains(doors.Doors[0].Outputs[0].Error, "gpiochip0") || !doors.Doors[1].Healthy {
		t.Fatalf("doors %+v: want front unhealthy (no GPIO chip here) naming gpiochip0, back healthy", doors)
	}

	metrics := string(apiDo(t, "GET", base+"/metrics", "", nil))
	for _, want := range []string{`faced_door_healthy{door="front"} 0`, `faced_door_healthy{door="back"} 1`, `faced_door_decisions_total{decision="granted",door="front"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	req, _ := http.NewRequest("POST", base+"/v1/doors/front/open", nil)
	req.Header.Set("Authorization", "Bearer "+door1)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("open with the door's key: %v %v, want 403 (admin only)", resp.StatusCode, err)
	}
	var opened map[string]any
	json.Unmarshal(apiDo(t, "POST", base+"/v1/doors/front/open", admin, nil), &opened)
	if opened["decision"] != "manual_open" {
		t.Fatalf("open answered %v", opened)
	}

	apiDo(t, "PATCH", base+"/v1/persons/angelina", admin, map[string]any{"enabled": false})
	if res := decide("front", door1, "img2.jpg", http.StatusOK); res["decision"] != "denied_disabled" {
		t.Fatalf("a disabled person: %v, want denied_disabled", res)
	}

	var events struct {
		Items []struct {
			DoorID   string `json:"door_id"`
			Decision string `json:"decision"`
			KeyID    string `json:"key_id"`
		} `json:"items"`
	}
	getJSON(t, addr, admin, "/v1/events?door_id=front", &events)
	var got []string
	for _, e := range events.Items {
		got = append(got, e.Decision)
		if e.Decision == "manual_open" && e.KeyID != adminKey.id {
			t.Errorf("manual opening recorded key %q, want %s", e.KeyID, adminKey.id)
		}
	}
	if fmt.Sprint(got) != "[denied_disabled manual_open granted rules_changed]" {
		t.Fatalf("front's events, newest first: %v", got)
	}
	waitUntil(t, "the webhook deliveries", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies) == 4 // front: granted, manual_open, denied_disabled; back: denied_unknown
	})
}

// A door's configuration is audited: recorded at its first start, not
// again while unchanged, and again when edited, secrets masked.
func TestDoorRulesAudited(t *testing.T) {
	dir := t.TempDir()
	const adminID, adminSecret = "ad00000000b2", "Q0wU4jx2pIY1n0m9V1sZl8H3yX5cR4k7Qw1Zk3v9Qwp"
	h := sha256.Sum256([]byte(adminSecret))
	write := func(cooldown string) string {
		p := filepath.Join(dir, "faced.yaml")
		err := os.WriteFile(p, fmt.Appendf(nil, `
data_dir: %s
listen: 127.0.0.1:0
vision:
  attributes: false
keys:
  - {id: %s, name: admin, secret_sha256: %s, scopes: [admin]}
doors:
  - id: front
    cooldown: %s
    outputs:
      - {type: webhook, url: "http://127.0.0.1:9/hook", secret: a-secret-that-must-not-show}
`, filepath.Join(dir, "data"), adminID, hex.EncodeToString(h[:]), cooldown), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	audits := func(s stoppable) []map[string]any {
		t.Helper()
		var page struct {
			Items []struct {
				Meta map[string]any `json:"meta"`
			} `json:"items"`
		}
		b := apiDo(t, "GET", "http://"+s.addr+"/v1/events?door_id=front&decision=rules_changed", adminID+"."+adminSecret, nil)
		if strings.Contains(string(b), "a-secret-that-must-not-show") {
			t.Fatal("the audit event shows the webhook secret")
		}
		json.Unmarshal(b, &page)
		var out []map[string]any
		for _, e := range page.Items {
			out = append(out, e.Meta)
		}
		return out
	}
	for i, c := range []struct {
		cooldown string
		want     int
	}{{"5s", 1}, {"5s", 1}, {"10s", 2}} {
		s := serveStoppable(t, "--config", write(c.cooldown))
		got := audits(s)
		s.stop()
		if len(got) != c.want || got[0]["rules_sha256"] == nil || got[0]["rules"] == nil {
			t.Fatalf("start %d (cooldown %s): %d audit events (%v), want %d with the rules and their hash", i+1, c.cooldown, len(got), got, c.want)
		}
	}
}
