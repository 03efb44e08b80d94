package sync_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/mqtttest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
	fleetsync "github.com/facedhq/faced/sync"
)

// vision is loaded once: the models dominate start-up.
var vision *daemon.Vision

func TestMain(m *testing.M) {
	cfg := daemon.DefaultVision()
	cfg.Attributes, cfg.Liveness = false, ""
	var err error
	if vision, err = daemon.OpenVision(context.Background(), cfg); err != nil {
		fmt.Println("load models:", err, "(run make deps)")
		os.Exit(1)
	}
	code := m.Run()
	vision.Close()
	os.Exit(code)
}

const wait = 20 * time.Second

// device is a service over a fresh store with a syncer attached.
type device struct {
	svc    *service.Service
	db     *store.DB
	syncer *fleetsync.Syncer
	cfg    fleetsync.Config
	logs   *testenv.Buffer
	hooks  []func(*fleetsync.Syncer)
}

// newDevice runs hooks on the syncer before starting it (see
// export_test.go).
func newDevice(t testing.TB, cfg fleetsync.Config, dbPath string, hooks ...func(*fleetsync.Syncer)) *device {
	t.Helper()
	return newDeviceStore(t, cfg, dbPath, store.Options{}, hooks...)
}

// newDeviceStore is newDevice with the store's options.
func newDeviceStore(t testing.TB, cfg fleetsync.Config, dbPath string, opts store.Options, hooks ...func(*fleetsync.Syncer)) *device {
	t.Helper()
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "faced.db")
	}
	if cfg.DeviceID == "" {
		cfg.DeviceID = "door-1"
	}
	cfg.MaxReconnectInterval = 2 * time.Second
	db, err := store.Open(dbPath, opts)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	svc, err := service.New(context.Background(), db, vision.Pipeline, service.Config{EventQueue: fleetsync.EventQueue(cfg)}, logger)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	s, err := fleetsync.New(cfg, svc, logger)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	d := &device{svc: svc, db: db, syncer: s, cfg: cfg, logs: logs, hooks: hooks}
	for _, h := range hooks {
		h(s)
	}
	s.Start(context.Background())
	t.Cleanup(func() {
		d.close(t)
		db.Close()
	})
	return d
}

func (d *device) close(t testing.TB) {
	if d.syncer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.syncer.Close(ctx)
	d.syncer = nil
}

// waitConnected waits until the device has subscribed: operations
// published before its first connection would have no session to wait in
// (a real backend learns of a device from its first status).
func waitConnected(t testing.TB, d *device) {
	t.Helper()
	for deadline := time.Now().Add(wait); metrics(t, d)["faced_mqtt_connected"] != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the device did not connect; log:\n%s", d.logs)
		}
	}
}

func topic(d *device, leaf string) string { return "faced/" + d.cfg.DeviceID + "/" + leaf }

func photo(t testing.TB, name string) []byte { return testenv.ReadPhoto(t, "deepface/"+name) }

// embedding is what a backend running the same embedder would send.
func embedding(t testing.TB, d *device, name string) fleetsync.FaceSpec {
	t.Helper()
	faces, err := d.svc.Detect(context.Background(), photo(t, name), face.Options{Embed: true, Selector: face.SelectBiggest})
	if err != nil || len(faces) != 1 {
		t.Fatalf("embed %s: %d faces, %v", name, len(faces), err)
	}
	return fleetsync.FaceSpec{Embedding: faces[0].Embedding, Embedder: d.svc.EmbedderID()}
}

func upsert(rev uint64, id string, faces ...fleetsync.FaceSpec) fleetsync.GalleryOp {
	return fleetsync.GalleryOp{V: 1, Op: fleetsync.OpUpsertPerson, OpID: fmt.Sprintf("op-%d", rev), Gallery: "staff", Revision: rev,
		Person: &fleetsync.PersonSpec{ID: id, Name: id, Faces: faces}}
}

func identified(t testing.TB, d *device, name string) string {
	t.Helper()
	res, err := d.svc.Identify(context.Background(), service.IdentifyRequest{Photo: photo(t, name), Galleries: []string{"staff"}, Threshold: service.DefaultThreshold})
	if err != nil {
		t.Fatalf("identify %s: %v", name, err)
	}
	if len(res) == 0 || len(res[0].Matches) == 0 {
		return ""
	}
	return res[0].Matches[0].Person.ID
}

// acksUntil waits for an ack with the given op id and returns all acks.
func acksUntil(t testing.TB, b *mqtttest.Backend, opID string) []fleetsync.Ack {
	t.Helper()
	return acksWithin(t, b, opID, wait)
}

// acksWithin is acksUntil with its own deadline, for long bursts.
func acksWithin(t testing.TB, b *mqtttest.Backend, opID string, timeout time.Duration) []fleetsync.Ack {
	t.Helper()
	var acks []fleetsync.Ack
	b.WaitFor("/acks", timeout, func(msgs []mqtttest.Msg) bool {
		acks = mqtttest.Decode[fleetsync.Ack](t, msgs)
		return slices.ContainsFunc(acks, func(a fleetsync.Ack) bool { return a.OpID == opID })
	})
	return acks
}

// acksByOp is the last ack of every op id.
func acksByOp(acks []fleetsync.Ack) map[string]fleetsync.Ack {
	out := map[string]fleetsync.Ack{}
	for _, a := range acks {
		out[a.OpID] = a
	}
	return out
}

// waitReply waits for the reply to the command with request id id.
func waitReply(t testing.TB, b *mqtttest.Backend, id string) fleetsync.Reply {
	t.Helper()
	return waitReplyWithin(t, b, id, wait)
}

func waitReplyWithin(t testing.TB, b *mqtttest.Backend, id string, timeout time.Duration) fleetsync.Reply {
	t.Helper()
	var r fleetsync.Reply
	b.WaitFor("/replies", timeout, func(msgs []mqtttest.Msg) bool {
		for _, m := range mqtttest.Decode[fleetsync.Reply](t, msgs) {
			if m.RequestID == id {
				r = m
				return true
			}
		}
		return false
	})
	return r
}

func statuses(acks []fleetsync.Ack) string {
	var parts []string
	for _, a := range acks {
		parts = append(parts, fmt.Sprintf("%s:%d:%s", a.OpID, a.Revision, a.Status))
	}
	return strings.Join(parts, " ")
}

func TestStatusRetainedOnlineThenOffline(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	d := newDevice(t, fleetsync.Config{URL: broker.URL()}, "")
	// A backend that subscribes later still gets the retained status.
	var st fleetsync.Status
	b := mqtttest.NewBackend(t, broker.URL(), "backend-status", "faced/+/status")
	b.WaitFor("/status", wait, func(msgs []mqtttest.Msg) bool {
		for _, m := range mqtttest.Decode[fleetsync.Status](t, msgs) {
			if m.State == "online" {
				st = m
				return true
			}
		}
		return false
	})
	if st.DeviceID != "door-1" || st.Embedder != d.svc.EmbedderID() || st.V != 1 || st.StartedAt == nil {
		t.Errorf("status = %+v", st)
	}
	late := mqtttest.NewBackend(t, broker.URL(), "backend-late", "faced/+/status")
	late.WaitFor("/status", wait, func(msgs []mqtttest.Msg) bool { return len(msgs) > 0 && msgs[0].Retained })
	d.close(t)
	b.WaitFor("/status", wait, func(msgs []mqtttest.Msg) bool {
		all := mqtttest.Decode[fleetsync.Status](t, msgs)
		return all[len(all)-1].State == "offline" && all[len(all)-1].Reason == "shutdown"
	})
}

func TestGalleryOperationsAppliedInRevisionOrder(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	d := newDevice(t, fleetsync.Config{URL: broker.URL()}, "")
	b := mqtttest.NewBackend(t, broker.URL(), "backend-ops", "faced/+/acks", "faced/+/requests")
	waitConnected(t, d)
	ops := topic(d, "gallery")

	// Revisions 1, 3, 2, then 2 again: 3 waits for 2, the second 2 is a
	// duplicate, and every face ends up searchable.
	b.Publish(ops, fleetsync.GalleryOp{V: 1, Op: fleetsync.OpCreateGallery, OpID: "op-1", Gallery: "staff", Revision: 1}, false)
	b.Publish(ops, upsert(3, "p13", embedding(t, d, "img13.jpg")), false)
	b.Publish(ops, upsert(2, "angelina", embedding(t, d, "img1.jpg")), false)
	dup := upsert(2, "angelina", embedding(t, d, "img1.jpg"))
	dup.OpID = "op-2-again"
	b.Publish(ops, dup, false)
	acks := acksUntil(t, b, "op-2-again")
	got := statuses(acks)
	want := "op-1:1:applied op-2:2:applied op-3:3:applied op-2-again:3:duplicate"
	if got != want {
		t.Errorf("acks = %s\nwant   %s", got, want)
	}
	if p := identified(t, d, "img2.jpg"); p != "angelina" {
		t.Errorf("angelina's probe identified as %q", p)
	}
	if p := identified(t, d, "img14.jpg"); p != "p13" {
		t.Errorf("p13's probe identified as %q", p)
	}
	// Another embedder's vector without a photo is refused with a reason.
	foreign := fleetsync.FaceSpec{Embedding: []float32{1, 0, 0}, Embedder: "facenet-128@000000000000"}
	b.Publish(ops, upsert(4, "p8", foreign), false)
	acks = acksUntil(t, b, "op-4")
	if a := acks[len(acks)-1]; a.Status != "rejected" || !strings.Contains(a.Reason, "embedder mismatch") || a.Revision != 4 {
		t.Errorf("foreign embedding ack = %+v", a)
	}
	// With the photo it is embedded on the device.
	foreign.Photo = photo(t, "img8.jpg")
	b.Publish(ops, upsert(5, "p8", foreign), false)
	if a := acksUntil(t, b, "op-5"); a[len(a)-1].Status != "applied" {
		t.Errorf("foreign embedding with photo: %+v", a[len(a)-1])
	}
	if p := identified(t, d, "img9.jpg"); p != "p8" {
		t.Errorf("p8's probe identified as %q", p)
	}
	// Malformed operations are answered, not dropped silently.
	b.Publish(ops, []byte(`{"v":1,"op":"upsert_person","gallery":"staff","revision":6,"persn":{}}`), false)
	b.WaitFor("/acks", wait, func(msgs []mqtttest.Msg) bool {
		last := mqtttest.Decode[fleetsync.Ack](t, msgs)[len(msgs)-1]
		return last.Status == "rejected" && strings.Contains(last.Reason, "persn")
	})
	m := metrics(t, d)
	if m["faced_sync_gallery_revision{gallery=staff}"] != 5 || m["faced_sync_operations_total{result=applied}"] != 4 ||
		m["faced_sync_operations_total{result=duplicate}"] != 1 || m["faced_sync_operations_total{result=rejected}"] != 2 {
		t.Errorf("metrics = %v", m)
	}
	// Revision 3 before 2 looked like a gap: exactly one snapshot
	// request (the acks above came after it through the ordered outbox).
	if n := len(b.Messages("/requests")); n != 1 {
		t.Errorf("%d snapshot requests for one gap, want 1", n)
	}
}

func TestRevisionGapRequestsSnapshot(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	d := newDevice(t, fleetsync.Config{URL: broker.URL()}, "")
	b := mqtttest.NewBackend(t, broker.URL(), "backend-gap", "faced/+/acks", "faced/+/requests")
	waitConnected(t, d)
	ops := topic(d, "gallery")
	b.Publish(ops, upsert(1, "angelina", embedding(t, d, "img1.jpg")), false)
	acksUntil(t, b, "op-1")
	b.Publish(ops, upsert(4, "p13", embedding(t, d, "img13.jpg")), false) // 2 and 3 were lost
	reqs := b.WaitFor("/requests", wait, func(msgs []mqtttest.Msg) bool { return len(msgs) > 0 })
	req := mqtttest.Decode[fleetsync.SnapshotRequest](t, reqs)[0]
	if req.Gallery != "staff" || req.Revision != 1 || req.Reason != "gap" || req.RequestID == "" {
		t.Fatalf("snapshot request = %+v", req)
	}
	// The backend answers with the gallery at revision 4: p8 and p13,
	// angelina gone.
	snap := fleetsync.GalleryOp{V: 1, Op: fleetsync.OpSnapshot, OpID: "snap-4", Gallery: "staff", Revision: 4, Persons: []fleetsync.PersonSpec{
		{ID: "p8", Faces: []fleetsync.FaceSpec{embedding(t, d, "img8.jpg")}},
		{ID: "p13", Faces: []fleetsync.FaceSpec{embedding(t, d, "img13.jpg")}},
	}}
	b.Publish(ops, snap, false)
	acks := acksUntil(t, b, "snap-4")
	// The held-back revision 4 is answered as a duplicate of the snapshot.
	acks = acksUntil(t, b, "op-4")
	if got := statuses(acks); got != "op-1:1:applied snap-4:4:applied op-4:4:duplicate" {
		t.Errorf("acks = %s", got)
	}
	for probe, want := range map[string]string{"img2.jpg": "", "img9.jpg": "p8", "img14.jpg": "p13"} {
		if got := identified(t, d, probe); got != want {
			t.Errorf("%s identified as %q, want %q", probe, got, want)
		}
	}
}

func TestCommands(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	d := newDevice(t, fleetsync.Config{URL: broker.URL()}, "")
	b := mqtttest.NewBackend(t, broker.URL(), "backend-cmd", "faced/+/replies", "faced/+/requests", "faced/+/acks")
	waitConnected(t, d)
	b.Publish(topic(d, "gallery"), upsert(1, "angelina", embedding(t, d, "img1.jpg")), false)
	acksUntil(t, b, "op-1")
	b.Publish(topic(d, "commands"), fleetsync.Command{V: 1, Command: "device_info", RequestID: "r1"}, false)
	b.Publish(topic(d, "commands"), fleetsync.Command{V: 1, Command: "resync", RequestID: "r2"}, false)
	b.Publish(topic(d, "commands"), []byte(`{"v":1,"command":"reboot","request_id":"r3"}`), false)
	replies := mqtttest.Decode[fleetsync.Reply](t, b.WaitFor("/replies", wait, func(m []mqtttest.Msg) bool { return len(m) == 3 }))
	info, resync, bad := replies[0], replies[1], replies[2]
	if !info.OK || info.Device == nil || info.Device.Galleries["staff"] != 1 || info.Device.Embedder != d.svc.EmbedderID() {
		t.Errorf("device_info reply = %+v", info)
	}
	if !resync.OK || !slices.Equal(resync.Requested, []string{"staff"}) {
		t.Errorf("resync reply = %+v", resync)
	}
	if bad.OK || !strings.Contains(bad.Error, "reboot") || bad.RequestID != "r3" {
		t.Errorf("unknown command reply = %+v", bad)
	}
	req := mqtttest.Decode[fleetsync.SnapshotRequest](t, b.WaitFor("/requests", wait, func(m []mqtttest.Msg) bool { return len(m) == 1 }))[0]
	if req.Gallery != "staff" || req.Revision != 1 || req.Reason != "resync" {
		t.Errorf("resync request = %+v", req)
	}
}

// recordEvents records n events (camera "cam-<i>") and returns their ids.
func recordEvents(t testing.TB, d *device, n int) []uint64 {
	t.Helper()
	ids := make([]uint64, n)
	for i := range n {
		e, err := d.svc.RecordEvent(context.Background(), store.Event{CameraID: fmt.Sprintf("cam-%d", i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = e.ID
	}
	return ids
}

// checkDelivered asserts every event arrived, first occurrences in order,
// duplicates (QoS 1 redelivery) only with the same event id.
func checkDelivered(t testing.TB, b *mqtttest.Backend, want []uint64) {
	t.Helper()
	if got := b.WaitEvents(len(want), 60*time.Second); !slices.Equal(got, want) {
		t.Errorf("events arrived in order %v, want %v", got, want)
	}
}

func TestBrokerOutageLosesNoEvent(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	b := mqtttest.NewBackend(t, broker.URL(), "backend-events", "faced/+/events")
	d := newDevice(t, fleetsync.Config{URL: broker.URL()}, "")
	before := recordEvents(t, d, 5)
	checkDelivered(t, b, before)

	broker.Stop()
	during := recordEvents(t, d, 200)
	if st, _ := d.svc.OutboxStats(context.Background()); st.Count < 200 {
		t.Errorf("outbox holds %d messages during the outage, want at least 200", st.Count)
	}
	broker.Start()
	checkDelivered(t, b, append(before, during...))
	// The device reconnected by itself and emptied its outbox.
	deadline := time.Now().Add(wait)
	for {
		st, _ := d.svc.OutboxStats(context.Background())
		if st.Count == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d messages", st.Count)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The counters are updated after the acknowledgement that empties the
	// outbox: poll them too.
	for {
		m := metrics(t, d)
		if m["faced_mqtt_reconnects_total"] >= 1 && m["faced_mqtt_published_total"] >= 205 && m["faced_mqtt_connected"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after the outage: %v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metrics gathers the syncer's metrics as name{labels} → value.
func metrics(t testing.TB, d *device) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.syncer)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.Counter != nil:
				out[name] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestWrongCredentialsRetryWithoutBlocking(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"door": "right"}})
	d := newDevice(t, fleetsync.Config{URL: broker.URL(), Username: "door", Password: "wrong"}, "")
	// The service works meanwhile: events are recorded and queued.
	recordEvents(t, d, 3)
	deadline := time.Now().Add(wait)
	for strings.Count(d.logs.String(), "cannot connect") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("want at least two logged connection failures, log:\n%s", d.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	log := d.logs.String()
	if !strings.Contains(log, "not Authorized") && !strings.Contains(log, "bad user name or password") {
		t.Errorf("the log does not say the broker refused the credentials:\n%s", log)
	}
	if !strings.Contains(log, "check mqtt.username and mqtt.password") {
		t.Errorf("the log does not say what to fix:\n%s", log)
	}
	if st, _ := d.svc.OutboxStats(context.Background()); st.Count != 3 {
		t.Errorf("outbox holds %d events, want 3 waiting", st.Count)
	}
}

// TLS with a private CA and a client certificate the broker requires;
// without the certificate the device is refused and says why.
func TestTLSWithClientCertificate(t *testing.T) {
	certs := testenv.NewCerts(t)
	broker := mqtttest.Start(t, mqtttest.Options{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CA, RequireCert: true})
	d := newDevice(t, fleetsync.Config{URL: broker.URL(), CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}, "")
	// The recording backend connects over TLS too.
	b := mqtttest.NewBackendTLS(t, broker.URL(), "backend-tls", certs, "faced/+/events")
	want := recordEvents(t, d, 3)
	checkDelivered(t, b, want)

	noCert := newDevice(t, fleetsync.Config{URL: broker.URL(), DeviceID: "door-2", CAFile: certs.CA}, "")
	deadline := time.Now().Add(wait)
	for !strings.Contains(noCert.logs.String(), "cannot connect") {
		if time.Now().After(deadline) {
			t.Fatalf("a device without a client certificate did not log a connection failure:\n%s", noCert.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
