package webui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facedhq/faced/door"
	"github.com/facedhq/faced/store"
)

// relay records what a door fires (the hardware outputs have their own
// tests in package door).
type relay struct {
	mu    sync.Mutex
	fired []door.Firing
}

func (r *relay) Kind() string  { return "gpio" }
func (r *relay) Health() error { return nil }
func (r *relay) Close() error  { return nil }
func (r *relay) Fire(_ context.Context, f door.Firing) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fired = append(r.fired, f)
	return nil
}

func (r *relay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.fired)
}

// TestDoorOpen: the doors section lists a door; a read key sees no open
// control and is refused (403); an admin's open, confirmed, fires the
// door once and is recorded with the session's key id.
func TestDoorOpen(t *testing.T) {
	e := newEnv(t, false)
	out := &relay{}
	ctrl, err := door.NewController(e.Svc, []*door.Door{door.NewDoor(door.Config{ID: "front"}, []door.Output{out})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := New(Config{Service: e.Svc, Doors: ctrl, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	e.url = srv.URL

	reader := e.browser(t)
	reader.login(e.Read)
	res, body := reader.get("/ui/doors")
	wantStatus(t, "doors as read", res, body, http.StatusOK)
	if !strings.Contains(body, "<h2>front</h2>") || strings.Contains(body, "/ui/doors/front/open") {
		t.Errorf("read key's doors page: the door missing or an open control shown:\n%s", body)
	}
	res, body = reader.post("/ui/doors/front/open", url.Values{"csrf": {reader.csrf}})
	wantStatus(t, "open as read", res, body, http.StatusForbidden)

	admin := e.browser(t)
	admin.login(e.Admin)
	_, body = admin.get("/ui/doors")
	if !strings.Contains(body, `data-confirm="Open this door now?"`) {
		t.Errorf("admin's doors page lacks the confirmed open form:\n%s", body)
	}
	res, body = admin.post("/ui/doors/front/open", url.Values{"csrf": {admin.csrf}})
	wantStatus(t, "open as admin", res, body, http.StatusSeeOther)
	res, body = admin.post("/ui/doors/back/open", url.Values{"csrf": {admin.csrf}})
	wantStatus(t, "open an unknown door", res, body, http.StatusNotFound)
	deadline := time.Now().Add(10 * time.Second)
	for out.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := out.count(); n != 1 {
		t.Fatalf("the door fired %d times, want once", n)
	}
	evs, err := e.Svc.ListEvents(context.Background(), store.EventQuery{DoorIDs: []string{"front"}})
	if err != nil {
		t.Fatal(err)
	}
	adminID := strings.SplitN(e.Admin, ".", 2)[0]
	if len(evs.Items) != 1 || evs.Items[0].Door == nil || evs.Items[0].Door.KeyID != adminID || evs.Items[0].Door.Decision != door.DecisionManual {
		t.Errorf("door events %+v, want one manual opening by key %s", evs.Items, adminID)
	}
	_, body = admin.get("/ui/doors")
	if !strings.Contains(body, door.DecisionManual) {
		t.Errorf("the last decisions lack the manual opening:\n%s", body)
	}
}
