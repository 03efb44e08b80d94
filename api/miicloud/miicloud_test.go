package miicloud_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/facedhq/faced/api/miicloud"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/apitest"
	"github.com/facedhq/faced/internal/apitest/dialecttest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

var vision *daemon.Vision

func TestMain(m *testing.M) { apitest.Main(m, &vision) }

// The document's sample customer ids.
const (
	pyID   = "1234567"
	curlID = "5712f5242cf956c7c1d248e89"
	m11ID  = "8e64b48cf88349e390498c413ad2bbad"
)

type env struct {
	base   string // the dialect's base URL
	url    string // the server root, for the native API
	svc    *service.Service
	read   string
	write  string
	admin  string
	client *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := dialecttest.Serve(t, apitest.New(t, vision), nil, dialecttest.Mount{Prefix: "/compat/miicloud", New: miicloud.New})
	return &env{base: d.Base, url: d.Root, svc: d.Svc, read: d.Read, write: d.Write, admin: d.Admin, client: d.Client}
}

func photo(t *testing.T, name string) []byte { return testenv.ReadPhoto(t, "deepface/"+name) }

// greyJPEG is a face-less photo.
var greyJPEG = dialecttest.GreyJPEG

type field struct{ k, v string }

// file is an uploaded image_path part.
type file struct {
	name, ctype string
	data        []byte
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json (body %s)", ct, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return m
}

// multipartBody builds a form the way requests (files= with data=) and
// curl -F do: text fields, then the image_path file part.
func multipartBody(t *testing.T, fields []field, f *file) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, fl := range fields {
		w.WriteField(fl.k, fl.v)
	}
	if f != nil {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="image_path"; filename="`+f.name+`"`)
		h.Set("Content-Type", f.ctype)
		p, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		p.Write(f.data)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func (e *env) do(t *testing.T, method, path string, header map[string]string, ctype string, body []byte) result {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	r := dialecttest.Send(t, e.client, req)
	return result{r.Status, r.Header, r.Body}
}

// form sends a multipart request with "authorization: Token <key>".
func (e *env) form(t *testing.T, method, path, key string, fields []field, f *file) result {
	t.Helper()
	ct, b := multipartBody(t, fields, f)
	return e.do(t, method, path, map[string]string{"authorization": "Token " + key}, ct, b)
}

func (e *env) plain(t *testing.T, method, path, key string) result {
	t.Helper()
	return e.do(t, method, path, map[string]string{"authorization": "Token " + key}, "", nil)
}

// The python examples send the file part with this content type.
func pyFile(name string, data []byte) *file {
	return &file{name: name, ctype: "multipart/form-data", data: data}
}

func curlFile(name string, data []byte) *file {
	return &file{name: name, ctype: "image/jpeg", data: data}
}

func wantStatus(t *testing.T, what string, r result, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d (body %s)", what, r.status, status, r.body)
	}
	return r.json(t)
}

// wantFail asserts an error answer {"status": "fail", "detail": ...}.
func wantFail(t *testing.T, what string, r result, status int) map[string]any {
	t.Helper()
	m := wantStatus(t, what, r, status)
	if m["status"] != "fail" {
		t.Fatalf("%s: body %s, want status fail", what, r.body)
	}
	if d, _ := m["detail"].(string); d == "" {
		t.Fatalf("%s: body %s, want a detail", what, r.body)
	}
	return m
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func wantKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keys(m); !slices.Equal(got, want) {
		t.Fatalf("%s: fields %v, want %v (%v)", what, got, want, m)
	}
}

func wantFields(t *testing.T, what string, m map[string]any, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if m[k] != v {
			t.Fatalf("%s: %s = %v, want %q (%v)", what, k, m[k], v, m)
		}
	}
}

// box checks a bounding_box object and returns it.
func box(t *testing.T, what string, v any) [4]float64 {
	t.Helper()
	b, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: bounding_box %v", what, v)
	}
	wantKeys(t, what+" bounding_box", b, "left_x", "left_y", "right_x", "right_y")
	var out [4]float64
	for i, k := range []string{"left_x", "left_y", "right_x", "right_y"} {
		f, ok := b[k].(float64)
		if !ok || f != float64(int(f)) {
			t.Fatalf("%s: %s = %v, want an integer", what, k, b[k])
		}
		out[i] = f
	}
	if out[2] <= out[0] || out[3] <= out[1] {
		t.Fatalf("%s: bounding_box %v is empty", what, out)
	}
	return out
}

var (
	enrollKeys = []string{"status", "miicloud_person_id", "customer_person_id", "first_name", "last_name", "email", "phone", "bounding_box", "image"}
	updateKeys = []string{"status", "miicloud_person_id", "customer_person_id", "first_name", "last_name", "email", "phone", "images", "bounding_box"}
	getKeys    = []string{"miicloud_person_id", "customer_person_id", "first_name", "last_name", "email", "phone", "images"}
	deleteKeys = []string{"status", "miicloud_person_id", "customer_person_id"}
	createdRE  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)
)

// images checks an images array and returns the image names.
func images(t *testing.T, what string, v any) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%s: images %v", what, v)
	}
	var names []string
	prev := ""
	for _, x := range arr {
		im, _ := x.(map[string]any)
		wantKeys(t, what+" image", im, "image", "created")
		c, _ := im["created"].(string)
		if !createdRE.MatchString(c) {
			t.Fatalf("%s: created %q", what, c)
		}
		if prev != "" && c > prev {
			t.Fatalf("%s: images not newest first: %v", what, arr)
		}
		prev = c
		names = append(names, im["image"].(string))
	}
	return names
}

type matchFace struct {
	status string
	box    [4]float64
	conf   float64
	raw    map[string]any
}

func faces(t *testing.T, what string, r result) []matchFace {
	t.Helper()
	m := wantStatus(t, what, r, 200)
	wantKeys(t, what, m, "faces")
	arr, ok := m["faces"].([]any)
	if !ok {
		t.Fatalf("%s: faces %v", what, m["faces"])
	}
	var out []matchFace
	for _, x := range arr {
		f := x.(map[string]any)
		mf := matchFace{raw: f, box: box(t, what, f["bounding_box"])}
		mf.status, _ = f["match_status"].(string)
		c, ok := f["match_confidence"].(float64)
		if !ok || c < 0 || c > 1 {
			t.Fatalf("%s: match_confidence %v", what, f["match_confidence"])
		}
		mf.conf = c
		switch mf.status {
		case "known":
			wantKeys(t, what, f, "match_status", "bounding_box", "match_confidence", "miicloud_person_id", "person_id", "customer_person_id")
			if f["person_id"] != f["miicloud_person_id"] {
				t.Fatalf("%s: person_id %v != miicloud_person_id %v", what, f["person_id"], f["miicloud_person_id"])
			}
		case "unknown":
			wantKeys(t, what, f, "match_status", "bounding_box", "match_confidence")
		default:
			t.Fatalf("%s: match_status %q", what, mf.status)
		}
		out = append(out, mf)
	}
	t.Logf("%s: %s", what, r.body)
	return out
}

// TestDocumentFlow replays every request example of the document.
func TestDocumentFlow(t *testing.T) {
	e := newEnv(t)
	img1, img2, img13 := photo(t, "img1.jpg"), photo(t, "img2.jpg"), photo(t, "img13.jpg")

	// Enroll Person, the Python example.
	r := e.form(t, "POST", "/miicloud/person", e.write, []field{
		{"customer_person_id", pyID}, {"first_name", "John"}, {"last_name", "Doe"},
		{"email", "test@domain.com"}, {"phone", "0123456789"},
	}, pyFile("will_smith_001.jpg", img13))
	m := wantStatus(t, "enroll python", r, 200)
	wantKeys(t, "enroll python", m, enrollKeys...)
	wantFields(t, "enroll python", m, map[string]string{"status": "success", "customer_person_id": pyID,
		"first_name": "John", "last_name": "Doe", "email": "test@domain.com", "phone": "0123456789"})
	pyPerson := m["miicloud_person_id"].(string)
	box(t, "enroll python", m["bounding_box"])

	// Enroll Person, the curl example.
	r = e.form(t, "POST", "/miicloud/person", e.write, []field{
		{"customer_person_id", curlID}, {"first_name", "John"}, {"last_name", "Doe"},
		{"email", "test@domain.com"}, {"phone", "+141524204243"},
	}, curlFile("will_smith_001.jpg", img1))
	m = wantStatus(t, "enroll curl", r, 200)
	wantKeys(t, "enroll curl", m, enrollKeys...)
	wantFields(t, "enroll curl", m, map[string]string{"status": "success", "customer_person_id": curlID,
		"first_name": "John", "last_name": "Doe", "email": "test@domain.com", "phone": "+141524204243"})
	curlPerson, _ := m["miicloud_person_id"].(string)
	if curlPerson == "" || curlPerson == pyPerson {
		t.Fatalf("miicloud_person_id %q (python %q)", curlPerson, pyPerson)
	}
	if img, _ := m["image"].(string); !regexp.MustCompile(`^enroll/will_smith_001_[A-Za-z0-9]{7}\.jpg$`).MatchString(img) {
		t.Fatalf("image %q", img)
	}
	box(t, "enroll curl", m["bounding_box"])

	// Update Person, the Python example: PUT /person, id in the body.
	r = e.form(t, "PUT", "/miicloud/person", e.write, []field{
		{"customer_person_id", curlID}, {"first_name", "John"}, {"last_name", "Doe"},
		{"email", "john_doe_2@domain.com"}, {"phone", "+12222222222"},
	}, pyFile("will_smith_003.jpg", img1))
	m = wantStatus(t, "update python", r, 200)
	wantKeys(t, "update python", m, updateKeys...)
	wantFields(t, "update python", m, map[string]string{"status": "success", "customer_person_id": curlID, "miicloud_person_id": curlPerson,
		"first_name": "John", "last_name": "Doe", "email": "john_doe_2@domain.com", "phone": "+12222222222"})
	if names := images(t, "update python", m["images"]); len(names) != 2 || !strings.HasPrefix(names[0], "enroll/will_smith_003_") {
		t.Fatalf("update python: images %v", names)
	}
	box(t, "update python", m["bounding_box"])

	// Update Person, the curl example: PUT /person/{id}.
	r = e.form(t, "PUT", "/miicloud/person/"+curlID, e.write, []field{
		{"first_name", "John"}, {"last_name", "Doe"}, {"email", "john_doe_2@domain.com"}, {"phone", "+12222222222"},
	}, curlFile("will_smith_003.jpg", img1))
	m = wantStatus(t, "update curl", r, 200)
	wantKeys(t, "update curl", m, updateKeys...)
	wantFields(t, "update curl", m, map[string]string{"status": "success", "customer_person_id": curlID, "miicloud_person_id": curlPerson})
	if names := images(t, "update curl", m["images"]); len(names) != 3 {
		t.Fatalf("update curl: images %v", names)
	}
	// Without an image: no bounding_box; fields change, empty ones stay.
	r = e.form(t, "PUT", "/miicloud/person/"+curlID+"/", e.write, []field{{"first_name", "Jane"}, {"phone", ""}}, nil)
	m = wantStatus(t, "update no image", r, 200)
	wantKeys(t, "update no image", m, "status", "miicloud_person_id", "customer_person_id", "first_name", "last_name", "email", "phone", "images")
	wantFields(t, "update no image", m, map[string]string{"first_name": "Jane", "last_name": "Doe", "phone": "+12222222222"})
	// The two ids must agree.
	wantFail(t, "update id mismatch", e.form(t, "PUT", "/miicloud/person/"+curlID, e.write, []field{{"customer_person_id", pyID}}, nil), 400)
	wantFail(t, "update no id", e.form(t, "PUT", "/miicloud/person", e.write, []field{{"first_name", "X"}}, nil), 400)
	wantFail(t, "update unknown", e.form(t, "PUT", "/miicloud/person/nobody", e.write, []field{{"first_name", "X"}}, nil), 404)
	// An image without a face changes nothing.
	wantFail(t, "update no face", e.form(t, "PUT", "/miicloud/person/"+curlID, e.write, []field{{"first_name", "Nope"}}, curlFile("grey.jpg", greyJPEG(t))), 400)

	// Get Person (Python and curl send the same request), with the read key.
	for _, p := range []string{"/miicloud/person/" + curlID, "/miicloud/person/" + curlID + "/", "/miicloud/person?customer_person_id=" + curlID} {
		r = e.plain(t, "GET", p, e.read)
		m = wantStatus(t, "get "+p, r, 200)
		wantKeys(t, "get", m, getKeys...)
		wantFields(t, "get", m, map[string]string{"customer_person_id": curlID, "miicloud_person_id": curlPerson,
			"first_name": "Jane", "last_name": "Doe", "email": "john_doe_2@domain.com", "phone": "+12222222222"})
		if names := images(t, "get", m["images"]); len(names) != 3 || !strings.HasPrefix(names[2], "enroll/will_smith_001_") {
			t.Fatalf("get: images %v", names)
		}
	}
	m = wantFail(t, "get unknown", e.plain(t, "GET", "/miicloud/person/nobody", e.read), 404)
	wantFields(t, "get unknown", m, map[string]string{"customer_person_id": "nobody"})

	// Match Faces, the Python example: 1:N, image_path as a text field
	// and as the file.
	r = e.form(t, "POST", "/miicloud/match_faces", e.read, []field{{"image_path", "input/test_images/test_001.jpg"}}, pyFile("test_001.jpg", img2))
	fs := faces(t, "match 1:N", r)
	if len(fs) != 1 || fs[0].status != "known" || fs[0].raw["customer_person_id"] != curlID || fs[0].raw["miicloud_person_id"] != curlPerson || fs[0].conf < 0.5 {
		t.Fatalf("match 1:N: %s", r.body)
	}
	// Trailing slash; the other person.
	r = e.form(t, "POST", "/miicloud/match_faces/", e.read, nil, curlFile("x.jpg", img13))
	if fs := faces(t, "match 1:N img13", r); len(fs) != 1 || fs[0].raw["customer_person_id"] != pyID {
		t.Fatalf("match 1:N img13: %s", r.body)
	}

	// Match Faces, the curl example: 1:1 with customer_person_id.
	r = e.form(t, "POST", "/miicloud/match_faces", e.read, []field{{"customer_person_id", curlID}}, curlFile("test_001.jpg", img2))
	if fs := faces(t, "match 1:1", r); len(fs) != 1 || fs[0].status != "known" || fs[0].raw["customer_person_id"] != curlID || fs[0].conf < 0.5 {
		t.Fatalf("match 1:1: %s", r.body)
	}
	// 1:1 against the wrong person: unknown.
	r = e.form(t, "POST", "/miicloud/match_faces", e.read, []field{{"customer_person_id", pyID}}, curlFile("test_001.jpg", img2))
	if fs := faces(t, "match 1:1 other", r); len(fs) != 1 || fs[0].status != "unknown" || fs[0].conf >= 0.5 {
		t.Fatalf("match 1:1 other: %s", r.body)
	}
	wantFail(t, "match 1:1 unknown person", e.form(t, "POST", "/miicloud/match_faces", e.read, []field{{"customer_person_id", "nobody"}}, curlFile("a.jpg", img2)), 404)
	// No face: an empty array.
	if fs := faces(t, "match no face", e.form(t, "POST", "/miicloud/match_faces", e.read, nil, curlFile("g.jpg", greyJPEG(t)))); len(fs) != 0 {
		t.Fatal("match no face: faces found")
	}
	wantFail(t, "match no image", e.form(t, "POST", "/miicloud/match_faces", e.read, []field{{"image_path", "input/x.jpg"}}, nil), 400)

	// Delete Person (Python and curl send the same request).
	r = e.plain(t, "DELETE", "/miicloud/person/"+curlID, e.write)
	m = wantStatus(t, "delete", r, 200)
	wantKeys(t, "delete", m, deleteKeys...)
	wantFields(t, "delete", m, map[string]string{"status": "success", "customer_person_id": curlID, "miicloud_person_id": curlPerson})
	wantFail(t, "delete again", e.plain(t, "DELETE", "/miicloud/person/"+curlID, e.write), 404)
	wantFail(t, "get deleted", e.plain(t, "GET", "/miicloud/person/"+curlID, e.read), 404)
	r = e.form(t, "POST", "/miicloud/match_faces", e.read, nil, curlFile("test_001.jpg", img2))
	if fs := faces(t, "match after delete", r); len(fs) != 1 || fs[0].status != "unknown" {
		t.Fatalf("match after delete: %s", r.body)
	}
	// Delete with the id as a query parameter and a trailing slash.
	m = wantStatus(t, "delete query", e.plain(t, "DELETE", "/miicloud/person/?customer_person_id="+pyID, e.write), 200)
	wantFields(t, "delete query", m, map[string]string{"status": "success", "customer_person_id": pyID, "miicloud_person_id": pyPerson})
	// The id is free again.
	r = e.form(t, "POST", "/miicloud/person/", e.write, []field{{"customer_person_id", curlID}}, curlFile("a.jpg", img1))
	m = wantStatus(t, "re-enroll", r, 200)
	wantFields(t, "re-enroll", m, map[string]string{"status": "success", "first_name": "", "email": ""})
}

// TestEnrollErrors covers the enrol failures.
func TestEnrollErrors(t *testing.T) {
	e := newEnv(t)
	img1 := photo(t, "img1.jpg")
	// No face: status fail, nothing stored.
	m := wantFail(t, "no face", e.form(t, "POST", "/miicloud/person", e.write, []field{{"customer_person_id", curlID}}, curlFile("grey.jpg", greyJPEG(t))), 400)
	wantFields(t, "no face", m, map[string]string{"customer_person_id": curlID})
	wantFail(t, "no face stored", e.plain(t, "GET", "/miicloud/person/"+curlID, e.read), 404)
	wantFail(t, "no id", e.form(t, "POST", "/miicloud/person", e.write, []field{{"first_name", "J"}}, curlFile("a.jpg", img1)), 400)
	wantFail(t, "no image", e.form(t, "POST", "/miicloud/person", e.write, []field{{"customer_person_id", curlID}}, nil), 400)
	wantStatus(t, "enroll", e.form(t, "POST", "/miicloud/person", e.write, []field{{"customer_person_id", curlID}}, curlFile("a.jpg", img1)), 200)
	wantFail(t, "duplicate", e.form(t, "POST", "/miicloud/person", e.write, []field{{"customer_person_id", curlID}}, curlFile("a.jpg", img1)), 400)
	// Not an image: 415.
	wantFail(t, "text file", e.form(t, "POST", "/miicloud/person", e.write, []field{{"customer_person_id", "x"}}, curlFile("a.txt", []byte("this is not an image at all, just some text"))), 415)
	// Not a form: 406.
	wantFail(t, "not a form", e.do(t, "POST", "/miicloud/person", map[string]string{"authorization": "Token " + e.write}, "text/plain", []byte("hello")), 406)
	// A JSON object of strings serves requests without an image.
	r := e.do(t, "PUT", "/miicloud/person", map[string]string{"authorization": "Token " + e.write}, "application/json", []byte(`{"customer_person_id":"`+curlID+`","email":"j@x.org"}`))
	wantFields(t, "json update", wantStatus(t, "json update", r, 200), map[string]string{"email": "j@x.org"})
}

// TestLargestFace: enrolment takes the biggest face of a photo.
func TestLargestFace(t *testing.T) {
	e := newEnv(t)
	couple := photo(t, "couple.jpg")
	m := wantStatus(t, "enroll couple", e.form(t, "POST", "/miicloud/person", e.write, []field{{"customer_person_id", "big"}}, curlFile("couple.jpg", couple)), 200)
	enrolled := box(t, "enroll couple", m["bounding_box"])
	fs := faces(t, "match couple", e.form(t, "POST", "/miicloud/match_faces", e.read, nil, curlFile("couple.jpg", couple)))
	if len(fs) < 2 {
		t.Fatalf("match couple: %d faces, want 2 or more", len(fs))
	}
	area := func(b [4]float64) float64 { return (b[2] - b[0]) * (b[3] - b[1]) }
	known := 0
	for _, f := range fs {
		if area(f.box) > area(enrolled)*1.01 {
			t.Fatalf("face %v is bigger than the enrolled %v", f.box, enrolled)
		}
		if f.status == "known" {
			known++
			if f.box != enrolled || f.raw["customer_person_id"] != "big" {
				t.Fatalf("known face %v, enrolled %v", f.raw, enrolled)
			}
		}
	}
	if known != 1 {
		t.Fatalf("%d known faces, want 1", known)
	}
}

// TestAuth: only "Authorization: Token <key>", with the right scope.
func TestAuth(t *testing.T) {
	e := newEnv(t)
	img1 := photo(t, "img1.jpg")
	ct, body := multipartBody(t, []field{{"customer_person_id", curlID}}, curlFile("a.jpg", img1))
	for name, h := range map[string]map[string]string{
		"x-api-key": {"x-api-key": e.write},
		"bearer":    {"Authorization": "Bearer " + e.write},
		"bare":      {"Authorization": e.write},
		"bad token": {"Authorization": "Token nope.nope"},
		"none":      {},
	} {
		wantFail(t, name, e.do(t, "POST", "/miicloud/person", h, ct, body), 401)
	}
	// Read key: no enrol, update or delete.
	wantFail(t, "read enroll", e.do(t, "POST", "/miicloud/person", map[string]string{"Authorization": "Token " + e.read}, ct, body), 403)
	wantStatus(t, "lower-case scheme", e.do(t, "POST", "/miicloud/person", map[string]string{"authorization": "token " + e.write}, ct, body), 200)
	wantFail(t, "read update", e.form(t, "PUT", "/miicloud/person/"+curlID, e.read, []field{{"first_name", "X"}}, nil), 403)
	wantFail(t, "read delete", e.plain(t, "DELETE", "/miicloud/person/"+curlID, e.read), 403)
	wantFail(t, "get x-api-key", e.do(t, "GET", "/miicloud/person/"+curlID, map[string]string{"x-api-key": e.read}, "", nil), 401)
	wantStatus(t, "get read", e.plain(t, "GET", "/miicloud/person/"+curlID, e.read), 200)
	wantStatus(t, "get write", e.plain(t, "GET", "/miicloud/person/"+curlID, e.write), 200)
}

// TestRouting: unknown paths 404, wrong methods 405 with Allow.
func TestRouting(t *testing.T) {
	e := newEnv(t)
	wantFail(t, "unknown path", e.plain(t, "GET", "/miicloud/nothing", e.read), 404)
	r := e.plain(t, "POST", "/miicloud/person/"+curlID, e.write)
	wantFail(t, "POST person/{id}", r, 405)
	if r.header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
	wantFail(t, "GET match_faces", e.plain(t, "GET", "/miicloud/match_faces", e.read), 405)
}

// TestCrossDialect: a person enrolled here is the native API's person,
// with external_id = customer_person_id.
func TestCrossDialect(t *testing.T) {
	e := newEnv(t)
	img1, img2 := photo(t, "img1.jpg"), photo(t, "img2.jpg")
	m := wantStatus(t, "enroll", e.form(t, "POST", "/miicloud/person", e.write, []field{{"customer_person_id", curlID}, {"first_name", "John"}, {"last_name", "Doe"}}, curlFile("a.jpg", img1)), 200)
	body, _ := json.Marshal(map[string]string{"photo": base64.StdEncoding.EncodeToString(img2)})
	req, _ := http.NewRequest("POST", e.url+"/v1/identify", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.read)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var native struct {
		Faces []struct {
			Matches []struct {
				Person struct {
					ID         string `json:"id"`
					ExternalID string `json:"external_id"`
					Name       string `json:"name"`
				} `json:"person"`
			} `json:"matches"`
		} `json:"faces"`
	}
	if err := json.Unmarshal(b, &native); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/v1/identify: %d %s (%v)", resp.StatusCode, b, err)
	}
	if len(native.Faces) == 0 || len(native.Faces[0].Matches) == 0 {
		t.Fatalf("/v1/identify: %s, no match", b)
	}
	p := native.Faces[0].Matches[0].Person
	if p.ExternalID != curlID || p.ID != m["miicloud_person_id"] || p.Name != "John Doe" {
		t.Fatalf("/v1/identify: %s, want external_id %s, id %v", b, curlID, m["miicloud_person_id"])
	}

	// A native person with an external id is seen here.
	if _, _, err := e.svc.Enroll(context.Background(), service.EnrollRequest{
		Person: store.Person{ID: "native", ExternalID: m11ID, Name: "Native Person"}, Photos: [][]byte{photo(t, "img13.jpg")},
	}); err != nil {
		t.Fatal(err)
	}
	g := wantStatus(t, "get native", e.plain(t, "GET", "/miicloud/person/"+m11ID, e.read), 200)
	wantFields(t, "get native", g, map[string]string{"miicloud_person_id": "native", "first_name": "Native Person", "last_name": ""})
	if names := images(t, "get native", g["images"]); len(names) != 1 {
		t.Fatalf("get native: images %v", names)
	}
	r := e.form(t, "POST", "/miicloud/match_faces", e.read, []field{{"customer_person_id", m11ID}}, curlFile("x.jpg", photo(t, "img13.jpg")))
	if fs := faces(t, "match native", r); len(fs) != 1 || fs[0].status != "known" || fs[0].raw["miicloud_person_id"] != "native" {
		t.Fatalf("match native: %s", r.body)
	}
}

func TestBusy(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewServer(miicloud.New(e.svc, dialecttest.BusyQueue{}, nil))
	t.Cleanup(ts.Close)
	e.base = ts.URL
	r := e.form(t, "POST", "/miicloud/match_faces", e.read, nil, curlFile("a.jpg", photo(t, "img2.jpg")))
	wantFail(t, "busy", r, 429)
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
