package findface_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/api/findface"
	"github.com/facedhq/faced/api/miicloud"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/apitest"
	"github.com/facedhq/faced/internal/apitest/dialecttest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
)

var vision *daemon.Vision

func TestMain(m *testing.M) { apitest.Main(m, &vision) }

type env struct {
	base, url          string
	svc                *service.Service
	read, write, admin string
	client             *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := dialecttest.Serve(t, apitest.New(t, vision), nil, dialecttest.Mount{Prefix: "/compat/findface", New: findface.New}, dialecttest.Mount{Prefix: "/compat/miicloud", New: miicloud.New})
	return &env{base: d.Base, url: d.Root, svc: d.Svc, read: d.Read, write: d.Write, admin: d.Admin, client: d.Client}
}

func photo(t *testing.T, name string) []byte { return testenv.ReadPhoto(t, "deepface/"+name) }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, method, path, auth, ctype string, body []byte) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	r := dialecttest.Send(t, e.client, req)
	return resp{r.Status, r.Header, r.Body}
}

func (e *env) json(t *testing.T, method, path, key string, body any) resp {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	return e.do(t, method, path, "Token "+key, "application/json", b)
}

func (e *env) multipart(t *testing.T, path, key string, files map[string][]byte, fields map[string]string) resp {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range files {
		w, _ := mw.CreateFormFile(k, k+".jpg")
		w.Write(v)
	}
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.Close()
	return e.do(t, "POST", path, "Token "+key, mw.FormDataContentType(), buf.Bytes())
}

func want(t *testing.T, what string, r resp, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
	if status >= 400 {
		var eb struct {
			Code   *int    `json:"code"`
			Reason *string `json:"reason"`
		}
		if err := json.Unmarshal(r.body, &eb); err != nil || eb.Code == nil || *eb.Code != status || eb.Reason == nil || *eb.Reason == "" {
			t.Fatalf("%s: error body %s", what, r.body)
		}
	}
	return r
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

type ffFace struct {
	Galleries []string `json:"galleries"`
	ID        uint64   `json:"id"`
	Meta      string   `json:"meta"`
	Photo     *string  `json:"photo"`
	PhotoHash string   `json:"photo_hash"`
	Timestamp string   `json:"timestamp"`
	PersonID  any      `json:"person_id"`
	X1        int      `json:"x1"`
	X2        int      `json:"x2"`
	Y1        int      `json:"y1"`
	Y2        int      `json:"y2"`
}

var tsRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)

func checkFace(t *testing.T, f ffFace) {
	t.Helper()
	if f.ID == 0 || f.Photo == nil || len(f.PhotoHash) != 64 || !tsRe.MatchString(f.Timestamp) || f.X2 <= f.X1 || f.Y2 <= f.Y1 || len(f.Galleries) == 0 {
		t.Fatalf("face shape: %+v", f)
	}
}

type results[T any] struct {
	Results T `json:"results"`
}

// TestDocumentExamples replays every request example of the document.
func TestDocumentExamples(t *testing.T) {
	e := newEnv(t)
	img1, img2, img13, couple := photo(t, "img1.jpg"), photo(t, "img2.jpg"), photo(t, "img13.jpg"), photo(t, "couple.jpg")

	// POST /v1/detect/ with emotions, gender, age (base64 instead of a URL).
	r := want(t, "detect", e.json(t, "POST", "/v1/detect/", e.read, map[string]any{"photo": b64(img1), "emotions": true, "gender": true, "age": true}), 200)
	det := decode[struct {
		Faces []struct {
			Age      *int     `json:"age"`
			Emotions []string `json:"emotions"`
			Gender   string   `json:"gender"`
			X1, X2   int
			Y1, Y2   int
		} `json:"faces"`
	}](t, r)
	if len(det.Faces) != 1 || det.Faces[0].Age == nil || len(det.Faces[0].Emotions) == 0 || (det.Faces[0].Gender != "male" && det.Faces[0].Gender != "female") || det.Faces[0].X2 <= det.Faces[0].X1 {
		t.Fatalf("detect: %s", r.body)
	}
	if r.header.Get("Content-Type") != "application/json; charset=UTF-8" {
		t.Fatalf("content type %q", r.header.Get("Content-Type"))
	}
	// Without attributes, and as multipart; without the trailing slash.
	r = want(t, "detect multipart", e.multipart(t, "/v1/detect", e.read, map[string][]byte{"photo": couple}, nil), 200)
	if strings.Contains(string(r.body), "age") || len(decode[map[string][]any](t, r)["faces"]) != 2 {
		t.Fatalf("detect couple: %s", r.body)
	}
	// The document's URL photo is refused (no fetcher).
	r = want(t, "detect url", e.json(t, "POST", "/v1/detect/", e.read, map[string]any{"photo": "https://static.findface.pro/sample.jpg", "age": true}), 400)
	if !strings.Contains(string(r.body), "URL") {
		t.Fatalf("url refusal: %s", r.body)
	}

	// POST /v0/verify/.
	type verifyResp struct {
		Results []struct {
			BBox1      *struct{ X1, X2, Y1, Y2 int } `json:"bbox1"`
			BBox2      *struct{ X1, X2, Y1, Y2 int } `json:"bbox2"`
			Confidence *float64                      `json:"confidence"`
			Verified   *bool                         `json:"verified"`
		} `json:"results"`
		Verified *bool `json:"verified"`
	}
	v := decode[verifyResp](t, want(t, "verify", e.json(t, "POST", "/v0/verify/", e.read, map[string]any{"photo1": b64(img1), "photo2": b64(img2)}), 200))
	if len(v.Results) != 1 || v.Verified == nil || !*v.Verified || v.Results[0].BBox1 == nil || v.Results[0].BBox2 == nil || v.Results[0].Confidence == nil || *v.Results[0].Confidence < 0.75 || !*v.Results[0].Verified {
		t.Fatalf("verify same: %+v", v)
	}
	v = decode[verifyResp](t, want(t, "verify other", e.json(t, "POST", "/v0/verify", e.read, map[string]any{"photo1": b64(img1), "photo2": b64(img13), "threshold": "strict"}), 200))
	if v.Verified == nil || *v.Verified {
		t.Fatalf("verify other: %+v", v)
	}
	v = decode[verifyResp](t, want(t, "verify none", e.json(t, "POST", "/v0/verify/", e.read, map[string]any{"photo1": b64(img1), "photo2": b64(img13), "threshold": "none"}), 200))
	if v.Verified != nil || v.Results[0].Verified != nil || v.Results[0].Confidence == nil {
		t.Fatalf("verify none: %+v", v)
	}
	v = decode[verifyResp](t, want(t, "verify number", e.json(t, "POST", "/v0/verify/", e.read, map[string]any{"photo1": b64(img1), "photo2": b64(img2), "threshold": 0.01}), 200))
	if !*v.Verified {
		t.Fatalf("verify 0.01: %+v", v)
	}
	for _, th := range []string{"low", "medium"} {
		want(t, "verify "+th, e.json(t, "POST", "/v0/verify/", e.read, map[string]any{"photo1": b64(img1), "photo2": b64(img2), "threshold": th}), 200)
	}
	want(t, "verify bad threshold", e.json(t, "POST", "/v0/verify/", e.read, map[string]any{"photo1": b64(img1), "photo2": b64(img2), "threshold": "1.5"}), 400)
	v = decode[verifyResp](t, want(t, "verify all", e.json(t, "POST", "/v0/verify/", e.read, map[string]any{"photo1": b64(couple), "photo2": b64(img1), "mf_selector": "all"}), 200))
	if len(v.Results) != 2 {
		t.Fatalf("verify all: %+v", v)
	}
	want(t, "verify reject", e.json(t, "POST", "/v0/verify/", e.read, map[string]any{"photo1": b64(couple), "photo2": b64(img1), "mf_selector": "reject"}), 400)
	// bbox1 picks the couple's second face.
	faces := decode[map[string][]findface.Box](t, want(t, "detect couple", e.json(t, "POST", "/v1/detect/", e.read, map[string]any{"photo": b64(couple)}), 200))["faces"]
	second := faces[1]
	v = decode[verifyResp](t, want(t, "verify bbox", e.json(t, "POST", "/v0/verify/", e.read, map[string]any{
		"photo1": b64(couple), "photo2": b64(img1), "bbox1": [][]int{{second.X1, second.Y1, second.X2, second.Y2}}, "mf_selector": "reject",
	}), 200))
	if len(v.Results) != 1 || v.Results[0].BBox1.X1 != second.X1 {
		t.Fatalf("verify bbox: %+v", v)
	}
	want(t, "verify bbox nowhere", e.json(t, "POST", "/v0/verify/", e.read, map[string]any{"photo1": b64(couple), "photo2": b64(img1), "bbox1": []int{0, 0, 2, 2}}), 400)
	want(t, "verify url", e.json(t, "POST", "/v0/verify/", e.read, map[string]any{"photo1": "http://static.findface.pro/sample.jpg", "photo2": "http://static.findface.pro/sample2.jpg"}), 400)

	// POST /v0/face/ example #1 (galleries, meta).
	r = want(t, "face", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"meta": "Sam Berry", "photo": b64(img1), "galleries": []string{"gal1", "niceppl"}}), 200)
	added := decode[results[[]ffFace]](t, r).Results
	if len(added) != 1 || added[0].Meta != "Sam Berry" || !slices.Equal(added[0].Galleries, []string{"default", "gal1", "niceppl"}) {
		t.Fatalf("face: %s", r.body)
	}
	checkFace(t, added[0])
	sam := added[0]
	if fmt.Sprint(sam.PersonID) != fmt.Sprint(sam.ID) {
		t.Fatalf("own person id %v for face %d", sam.PersonID, sam.ID)
	}
	// A second photo of the same person, multipart, joined by person_id.
	r = want(t, "face multipart", e.multipart(t, "/v0/face", e.write, map[string][]byte{"photo": img2}, map[string]string{"meta": "Sam Berry", "person_id": fmt.Sprint(sam.ID), "cam_id": "12345678123456781234567812345678"}), 200)
	sam2 := decode[results[[]ffFace]](t, r).Results[0]
	if fmt.Sprint(sam2.PersonID) != fmt.Sprint(sam.ID) {
		t.Fatalf("person_id join: %s", r.body)
	}
	// Example #2: mf_selector reject → 400 Too many faces with the boxes.
	r = want(t, "face reject", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"mf_selector": "reject", "photo": b64(couple)}), 400)
	tm := decode[struct {
		Code   int            `json:"code"`
		Faces  []findface.Box `json:"faces"`
		Reason string         `json:"reason"`
	}](t, r)
	if tm.Code != 400 || tm.Reason != "Too many faces: 2" || len(tm.Faces) != 2 || tm.Faces[0].X2 <= tm.Faces[0].X1 {
		t.Fatalf("too many: %s", r.body)
	}
	// mf_selector all adds both faces with the original boxes.
	r = want(t, "face all", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"mf_selector": "all", "photo": b64(couple), "meta": "couple"}), 200)
	two := decode[results[[]ffFace]](t, r).Results
	if len(two) != 2 || two[1].X1 != second.X1 || two[0].PhotoHash != two[1].PhotoHash {
		t.Fatalf("face all: %s", r.body)
	}
	r = want(t, "face bbox", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"photo": b64(couple), "bbox": []map[string]int{{"x1": second.X1, "y1": second.Y1, "x2": second.X2, "y2": second.Y2}}}), 200)
	if bb := decode[results[[]ffFace]](t, r).Results; len(bb) != 1 || bb[0].X1 != second.X1 || bb[0].Y2 != second.Y2 {
		t.Fatalf("face bbox: %s", r.body)
	} else {
		want(t, "delete bbox face", e.do(t, "DELETE", fmt.Sprintf("/v0/face/id/%d", bb[0].ID), "Token "+e.write, "", nil), 204)
	}
	want(t, "face url", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"photo": "http://static.findface.pro/sample.jpg"}), 400)
	want(t, "face bad gallery", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"photo": b64(img13), "galleries": []string{"bad name!"}}), 400)
	want(t, "face read key", e.json(t, "POST", "/v0/face/", e.read, map[string]any{"photo": b64(img13)}), 403)
	other := decode[results[[]ffFace]](t, want(t, "face other", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"photo": b64(img13), "meta": "Other"}), 200)).Results[0]

	// POST /v0/identify/ with n.
	r = want(t, "identify", e.json(t, "POST", "/v0/identify/", e.read, map[string]any{"n": 10, "photo": b64(img2)}), 200)
	id := decode[results[map[string][]struct {
		Confidence float64 `json:"confidence"`
		Face       ffFace  `json:"face"`
	}]](t, r).Results
	if len(id) != 1 {
		t.Fatalf("identify: %s", r.body)
	}
	keyRe := regexp.MustCompile(`^\[(\d+), (\d+), (\d+), (\d+)\]$`)
	for k, l := range id {
		if !keyRe.MatchString(k) || len(l) < 2 || l[0].Confidence < 0.75 {
			t.Fatalf("identify key %q: %s", k, r.body)
		}
		var y2, x1, y1, x2 int
		fmt.Sscanf(k, "[%d, %d, %d, %d]", &y2, &x1, &y1, &x2)
		if y2 <= y1 || x2 <= x1 {
			t.Fatalf("key order %q", k)
		}
		var ids []uint64
		for _, m := range l {
			ids = append(ids, m.Face.ID)
		}
		if !slices.Contains(ids, sam.ID) || !slices.Contains(ids, sam2.ID) {
			t.Fatalf("identify matches: %s", r.body)
		}
		checkFace(t, l[0].Face)
	}
	// Restricted to a bbox (x1..y2) on the couple, threshold none.
	r = want(t, "identify bbox", e.json(t, "POST", "/v0/identify", e.read, map[string]any{"photo": b64(couple), "x1": second.X1, "y1": second.Y1, "x2": second.X2, "y2": second.Y2, "threshold": "none", "n": 3}), 200)
	idb := decode[results[map[string][]any]](t, r).Results
	if _, ok := idb[findface.BoxKey(second)]; !ok || len(idb) != 1 {
		t.Fatalf("identify bbox: %s", r.body)
	}
	r = want(t, "identify all", e.json(t, "POST", "/v0/identify/", e.read, map[string]any{"photo": b64(couple), "mf_selector": "all"}), 200)
	if len(decode[results[map[string][]any]](t, r).Results) != 2 {
		t.Fatalf("identify all: %s", r.body)
	}
	want(t, "identify reject", e.json(t, "POST", "/v0/identify/", e.read, map[string]any{"photo": b64(couple), "mf_selector": "reject"}), 400)
	want(t, "identify bad n", e.json(t, "POST", "/v0/identify/", e.read, map[string]any{"photo": b64(img1), "n": 0}), 400)
	want(t, "identify url", e.json(t, "POST", "/v0/identify/", e.read, map[string]any{"n": 10, "photo": "http://static.findface.pro/sample.jpg"}), 400)
	r = want(t, "identify stranger strict", e.json(t, "POST", "/v0/identify/", e.read, map[string]any{"photo": b64(photo(t, "img13.jpg")), "gallery": "gal1"}), 200)
	for _, l := range decode[results[map[string][]any]](t, r).Results {
		if len(l) != 0 {
			t.Fatalf("stranger in gal1: %s", r.body)
		}
	}

	// GET /v0/face/id/<id>/.
	got := decode[ffFace](t, want(t, "get face", e.json(t, "GET", fmt.Sprintf("/v0/face/id/%d/", sam.ID), e.read, nil), 200))
	checkFace(t, got)
	if got.Meta != "Sam Berry" || got.PhotoHash != sam.PhotoHash {
		t.Fatalf("get face: %+v", got)
	}
	want(t, "get unknown", e.json(t, "GET", "/v0/face/id/999999/", e.read, nil), 404)
	want(t, "get bad id", e.json(t, "GET", "/v0/face/id/abc", e.read, nil), 404)

	// PUT /v0/face/id/<id>/ meta, galleries, person_id.
	got = decode[ffFace](t, want(t, "put meta", e.json(t, "PUT", fmt.Sprintf("/v0/face/id/%d/", sam2.ID), e.write, map[string]any{"meta": "Sam Berry #2"}), 200))
	if got.Meta != "Sam Berry #2" {
		t.Fatalf("put meta: %+v", got)
	}
	got = decode[ffFace](t, want(t, "put add", e.json(t, "PUT", fmt.Sprintf("/v0/face/id/%d", sam2.ID), e.write, map[string]any{"galleries": map[string]any{"add": []string{"ppl"}}}), 200))
	if !slices.Equal(got.Galleries, []string{"default", "ppl"}) {
		t.Fatalf("put add: %+v", got)
	}
	got = decode[ffFace](t, want(t, "put del", e.json(t, "PUT", fmt.Sprintf("/v0/face/id/%d", sam2.ID), e.write, map[string]any{"galleries": map[string]any{"del": []string{"default"}}}), 200))
	if !slices.Equal(got.Galleries, []string{"ppl"}) {
		t.Fatalf("put del: %+v", got)
	}
	got = decode[ffFace](t, want(t, "put set", e.json(t, "PUT", fmt.Sprintf("/v0/face/id/%d", sam2.ID), e.write, map[string]any{"galleries": map[string]any{"set": []string{"default", "test"}}}), 200))
	if !slices.Equal(got.Galleries, []string{"default", "test"}) {
		t.Fatalf("put set: %+v", got)
	}
	want(t, "put set empty", e.json(t, "PUT", fmt.Sprintf("/v0/face/id/%d", sam2.ID), e.write, map[string]any{"galleries": map[string]any{"set": []string{}}}), 400)
	got = decode[ffFace](t, want(t, "put person", e.json(t, "PUT", fmt.Sprintf("/v0/face/id/%d", other.ID), e.write, map[string]any{"person_id": 777}), 200))
	if fmt.Sprint(got.PersonID) != "777" {
		t.Fatalf("put person: %+v", got)
	}
	want(t, "put unknown", e.json(t, "PUT", "/v0/face/id/999999/", e.write, map[string]any{"meta": "x"}), 404)

	// GET /v0/face/meta/<meta>/ (with %20).
	r = want(t, "by meta", e.do(t, "GET", "/v0/face/meta/Sam%20Berry/", "Token "+e.read, "", nil), 200)
	bm := decode[results[[]ffFace]](t, r).Results
	if len(bm) != 1 || bm[0].ID != sam.ID {
		t.Fatalf("by meta: %s", r.body)
	}
	r = want(t, "by meta 2", e.do(t, "GET", "/v0/face/meta/Sam%20Berry%20%232", "Token "+e.read, "", nil), 200)
	if bm = decode[results[[]ffFace]](t, r).Results; len(bm) != 1 || bm[0].ID != sam2.ID {
		t.Fatalf("by meta #2: %s", r.body)
	}

	// GET /v0/faces/.
	all := decode[results[[]ffFace]](t, want(t, "faces", e.json(t, "GET", "/v0/faces/", e.read, nil), 200)).Results
	if len(all) != 5 {
		t.Fatalf("faces: %d", len(all))
	}
	for _, f := range all {
		checkFace(t, f)
	}

	// GET /v0/meta/.
	metas := decode[results[[]struct {
		Count int    `json:"count"`
		Face  ffFace `json:"face"`
		Meta  string `json:"meta"`
	}]](t, want(t, "meta", e.json(t, "GET", "/v0/meta/", e.read, nil), 200)).Results
	counts := map[string]int{}
	for _, m := range metas {
		counts[m.Meta] = m.Count
		if m.Face.Meta != m.Meta {
			t.Fatalf("meta face: %+v", m)
		}
	}
	if counts["couple"] != 2 || counts["Sam Berry"] != 1 || counts["Other"] != 1 {
		t.Fatalf("meta counts: %v", counts)
	}

	// Galleries: list, create (201), name rules.
	r = e.do(t, "POST", "/v0/galleries/testgal", "Token "+e.write, "application/json", nil)
	if r.status != 201 {
		t.Fatalf("create gallery: %d %s", r.status, r.body)
	}
	want(t, "create again", e.do(t, "POST", "/v0/galleries/testgal/", "Token "+e.write, "application/json", nil), 409)
	want(t, "create bad", e.do(t, "POST", "/v0/galleries/bad.name", "Token "+e.write, "application/json", nil), 400)
	want(t, "create long", e.do(t, "POST", "/v0/galleries/"+strings.Repeat("a", 49), "Token "+e.write, "application/json", nil), 400)
	if r = e.do(t, "POST", "/v0/galleries/"+strings.Repeat("a", 48), "Token "+e.write, "", nil); r.status != 201 {
		t.Fatalf("create 48: %d", r.status)
	}
	gals := decode[results[[]string]](t, want(t, "galleries", e.json(t, "GET", "/v0/galleries/", e.read, nil), 200)).Results
	for _, g := range []string{"default", "gal1", "niceppl", "testgal", "test"} {
		if !slices.Contains(gals, g) {
			t.Fatalf("galleries %v lack %s", gals, g)
		}
	}

	// History: identify with cam_id records events.
	for _, c := range []any{25, 26} {
		want(t, "identify cam", e.json(t, "POST", "/v0/identify/", e.read, map[string]any{"photo": b64(img2), "cam_id": c}), 200)
	}
	want(t, "identify cam other", e.json(t, "POST", "/v0/identify/", e.read, map[string]any{"photo": b64(img13), "cam_id": 1}), 200)
	type hist struct {
		NextPage string `json:"next_page"`
		Results  []struct {
			ID        uint64 `json:"id"`
			PersonID  any    `json:"person_id"`
			FaceID    uint64 `json:"face_id"`
			CamID     any    `json:"cam_id"`
			Meta      string `json:"meta"`
			Friend    bool   `json:"friend"`
			Timestamp string `json:"timestamp"`
			X1, X2    int
		} `json:"results"`
	}
	// The document's person example: GET with a JSON body.
	r = want(t, "person history", e.json(t, "GET", fmt.Sprintf("/person/history/id/%d", sam.ID), e.read, map[string]any{
		"cam_ids": []int{1, 25, 26, 27}, "start": time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04:05.000000"), "end": time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05.000000"),
	}), 200)
	h := decode[hist](t, r)
	if len(h.Results) != 2 || fmt.Sprint(h.Results[0].PersonID) != fmt.Sprint(sam.ID) || !h.Results[0].Friend || h.Results[0].FaceID == 0 || !tsRe.MatchString(h.Results[0].Timestamp) || fmt.Sprint(h.Results[0].CamID) != "26" {
		t.Fatalf("person history: %s", r.body)
	}
	h = decode[hist](t, want(t, "person id", e.json(t, "GET", fmt.Sprintf("/v0/person/id/%d/", sam.ID), e.read, map[string]any{"cam_ids": []int{25}}), 200))
	if len(h.Results) != 1 {
		t.Fatalf("person id cams: %+v", h)
	}
	h = decode[hist](t, want(t, "person past", e.json(t, "POST", fmt.Sprintf("/v0/person/history/id/%d", sam.ID), e.read, map[string]any{"end": "2016-06-14T11:00:00.000000"}), 200))
	if len(h.Results) != 0 {
		t.Fatalf("person past: %+v", h)
	}
	want(t, "person unknown", e.json(t, "GET", "/v0/person/id/123456789", e.read, nil), 404)
	// POST /v0/history/search with limit 2 (the document's body has a trailing comma).
	r = want(t, "history", e.do(t, "POST", "/v0/history/search", "Token "+e.read, "application/json", []byte("{\n    \"limit\": 2,\n}")), 200)
	h = decode[hist](t, r)
	if len(h.Results) != 2 || !strings.HasPrefix(h.NextPage, "/v0/history/search?") {
		t.Fatalf("history page 1: %s", r.body)
	}
	r = want(t, "history page 2", e.do(t, "POST", h.NextPage, "Token "+e.read, "application/json", nil), 200)
	h2 := decode[hist](t, r)
	if len(h2.Results) != 1 || h2.NextPage != "" || h2.Results[0].ID == h.Results[0].ID || h2.Results[0].ID == h.Results[1].ID {
		t.Fatalf("history page 2: %s", r.body)
	}
	h = decode[hist](t, want(t, "history friend", e.json(t, "POST", "/v0/history/search/", e.read, map[string]any{"friend": true, "cam_ids": []string{"25", "26"}}), 200))
	if len(h.Results) != 2 {
		t.Fatalf("history friend: %+v", h)
	}
	want(t, "history bad start", e.json(t, "POST", "/v0/history/search", e.read, map[string]any{"start": "yesterday"}), 400)

	// DELETE /v0/face/id/<id>/ → 204, then 404.
	r = e.do(t, "DELETE", fmt.Sprintf("/v0/face/id/%d/", two[0].ID), "Token "+e.write, "", nil)
	if r.status != 204 || len(r.body) != 0 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	want(t, "delete again", e.do(t, "DELETE", fmt.Sprintf("/v0/face/id/%d", two[0].ID), "Token "+e.write, "", nil), 404)
	want(t, "get deleted", e.json(t, "GET", fmt.Sprintf("/v0/face/id/%d", two[0].ID), e.read, nil), 404)
}

// TestAuthAndDocs: only "Token <key>" is accepted; docs need none.
func TestAuthAndDocs(t *testing.T) {
	e := newEnv(t)
	for name, h := range map[string]string{
		"none": "", "bearer": "Bearer " + e.read, "bare": e.read, "basic": "Basic " + base64.StdEncoding.EncodeToString([]byte(e.read+":")),
		"bad token": "Token nope", "half key": "Token " + strings.Split(e.read, ".")[0],
	} {
		want(t, "auth "+name, e.do(t, "GET", "/v0/faces/", h, "", nil), 401)
	}
	want(t, "lower scheme", e.do(t, "GET", "/v0/faces", "token "+e.read, "", nil), 200)
	want(t, "read lacks write", e.do(t, "POST", "/v0/galleries/x", "Token "+e.read, "", nil), 403)
	for _, p := range []string{"/v0/docs", "/v0/docs/"} {
		r := want(t, "docs", e.do(t, "GET", p, "", "", nil), 200)
		if !strings.Contains(string(r.body), "v0") {
			t.Fatalf("docs: %s", r.body)
		}
	}
	want(t, "docs v0", e.do(t, "GET", "/v0/docs/v0", "", "", nil), 200)
	want(t, "docs v1", e.do(t, "GET", "/v0/docs/v1/", "", "", nil), 200)
	want(t, "docs v9", e.do(t, "GET", "/v0/docs/v9", "", "", nil), 404)
	want(t, "unknown path", e.do(t, "GET", "/v0/nothing", "Token "+e.read, "", nil), 404)
	r := want(t, "method", e.do(t, "GET", "/v0/verify/", "Token "+e.read, "", nil), 405)
	if r.header.Get("Allow") == "" {
		t.Fatal("no Allow")
	}
	want(t, "no photo", e.json(t, "POST", "/v1/detect/", e.read, map[string]any{"age": true}), 400)
	want(t, "bad base64", e.json(t, "POST", "/v1/detect/", e.read, map[string]any{"photo": "!!!"}), 400)
	want(t, "bad json", e.do(t, "POST", "/v1/detect/", "Token "+e.read, "application/json", []byte("{")), 400)
}

// TestCrossDialect: a face enrolled here is found by the native API, by
// miicloud's match_faces and by service.Identify.
func TestCrossDialect(t *testing.T) {
	e := newEnv(t)
	img1, img2 := photo(t, "img1.jpg"), photo(t, "img2.jpg")
	f := decode[results[[]ffFace]](t, want(t, "face", e.json(t, "POST", "/v0/face/", e.write, map[string]any{"photo": b64(img1), "meta": "Jane", "person_id": "4242"}), 200)).Results[0]

	body, _ := json.Marshal(map[string]any{"photo": b64(img2)})
	req, _ := http.NewRequest("POST", e.url+"/v1/identify", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.read)
	req.Header.Set("Content-Type", "application/json")
	hr, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	var native struct {
		Faces []struct {
			Matches []struct {
				FaceID uint64 `json:"face_id"`
				Person struct {
					ExternalID string `json:"external_id"`
				} `json:"person"`
			} `json:"matches"`
		} `json:"faces"`
	}
	if err := json.Unmarshal(b, &native); err != nil || hr.StatusCode != 200 || len(native.Faces) != 1 || len(native.Faces[0].Matches) == 0 ||
		native.Faces[0].Matches[0].FaceID != f.ID || native.Faces[0].Matches[0].Person.ExternalID != "4242" {
		t.Fatalf("native identify: %d %s", hr.StatusCode, b)
	}

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("image_path", "q.jpg")
	w.Write(img2)
	mw.Close()
	req, _ = http.NewRequest("POST", e.url+"/compat/miicloud/miicloud/match_faces", &buf)
	req.Header.Set("Authorization", "Token "+e.read)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	hr, err = e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(hr.Body)
	hr.Body.Close()
	if hr.StatusCode != 200 || !strings.Contains(string(b), `"customer_person_id":"4242"`) {
		t.Fatalf("miicloud match: %d %s", hr.StatusCode, b)
	}

	res, err := e.svc.Identify(context.Background(), service.IdentifyRequest{Photo: img2, Threshold: service.DefaultThreshold, Selector: face.SelectBiggest})
	if err != nil || len(res) != 1 || len(res[0].Matches) == 0 || res[0].Matches[0].FaceID != f.ID {
		t.Fatalf("service identify: %+v %v", res, err)
	}
}
