package users_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/image/bmp"

	"github.com/facedhq/faced/api/users"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/apitest"
	"github.com/facedhq/faced/internal/apitest/dialecttest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

var vision *daemon.Vision

func TestMain(m *testing.M) { apitest.Main(m, &vision) }

// The document's sample user id.
const userID = "f7eab18f-e5d3-4dac-9d4d-cfb969ef848e"

// The document's request bodies, byte for byte (the search sample has its
// trailing comma).
const (
	docEnroll = "{\n\"face\": \"{FACE_IMAGE}\"\n}"
	docSearch = "{\n\"face\": \"{FACE_IMAGE}\",\n\"threshold\": {THRESHOLD},\n}"
)

// The document's error bodies.
var (
	docDuplicate = map[string]any{
		"status": 400.0, "title": "Bad Request", "detail": "Invalid request.",
		"type":   "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/400",
		"errors": []any{"provided userId already exists"},
	}
	docNoFace = map[string]any{
		"status": 400.0, "title": "Bad Request", "detail": "Invalid request.",
		"type":   "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/400",
		"errors": []any{"no face detected in the provided image"},
	}
	docNotFound = map[string]any{
		"status": 404.0, "title": "Not Found", "detail": "Server cannot find the requested resource.",
		"type": "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/404",
	}
)

type env struct {
	base   string // the dialect's base URL ({IDENTITY_API_BASE_URL})
	url    string // the server root, for the native API
	svc    *service.Service
	read   string
	write  string
	client *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := dialecttest.Serve(t, apitest.New(t, vision), nil, dialecttest.Mount{Prefix: "/compat/users", New: users.New})
	return &env{base: d.Base, url: d.Root, svc: d.Svc, read: d.Read, write: d.Write, client: d.Client}
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request the way the document's curl examples do.
func (e *env) do(t *testing.T, method, path string, header map[string]string, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	r := dialecttest.Send(t, e.client, req)
	return result{r.Status, r.Header, r.Body}
}

func jsonHeaders(key string) map[string]string {
	return map[string]string{"x-api-key": key, "Content-Type": "application/json"}
}

func enrollBody(photo []byte) string {
	return strings.Replace(docEnroll, "{FACE_IMAGE}", base64.StdEncoding.EncodeToString(photo), 1)
}

func searchBody(photo []byte, threshold string) string {
	b := strings.Replace(docSearch, "{FACE_IMAGE}", base64.StdEncoding.EncodeToString(photo), 1)
	return strings.Replace(b, "{THRESHOLD}", threshold, 1)
}

// searchBodyNoThreshold is the search without the optional field.
func searchBodyNoThreshold(photo []byte) string {
	return "{\n\"face\": \"" + base64.StdEncoding.EncodeToString(photo) + "\"\n}"
}

func photo(t *testing.T, name string) []byte { return testenv.ReadPhoto(t, "deepface/"+name) }

// wantEmpty asserts a documented "200 OK" with no body.
func wantEmpty(t *testing.T, what string, r result) {
	t.Helper()
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("%s: %d %q, want 200 with an empty body", what, r.status, r.body)
	}
}

// wantBody asserts a status, Content-Type application/json and a body
// equal (as JSON) to want.
func wantBody(t *testing.T, what string, r result, status int, want map[string]any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d (body %s)", what, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("%s: body %s: %v", what, r.body, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: body %s, want %v", what, r.body, want)
	}
}

// wantError asserts the document's error style with one errors entry.
func wantError(t *testing.T, what string, r result, status int, msg string) {
	t.Helper()
	want := map[string]any{
		"status": float64(status), "title": http.StatusText(status), "type": fmt.Sprintf("https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/%d", status),
		"errors": []any{msg},
	}
	var got map[string]any
	json.Unmarshal(r.body, &got)
	if d, ok := got["detail"].(string); ok && d != "" {
		want["detail"] = d
	}
	if status == http.StatusBadRequest {
		want["detail"] = "Invalid request."
	}
	wantBody(t, what, r, status, want)
}

type searchResult struct {
	Matches []struct {
		UserID     string   `json:"userId"`
		Similarity *float64 `json:"similarity"`
	} `json:"matches"`
}

// wantMatch asserts a 200 search whose best match is id above min, and
// that the body has exactly the documented fields.
func wantMatch(t *testing.T, what string, r result, id string, min float64) {
	t.Helper()
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: %d %s %s, want 200 application/json", what, r.status, r.header.Get("Content-Type"), r.body)
	}
	var raw map[string][]map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil || len(raw) != 1 || raw["matches"] == nil {
		t.Fatalf("%s: body %s: want {\"matches\": [...]} (%v)", what, r.body, err)
	}
	for _, m := range raw["matches"] {
		if len(m) != 2 {
			t.Fatalf("%s: match %v: want exactly userId and similarity", what, m)
		}
	}
	var sr searchResult
	json.Unmarshal(r.body, &sr)
	if len(sr.Matches) == 0 || sr.Matches[0].UserID != id || sr.Matches[0].Similarity == nil {
		t.Fatalf("%s: body %s, want best match %s", what, r.body, id)
	}
	prev := 101.0
	for _, m := range sr.Matches {
		if *m.Similarity > prev || *m.Similarity > 100 {
			t.Fatalf("%s: matches not best first within 0..100: %s", what, r.body)
		}
		prev = *m.Similarity
	}
	t.Logf("%s: %s", what, r.body)
	if s := *sr.Matches[0].Similarity; s <= min {
		t.Fatalf("%s: similarity %v, want > %v", what, s, min)
	}
}

// TestDocumentFlow replays every request example of the document.
func TestDocumentFlow(t *testing.T) {
	e := newEnv(t)
	img1, img2, stranger := photo(t, "img1.jpg"), photo(t, "img2.jpg"), photo(t, "img20.jpg")

	// Enroll.
	wantEmpty(t, "enroll", e.do(t, "POST", "/users/"+userID, jsonHeaders(e.write), enrollBody(img1)))
	// Duplicated user id: the documented body.
	wantBody(t, "duplicate", e.do(t, "POST", "/users/"+userID, jsonHeaders(e.write), enrollBody(img2)), 400, docDuplicate)
	// Invalid face image: the documented body.
	wantBody(t, "no face", e.do(t, "POST", "/users/someone-else", jsonHeaders(e.write), enrollBody(greyJPEG(t))), 400, docNoFace)

	// Search, exactly as the document (trailing comma included).
	wantMatch(t, "search 75.5", e.do(t, "POST", "/users/search", jsonHeaders(e.write), searchBody(img2, "75.5")), userID, 80)
	// Without the optional threshold (default 80).
	wantMatch(t, "search default", e.do(t, "POST", "/users/search", jsonHeaders(e.write), searchBodyNoThreshold(img2)), userID, 80)
	// Trailing slash.
	wantMatch(t, "search slash", e.do(t, "POST", "/users/search/", jsonHeaders(e.write), searchBody(img2, "80")), userID, 80)
	// A stranger: user not found, the documented body.
	wantBody(t, "stranger", e.do(t, "POST", "/users/search", jsonHeaders(e.write), searchBody(stranger, "75.5")), 404, docNotFound)
	wantBody(t, "stranger default", e.do(t, "POST", "/users/search", jsonHeaders(e.write), searchBodyNoThreshold(stranger)), 404, docNotFound)
	// A threshold above the similarity hides the match.
	wantBody(t, "threshold 100", e.do(t, "POST", "/users/search", jsonHeaders(e.write), searchBody(img2, "100")), 404, docNotFound)
	// Search without a face in the photo.
	wantBody(t, "search no face", e.do(t, "POST", "/users/search", jsonHeaders(e.write), searchBody(greyJPEG(t), "80")), 400, docNoFace)

	// Unenroll, as the document (no body, no Content-Type).
	wantEmpty(t, "unenroll", e.do(t, "DELETE", "/users/"+userID, map[string]string{"x-api-key": e.write}, ""))
	wantBody(t, "unenroll again", e.do(t, "DELETE", "/users/"+userID, map[string]string{"x-api-key": e.write}, ""), 404, docNotFound)
	wantBody(t, "search after unenroll", e.do(t, "POST", "/users/search", jsonHeaders(e.write), searchBody(img2, "75.5")), 404, docNotFound)
	// The id is free again; the trailing slash form enrols too.
	wantEmpty(t, "re-enroll", e.do(t, "POST", "/users/"+userID+"/", jsonHeaders(e.write), enrollBody(img1)))
	wantMatch(t, "search after re-enroll", e.do(t, "POST", "/users/search", jsonHeaders(e.write), searchBody(img2, "75.5")), userID, 80)
}

// greyJPEG is a face-less photo.
var greyJPEG = dialecttest.GreyJPEG

// halfSize decodes a JPEG and shrinks it 2× (nearest neighbour).
func halfSize(t *testing.T, data []byte) image.Image {
	t.Helper()
	src, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx()/2, b.Dy()/2))
	for y := 0; y < b.Dy()/2; y++ {
		for x := 0; x < b.Dx()/2; x++ {
			dst.Set(x, y, src.At(b.Min.X+2*x, b.Min.Y+2*y))
		}
	}
	return dst
}

func TestImages(t *testing.T) {
	e := newEnv(t)
	img1, img2 := photo(t, "img1.jpg"), photo(t, "img2.jpg")

	// PNG: enrol from a PNG, search with a PNG.
	var p1, p2 bytes.Buffer
	if err := png.Encode(&p1, halfSize(t, img1)); err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(&p2, halfSize(t, img2)); err != nil {
		t.Fatal(err)
	}
	if p1.Len() > users.MaxImageBytes || p2.Len() > users.MaxImageBytes {
		t.Fatalf("test PNGs too big: %d, %d", p1.Len(), p2.Len())
	}
	wantEmpty(t, "enroll png", e.do(t, "POST", "/users/png-user", jsonHeaders(e.write), enrollBody(p1.Bytes())))
	wantMatch(t, "search png", e.do(t, "POST", "/users/search", jsonHeaders(e.read), searchBody(p2.Bytes(), "75.5")), "png-user", 80)

	// Other encodings of the base64: URL-safe unpadded, data: URI, wrapped lines.
	urlSafe := base64.RawURLEncoding.EncodeToString(img2)
	wantMatch(t, "url-safe", e.do(t, "POST", "/users/search", jsonHeaders(e.read), `{"face":"`+urlSafe+`"}`), "png-user", 80)
	dataURI := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(img2)
	wantMatch(t, "data uri", e.do(t, "POST", "/users/search", jsonHeaders(e.read), `{"face":"`+dataURI+`","threshold":"75.5"}`), "png-user", 80)
	std := base64.StdEncoding.EncodeToString(img2)
	var wrapped strings.Builder
	for i := 0; i < len(std); i += 76 {
		wrapped.WriteString(std[i:min(i+76, len(std))])
		wrapped.WriteString(`\n`)
	}
	wantMatch(t, "wrapped", e.do(t, "POST", "/users/search", jsonHeaders(e.read), `{"face":"`+wrapped.String()+`"}`), "png-user", 80)

	// GIF and BMP are refused, whatever the pipeline could read.
	small := halfSize(t, img1)
	var g, bm bytes.Buffer
	if err := gif.Encode(&g, small, nil); err != nil {
		t.Fatal(err)
	}
	if err := bmp.Encode(&bm, small); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"gif": g.Bytes(), "bmp": bm.Bytes(), "text": []byte("hello, world")} {
		wantError(t, name+" enroll", e.do(t, "POST", "/users/x-"+name, jsonHeaders(e.write), enrollBody(data)), 400, "invalid image format")
		wantError(t, name+" search", e.do(t, "POST", "/users/search", jsonHeaders(e.read), searchBody(data, "80")), 400, "invalid image format")
	}

	// Over 5 MB of decoded image (JPEG magic, then padding).
	big := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, make([]byte, users.MaxImageBytes)...)
	wantError(t, "5MB enroll", e.do(t, "POST", "/users/big", jsonHeaders(e.write), enrollBody(big)), 400, "image exceeds the maximum size of 5MB")
	wantError(t, "5MB search", e.do(t, "POST", "/users/search", jsonHeaders(e.read), searchBody(big, "80")), 400, "image exceeds the maximum size of 5MB")
	// A body beyond the 8 MB cap.
	huge := `{"face":"` + strings.Repeat("A", users.MaxBodyBytes+10) + `"}`
	wantError(t, "huge body", e.do(t, "POST", "/users/search", jsonHeaders(e.read), huge), 400, "image exceeds the maximum size of 5MB")
	// A corrupt JPEG.
	wantError(t, "corrupt", e.do(t, "POST", "/users/corrupt", jsonHeaders(e.write), enrollBody(img1[:2000])), 400, "invalid image")

	// Not base64 (e.g. a vendor token), missing face, bad JSON, bad thresholds.
	wantError(t, "token", e.do(t, "POST", "/users/tok", jsonHeaders(e.write), `{"face":"tok_%%%"}`), 400, "invalid image encoding")
	wantError(t, "no face field", e.do(t, "POST", "/users/search", jsonHeaders(e.read), `{"threshold": 80}`), 400, "face is required")
	wantError(t, "enroll search id", e.do(t, "POST", "/users/search", jsonHeaders(e.write), `{}`), 400, "face is required")
	wantError(t, "bad json", e.do(t, "POST", "/users/search", jsonHeaders(e.read), `{"face": `), 400, "invalid JSON body")
	for _, th := range []string{`-1`, `100.5`, `"high"`, `true`, `[80]`} {
		wantError(t, "threshold "+th, e.do(t, "POST", "/users/search", jsonHeaders(e.read), searchBody(img2, th)), 400, "threshold must be a number from 0 to 100")
	}
	wantError(t, "long id", e.do(t, "POST", "/users/"+strings.Repeat("x", 200), jsonHeaders(e.write), enrollBody(img1)), 400, "invalid userId")
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	img1, img2 := photo(t, "img1.jpg"), photo(t, "img2.jpg")

	// No key, a bad key, and the native API's Bearer style: 401.
	for name, h := range map[string]map[string]string{
		"none":   {"Content-Type": "application/json"},
		"wrong":  jsonHeaders("0123456789ab.nope"),
		"junk":   jsonHeaders("junk"),
		"bearer": {"Authorization": "Bearer " + e.write, "Content-Type": "application/json"},
	} {
		wantError(t, name+" enroll", e.do(t, "POST", "/users/"+userID, h, enrollBody(img1)), 401, "missing or invalid x-api-key")
		wantError(t, name+" search", e.do(t, "POST", "/users/search", h, searchBody(img2, "80")), 401, "missing or invalid x-api-key")
		wantError(t, name+" delete", e.do(t, "DELETE", "/users/"+userID, h, ""), 401, "missing or invalid x-api-key")
	}

	// A read-only key can search but not enrol or unenrol.
	wantError(t, "read enroll", e.do(t, "POST", "/users/"+userID, jsonHeaders(e.read), enrollBody(img1)), 403, "the API key lacks the required scope")
	wantEmpty(t, "write enroll", e.do(t, "POST", "/users/"+userID, jsonHeaders(e.write), enrollBody(img1)))
	wantMatch(t, "read search", e.do(t, "POST", "/users/search", jsonHeaders(e.read), searchBody(img2, "75.5")), userID, 80)
	wantError(t, "read delete", e.do(t, "DELETE", "/users/"+userID, map[string]string{"x-api-key": e.read}, ""), 403, "the API key lacks the required scope")
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	h := map[string]string{"x-api-key": e.write}
	for _, path := range []string{"/users", "/users/", "/nothing", "/users/a/b"} {
		wantBody(t, "POST "+path, e.do(t, "POST", path, h, "{}"), 404, docNotFound)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/users/x"}, {"PUT", "/users/x"}, {"GET", "/users/search"}} {
		r := e.do(t, c.method, c.path, h, "")
		wantError(t, c.method+" "+c.path, r, 405, "method not allowed")
		if r.header.Get("Allow") == "" {
			t.Errorf("%s %s: no Allow header", c.method, c.path)
		}
	}
}

// TestCrossDialect: the dialect and the native API share persons.
func TestCrossDialect(t *testing.T) {
	e := newEnv(t)
	img1, img2 := photo(t, "img1.jpg"), photo(t, "img2.jpg")

	// Enrolled here, found by POST /v1/identify.
	wantEmpty(t, "enroll", e.do(t, "POST", "/users/"+userID, jsonHeaders(e.write), enrollBody(img1)))
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
					ID string `json:"id"`
				} `json:"person"`
			} `json:"matches"`
		} `json:"faces"`
	}
	if err := json.Unmarshal(b, &native); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/v1/identify: %d %s (%v)", resp.StatusCode, b, err)
	}
	if len(native.Faces) == 0 || len(native.Faces[0].Matches) == 0 || native.Faces[0].Matches[0].Person.ID != userID {
		t.Fatalf("/v1/identify: %s, want person %s", b, userID)
	}

	// Created by the service (as the native API does), found by search.
	other := photo(t, "img20.jpg")
	if _, _, err := e.svc.Enroll(context.Background(), service.EnrollRequest{Person: store.Person{ID: "native-person"}, Photos: [][]byte{other}}); err != nil {
		t.Fatal(err)
	}
	wantMatch(t, "search native", e.do(t, "POST", "/users/search", jsonHeaders(e.read), searchBody(other, "75.5")), "native-person", 80)
	// And unenrolled here.
	wantEmpty(t, "unenroll native", e.do(t, "DELETE", "/users/native-person", map[string]string{"x-api-key": e.write}, ""))
	wantBody(t, "search after unenroll", e.do(t, "POST", "/users/search", jsonHeaders(e.read), searchBody(other, "75.5")), 404, docNotFound)
}

func TestBusy(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewServer(users.New(e.svc, dialecttest.BusyQueue{}, nil))
	t.Cleanup(ts.Close)
	e.base = ts.URL
	r := e.do(t, "POST", "/users/search", jsonHeaders(e.read), searchBody(photo(t, "img2.jpg"), "80"))
	wantError(t, "busy", r, 429, "too many requests in progress, retry later")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Unenrol runs no inference and needs no slot.
	wantBody(t, "delete while busy", e.do(t, "DELETE", "/users/nobody", map[string]string{"x-api-key": e.write}, ""), 404, docNotFound)
}
