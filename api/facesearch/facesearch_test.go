package facesearch_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/facesearch"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/apitest"
	"github.com/facedhq/faced/internal/apitest/dialecttest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

var vision *daemon.Vision

func TestMain(m *testing.M) { apitest.Main(m, &vision) }

const base = "/api/v2/face_search"

type key struct{ id, secret, token string }

type env struct {
	root, base  string
	svc         *service.Service
	read, write key
	client      *http.Client
}

func newEnv(t *testing.T, q api.Queue) *env {
	t.Helper()
	d := dialecttest.Serve(t, apitest.New(t, vision), q, dialecttest.Mount{Prefix: "/compat/facesearch", New: func(svc *service.Service, q api.Queue, logger *slog.Logger) http.Handler {
		return facesearch.New(svc, q, logger)
	}})
	e := &env{root: d.Root, base: d.Base, svc: d.Svc, client: d.Client}
	for dst, token := range map[*key]string{&e.read: d.Read, &e.write: d.Write} {
		id, secret, _ := strings.Cut(token, ".")
		*dst = key{id, secret, token}
	}
	return e
}

type result struct {
	status int
	header http.Header
	body   []byte
	env    map[string]json.RawMessage
}

// do sends a request as the document's Python demos do: requests with
// auth=(api_key, api_secret) and data=payload (no Content-Type).
func (e *env) do(t *testing.T, method, path string, k *key, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if k != nil {
		req.SetBasicAuth(k.id, k.secret)
	}
	return e.send(t, req)
}

func (e *env) send(t *testing.T, req *http.Request) result {
	t.Helper()
	res := dialecttest.Send(t, e.client, req)
	r := result{status: res.Status, header: res.Header, body: res.Body}
	json.Unmarshal(r.body, &r.env)
	return r
}

// want asserts the envelope: status, exactly the three keys, the code and
// its documented message.
func want(t *testing.T, what string, r result, status, code int) json.RawMessage {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d (body %s)", what, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", what, ct)
	}
	if len(r.env) != 3 || r.env["result"] == nil || r.env["status_code"] == nil || r.env["message"] == nil {
		t.Fatalf("%s: body %s, want {result, status_code, message}", what, r.body)
	}
	var c int
	var msg string
	json.Unmarshal(r.env["status_code"], &c)
	json.Unmarshal(r.env["message"], &msg)
	if c != code || msg != facesearch.Messages[code] {
		t.Fatalf("%s: code %d %q, want %d %q", what, c, msg, code, facesearch.Messages[code])
	}
	return r.env["result"]
}

type imageJSON struct {
	ID       *uint64        `json:"id"`
	URL      any            `json:"url"`
	Metadata map[string]any `json:"metadata"`
	Score    *float64       `json:"score"`
}

func photo(t *testing.T, name string) []byte { return testenv.ReadPhoto(t, "deepface/"+name) }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// The document's payloads, with the sample base64 replaced.
func addPayload(p []byte) string    { return "{\"image\":{\"base64\":\"" + b64(p) + "\"}}" }
func searchPayload(p []byte) string { return "{\"image\":{\"base64\":\"" + b64(p) + "\"}}" }
func addMetaPayload(p []byte, meta string) string {
	return "{\"image\":{\"base64\":\"" + b64(p) + "\",\"metadata\":" + meta + "}}"
}

func greyJPEG(t *testing.T) []byte {
	img := image.NewGray(image.Rect(0, 0, 200, 200))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	img.Set(0, 0, color.Gray{Y: 0})
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func add(t *testing.T, e *env, p []byte, meta string) imageJSON {
	t.Helper()
	body := addPayload(p)
	if meta != "" {
		body = addMetaPayload(p, meta)
	}
	var img imageJSON
	if err := json.Unmarshal(want(t, "add", e.do(t, "POST", base+"/images", &e.write, body), 200, 0), &img); err != nil || img.ID == nil {
		t.Fatalf("add: result %v (%v)", img, err)
	}
	return img
}

func images(t *testing.T, raw json.RawMessage) []imageJSON {
	t.Helper()
	var out []imageJSON
	if err := json.Unmarshal(raw, &out); err != nil || out == nil {
		t.Fatalf("result %s: want an array (%v)", raw, err)
	}
	for _, i := range out {
		if i.ID == nil {
			t.Fatalf("image element without id: %s", raw)
		}
	}
	return out
}

// TestDocumentFlow replays every request example of the document.
func TestDocumentFlow(t *testing.T) {
	e := newEnv(t, nil)
	img1, img2, stranger := photo(t, "img1.jpg"), photo(t, "img2.jpg"), photo(t, "img20.jpg")

	// 3. Add photo, the demo's payload (no metadata), and with metadata.
	a := add(t, e, img1, "")
	if a.URL != nil || a.Metadata == nil || len(a.Metadata) != 0 {
		t.Fatalf("add: %+v, want url null and metadata {}", a)
	}
	b := add(t, e, stranger, `{"name":"example","label":"for bar"}`)
	if b.Metadata["name"] != "example" {
		t.Fatalf("add with metadata: %+v", b)
	}
	// Trailing slash.
	add(t, e, photo(t, "img22.jpg"), "")
	c := add(t, e, photo(t, "img30.jpg"), "")
	if r := e.do(t, "POST", base+"/images/", &e.write, addPayload(photo(t, "img31.jpg"))); r.status != 200 {
		t.Fatalf("add slash: %d %s", r.status, r.body)
	}

	// 1. See all photos, with the demo's offset/limit and others.
	all := images(t, want(t, "list", e.do(t, "GET", base+"/images", &e.read, ""), 200, 0))
	if len(all) != 5 || *all[0].ID != *a.ID || *all[1].ID != *b.ID {
		t.Fatalf("list: %+v", all)
	}
	if got := images(t, want(t, "list demo", e.do(t, "GET", fmt.Sprintf(base+"/images?offset=%d&limit=%d", 100, 50), &e.read, ""), 200, 0)); len(got) != 0 {
		t.Fatalf("offset 100: %+v", got)
	}
	got := images(t, want(t, "list page", e.do(t, "GET", base+"/images/?offset=1&limit=2", &e.read, ""), 200, 0))
	if len(got) != 2 || *got[0].ID != *b.ID || got[0].Metadata["label"] != "for bar" {
		t.Fatalf("offset 1 limit 2: %+v", got)
	}
	want(t, "bad offset", e.do(t, "GET", base+"/images?offset=-1", &e.read, ""), 400, 6)
	want(t, "bad limit", e.do(t, "GET", base+"/images?limit=x", &e.read, ""), 400, 6)

	// 2. Face search.
	res := images(t, want(t, "search", e.do(t, "POST", base+"/search", &e.read, searchPayload(img2)), 200, 0))
	if len(res) == 0 || *res[0].ID != *a.ID || res[0].Score == nil || *res[0].Score <= 0 || *res[0].Score > 1 {
		t.Fatalf("search: %s", e.do(t, "POST", base+"/search", &e.read, searchPayload(img2)).body)
	}
	images(t, want(t, "search slash", e.do(t, "POST", base+"/search/", &e.read, searchPayload(img2)), 200, 0))
	// No match: success with an empty array.
	if res := images(t, want(t, "no match", e.do(t, "POST", base+"/search", &e.read, searchPayload(photo(t, "img38.jpg"))), 200, 0)); len(res) != 0 {
		t.Fatalf("no match: %+v", res)
	}

	// 4. Update metadata: documented PUT and the demo's POST, the demo body.
	upd := fmt.Sprintf("{\"image_id\":%d,\"metadata\":{\"name\":\"example\",\"label\":\"for bar\"}}", *a.ID)
	var u imageJSON
	json.Unmarshal(want(t, "update PUT", e.do(t, "PUT", fmt.Sprintf(base+"/images/%d", *a.ID), &e.write, upd), 200, 0), &u)
	if u.Metadata["name"] != "example" || *u.ID != *a.ID {
		t.Fatalf("update: %+v", u)
	}
	want(t, "update POST", e.do(t, "POST", fmt.Sprintf(base+"/images/%d/", *a.ID), &e.write, strings.Replace(upd, "example", "ex2", 1)), 200, 0)
	f, err := e.svc.GetFace(context.Background(), *a.ID)
	if err != nil || f.Meta["name"] != "ex2" {
		t.Fatalf("stored metadata %v (%v)", f.Meta, err)
	}
	want(t, "update mismatched id", e.do(t, "PUT", fmt.Sprintf(base+"/images/%d", *a.ID), &e.write, fmt.Sprintf(`{"image_id":%d,"metadata":{}}`, *a.ID+1)), 400, 6)
	want(t, "update reserved", e.do(t, "PUT", fmt.Sprintf(base+"/images/%d", *a.ID), &e.write, `{"metadata":{"_id":1}}`), 400, 6)
	want(t, "update unknown", e.do(t, "PUT", base+"/images/999999", &e.write, `{"image_id":999999,"metadata":{}}`), 404, 6)
	want(t, "update bad id", e.do(t, "PUT", base+"/images/abc", &e.write, `{"metadata":{}}`), 400, 6)

	// 5. Delete multiple photos: documented DELETE and the demo's POST.
	want(t, "delete unknown", e.do(t, "DELETE", base+"/images", &e.write, fmt.Sprintf(`{"ids":[%d,999999]}`, *b.ID)), 404, 6)
	want(t, "delete empty", e.do(t, "DELETE", base+"/images", &e.write, `{"ids":[]}`), 400, 6)
	if r := want(t, "delete", e.do(t, "DELETE", base+"/images", &e.write, fmt.Sprintf(`{"ids":[%d]}`, *b.ID)), 200, 0); string(r) != "null" {
		t.Fatalf("delete result %s, want null", r)
	}
	want(t, "delete POST", e.do(t, "POST", base+"/images", &e.write, fmt.Sprintf(`{"ids":[%d,"%d"]}`, *a.ID, *c.ID)), 200, 0)
	if got := images(t, want(t, "list after delete", e.do(t, "GET", base+"/images", &e.read, ""), 200, 0)); len(got) != 2 {
		t.Fatalf("after delete: %+v", got)
	}
	if res := images(t, want(t, "search after delete", e.do(t, "POST", base+"/search", &e.read, searchPayload(img2)), 200, 0)); len(res) != 0 {
		t.Fatalf("search after delete: %+v", res)
	}
	// The persons made for the deleted images are gone too.
	page, err := e.svc.ListPersons(context.Background(), store.ListOptions{})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("persons after delete: %d (%v)", len(page.Items), err)
	}
}

// TestErrorCodes covers each documented code a request can cause.
func TestErrorCodes(t *testing.T) {
	e := newEnv(t, nil)
	img1 := photo(t, "img1.jpg")
	// 1: no face; no base64.
	want(t, "no face add", e.do(t, "POST", base+"/images", &e.write, addPayload(greyJPEG(t))), 400, 1)
	want(t, "no face search", e.do(t, "POST", base+"/search", &e.read, searchPayload(greyJPEG(t))), 400, 1)
	want(t, "no image", e.do(t, "POST", base+"/images", &e.write, `{"image":{}}`), 400, 1)
	// 2: an image by url.
	want(t, "url", e.do(t, "POST", base+"/images", &e.write, `{"image":{"url":"https://example.com/a.jpg"}}`), 400, 2)
	want(t, "url search", e.do(t, "POST", base+"/search", &e.read, `{"image":{"url":"https://example.com/a.jpg"}}`), 400, 2)
	// 3: not base64; not an image.
	want(t, "not base64", e.do(t, "POST", base+"/images", &e.write, `{"image":{"base64":"!!!"}}`), 400, 3)
	want(t, "not an image", e.do(t, "POST", base+"/search", &e.read, `{"image":{"base64":"`+b64([]byte("hello, this is not an image at all"))+`"}}`), 400, 3)
	// 5: wrong secret, unknown id, x-api-key, Bearer, none, read key writing.
	bad := key{e.write.id, "wrong", ""}
	want(t, "wrong secret", e.do(t, "POST", base+"/images", &bad, addPayload(img1)), 401, 5)
	want(t, "no auth", e.do(t, "GET", base+"/images", nil, ""), 401, 5)
	for name, h := range map[string][2]string{
		"x-api-key":                {"x-api-key", e.write.token},
		"bearer":                   {"Authorization", "Bearer " + e.write.token},
		"basic full token as user": {"Authorization", "Basic " + b64([]byte(e.write.token+":"))},
	} {
		req, _ := http.NewRequest("GET", e.base+base+"/images", nil)
		req.Header.Set(h[0], h[1])
		want(t, name, e.send(t, req), 401, 5)
	}
	want(t, "read key writes", e.do(t, "POST", base+"/images", &e.read, addPayload(img1)), 403, 5)
	want(t, "read key deletes", e.do(t, "DELETE", base+"/images", &e.read, `{"ids":[1]}`), 403, 5)
	// 6: bad JSON, reserved metadata keys, metadata not an object.
	want(t, "bad JSON", e.do(t, "POST", base+"/images", &e.write, `{"image":`), 400, 6)
	for _, k := range facesearch.ReservedMeta {
		want(t, "reserved "+k, e.do(t, "POST", base+"/images", &e.write, addMetaPayload(img1, `{"`+k+`":"x"}`)), 400, 6)
	}
	want(t, "metadata not object", e.do(t, "POST", base+"/images", &e.write, addMetaPayload(img1, `[1]`)), 400, 6)
	want(t, "bad ids", e.do(t, "DELETE", base+"/images", &e.write, `{"ids":["x"]}`), 400, 6)
	// Routing.
	want(t, "unknown path", e.do(t, "GET", base+"/nothing", &e.read, ""), 404, 6)
	r := e.do(t, "GET", base+"/search", &e.read, "")
	want(t, "method", r, 405, 6)
	if r.header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
	// Nothing was stored by the failures.
	if got := images(t, want(t, "list", e.do(t, "GET", base+"/images", &e.read, ""), 200, 0)); len(got) != 0 {
		t.Fatalf("list: %+v", got)
	}
}

// TestBusy: 4 "Out of requests" when the inference queue is full.
func TestBusy(t *testing.T) {
	e := newEnv(t, dialecttest.BusyQueue{})
	r := e.do(t, "POST", base+"/search", &e.read, searchPayload(photo(t, "img2.jpg")))
	want(t, "busy", r, 429, 4)
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// TestCrossDialect: an image added here is found by the native identify,
// and a person enrolled natively is found by this search.
func TestCrossDialect(t *testing.T) {
	e := newEnv(t, nil)
	img1, img2 := photo(t, "img1.jpg"), photo(t, "img2.jpg")
	a := add(t, e, img1, `{"name":"jolie"}`)
	f, err := e.svc.GetFace(context.Background(), *a.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"photo": b64(img2)})
	req, _ := http.NewRequest("POST", e.root+"/v1/identify", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.read.token)
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
	if len(native.Faces) == 0 || len(native.Faces[0].Matches) == 0 || native.Faces[0].Matches[0].Person.ID != f.PersonID {
		t.Fatalf("/v1/identify: %s, want person %s", r.body, f.PersonID)
	}

	other := photo(t, "img20.jpg")
	_, faces, err := e.svc.Enroll(context.Background(), service.EnrollRequest{Person: store.Person{ID: "native"}, Photos: [][]byte{other}})
	if err != nil {
		t.Fatal(err)
	}
	res := images(t, want(t, "search native", e.do(t, "POST", base+"/search", &e.read, searchPayload(other)), 200, 0))
	if len(res) == 0 || *res[0].ID != faces[0].ID {
		t.Fatalf("search native: %+v, want face %d", res, faces[0].ID)
	}
	// Deleting a native face here keeps its (native) person.
	want(t, "delete native", e.do(t, "DELETE", base+"/images", &e.write, fmt.Sprintf(`{"ids":[%d]}`, faces[0].ID)), 200, 0)
	if _, err := e.svc.GetPerson(context.Background(), "native"); err != nil {
		t.Fatalf("native person: %v", err)
	}
}
