package trueface_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/trueface"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/apitest"
	"github.com/facedhq/faced/internal/apitest/dialecttest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

var vision *daemon.Vision

func TestMain(m *testing.M) { apitest.Main(m, &vision) }

type env struct {
	root, base  string
	svc         *service.Service
	read, write string
	client      *http.Client
}

func newEnv(t *testing.T, q api.Queue) *env {
	t.Helper()
	d := dialecttest.Serve(t, apitest.New(t, vision), q, dialecttest.Mount{Prefix: "/compat/trueface", New: trueface.New})
	return &env{root: d.Root, base: d.Base, svc: d.Svc, read: d.Read, write: d.Write, client: d.Client}
}

type result struct {
	status int
	header http.Header
	body   []byte
	env    map[string]json.RawMessage
}

// do sends what the document's Python demos send: x-api-key and a
// Content-Type header, the body as is.
func (e *env) do(t *testing.T, method, path, key, ctype string, body []byte) result {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return e.send(t, req)
}

func (e *env) json(t *testing.T, method, path, key string, v any) result {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return e.do(t, method, path, key, "application/json", b)
}

func (e *env) send(t *testing.T, req *http.Request) result {
	t.Helper()
	res := dialecttest.Send(t, e.client, req)
	r := result{status: res.Status, header: res.Header, body: res.Body}
	json.Unmarshal(r.body, &r.env)
	return r
}

// want asserts status and the {data, message, success} envelope and
// returns data.
func want(t *testing.T, what string, r result, status int) json.RawMessage {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d (body %s)", what, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", what, ct)
	}
	if len(r.env) != 3 || r.env["data"] == nil || r.env["message"] == nil || r.env["success"] == nil {
		t.Fatalf("%s: body %s, want {data, message, success}", what, r.body)
	}
	var success bool
	json.Unmarshal(r.env["success"], &success)
	if success != (status == 200) {
		t.Fatalf("%s: success %v with status %d", what, success, status)
	}
	if status != 200 {
		var msg string
		if json.Unmarshal(r.env["message"], &msg) != nil || msg == "" || string(r.env["data"]) != "null" {
			t.Fatalf("%s: error body %s", what, r.body)
		}
	}
	return r.env["data"]
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("data %s: %v", raw, err)
	}
	return v
}

func photo(t *testing.T, rel string) []byte { return testenv.ReadPhoto(t, rel) }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// greyJPEG is a face-less photo.
var greyJPEG = dialecttest.GreyJPEG

// TestDetection replays the spdetect and facedetect examples.
func TestDetection(t *testing.T) {
	e := newEnv(t, nil)
	live, spoof := photo(t, "antispoof/image_T1.jpg"), photo(t, "antispoof/image_F1.jpg")

	type sp struct {
		Class   string   `json:"class"`
		Key     string   `json:"key"`
		Score   *float64 `json:"score"`
		Success bool     `json:"success"`
	}
	// The document's curl: binary body, Content-Type image/jpeg.
	for _, c := range []struct {
		name, class, path string
		img               []byte
	}{{"fake", "fake", "/v1/spdetect", spoof}, {"real", "real", "/v1/spdetect/", live}} {
		d := decode[sp](t, want(t, "spdetect "+c.name, e.do(t, "POST", c.path, e.read, "image/jpeg", c.img), 200))
		if d.Class != c.class || d.Key == "" || d.Score == nil || *d.Score < 0.5 || *d.Score > 1 || !d.Success {
			t.Fatalf("spdetect %s: %+v", c.name, d)
		}
	}
	// JSON payload.
	d := decode[sp](t, want(t, "spdetect json", e.json(t, "POST", "/v1/spdetect", e.read, map[string]string{"img": b64(spoof)}), 200))
	if d.Class != "fake" {
		t.Fatalf("spdetect json: %+v", d)
	}
	r := e.do(t, "POST", "/v1/spdetect", e.read, "image/jpeg", spoof)
	var msg string
	json.Unmarshal(r.env["message"], &msg)
	if msg != "data processed successfully" {
		t.Fatalf("spdetect message %q", msg)
	}
	want(t, "spdetect no face", e.do(t, "POST", "/v1/spdetect", e.read, "image/jpeg", greyJPEG(t)), 400)

	type faces struct {
		Faces []struct {
			Box    []float64 `json:"bounding_box"`
			Points []int     `json:"points"`
		} `json:"faces"`
	}
	img1 := photo(t, "deepface/img1.jpg")
	check := func(what string, f faces, n int) {
		t.Helper()
		if len(f.Faces) == 0 {
			t.Fatalf("%s: no face", what)
		}
		for _, fc := range f.Faces {
			if len(fc.Box) != 5 || fc.Box[2] <= fc.Box[0] || fc.Box[3] <= fc.Box[1] || fc.Box[4] <= 0 || fc.Box[4] > 1 {
				t.Fatalf("%s: box %v", what, fc.Box)
			}
			if len(fc.Points) != 2*n {
				t.Fatalf("%s: %d points, want %d", what, len(fc.Points), 2*n)
			}
			for i := range n {
				x, y := float64(fc.Points[i]), float64(fc.Points[n+i])
				if x < fc.Box[0]-20 || x > fc.Box[2]+20 || y < fc.Box[1]-20 || y > fc.Box[3]+20 {
					t.Fatalf("%s: point %d (%v,%v) outside box %v", what, i, x, y, fc.Box)
				}
			}
		}
	}
	check("facedetect", decode[faces](t, want(t, "facedetect", e.do(t, "POST", "/v1/facedetect", e.read, "image/jpeg", img1), 200)), 5)
	check("facedetect slash", decode[faces](t, want(t, "facedetect slash", e.do(t, "POST", "/v1/facedetect/", e.read, "image/jpeg", img1), 200)), 5)
	check("facedetect json", decode[faces](t, want(t, "facedetect json", e.json(t, "POST", "/v1/facedetect", e.read, map[string]string{"img": b64(img1)}), 200)), 5)
	check("rawlandmarks", decode[faces](t, want(t, "rawlandmarks", e.do(t, "POST", "/v1/facedetect?rawlandmarks=true", e.read, "image/jpeg", img1), 200)), 68)
	check("rawlandmark", decode[faces](t, want(t, "rawlandmark", e.do(t, "POST", "/v1/facedetect?rawlandmark=true", e.read, "image/jpeg", img1), 200)), 68)
	if f := decode[faces](t, want(t, "facedetect none", e.do(t, "POST", "/v1/facedetect", e.read, "image/jpeg", greyJPEG(t)), 200)); f.Faces == nil || len(f.Faces) != 0 {
		t.Fatalf("no face: %+v", f)
	}
	want(t, "facedetect not image", e.do(t, "POST", "/v1/facedetect", e.read, "image/jpeg", []byte("not an image")), 400)
	want(t, "facedetect bad base64", e.json(t, "POST", "/v1/facedetect", e.read, map[string]string{"img": "!!!"}), 400)
	want(t, "facedetect no img", e.json(t, "POST", "/v1/facedetect", e.read, map[string]string{}), 400)
}

type enrollData struct {
	EnrollmentID string `json:"enrollment_id"`
}

type collData struct {
	CollectionID string `json:"collection_id"`
}

// TestRecognitionFlow replays the enroll, collection, train, list, match
// and identify examples in the document's order.
func TestRecognitionFlow(t *testing.T) {
	e := newEnv(t, nil)
	img1, img2, other := photo(t, "deepface/img1.jpg"), photo(t, "deepface/img2.jpg"), photo(t, "deepface/img13.jpg")

	// Create a collection (and one with unknowns).
	coll := decode[collData](t, want(t, "create collection", e.json(t, "POST", "/v1/collection", e.write, map[string]any{"name": "Home"}), 200))
	if coll.CollectionID == "" {
		t.Fatal("no collection id")
	}
	strict := decode[collData](t, want(t, "create collection unknowns", e.json(t, "POST", "/v1/collection/", e.write, map[string]any{"name": "Office", "unknowns": true}), 200))
	want(t, "collection no name", e.json(t, "POST", "/v1/collection", e.write, map[string]any{}), 400)
	want(t, "collection bad unknowns", e.json(t, "POST", "/v1/collection", e.write, map[string]any{"name": "x", "unknowns": "yes"}), 400)

	// Enroll: the demo sends img0..img4; here three photos.
	en := decode[enrollData](t, want(t, "enroll", e.json(t, "POST", "/v1/enroll", e.write, map[string]any{
		"img0": b64(img1), "img1": b64(img1), "img2": b64(img1), "name": "John Doe",
	}), 200))
	if en.EnrollmentID == "" {
		t.Fatal("no enrollment id")
	}
	r := e.json(t, "POST", "/v1/enroll", e.write, map[string]any{"img0": b64(other), "name": "Other", "collection_id": strict.CollectionID})
	otherEn := decode[enrollData](t, want(t, "enroll into collection", r, 200))
	var msg string
	json.Unmarshal(r.env["message"], &msg)
	if msg != "enrollment processed successfully" {
		t.Fatalf("enroll message %q", msg)
	}

	// Update an enrollment with one more picture.
	up := decode[enrollData](t, want(t, "update enrollment", e.json(t, "PUT", "/v1/enroll", e.write, map[string]any{"enrollment_id": en.EnrollmentID, "img0": b64(img2)}), 200))
	if up.EnrollmentID != en.EnrollmentID {
		t.Fatalf("update: %+v", up)
	}

	// Add the enrollment to the collection.
	c := decode[collData](t, want(t, "update collection", e.json(t, "PUT", "/v1/collection", e.write, map[string]any{"enrollment_id": en.EnrollmentID, "collection_id": coll.CollectionID}), 200))
	if c.CollectionID != coll.CollectionID {
		t.Fatalf("update collection: %+v", c)
	}

	// Train.
	tr := decode[collData](t, want(t, "train", e.json(t, "POST", "/v1/train", e.write, map[string]any{"collection_id": coll.CollectionID}), 200))
	if tr.CollectionID != coll.CollectionID {
		t.Fatalf("train: %+v", tr)
	}

	// List collections.
	type collection struct {
		ClassifierURL *string  `json:"classifier_url"`
		Created       string   `json:"created"`
		Enrollments   []string `json:"enrollments"`
		ID            string   `json:"id"`
		LabelEncoder  *string  `json:"label_encoder"`
		Name          string   `json:"name"`
		Owner         *string  `json:"owner"`
		Unknown       bool     `json:"unknown"`
		Updated       string   `json:"updated"`
	}
	list := decode[[]collection](t, want(t, "list", e.do(t, "GET", "/v1/collection", e.read, "application/json", nil), 200))
	if len(list) != 2 {
		t.Fatalf("list: %+v", list)
	}
	byID := map[string]collection{}
	for _, l := range list {
		if l.ClassifierURL == nil || l.LabelEncoder == nil || l.Owner == nil || l.Created == "" || l.Updated == "" {
			t.Fatalf("list element %+v", l)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000000", l.Created); err != nil {
			t.Fatalf("created %q: %v", l.Created, err)
		}
		byID[l.ID] = l
	}
	if h := byID[coll.CollectionID]; h.Name != "Home" || h.Unknown || len(h.Enrollments) != 1 || h.Enrollments[0] != en.EnrollmentID {
		t.Fatalf("Home: %+v", h)
	}
	if o := byID[strict.CollectionID]; o.Name != "Office" || !o.Unknown || len(o.Enrollments) != 1 || o.Enrollments[0] != otherEn.EnrollmentID {
		t.Fatalf("Office: %+v", o)
	}
	want(t, "list slash", e.do(t, "GET", "/v1/collection/", e.read, "", nil), 200)

	// Match: one score and match per stored embedding (3 + 1).
	m := decode[map[string]any](t, want(t, "match", e.json(t, "POST", "/v1/match", e.read, map[string]any{"img": b64(img2), "id": en.EnrollmentID}), 200))
	if len(m) != 8 {
		t.Fatalf("match: %v, want emb0..emb3 score and match", m)
	}
	for i := range 4 {
		s, ok := m[fmt.Sprintf("emb%d_score", i)].(float64)
		if !ok || s < 0.5 || s > 1 || m[fmt.Sprintf("emb%d_match", i)] != true {
			t.Fatalf("match emb%d: %v", i, m)
		}
	}
	m = decode[map[string]any](t, want(t, "match other", e.json(t, "POST", "/v1/match/", e.read, map[string]any{"img": b64(other), "id": en.EnrollmentID}), 200))
	for i := range 4 {
		if s := m[fmt.Sprintf("emb%d_score", i)].(float64); s >= 0.5 || m[fmt.Sprintf("emb%d_match", i)] != false {
			t.Fatalf("match other emb%d: %v", i, m)
		}
	}
	// The 0.4 reading and a string threshold are accepted; 1 refuses all.
	want(t, "match 0.4", e.json(t, "POST", "/v1/match", e.read, map[string]any{"img": b64(img2), "id": en.EnrollmentID, "threshold": 0.4}), 200)
	m = decode[map[string]any](t, want(t, "match 1", e.json(t, "POST", "/v1/match", e.read, map[string]any{"img": b64(img2), "id": en.EnrollmentID, "threshold": "1"}), 200))
	if m["emb0_match"] != false {
		t.Fatalf("threshold 1: %v", m)
	}
	want(t, "match bad threshold", e.json(t, "POST", "/v1/match", e.read, map[string]any{"img": b64(img2), "id": en.EnrollmentID, "threshold": 2}), 400)
	want(t, "match unknown id", e.json(t, "POST", "/v1/match", e.read, map[string]any{"img": b64(img2), "id": "nobody"}), 404)
	want(t, "match no face", e.json(t, "POST", "/v1/match", e.read, map[string]any{"img": b64(greyJPEG(t)), "id": en.EnrollmentID}), 400)
	want(t, "match no id", e.json(t, "POST", "/v1/match", e.read, map[string]any{"img": b64(img2)}), 400)

	// Identify.
	type ident struct {
		Name  *string  `json:"name"`
		Key   *string  `json:"key"`
		Score *float64 `json:"score"`
	}
	id := decode[ident](t, want(t, "identify", e.json(t, "POST", "/v1/identify", e.read, map[string]any{"img": b64(img2), "collection_id": coll.CollectionID}), 200))
	if id.Key == nil || *id.Key != en.EnrollmentID || id.Name == nil || *id.Name != "John Doe" || id.Score == nil {
		t.Fatalf("identify: %+v", id)
	}
	// The stranger is not in Home; the enrolled one is not in Office.
	id = decode[ident](t, want(t, "identify unknown", e.json(t, "POST", "/v1/identify/", e.read, map[string]any{"img": b64(other), "collection_id": coll.CollectionID}), 200))
	if id.Key != nil || id.Name != nil {
		t.Fatalf("identify stranger: %+v", id)
	}
	id = decode[ident](t, want(t, "identify office", e.json(t, "POST", "/v1/identify", e.read, map[string]any{"img": b64(img2), "collection_id": strict.CollectionID}), 200))
	if id.Key != nil {
		t.Fatalf("identify in office: %+v", id)
	}
	id = decode[ident](t, want(t, "identify office other", e.json(t, "POST", "/v1/identify", e.read, map[string]any{"img": b64(other), "collection_id": strict.CollectionID}), 200))
	if id.Key == nil || *id.Key != otherEn.EnrollmentID {
		t.Fatalf("identify other in office: %+v", id)
	}
	want(t, "identify unknown collection", e.json(t, "POST", "/v1/identify", e.read, map[string]any{"img": b64(img2), "collection_id": "tf-000000000000000000000000"}), 404)
	want(t, "identify legacy id", e.json(t, "POST", "/v1/identify", e.read, map[string]any{"img": b64(img2), "collection_id": "ahBzfmNodWlzcGRldGVjdG9ychcLEgpDb2xsZWN0aW9uGICAgMCluLELDA=="}), 404)
	want(t, "identify no face", e.json(t, "POST", "/v1/identify", e.read, map[string]any{"img": b64(greyJPEG(t)), "collection_id": coll.CollectionID}), 400)

	// Delete a collection: enrollments survive.
	r = e.json(t, "DELETE", "/v1/collection", e.write, map[string]any{"collection_id": coll.CollectionID})
	if d := decode[string](t, want(t, "delete collection", r, 200)); d != "Entity *"+coll.CollectionID+"* has been deleted" || string(r.env["message"]) != "null" {
		t.Fatalf("delete collection: %s", r.body)
	}
	want(t, "delete collection again", e.json(t, "DELETE", "/v1/collection", e.write, map[string]any{"collection_id": coll.CollectionID}), 404)
	want(t, "train deleted", e.json(t, "POST", "/v1/train", e.write, map[string]any{"collection_id": coll.CollectionID}), 404)
	want(t, "match after collection delete", e.json(t, "POST", "/v1/match", e.read, map[string]any{"img": b64(img2), "id": en.EnrollmentID}), 200)

	// Delete an enrollment.
	r = e.json(t, "DELETE", "/v1/enroll", e.write, map[string]any{"enrollment_id": en.EnrollmentID})
	if d := decode[string](t, want(t, "delete enrollment", r, 200)); d != "Enrollment *"+en.EnrollmentID+"* has been deleted" || string(r.env["message"]) != "null" {
		t.Fatalf("delete enrollment: %s", r.body)
	}
	want(t, "delete enrollment again", e.json(t, "DELETE", "/v1/enroll/", e.write, map[string]any{"enrollment_id": en.EnrollmentID}), 404)
	want(t, "match deleted", e.json(t, "POST", "/v1/match", e.read, map[string]any{"img": b64(img2), "id": en.EnrollmentID}), 404)
	want(t, "update deleted", e.json(t, "PUT", "/v1/enroll", e.write, map[string]any{"enrollment_id": en.EnrollmentID, "img0": b64(img2)}), 404)
}

// TestErrors covers the documented error codes and wrong auth styles.
func TestErrors(t *testing.T) {
	e := newEnv(t, nil)
	img1 := photo(t, "deepface/img1.jpg")
	enroll := map[string]any{"img0": b64(img1)}

	// 401: missing, wrong, and other styles.
	want(t, "no key", e.json(t, "POST", "/v1/enroll", "", enroll), 401)
	want(t, "wrong key", e.json(t, "POST", "/v1/enroll", "nope.nope", enroll), 401)
	for name, v := range map[string]string{"token": "Token " + e.write, "bearer": "Bearer " + e.write} {
		b, _ := json.Marshal(enroll)
		req, _ := http.NewRequest("POST", e.base+"/v1/enroll", bytes.NewReader(b))
		req.Header.Set("Authorization", v)
		req.Header.Set("Content-Type", "application/json")
		want(t, name, e.send(t, req), 401)
	}
	// 403: read key writing.
	want(t, "read key enrolls", e.json(t, "POST", "/v1/enroll", e.read, enroll), 403)
	want(t, "read key collection", e.json(t, "POST", "/v1/collection", e.read, map[string]any{"name": "x"}), 403)
	// 400s.
	want(t, "bad JSON", e.do(t, "POST", "/v1/enroll", e.write, "application/json", []byte(`{"img0":`)), 400)
	want(t, "no image", e.json(t, "POST", "/v1/enroll", e.write, map[string]any{"name": "x"}), 400)
	want(t, "img10", e.json(t, "POST", "/v1/enroll", e.write, map[string]any{"img0": b64(img1), "img10": b64(img1)}), 400)
	want(t, "no face", e.json(t, "POST", "/v1/enroll", e.write, map[string]any{"img0": b64(img1), "img1": b64(greyJPEG(t))}), 400)
	want(t, "bad base64", e.json(t, "POST", "/v1/enroll", e.write, map[string]any{"img0": "%%%"}), 400)
	want(t, "update no id", e.json(t, "PUT", "/v1/enroll", e.write, map[string]any{"img0": b64(img1)}), 400)
	want(t, "delete no id", e.json(t, "DELETE", "/v1/enroll", e.write, map[string]any{}), 400)
	want(t, "train no id", e.json(t, "POST", "/v1/train", e.write, map[string]any{}), 400)
	want(t, "update collection no ids", e.json(t, "PUT", "/v1/collection", e.write, map[string]any{"collection_id": "x"}), 400)
	// 404s.
	want(t, "enroll unknown collection", e.json(t, "POST", "/v1/enroll", e.write, map[string]any{"img0": b64(img1), "collection_id": "nope"}), 404)
	want(t, "update collection unknown", e.json(t, "PUT", "/v1/collection", e.write, map[string]any{"collection_id": "nope", "enrollment_id": "x"}), 404)
	want(t, "unknown path", e.do(t, "GET", "/v1/nothing", e.read, "", nil), 404)
	// 405.
	r := e.do(t, "GET", "/v1/match", e.read, "", nil)
	want(t, "method", r, 405)
	if r.header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
	// Nothing was stored by the failures.
	page, err := e.svc.ListFaces(context.Background(), store.ListOptions{})
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("faces after errors: %d (%v)", len(page.Items), err)
	}
}

func TestBusy(t *testing.T) {
	e := newEnv(t, dialecttest.BusyQueue{})
	r := e.do(t, "POST", "/v1/facedetect", e.read, "image/jpeg", photo(t, "deepface/img1.jpg"))
	want(t, "busy", r, 429)
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// TestCrossDialect: an enrollment made here is found by native identify.
func TestCrossDialect(t *testing.T) {
	e := newEnv(t, nil)
	img1, img2 := photo(t, "deepface/img1.jpg"), photo(t, "deepface/img2.jpg")
	en := decode[enrollData](t, want(t, "enroll", e.json(t, "POST", "/v1/enroll", e.write, map[string]any{"img0": b64(img1), "name": "Jane"}), 200))
	body, _ := json.Marshal(map[string]any{"photo": b64(img2)})
	req, _ := http.NewRequest("POST", e.root+"/v1/identify", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.read)
	req.Header.Set("Content-Type", "application/json")
	r := e.send(t, req)
	var native struct {
		Faces []struct {
			Matches []struct {
				Person struct {
					ID string `json:"id"`
				} `json:"person"`
			} `json:"matches"`
		} `json:"faces"`
	}
	if err := json.Unmarshal(r.body, &native); err != nil || r.status != 200 {
		t.Fatalf("/v1/identify: %d %s (%v)", r.status, r.body, err)
	}
	if len(native.Faces) == 0 || len(native.Faces[0].Matches) == 0 || native.Faces[0].Matches[0].Person.ID != en.EnrollmentID {
		t.Fatalf("/v1/identify: %s, want person %s", r.body, en.EnrollmentID)
	}
	if !strings.Contains(string(r.body), "Jane") {
		t.Fatalf("/v1/identify: name missing: %s", r.body)
	}
}

func TestScale(t *testing.T) {
	for _, c := range []struct {
		preset string
		score  float64
	}{{"low", 0.4}, {"medium", 0.5}, {"strict", 0.6}} {
		conf := service.Presets[c.preset]
		if s := trueface.Score(conf); s < c.score-1e-6 || s > c.score+1e-6 {
			t.Errorf("Score(%s) = %v, want %v", c.preset, s, c.score)
		}
		if v := trueface.Confidence(c.score); v < conf-1e-6 || v > conf+1e-6 {
			t.Errorf("Confidence(%v) = %v, want %v", c.score, v, conf)
		}
	}
	if trueface.Score(0) != 0 || trueface.Score(1) != 1 {
		t.Error("scale ends")
	}
}
