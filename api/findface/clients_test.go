package findface_test

import (
	"encoding/json"
	"fmt"
	"github.com/facedhq/faced/internal/apitest/dialecttest"
	"net/url"
	"slices"
	"testing"

	"github.com/facedhq/faced/api/findface"
)

// The tests below replay the request shapes of the real FindFace clients
// the package doc lists (issue 19): exact paths, methods, encodings.

// errorBody is the error shape both kinds of client read.
type errorBody struct {
	Code      *int   `json:"code"`
	ErrorCode string `json:"error_code"`
	Reason    string `json:"reason"`
}

func wantCode(t *testing.T, what string, r resp, status int, code string) {
	t.Helper()
	want(t, what, r, status)
	if eb := decode[errorBody](t, r); eb.ErrorCode != code {
		t.Fatalf("%s: error_code %q, want %q: %s", what, eb.ErrorCode, code, r.body)
	}
}

// TestGoClient: a Go client whose base URL ends in /v1/ and which sends
// JSON to paths without a trailing slash, its options struct as the body
// of GETs too, null for unset fields, and the gallery name in the body of
// POST /galleries.
func TestGoClient(t *testing.T) {
	e := newEnv(t)
	img1, img2 := photo(t, "img1.jpg"), photo(t, "img2.jpg")

	if r := e.json(t, "POST", "/v1/galleries", e.write, map[string]any{"name": "staff"}); r.status != 201 {
		t.Fatalf("create gallery: %d %s", r.status, r.body)
	}
	want(t, "create gallery again", e.json(t, "POST", "/v1/galleries", e.write, map[string]any{"name": "staff"}), 409)
	want(t, "create gallery bad name", e.json(t, "POST", "/v1/galleries", e.write, map[string]any{"name": "no spaces"}), 400)

	r := want(t, "face", e.json(t, "POST", "/v1/face", e.write, map[string]any{
		"photo": b64(img1), "mf_selector": "", "bbox": nil, "meta": "Sam Berry", "galleries": []string{"staff"},
		"emotions": false, "gender": false, "age": false,
	}), 200)
	sam := decode[results[[]ffFace]](t, r).Results
	if len(sam) != 1 || !slices.Equal(sam[0].Galleries, []string{"default", "staff"}) {
		t.Fatalf("face: %s", r.body)
	}
	checkFace(t, sam[0])
	// thumbnail is present (faced keeps none: "").
	if th, ok := decode[map[string]any](t, r)["results"].([]any)[0].(map[string]any)["thumbnail"]; !ok || th != "" {
		t.Fatalf("thumbnail: %s", r.body)
	}
	decode[results[[]ffFace]](t, want(t, "other", e.json(t, "POST", "/v1/face", e.write, map[string]any{"photo": b64(photo(t, "img13.jpg")), "meta": "Other"}), 200))

	// GET with the options struct as a JSON body: the body is ignored.
	r = want(t, "faces of gallery", e.json(t, "GET", "/v1/faces/gallery/staff", e.read, map[string]any{"gallery": "staff", "MinID": 0, "MaxID": 0}), 200)
	if fs := decode[results[[]ffFace]](t, r).Results; len(fs) != 1 || fs[0].ID != sam[0].ID {
		t.Fatalf("faces of staff: %s", r.body)
	}
	want(t, "faces of unknown gallery", e.json(t, "GET", "/v1/faces/gallery/nobody", e.read, nil), 404)
	// A GET body that is not JSON at all is ignored too.
	want(t, "faces, garbage body", e.do(t, "GET", "/v1/faces", "Token "+e.read, "application/json", []byte("{not json")), 200)
	want(t, "faces, null body", e.do(t, "GET", "/v1/faces", "Token "+e.read, "application/json", []byte("null")), 200)

	r = want(t, "meta of gallery", e.json(t, "GET", "/v1/meta/gallery/staff", e.read, nil), 200)
	if ms := decode[results[[]findface.MetaEntry]](t, r).Results; len(ms) != 1 || ms[0].Meta != "Sam Berry" || ms[0].Count != 1 {
		t.Fatalf("meta of staff: %s", r.body)
	}

	// Identify in a gallery; the client's GalleryName field has no tag.
	r = want(t, "identify in gallery", e.json(t, "POST", "/v1/faces/gallery/staff/identify", e.read, map[string]any{"photo": b64(img2), "GalleryName": "staff", "threshold": "medium", "n": 5}), 200)
	id := decode[results[map[string][]struct {
		Confidence float64 `json:"confidence"`
		Face       ffFace  `json:"face"`
	}]](t, r).Results
	if len(id) != 1 {
		t.Fatalf("identify: %s", r.body)
	}
	for _, l := range id {
		if len(l) != 1 || l[0].Face.ID != sam[0].ID {
			t.Fatalf("identify in staff: %s", r.body)
		}
	}

	r = want(t, "detect", e.json(t, "POST", "/v1/detect", e.read, map[string]any{"photo": b64(img1), "emotions": false, "gender": true, "age": false}), 200)
	if fs := decode[map[string][]findface.DetectedFace](t, r)["faces"]; len(fs) != 1 || fs[0].Gender == "" {
		t.Fatalf("detect: %s", r.body)
	}
}

// TestRubyGems: two Ruby gems send form-encoded bodies (galleries[]=...),
// relative paths below /v0/ with and without a trailing slash, the
// gallery-scoped lists and identify, and delete galleries and metas.
func TestRubyGems(t *testing.T) {
	e := newEnv(t)
	img1, img2, img13 := photo(t, "img1.jpg"), photo(t, "img2.jpg"), photo(t, "img13.jpg")
	form := func(method, path, key string, v url.Values) resp {
		t.Helper()
		return e.do(t, method, path, "Token "+key, "application/x-www-form-urlencoded", []byte(v.Encode()))
	}

	if r := form("POST", "/v0/galleries", e.write, url.Values{"name": {"vip"}}); r.status != 201 {
		t.Fatalf("create gallery: %d %s", r.status, r.body)
	}
	r := want(t, "face", form("POST", "/v0/face", e.write, url.Values{"photo": {b64(img1)}, "meta": {"Sam Berry"}, "galleries[]": {"vip", "friends"}}), 200)
	sam := decode[results[[]ffFace]](t, r).Results
	if len(sam) != 1 || !slices.Equal(sam[0].Galleries, []string{"default", "vip", "friends"}) {
		t.Fatalf("face with galleries[]: %s", r.body)
	}
	want(t, "other", form("POST", "/v0/face/", e.write, url.Values{"photo": {b64(img13)}, "meta": {"Other"}, "galleries[]": {"friends"}}), 200)

	for _, p := range []string{"/v0/faces/gallery/vip/", "/v0/faces/gallery/vip"} {
		if fs := decode[results[[]ffFace]](t, want(t, p, e.do(t, "GET", p, "Token "+e.read, "", nil), 200)).Results; len(fs) != 1 || fs[0].ID != sam[0].ID {
			t.Fatalf("%s: %+v", p, fs)
		}
	}
	r = want(t, "faces by meta in gallery", e.do(t, "GET", "/v0/faces/gallery/friends/meta/Sam%20Berry", "Token "+e.read, "", nil), 200)
	if fs := decode[results[[]ffFace]](t, r).Results; len(fs) != 1 || fs[0].ID != sam[0].ID {
		t.Fatalf("by meta in friends: %s", r.body)
	}
	r = want(t, "meta of gallery", e.do(t, "GET", "/v0/meta/gallery/friends/", "Token "+e.read, "", nil), 200)
	if ms := decode[results[[]findface.MetaEntry]](t, r).Results; len(ms) != 2 {
		t.Fatalf("meta of friends: %s", r.body)
	}

	r = want(t, "identify in gallery", form("POST", "/v0/faces/gallery/vip/identify", e.read, url.Values{"photo": {b64(img2)}, "n": {"3"}}), 200)
	for _, l := range decode[results[map[string][]struct{ Face ffFace }]](t, r).Results {
		if len(l) != 1 || l[0].Face.ID != sam[0].ID {
			t.Fatalf("identify in vip: %s", r.body)
		}
	}
	// The other gem posts JSON, identify's box as "bbox" and the gallery in
	// both the path and the body.
	det := decode[map[string][]findface.Box](t, want(t, "detect couple", e.json(t, "POST", "/v0/detect/", e.read, map[string]any{"photo": b64(photo(t, "couple.jpg"))}), 200))["faces"]
	if len(det) != 2 {
		t.Fatalf("detect couple: %+v", det)
	}
	second := det[1]
	r = want(t, "identify bbox", e.json(t, "POST", "/v0/faces/gallery/vip/identify/", e.read, map[string]any{
		"photo": b64(photo(t, "couple.jpg")), "bbox": map[string]int{"x1": second.X1, "y1": second.Y1, "x2": second.X2, "y2": second.Y2}, "gallery": "vip", "n": 2, "threshold": "none",
	}), 200)
	if got := decode[results[map[string][]any]](t, r).Results; len(got) != 1 || got[findface.BoxKey(second)] == nil {
		t.Fatalf("identify bbox: %s", r.body)
	}
	want(t, "identify in unknown gallery", form("POST", "/v0/faces/gallery/nobody/identify/", e.read, url.Values{"photo": {b64(img2)}}), 404)
	want(t, "detect", form("POST", "/v0/detect/", e.read, url.Values{"photo": {b64(img1)}}), 200)

	// DELETE /v0/face/meta/{meta}: every face with the meta goes (204).
	if r = e.do(t, "DELETE", "/v0/face/meta/Other", "Token "+e.write, "", nil); r.status != 204 {
		t.Fatalf("delete by meta: %d %s", r.status, r.body)
	}
	want(t, "delete by meta again", e.do(t, "DELETE", "/v0/face/meta/Other/", "Token "+e.write, "", nil), 404)
	if fs := decode[results[[]ffFace]](t, want(t, "faces", e.do(t, "GET", "/v0/faces/", "Token "+e.read, "", nil), 200)).Results; len(fs) != 1 {
		t.Fatalf("faces after delete by meta: %+v", fs)
	}
	want(t, "delete by meta read key", e.do(t, "DELETE", "/v0/face/meta/Sam%20Berry", "Token "+e.read, "", nil), 403)

	// DELETE /v0/galleries/{name}: the gallery goes, faces in others stay.
	if r = e.do(t, "DELETE", "/v0/galleries/vip", "Token "+e.write, "", nil); r.status != 204 {
		t.Fatalf("delete gallery: %d %s", r.status, r.body)
	}
	want(t, "delete gallery again", e.do(t, "DELETE", "/v0/galleries/vip/", "Token "+e.write, "", nil), 404)
	want(t, "delete default", e.do(t, "DELETE", "/v0/galleries/default/", "Token "+e.write, "", nil), 400)
	got := decode[ffFace](t, want(t, "face after", e.do(t, "GET", fmt.Sprintf("/v0/face/id/%d", sam[0].ID), "Token "+e.read, "", nil), 200))
	if !slices.Equal(got.Galleries, []string{"default", "friends"}) {
		t.Fatalf("galleries after delete: %v", got.Galleries)
	}
}

// TestPHPClient: a PHP client posts JSON to /v1/face/ and /v1/identify/
// with every field present (empty bbox and galleries arrays, a numeric
// threshold) and pages face lists with ?max_id=&min_id=.
func TestPHPClient(t *testing.T) {
	e := newEnv(t)
	img1, img2, img13 := photo(t, "img1.jpg"), photo(t, "img2.jpg"), photo(t, "img13.jpg")
	var ids []uint64
	for _, img := range [][]byte{img1, img13} {
		r := want(t, "face", e.json(t, "POST", "/v1/face/", e.write, map[string]any{
			"photo": b64(img), "mf_selector": "biggest", "bbox": []int{}, "meta": "", "galleries": []string{}, "emotions": true, "gender": true, "age": true,
		}), 200)
		fs := decode[results[[]ffFace]](t, r).Results
		if len(fs) != 1 || !slices.Equal(fs[0].Galleries, []string{"default"}) {
			t.Fatalf("face: %s", r.body)
		}
		ids = append(ids, fs[0].ID)
	}
	r := want(t, "identify", e.json(t, "POST", "/v1/identify/", e.read, map[string]any{"photo": b64(img2), "mf_selector": "biggest", "bbox": []int{}, "threshold": 0.75, "n": 5}), 200)
	for _, l := range decode[results[map[string][]struct{ Face ffFace }]](t, r).Results {
		if len(l) != 1 || l[0].Face.ID != ids[0] {
			t.Fatalf("identify: %s", r.body)
		}
	}
	page := func(q string) []uint64 {
		t.Helper()
		var out []uint64
		for _, f := range decode[results[[]ffFace]](t, want(t, "faces "+q, e.do(t, "GET", "/v1/faces/gallery/default"+q, "Token "+e.read, "", nil), 200)).Results {
			out = append(out, f.ID)
		}
		return out
	}
	if got := page("?"); !slices.Equal(got, ids) {
		t.Fatalf("all: %v, want %v", got, ids)
	}
	if got := page(fmt.Sprintf("?max_id=%d&", ids[1])); !slices.Equal(got, ids[:1]) {
		t.Fatalf("max_id: %v", got)
	}
	if got := page(fmt.Sprintf("?min_id=%d", ids[0])); !slices.Equal(got, ids[1:]) {
		t.Fatalf("min_id: %v", got)
	}
	want(t, "bad max_id", e.do(t, "GET", "/v1/faces?max_id=x", "Token "+e.read, "", nil), 400)
}

// TestCRMModule: a CRM's face-ID module (PHP) posts a multipart photo file
// and threshold=medium to /v0/faces/gallery/{g}/identify/ and reads the
// first value of results, then its first match.
func TestCRMModule(t *testing.T) {
	e := newEnv(t)
	img1, img2 := photo(t, "img1.jpg"), photo(t, "img2.jpg")
	sam := decode[results[[]ffFace]](t, want(t, "face", e.multipart(t, "/v0/face/", e.write, map[string][]byte{"photo": img1}, map[string]string{"galleries": `["crm"]`, "meta": "Sam"}), 200)).Results[0]
	r := want(t, "identify", e.multipart(t, "/v0/faces/gallery/crm/identify/", e.read, map[string][]byte{"photo": img2}, map[string]string{"threshold": "medium"}), 200)
	var body struct {
		Results map[string][]struct {
			Confidence float64 `json:"confidence"`
			Face       ffFace  `json:"face"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Results) != 1 {
		t.Fatalf("identify: %s", r.body)
	}
	for _, l := range body.Results {
		if len(l) == 0 || l[0].Face.ID != sam.ID || l[0].Confidence < 0.75 {
			t.Fatalf("identify: %s", r.body)
		}
	}
	// The module treats any non-200 as "not found"; a photo without a
	// face is 400 with the string code too.
	wantCode(t, "no face", e.multipart(t, "/v0/faces/gallery/crm/identify/", e.read, map[string][]byte{"photo": greyJPEG(t)}, nil), 400, findface.CodeExtraction)
}

// TestErrorCodes: every error keeps the document's numeric code (the HTTP
// status) and adds the string error_code.
func TestErrorCodes(t *testing.T) {
	e := newEnv(t)
	wantCode(t, "no face", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"photo": b64(greyJPEG(t))}), 400, findface.CodeExtraction)
	wantCode(t, "too many", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"photo": b64(photo(t, "couple.jpg")), "mf_selector": "reject"}), 400, findface.CodeExtraction)
	wantCode(t, "no photo", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"meta": "x"}), 400, findface.CodeBadParam)
	wantCode(t, "bad json", e.do(t, "POST", "/v0/verify/", "Token "+e.read, "application/json", []byte("{")), 400, findface.CodeBadParam)
	wantCode(t, "url", e.json(t, "POST", "/v1/detect/", e.read, map[string]any{"photo": "http://static.findface.pro/sample.jpg"}), 400, findface.CodeURLNotAllowed)
	wantCode(t, "no key", e.do(t, "GET", "/v0/faces/", "", "", nil), 401, findface.CodeUnauthorized)
	wantCode(t, "read key", e.json(t, "POST", "/v0/galleries/x", e.read, nil), 403, findface.CodeForbidden)
	wantCode(t, "unknown face", e.json(t, "GET", "/v0/face/id/4242", e.read, nil), 404, findface.CodeNotFound)
	wantCode(t, "unknown path", e.json(t, "GET", "/v0/face/gallery/default/identify", e.read, nil), 404, findface.CodeNotFound)
	wantCode(t, "method", e.json(t, "GET", "/v0/identify/", e.read, nil), 405, findface.CodeMethod)
	wantCode(t, "exists", e.json(t, "POST", "/v0/galleries/default", e.write, nil), 409, findface.CodeConflict)
	wantCode(t, "not an image", e.json(t, "POST", "/v1/detect/", e.read, map[string]any{"photo": b64([]byte("GIF89a this is no image at all, only some words"))}), 415, findface.CodeUnsupportedImage)
}

// greyJPEG is a face-less photo.
var greyJPEG = dialecttest.GreyJPEG
