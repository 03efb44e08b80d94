package door

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facedhq/faced/store"
)

const testSecret = "0123456789abcdef-webhook-secret"

// delivery is one request the test receiver got.
type delivery struct {
	EventID   uint64
	Body      []byte
	Header    http.Header
	Arrived   time.Time
	Decoded   map[string]any
	StatusOut int
}

// receiver is a real HTTP receiver on loopback. status picks the answer
// to the n-th request (1-based); nil answers 200.
type receiver struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	got     []delivery
	status  func(n int) int
	arrived chan uint64
}

func newReceiver(t testing.TB, status func(n int) int) *receiver {
	r := &receiver{t: t, status: status, arrived: make(chan uint64, 1000)}
	r.srv = httptest.NewServer(r)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d := delivery{Body: body, Header: req.Header.Clone(), Arrived: now}
	if err := json.Unmarshal(body, &d.Decoded); err == nil {
		if id, ok := d.Decoded["event_id"].(float64); ok {
			d.EventID = uint64(id)
		}
	}
	r.mu.Lock()
	d.StatusOut = http.StatusOK
	if r.status != nil {
		d.StatusOut = r.status(len(r.got) + 1)
	}
	r.got = append(r.got, d)
	r.mu.Unlock()
	w.WriteHeader(d.StatusOut)
	if d.StatusOut/100 == 2 {
		r.arrived <- d.EventID
	}
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// stop closes the listener: connections are refused from now on.
func (r *receiver) stop() { r.srv.Close() }

// restart listens again on the same address.
func (r *receiver) restart() {
	addr := r.srv.Listener.Addr().String()
	var l net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if l, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listen again on %s: %v", addr, err)
	}
	r.srv = httptest.NewUnstartedServer(r)
	r.srv.Listener.Close()
	r.srv.Listener = l
	r.srv.Start()
	r.t.Cleanup(func() { r.srv.Close() })
}

// waitFor receives n successful deliveries' event ids, or fails after a
// deadline.
func (r *receiver) waitFor(n int) []uint64 {
	r.t.Helper()
	var ids []uint64
	timeout := time.After(20 * time.Second)
	for len(ids) < n {
		select {
		case id := <-r.arrived:
			ids = append(ids, id)
		case <-timeout:
			r.t.Fatalf("got %d of %d deliveries before the deadline: %v", len(ids), n, ids)
		}
	}
	return ids
}

func openStore(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "faced.db"), store.Options{})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// startWebhook makes a webhook to url with short backoffs and runs its
// worker until the test ends.
func startWebhook(t testing.TB, db *store.DB, url string) (*Webhook, context.CancelFunc) {
	t.Helper()
	w, err := NewWebhook(WebhookConfig{DoorID: "front", Index: 1, URL: url, Secret: testSecret, Timeout: 2 * time.Second}, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	w.minBackoff, w.maxBackoff = 20*time.Millisecond, 200*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		w.Close()
	})
	return w, cancel
}

// decide records a decision's event and queues the webhook's message in
// its transaction, then fires: what the door controller does.
func decide(t testing.TB, db *store.DB, w *Webhook, decision, personID string) uint64 {
	t.Helper()
	live := float32(0.97)
	ev := store.Event{CameraID: "cam-1", PersonID: personID, Matched: personID != "", Confidence: 0.91,
		Track: &store.TrackDecision{TrackID: 7, Liveness: &live, Live: true}}
	var f Firing
	stored, err := db.AddEvent(context.Background(), ev, nil, func(e store.Event) ([]store.OutboxMessage, error) {
		f = Firing{EventID: e.ID, DoorID: "front", Decision: decision, Reason: "because", PersonID: e.PersonID,
			Confidence: e.Confidence, Liveness: e.Track.Liveness, CameraID: e.CameraID, TrackID: e.Track.TrackID, Time: e.Time}
		return w.Messages(f)
	})
	if err != nil {
		t.Fatalf("AddEvent: %v", err)
	}
	if err := w.Fire(context.Background(), f); err != nil {
		t.Fatalf("Fire: %v", err)
	}
	return stored.ID
}

func waitQueueEmpty(t testing.TB, w *Webhook) WebhookStats {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := w.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Waiting == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %d messages: %+v", st.Waiting, st)
		}
	}
}

func TestWebhookSignedContract(t *testing.T) {
	rcv := newReceiver(t, nil)
	db := openStore(t)
	w, _ := startWebhook(t, db, rcv.srv.URL+"/hook?token=sekrit-token")
	if w.Target() != "webhook:front:1" || w.Kind() != "webhook" {
		t.Fatalf("target %q kind %q", w.Target(), w.Kind())
	}
	granted := decide(t, db, w, Granted, "p-1")
	denied := decide(t, db, w, DeniedUnknown, "")
	if ids := rcv.waitFor(2); !slices.Equal(ids, []uint64{granted, denied}) {
		t.Fatalf("received %v, want %v", ids, []uint64{granted, denied})
	}
	for _, d := range rcv.deliveries() {
		h := d.Header
		if ct := h.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		ts := h.Get("X-Faced-Timestamp")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			t.Fatalf("X-Faced-Timestamp %q: %v", ts, err)
		}
		if skew := time.Since(time.Unix(sec, 0)).Abs(); skew > 5*time.Second {
			t.Errorf("timestamp %s is %s off", ts, skew)
		}
		// Independent of Sign: HMAC-SHA256 of "<timestamp>.<body>".
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte(ts + "." + string(d.Body)))
		if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); h.Get("X-Faced-Signature") != want {
			t.Errorf("signature %q, want %q", h.Get("X-Faced-Signature"), want)
		}
		if err := Verify([]byte(testSecret), ts, h.Get("X-Faced-Signature"), d.Body, time.Now(), time.Minute); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if h.Get("X-Faced-Event-Id") != strconv.FormatUint(d.EventID, 10) {
			t.Errorf("X-Faced-Event-Id %q, body event_id %d", h.Get("X-Faced-Event-Id"), d.EventID)
		}
		m := d.Decoded
		for _, k := range []string{"event_id", "door_id", "decision", "person_id", "time", "reason", "confidence", "liveness", "camera_id", "track_id"} {
			if _, ok := m[k]; !ok {
				t.Errorf("body has no %q: %s", k, d.Body)
			}
		}
		if m["door_id"] != "front" || m["camera_id"] != "cam-1" || m["track_id"] != float64(7) {
			t.Errorf("body %s", d.Body)
		}
		if _, err := time.Parse(time.RFC3339, m["time"].(string)); err != nil {
			t.Errorf("time: %v", err)
		}
		switch d.EventID {
		case granted:
			if m["decision"] != Granted || m["person_id"] != "p-1" || m["opens"] != true {
				t.Errorf("granted body %s", d.Body)
			}
		case denied:
			if m["decision"] != DeniedUnknown || m["person_id"] != nil || m["opens"] != false {
				t.Errorf("denied body %s (person_id must be null)", d.Body)
			}
		}
	}
	st := waitQueueEmpty(t, w)
	if st.Delivered != 2 || w.Health() != nil || st.LastDelivery.IsZero() {
		t.Fatalf("stats %+v health %v", st, w.Health())
	}
	// A manual opening carries the key and no confidence.
	msgs, err := w.Messages(Firing{EventID: 9, DoorID: "front", Decision: DecisionManual, KeyID: "k1", Time: time.Now()})
	if err != nil || len(msgs) != 1 || !msgs[0].Delivery || msgs[0].Topic != w.Target() {
		t.Fatalf("Messages: %v %+v", err, msgs)
	}
	var manual map[string]any
	if err := json.Unmarshal(msgs[0].Payload, &manual); err != nil || manual["key_id"] != "k1" || manual["opens"] != true {
		t.Fatalf("manual body %s: %v", msgs[0].Payload, err)
	}
	if _, ok := manual["confidence"]; ok {
		t.Errorf("manual opening has a confidence: %s", msgs[0].Payload)
	}
}

// The contract: a receiver that is down loses nothing.
func TestWebhookReceiverDownLosesNothing(t *testing.T) {
	rcv := newReceiver(t, nil)
	db := openStore(t)
	w, _ := startWebhook(t, db, rcv.srv.URL+"/hook?token=sekrit-token")
	first := decide(t, db, w, Granted, "p-0")
	rcv.waitFor(1)

	rcv.stop()
	var want []uint64
	for i := range 5 {
		decision := []string{Granted, DeniedUnknown, DeniedSpoof, DeniedSchedule, Granted}[i]
		want = append(want, decide(t, db, w, decision, "p-"+strconv.Itoa(i+1)))
	}
	// Health turns bad while the receiver is down.
	var health error
	for deadline := time.Now().Add(10 * time.Second); health == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		health = w.Health()
	}
	if health == nil {
		t.Fatal("Health() stayed nil with the receiver down")
	}
	t.Logf("health while down: %v", health)
	if strings.Contains(health.Error(), "sekrit") || strings.Contains(health.Error(), testSecret) {
		t.Fatalf("health leaks the URL's token or the secret: %v", health)
	}
	if !strings.Contains(health.Error(), "refused") {
		t.Errorf("health does not say why: %v", health)
	}
	st, err := w.Stats(context.Background())
	if err != nil || st.Waiting != 5 || st.Failures == 0 || st.LastError == "" {
		t.Fatalf("stats while down: %+v %v", st, err)
	}
	time.Sleep(300 * time.Millisecond) // a few more failed attempts

	rcv.restart()
	got := rcv.waitFor(5)
	if !slices.Equal(got, want) {
		t.Fatalf("after the restart received %v, want %v in order", got, want)
	}
	waitQueueEmpty(t, w)
	if err := w.Health(); err != nil {
		t.Fatalf("Health() after recovery: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // nothing more may arrive
	seen := map[uint64]int{}
	for _, d := range rcv.deliveries() {
		seen[d.EventID]++
	}
	for _, id := range append([]uint64{first}, want...) {
		if seen[id] != 1 {
			t.Errorf("event %d delivered %d times", id, seen[id])
		}
	}
	if len(seen) != 6 {
		t.Errorf("received events %v, want 6 distinct", seen)
	}
}

func TestWebhookRetriesUntil2xx(t *testing.T) {
	rcv := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	db := openStore(t)
	w, _ := startWebhook(t, db, rcv.srv.URL)
	id := decide(t, db, w, DeniedExpired, "p-9")
	next := decide(t, db, w, Granted, "p-8") // waits behind the first
	if got := rcv.waitFor(2); !slices.Equal(got, []uint64{id, next}) {
		t.Fatalf("delivered %v, want %v", got, []uint64{id, next})
	}
	st := waitQueueEmpty(t, w)
	var sent []uint64
	for _, d := range rcv.deliveries() {
		sent = append(sent, d.EventID)
	}
	// Head of line: the failing message is retried, never skipped.
	if want := []uint64{id, id, id, next}; !slices.Equal(sent, want) {
		t.Fatalf("receiver got events %v (500, 500, 204, 204), want %v", sent, want)
	}
	if st.Delivered != 2 || w.Health() != nil {
		t.Fatalf("stats %+v health %v", st, w.Health())
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.deliveries()); n != 4 {
		t.Fatalf("sent again after the ack: %d requests", n)
	}
}

func TestWebhookRunStopsOnCancel(t *testing.T) {
	db := openStore(t)
	// A receiver that never answers: Run is inside a request when
	// cancelled; then one that is gone: Run is in a long backoff.
	hang := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); stuck.Close() })
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	for i, c := range []struct{ name, url string }{{"in a request", stuck.URL}, {"in backoff", gone.URL}} {
		w, err := NewWebhook(WebhookConfig{DoorID: "front", Index: i, URL: c.url, Secret: testSecret, Timeout: time.Minute}, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.minBackoff, w.maxBackoff = time.Minute, time.Minute
		decide(t, db, w, Granted, "p-1")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		cancel()
		select {
		case <-done:
			t.Logf("%s: Run returned %s after cancel", c.name, time.Since(start))
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Run still running 10 s after cancel", c.name)
		}
		// Nothing was acked: the decision waits for the next start.
		st, err := w.Stats(context.Background())
		if err != nil || st.Waiting != 1 {
			t.Fatalf("%s: %+v %v", c.name, st, err)
		}
		// One attempt, then the minute's backoff: no retry storm.
		if c.name == "in backoff" && st.Failures != 1 {
			t.Fatalf("%s: %+v %v", c.name, st, err)
		}
		w.Close()
		w.Close()
	}
}

func TestWebhookLatency(t *testing.T) {
	rcv := newReceiver(t, nil)
	db := openStore(t)
	w, _ := startWebhook(t, db, rcv.srv.URL)
	decide(t, db, w, Granted, "p-0") // warm the connection
	rcv.waitFor(1)
	const n = 50
	lat := make([]time.Duration, 0, n)
	for range n {
		ev, err := db.AddEvent(context.Background(), store.Event{CameraID: "cam-1"}, nil, func(e store.Event) ([]store.OutboxMessage, error) {
			return w.Messages(Firing{EventID: e.ID, DoorID: "front", Decision: DeniedUnknown, Time: e.Time})
		})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		w.Fire(context.Background(), Firing{EventID: ev.ID})
		if id := rcv.waitFor(1)[0]; id != ev.ID {
			t.Fatalf("delivered %d, want %d", id, ev.ID)
		}
		ds := rcv.deliveries()
		lat = append(lat, ds[len(ds)-1].Arrived.Sub(start))
	}
	slices.Sort(lat)
	p50, p95 := lat[n/2], lat[n*95/100]
	t.Logf("webhook Fire -> receiver handler on loopback over %d decisions: p50 %s, p95 %s, max %s (target p50 <= 50 ms)", n, p50, p95, lat[n-1])
	if p50 > 10*50*time.Millisecond {
		t.Errorf("p50 %s is far beyond the 50 ms target", p50)
	}
}

func BenchmarkWebhookDelivery(b *testing.B) {
	rcv := newReceiver(b, nil)
	db := openStore(b)
	w, _ := startWebhook(b, db, rcv.srv.URL)
	b.ResetTimer()
	for b.Loop() {
		ev, err := db.AddEvent(context.Background(), store.Event{CameraID: "cam-1"}, nil, func(e store.Event) ([]store.OutboxMessage, error) {
			return w.Messages(Firing{EventID: e.ID, DoorID: "front", Decision: DeniedUnknown, Time: e.Time})
		})
		if err != nil {
			b.Fatal(err)
		}
		w.Fire(context.Background(), Firing{EventID: ev.ID})
		rcv.waitFor(1)
	}
}

func TestWebhookConfigErrors(t *testing.T) {
	db := openStore(t)
	ok := WebhookConfig{DoorID: "front", Index: 2, URL: "https://access.example/hook", Secret: testSecret}
	for _, c := range []struct {
		mod  func(*WebhookConfig)
		want string
	}{
		{func(c *WebhookConfig) { c.URL = "" }, "url: required"},
		{func(c *WebhookConfig) { c.URL = "ftp://x/y" }, "url: scheme must be http or https"},
		{func(c *WebhookConfig) { c.URL = "https://user:pw@/y" }, "url: no host"},
		{func(c *WebhookConfig) { c.URL = "http://[::1" }, "url: not a URL"},
		{func(c *WebhookConfig) { c.Secret = "" }, "secret: required"},
		{func(c *WebhookConfig) { c.Secret = "short" }, "secret: must be at least 16 bytes, got 5"},
		{func(c *WebhookConfig) { c.Timeout = -time.Second }, "timeout: must not be negative"},
		{func(c *WebhookConfig) { c.Index = -1 }, "index: must not be negative"},
		{func(c *WebhookConfig) { c.DoorID = "" }, "door id: required"},
	} {
		cfg := ok
		c.mod(&cfg)
		_, err := NewWebhook(cfg, db, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", cfg, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "pw") || (cfg.Secret != "" && strings.Contains(err.Error(), cfg.Secret)) {
			t.Errorf("error leaks a credential: %v", err)
		}
	}
	if _, err := NewWebhook(ok, nil, nil); err == nil {
		t.Error("no store accepted")
	}
	w, err := NewWebhook(ok, db, nil)
	if err != nil || w.cfg.Timeout != DefaultWebhookTimeout || w.Target() != "webhook:front:2" {
		t.Fatalf("%v %+v", err, w)
	}
	for _, f := range []Firing{
		{DoorID: "front", Decision: Granted, Time: time.Now()},            // no event id
		{EventID: 1, DoorID: "back", Decision: Granted, Time: time.Now()}, // another door
		{EventID: 1, DoorID: "front", Decision: Granted},                  // no time
		{EventID: 1, DoorID: "front", Time: time.Now()},                   // no decision
	} {
		if _, err := w.Messages(f); err == nil {
			t.Errorf("Messages(%+v) accepted", f)
		}
	}
}

func TestWebhookVerify(t *testing.T) {
	secret, body := []byte(testSecret), []byte(`{"event_id":1}`)
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := Sign(secret, ts, body)
	if err := Verify(secret, ts, sig, body, now.Add(30*time.Second), time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for name, err := range map[string]error{
		"tampered body": Verify(secret, ts, sig, []byte(`{"event_id":2}`), now, time.Minute),
		"wrong secret":  Verify([]byte("another-secret-of-16"), ts, sig, body, now, time.Minute),
		"no prefix":     Verify(secret, ts, strings.TrimPrefix(sig, "sha256="), body, now, time.Minute),
		"other ts":      Verify(secret, strconv.FormatInt(now.Unix()+1, 10), sig, body, now, time.Minute),
	} {
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	for name, err := range map[string]error{
		"replayed late":   Verify(secret, ts, sig, body, now.Add(10*time.Minute), 5*time.Minute),
		"from the future": Verify(secret, ts, sig, body, now.Add(-10*time.Minute), 5*time.Minute),
		"not a number":    Verify(secret, "yesterday", sig, body, now, time.Minute),
	} {
		if !errors.Is(err, ErrStaleTimestamp) {
			t.Errorf("%s: %v, want ErrStaleTimestamp", name, err)
		}
	}
}

func TestWebhookRedirectIsAFailure(t *testing.T) {
	final := newReceiver(t, nil)
	moved := httptest.NewServer(http.RedirectHandler(final.srv.URL+"/new?token=x", http.StatusFound))
	t.Cleanup(moved.Close)
	db := openStore(t)
	w, _ := startWebhook(t, db, moved.URL)
	decide(t, db, w, Granted, "p-1")
	for deadline := time.Now().Add(10 * time.Second); w.Health() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a redirect was taken for a delivery")
		}
	}
	if h := w.Health().Error(); !strings.Contains(h, "redirected to "+final.srv.URL+"/new?***") {
		t.Fatalf("health %q does not name the new location (redacted)", h)
	}
	if n := len(final.deliveries()); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
}
