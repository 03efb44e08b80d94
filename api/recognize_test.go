package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"image"
	_ "image/jpeg" // DecodeConfig of the test photos
	"image/png"
	"math"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// The response types below spell out the JSON the API documents, so a
// renamed field breaks the tests as it would break a client.
type wirePoint struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

type wireBox struct {
	X1 float64 `json:"x1"`
	Y1 float64 `json:"y1"`
	X2 float64 `json:"x2"`
	Y2 float64 `json:"y2"`
}

type wireFace struct {
	Box         wireBox     `json:"box"`
	Score       float64     `json:"score"`
	Landmarks   []wirePoint `json:"landmarks"`
	Landmarks68 []wirePoint `json:"landmarks68"`
	Embedding   []float64   `json:"embedding"`
	Embedder    string      `json:"embedder"`
	Liveness    *float64    `json:"liveness"`
	Attributes  *struct {
		Age         float64            `json:"age"`
		Gender      string             `json:"gender"`
		GenderScore float64            `json:"gender_score"`
		Emotion     string             `json:"emotion"`
		Emotions    map[string]float64 `json:"emotions"`
		Pose        map[string]float64 `json:"pose"`
	} `json:"attributes"`
	Quality *struct {
		Score float64 `json:"score"`
	} `json:"quality"`
}

type wireDetect struct {
	Faces []wireFace `json:"faces"`
}

type wirePair struct {
	Face1      wireBox `json:"face1"`
	Face2      wireBox `json:"face2"`
	FaceID     uint64  `json:"face_id"`
	Similarity float64 `json:"similarity"`
	Confidence float64 `json:"confidence"`
	Match      *bool   `json:"match"`
}

type wireVerify struct {
	Verified *bool      `json:"verified"`
	Pairs    []wirePair `json:"pairs"`
}

type wireMatch struct {
	FaceID uint64 `json:"face_id"`
	Person struct {
		ID         string `json:"id"`
		ExternalID string `json:"external_id"`
		Name       string `json:"name"`
	} `json:"person"`
	Similarity float64 `json:"similarity"`
	Confidence float64 `json:"confidence"`
}

type wireIdentified struct {
	Box     wireBox     `json:"box"`
	Score   float64     `json:"score"`
	Matches []wireMatch `json:"matches"`
	EventID uint64      `json:"event_id"`
}

type wireIdentify struct {
	Faces []wireIdentified `json:"faces"`
}

// call sends a request with the read key.
func (e *env) call(t testing.TB, path, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	return e.do(t, http.MethodPost, path, e.Read, contentType, body)
}

// callOK sends a request with the read key and decodes a 200 JSON answer
// into v.
func (e *env) callOK(t testing.TB, path, contentType string, body []byte, v any) []byte {
	t.Helper()
	status, hdr, b := e.call(t, path, contentType, body)
	if status != http.StatusOK {
		t.Fatalf("POST %s: status %d, want 200: %s", path, status, b)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("POST %s: Content-Type %q, want application/json", path, ct)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("POST %s: decoding %s: %v", path, b, err)
	}
	return b
}

// expectProblem checks an RFC 9457 answer: status, media type, code and the
// other members; it returns the problem for further checks.
func expectProblem(t testing.TB, status int, hdr http.Header, body []byte, wantStatus int, wantCode string) Problem {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status %d, want %d: %s", status, wantStatus, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json: %s", ct, body)
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decoding problem %s: %v", body, err)
	}
	if p.Code != wantCode || p.Status != status || p.Title != problemTitle(status) || p.Type == "" || p.Detail == "" {
		t.Errorf("problem %+v, want code %q, status %d, its title, a type and a detail", p, wantCode, status)
	}
	return p
}

func jsonBody(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func enc64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// photoSize reads a JPEG's dimensions.
func photoSize(t testing.TB, data []byte) (float64, float64) {
	t.Helper()
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return float64(cfg.Width), float64(cfg.Height)
}

// flatJPEG is a w×h flat grey photo: a valid image without a face.
func flatJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	return encodeJPEG(t, img)
}

// noise is deterministic random bytes that start with no image signature.
func noise(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0], b[1] = 'x', 'x'
	return b
}

// hugePNG is a valid PNG signature and IHDR (with its CRC) declaring a
// 20000×20000 image, and nothing else: a decompression bomb's header.
func hugePNG(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(buf.Bytes())
	// Signature (8) | length (4) | "IHDR" (4) | width (4) | height (4) | ...
	ihdr := b[12 : 12+4+13]
	copy(ihdr[4:8], []byte{0, 0, 0x4e, 0x20}) // 20000
	copy(ihdr[8:12], []byte{0, 0, 0x4e, 0x20})
	crc := crc32.ChecksumIEEE(ihdr)
	b[29], b[30], b[31], b[32] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return b
}

func TestHugePNGHeader(t *testing.T) {
	cfg, err := png.DecodeConfig(bytes.NewReader(hugePNG(t)))
	if err != nil || cfg.Width != 20000 || cfg.Height != 20000 {
		t.Fatalf("hugePNG header: %+v, %v", cfg, err)
	}
}

// checkFaces checks what every detection promises: boxes inside the photo,
// biggest first, a plausible score, five landmarks near their box.
func checkFaces(t testing.TB, faces []wireFace, w, h float64) {
	t.Helper()
	prev := math.Inf(1)
	for i, f := range faces {
		b := f.Box
		if !(b.X1 >= 0 && b.Y1 >= 0 && b.X2 > b.X1 && b.Y2 > b.Y1 && b.X2 <= w && b.Y2 <= h) {
			t.Errorf("face %d: box %+v outside the %vx%v photo", i, b, w, h)
		}
		if area := (b.X2 - b.X1) * (b.Y2 - b.Y1); area > prev {
			t.Errorf("face %d is bigger than the one before it: want biggest first", i)
		} else {
			prev = area
		}
		if f.Score < 0.5 || f.Score > 1 {
			t.Errorf("face %d: score %v", i, f.Score)
		}
		if len(f.Landmarks) != 5 {
			t.Errorf("face %d: %d landmarks, want 5", i, len(f.Landmarks))
		}
		mx, my := (b.X2-b.X1)/4, (b.Y2-b.Y1)/4
		for j, p := range f.Landmarks {
			if p.X < b.X1-mx || p.X > b.X2+mx || p.Y < b.Y1-my || p.Y > b.Y2+my {
				t.Errorf("face %d: landmark %d %+v far from the box %+v", i, j, p, b)
			}
		}
		if f.Quality == nil {
			t.Errorf("face %d: no quality", i)
		}
	}
}

func TestDetectRawJPEG(t *testing.T) {
	e := newEnv(t, Config{})
	couple := photo(t, "couple.jpg")
	w, h := photoSize(t, couple)
	var r wireDetect
	raw := e.callOK(t, "/v1/detect", "image/jpeg", couple, &r)
	if len(r.Faces) != 2 {
		t.Fatalf("%d faces in couple.jpg, want 2: %s", len(r.Faces), raw)
	}
	checkFaces(t, r.Faces, w, h)
	for i, f := range r.Faces {
		if f.Landmarks68 != nil || f.Embedding != nil || f.Liveness != nil || f.Attributes != nil {
			t.Errorf("face %d: optional stages in a plain request: %+v", i, f)
		}
	}
	// application/octet-stream is a raw photo too, and the type is not
	// trusted: the decoder sniffs.
	for _, ct := range []string{"application/octet-stream", "image/png"} {
		var o wireDetect
		e.callOK(t, "/v1/detect", ct, couple, &o)
		if len(o.Faces) != 2 || o.Faces[0].Box != r.Faces[0].Box {
			t.Errorf("%s: %d faces, want the same 2", ct, len(o.Faces))
		}
	}
}

func TestDetectMultipart(t *testing.T) {
	e := newEnv(t, Config{})
	img := photo(t, "img1.jpg")
	var raw, form wireDetect
	e.callOK(t, "/v1/detect", "image/jpeg", img, &raw)
	ct, body := multipartBody(t, map[string][]byte{"photo": img}, nil)
	e.callOK(t, "/v1/detect", ct, body, &form)
	if len(form.Faces) != 1 || len(raw.Faces) != 1 {
		t.Fatalf("%d faces from the form, %d from the raw body, want 1", len(form.Faces), len(raw.Faces))
	}
	if form.Faces[0].Box != raw.Faces[0].Box {
		t.Errorf("box %+v from the form, %+v from the raw body", form.Faces[0].Box, raw.Faces[0].Box)
	}
	// Form fields are parameters.
	ct, body = multipartBody(t, map[string][]byte{"photo": img}, map[string]string{"embedding": "true"})
	e.callOK(t, "/v1/detect", ct, body, &form)
	if len(form.Faces) != 1 || len(form.Faces[0].Embedding) != embedDim() {
		t.Errorf("embedding=true as a form field: %d faces, embedding %d-d", len(form.Faces), len(form.Faces[0].Embedding))
	}
}

func TestDetectJSONBase64(t *testing.T) {
	e := newEnv(t, Config{})
	img := photo(t, "img12.jpg")
	var want wireDetect
	e.callOK(t, "/v1/detect", "image/jpeg", img, &want)
	if len(want.Faces) != 1 {
		t.Fatalf("img12.jpg: %d faces, want 1", len(want.Faces))
	}
	for name, s := range map[string]string{
		"standard":     enc64(img),
		"unpadded url": base64.RawURLEncoding.EncodeToString(img),
		"data uri":     "data:image/jpeg;base64," + enc64(img),
	} {
		t.Run(name, func(t *testing.T) {
			var r wireDetect
			e.callOK(t, "/v1/detect", "application/json", jsonBody(t, map[string]any{"photo": s}), &r)
			if len(r.Faces) != 1 || r.Faces[0].Box != want.Faces[0].Box {
				t.Errorf("faces %+v, want %+v", r.Faces, want.Faces)
			}
		})
	}
	// Parameters in the body: booleans as JSON booleans; the same value in
	// the query too is fine, another one is ambiguous (issue 17: the body
	// used to win silently).
	var r wireDetect
	e.callOK(t, "/v1/detect?embedding=true", "application/json",
		jsonBody(t, map[string]any{"photo": enc64(img), "embedding": true, "min_size": 0}), &r)
	if len(r.Faces) != 1 || len(r.Faces[0].Embedding) != embedDim() {
		t.Errorf("embedding:true in the body: %+v", r.Faces)
	}
	status, hdr, body := e.call(t, "/v1/detect?embedding=false", "application/json",
		jsonBody(t, map[string]any{"photo": enc64(img), "embedding": true}))
	expectProblem(t, status, hdr, body, 400, "ambiguous")
}

func TestDetectAllStages(t *testing.T) {
	e := newEnv(t, Config{})
	couple := photo(t, "couple.jpg")
	w, h := photoSize(t, couple)
	var r wireDetect
	e.callOK(t, "/v1/detect?attributes=true&liveness=true&landmarks68=true&embedding=true", "image/jpeg", couple, &r)
	if len(r.Faces) != 2 {
		t.Fatalf("%d faces, want 2", len(r.Faces))
	}
	checkFaces(t, r.Faces, w, h)
	for i, f := range r.Faces {
		if len(f.Landmarks68) != 68 {
			t.Errorf("face %d: %d landmarks68, want 68", i, len(f.Landmarks68))
		}
		if f.Liveness == nil || *f.Liveness < 0 || *f.Liveness > 1 {
			t.Errorf("face %d: liveness %v, want a score in [0, 1]", i, f.Liveness)
		}
		if a := f.Attributes; a == nil {
			t.Errorf("face %d: no attributes", i)
		} else if (a.Gender != "male" && a.Gender != "female") || a.Age <= 0 || a.Age > 120 || a.Emotion == "" || len(a.Emotions) == 0 || len(a.Pose) != 3 {
			t.Errorf("face %d: attributes %+v", i, *a)
		}
		var norm float64
		for _, v := range f.Embedding {
			norm += v * v
		}
		if len(f.Embedding) != embedDim() || math.Abs(norm-1) > 1e-3 || f.Embedder != e.Svc.EmbedderID() {
			t.Errorf("face %d: %d-d embedding of norm² %v from %q, want a %d-d unit vector from %s", i, len(f.Embedding), norm, f.Embedder, embedDim(), e.Svc.EmbedderID())
		}
	}
	// The two people of couple.jpg are different people.
	if len(r.Faces[0].Embedding) == embedDim() && len(r.Faces[1].Embedding) == embedDim() {
		var cos float64
		for i := range 512 {
			cos += r.Faces[0].Embedding[i] * r.Faces[1].Embedding[i]
		}
		if cos > 0.3 {
			t.Errorf("the two faces of couple.jpg have cosine %.3f: the same person?", cos)
		}
	}
}

func TestDetectSelector(t *testing.T) {
	e := newEnv(t, Config{})
	couple := photo(t, "couple.jpg")
	var all, biggest wireDetect
	e.callOK(t, "/v1/detect?mf_selector=all", "image/jpeg", couple, &all)
	e.callOK(t, "/v1/detect?mf_selector=biggest", "image/jpeg", couple, &biggest)
	if len(all.Faces) != 2 || len(biggest.Faces) != 1 || biggest.Faces[0].Box != all.Faces[0].Box {
		t.Fatalf("all: %d faces, biggest: %d; want 2 and the first of them", len(all.Faces), len(biggest.Faces))
	}

	status, hdr, body := e.call(t, "/v1/detect?mf_selector=reject", "image/jpeg", couple)
	p := expectProblem(t, status, hdr, body, http.StatusBadRequest, "too_many_faces")
	if len(p.Faces) != 2 {
		t.Fatalf("too_many_faces lists %d boxes, want 2: %s", len(p.Faces), body)
	}
	for i, b := range p.Faces {
		a := all.Faces[i].Box
		if math.Abs(float64(b.X1)-a.X1) > 1 || math.Abs(float64(b.Y2)-a.Y2) > 1 {
			t.Errorf("too_many_faces box %d %+v, detect gave %+v", i, b, a)
		}
	}
	// A one-face photo passes reject.
	var one wireDetect
	if e.callOK(t, "/v1/detect?mf_selector=reject", "image/jpeg", photo(t, "img12.jpg"), &one); len(one.Faces) != 1 {
		t.Errorf("reject on img12.jpg: %d faces, want 1", len(one.Faces))
	}
	for _, sel := range []string{"bogus", "ALL", "none"} {
		status, hdr, body := e.call(t, "/v1/detect?mf_selector="+sel, "image/jpeg", couple)
		expectProblem(t, status, hdr, body, http.StatusBadRequest, "bad_selector")
	}
}

func TestDetectMinSize(t *testing.T) {
	e := newEnv(t, Config{})
	img := photo(t, "img12.jpg")
	var r wireDetect
	body := e.callOK(t, "/v1/detect?min_size=100000", "image/jpeg", img, &r)
	if len(r.Faces) != 0 || !bytes.Contains(body, []byte(`"faces":[]`)) {
		t.Errorf("min_size=100000: %s, want an empty faces array", body)
	}
	if e.callOK(t, "/v1/detect?min_size=0", "image/jpeg", img, &r); len(r.Faces) != 1 {
		t.Errorf("min_size=0: %d faces, want 1", len(r.Faces))
	}
	for _, v := range []string{"-1", "big", "1.5"} {
		status, hdr, body := e.call(t, "/v1/detect?min_size="+v, "image/jpeg", img)
		expectProblem(t, status, hdr, body, http.StatusBadRequest, "bad_min_size")
	}
}

func TestDetectErrors(t *testing.T) {
	e := newEnv(t, Config{})
	small := photo(t, "img12.jpg")
	couple := photo(t, "couple.jpg")
	noPhotoCT, noPhoto := multipartBody(t, map[string][]byte{"picture": small}, nil)
	fieldsOnlyCT, fieldsOnly := multipartBody(t, nil, map[string]string{"mf_selector": "all"})
	emptyPhotoCT, emptyPhoto := multipartBody(t, map[string][]byte{"photo": nil}, nil)
	gif := append([]byte("GIF89a"), noise(100)...)
	for _, tc := range []struct {
		name        string
		path        string
		contentType string
		body        []byte
		status      int
		code        string
	}{
		// An image/* body is the photo, however short: an empty one is
		// an empty image. Without a content type and a body there is no
		// photo at all.
		{"empty image body", "", "image/jpeg", nil, 400, "bad_image"},
		{"empty body", "", "", nil, 400, "no_photo"},
		{"empty json object", "", "application/json", []byte(`{}`), 400, "no_photo"},
		{"empty json body", "", "application/json", nil, 400, "bad_body"},
		{"random bytes", "", "image/jpeg", noise(4096), 415, "unsupported_image"},
		{"gif", "", "image/gif", gif, 415, "unsupported_image"},
		{"truncated jpeg", "", "image/jpeg", couple[:len(couple)/2], 400, "bad_image"},
		{"jpeg magic only", "", "image/jpeg", []byte{0xFF, 0xD8, 0xFF}, 400, "bad_image"},
		{"20000x20000 png header", "", "image/png", hugePNG(t), 400, "bad_image"},
		{"tiny grey", "", "image/jpeg", flatJPEG(t, 8, 8), 400, "bad_image"},
		// The body of a refused media type is not read.
		{"text/plain", "", "text/plain", small, 415, "unsupported_media_type"},
		{"no content type", "", "", small, 415, "unsupported_media_type"},
		{"form-urlencoded", "", "application/x-www-form-urlencoded", small, 415, "unsupported_media_type"},
		{"json photo url", "", "application/json", []byte(`{"photo":"https://example.com/a.jpg"}`), 400, "bad_photo"},
		{"json photo http url", "", "application/json", []byte(`{"photo":"http://169.254.169.254/latest"}`), 400, "bad_photo"},
		{"json photo not base64", "", "application/json", []byte(`{"photo":"not base64!"}`), 400, "bad_photo"},
		{"json bad data uri", "", "application/json", []byte(`{"photo":"data:image/jpeg;base64"}`), 400, "bad_photo"},
		{"json two photos", "", "application/json", jsonBody(t, map[string]any{"photo": []string{enc64(small), enc64(small)}}), 400, "bad_photo"},
		{"json photo array of numbers", "", "application/json", []byte(`{"photo":[1,2]}`), 400, "bad_body"},
		{"malformed json", "", "application/json", []byte(`{"photo":`), 400, "bad_body"},
		{"json not an object", "", "application/json", []byte(`["photo"]`), 400, "bad_body"},
		{"multipart with another file", "", noPhotoCT, noPhoto, 400, "unknown_field"},
		{"multipart without photo", "", fieldsOnlyCT, fieldsOnly, 400, "no_photo"},
		{"multipart without boundary", "", "multipart/form-data", noPhoto, 400, "bad_body"},
		{"multipart that is not one", "", "multipart/form-data; boundary=xyz", small, 400, "bad_body"},
		{"empty photo file", "", emptyPhotoCT, emptyPhoto, 400, "bad_image"},
		{"bad boolean", "?embedding=maybe", "image/jpeg", small, 400, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := e.call(t, "/v1/detect"+tc.path, tc.contentType, tc.body)
			expectProblem(t, status, hdr, body, tc.status, tc.code)
		})
	}
	// The bomb is refused from its header, before any pixel is decoded.
	status, hdr, body := e.call(t, "/v1/detect", "image/png", hugePNG(t))
	if p := expectProblem(t, status, hdr, body, 400, "bad_image"); !strings.Contains(p.Detail, "20000x20000") || !strings.Contains(p.Detail, "pixels") {
		t.Errorf("20000x20000 png: detail %q", p.Detail)
	}
}

func TestVerify(t *testing.T) {
	e := newEnv(t, Config{})
	img1, img2, img13 := photo(t, "img1.jpg"), photo(t, "img2.jpg"), photo(t, "img13.jpg")
	form := func(t *testing.T, query string, a, b []byte) wireVerify {
		t.Helper()
		ct, body := multipartBody(t, map[string][]byte{"photo1": a, "photo2": b}, nil)
		var r wireVerify
		e.callOK(t, "/v1/verify"+query, ct, body, &r)
		if len(r.Pairs) != 1 {
			t.Fatalf("%d pairs, want 1", len(r.Pairs))
		}
		return r
	}

	t.Run("same person", func(t *testing.T) {
		r := form(t, "", img1, img2)
		p := r.Pairs[0]
		if r.Verified == nil || !*r.Verified || p.Match == nil || !*p.Match || p.Confidence <= 0.75 || p.Confidence > 1 {
			t.Errorf("img1/img2: %+v (pair %+v), want verified with confidence > 0.75", r, p)
		}
		if p.Similarity <= 0 || p.Similarity > 1 || p.Face1.X2 <= p.Face1.X1 || p.Face2.X2 <= p.Face2.X1 {
			t.Errorf("pair %+v", p)
		}
	})
	t.Run("different people", func(t *testing.T) {
		r := form(t, "", img1, img13)
		if r.Verified == nil || *r.Verified || *r.Pairs[0].Match {
			t.Errorf("img1/img13: verified %v, pair %+v, want not verified", r.Verified, r.Pairs[0])
		}
	})
	t.Run("json", func(t *testing.T) {
		var r wireVerify
		e.callOK(t, "/v1/verify", "application/json", jsonBody(t, map[string]any{"photo1": enc64(img1), "photo2": enc64(img2), "threshold": "low"}), &r)
		if r.Verified == nil || !*r.Verified {
			t.Errorf("json verify: %+v", r)
		}
	})
	t.Run("threshold none", func(t *testing.T) {
		ct, body := multipartBody(t, map[string][]byte{"photo1": img1, "photo2": img2}, map[string]string{"threshold": "none"})
		var r map[string]any
		b := e.callOK(t, "/v1/verify", ct, body, &r)
		if _, ok := r["verified"]; ok {
			t.Errorf("threshold=none: %s has verified", b)
		}
		pairs, _ := r["pairs"].([]any)
		if len(pairs) != 1 {
			t.Fatalf("threshold=none: %s", b)
		}
		p := pairs[0].(map[string]any)
		if _, ok := p["match"]; ok {
			t.Errorf("threshold=none: pair %v has match", p)
		}
		if s, ok := p["similarity"].(float64); !ok || s <= 0 {
			t.Errorf("threshold=none: pair %v lacks a similarity", p)
		}
	})
	t.Run("thresholds", func(t *testing.T) {
		for _, th := range []string{"strict", "0.9", "medium", "1"} {
			r := form(t, "?threshold="+th, img1, img2)
			p := r.Pairs[0]
			if p.Match == nil || r.Verified == nil || *r.Verified != *p.Match {
				t.Fatalf("threshold=%s: %+v", th, r)
			}
			if th == "0.9" && *p.Match != (p.Confidence >= 0.9) {
				t.Errorf("threshold=0.9: match %v at confidence %v", *p.Match, p.Confidence)
			}
			if th == "1" && *p.Match && p.Confidence < 1 {
				t.Errorf("threshold=1: match at confidence %v", p.Confidence)
			}
		}
		for _, th := range []string{"bogus", "1.5", "-0.1", "NaN"} {
			ct, body := multipartBody(t, map[string][]byte{"photo1": img1, "photo2": img2}, nil)
			status, hdr, b := e.call(t, "/v1/verify?threshold="+th, ct, body)
			expectProblem(t, status, hdr, b, http.StatusBadRequest, "invalid")
		}
	})
	t.Run("person", func(t *testing.T) {
		p, faces, err := e.Svc.Enroll(context.Background(), service.EnrollRequest{
			Person: store.Person{Name: "angelina"}, Photos: [][]byte{img1}})
		if err != nil {
			t.Fatal(err)
		}
		ct, body := multipartBody(t, map[string][]byte{"photo1": img2}, map[string]string{"person_id": p.ID})
		var r wireVerify
		e.callOK(t, "/v1/verify", ct, body, &r)
		if r.Verified == nil || !*r.Verified || len(r.Pairs) != 1 || r.Pairs[0].FaceID != faces[0].ID || r.Pairs[0].Confidence <= 0.75 {
			t.Errorf("img2 against the person of img1: %+v, want verified against face %d", r, faces[0].ID)
		}
		ct, body = multipartBody(t, map[string][]byte{"photo1": img13}, map[string]string{"person_id": p.ID})
		if e.callOK(t, "/v1/verify", ct, body, &r); r.Verified == nil || *r.Verified {
			t.Errorf("img13 against the person of img1: %+v, want not verified", r)
		}

		ct, body = multipartBody(t, map[string][]byte{"photo1": img2}, map[string]string{"person_id": "nobody"})
		status, hdr, b := e.call(t, "/v1/verify", ct, body)
		expectProblem(t, status, hdr, b, http.StatusNotFound, "not_found")
	})
	t.Run("missing photo", func(t *testing.T) {
		ct, body := multipartBody(t, map[string][]byte{"photo1": img1}, nil)
		status, hdr, b := e.call(t, "/v1/verify", ct, body)
		expectProblem(t, status, hdr, b, http.StatusBadRequest, "no_photo")
		ct, body = multipartBody(t, map[string][]byte{"photo2": img1}, nil)
		status, hdr, b = e.call(t, "/v1/verify", ct, body)
		expectProblem(t, status, hdr, b, http.StatusBadRequest, "no_photo")
		// A raw body is "photo", not photo1.
		status, hdr, b = e.call(t, "/v1/verify", "image/jpeg", img1)
		expectProblem(t, status, hdr, b, http.StatusBadRequest, "no_photo")
	})
	t.Run("no face", func(t *testing.T) {
		grey := flatJPEG(t, 200, 200)
		for i, photos := range []map[string][]byte{{"photo1": grey, "photo2": img12(t)}, {"photo1": img12(t), "photo2": grey}} {
			ct, body := multipartBody(t, photos, nil)
			status, hdr, b := e.call(t, "/v1/verify", ct, body)
			p := expectProblem(t, status, hdr, b, http.StatusBadRequest, "no_face")
			if p.Photo == nil || *p.Photo != i {
				t.Errorf("no face in photo%d: problem names photo %v, want %d: %s", i+1, p.Photo, i, b)
			}
		}
	})
}

func img12(t testing.TB) []byte { return photo(t, "img12.jpg") }

// identify posts a photo to /v1/identify with query parameters.
func (e *env) identify(t testing.TB, query string, img []byte) wireIdentify {
	t.Helper()
	var r wireIdentify
	e.callOK(t, "/v1/identify"+query, "image/jpeg", img, &r)
	return r
}

func TestIdentify(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	if _, err := e.Svc.CreateGallery(ctx, store.Gallery{Name: "vip"}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, p := range []struct {
		name, photo string
		galleries   []string
	}{
		{"angelina", "img1.jpg", nil},
		{"p13", "img13.jpg", nil},
		{"p8", "img8.jpg", []string{"vip"}},
	} {
		person, _, err := e.Svc.Enroll(ctx, service.EnrollRequest{
			Person:    store.Person{Name: p.name, ExternalID: "ext-" + p.name},
			Photos:    [][]byte{photo(t, p.photo)},
			FaceInput: service.FaceInput{Galleries: p.galleries},
		})
		if err != nil {
			t.Fatalf("enrol %s: %v", p.name, err)
		}
		ids[p.name] = person.ID
	}

	probes := map[string][]byte{"angelina": photo(t, "img2.jpg"), "p13": photo(t, "img14.jpg"), "p8": photo(t, "img9.jpg")}
	t.Run("probes", func(t *testing.T) {
		for name, img := range probes {
			r := e.identify(t, "", img)
			if len(r.Faces) != 1 || len(r.Faces[0].Matches) != 1 {
				t.Fatalf("%s: %+v, want one face with one match", name, r)
			}
			m := r.Faces[0].Matches[0]
			if m.Person.ID != ids[name] || m.Person.Name != name || m.Person.ExternalID != "ext-"+name {
				t.Errorf("%s: matched %+v, want %s", name, m.Person, ids[name])
			}
			if m.Confidence <= 0.75 || m.Confidence > 1 || m.FaceID == 0 || r.Faces[0].EventID != 0 {
				t.Errorf("%s: match %+v, event %d", name, m, r.Faces[0].EventID)
			}
		}
	})
	t.Run("stranger", func(t *testing.T) {
		r := e.identify(t, "", photo(t, "img20.jpg"))
		if len(r.Faces) != 1 || r.Faces[0].Matches == nil || len(r.Faces[0].Matches) != 0 {
			t.Errorf("img20: %+v, want one face with an empty matches array", r)
		}
		// No face at all is an empty list, not an error.
		r = e.identify(t, "", flatJPEG(t, 200, 200))
		if r.Faces == nil || len(r.Faces) != 0 {
			t.Errorf("grey photo: %+v, want an empty faces array", r)
		}
	})
	t.Run("galleries", func(t *testing.T) {
		if r := e.identify(t, "?gallery=vip", probes["p8"]); len(r.Faces[0].Matches) != 1 || r.Faces[0].Matches[0].Person.ID != ids["p8"] {
			t.Errorf("img9 in vip: %+v", r)
		}
		if r := e.identify(t, "?gallery=vip", probes["angelina"]); len(r.Faces[0].Matches) != 0 {
			t.Errorf("img2 in vip (angelina is not in it): %+v", r)
		}
		if r := e.identify(t, "?gallery=default", probes["p8"]); len(r.Faces[0].Matches) != 0 {
			t.Errorf("img9 in default (p8 is only in vip): %+v", r)
		}
		if r := e.identify(t, "?gallery=default,vip", probes["p8"]); len(r.Faces[0].Matches) != 1 {
			t.Errorf("img9 in default,vip: %+v", r)
		}
		var r wireIdentify
		e.callOK(t, "/v1/identify", "application/json", jsonBody(t, map[string]any{"photo": enc64(probes["p8"]), "gallery": []string{"vip"}}), &r)
		if len(r.Faces) != 1 || len(r.Faces[0].Matches) != 1 {
			t.Errorf("gallery as a JSON array: %+v", r)
		}
		for _, g := range []string{"nope", "vip,nope"} {
			status, hdr, body := e.call(t, "/v1/identify?gallery="+g, "image/jpeg", probes["p8"])
			expectProblem(t, status, hdr, body, http.StatusNotFound, "not_found")
		}
	})
	t.Run("n", func(t *testing.T) {
		r := e.identify(t, "?n=3", probes["angelina"])
		if n := len(r.Faces[0].Matches); n < 1 || n > 3 {
			t.Errorf("n=3: %d matches", n)
		}
		// With no threshold every enrolled face is a candidate.
		r = e.identify(t, "?n=3&threshold=none", probes["angelina"])
		ms := r.Faces[0].Matches
		if len(ms) != 3 || ms[0].Person.ID != ids["angelina"] {
			t.Fatalf("n=3, threshold=none: %+v, want all three, angelina first", ms)
		}
		for i := 1; i < len(ms); i++ {
			if ms[i].Confidence > ms[i-1].Confidence || ms[i].Similarity > ms[i-1].Similarity {
				t.Errorf("matches not sorted best first: %+v", ms)
			}
		}
		if r := e.identify(t, "?n=2&threshold=none", probes["angelina"]); len(r.Faces[0].Matches) != 2 {
			t.Errorf("n=2: %d matches", len(r.Faces[0].Matches))
		}
		for _, n := range []string{"0", "-1", "101", "1000", "two"} {
			status, hdr, body := e.call(t, "/v1/identify?n="+n, "image/jpeg", probes["angelina"])
			expectProblem(t, status, hdr, body, http.StatusBadRequest, "invalid")
		}
	})
	t.Run("record", func(t *testing.T) {
		r := e.identify(t, "?record=true&camera_id=door", probes["p13"])
		if len(r.Faces) != 1 || r.Faces[0].EventID == 0 {
			t.Fatalf("record=true: %+v, want an event id", r)
		}
		page, err := e.Svc.ListEvents(ctx, store.EventQuery{PersonID: ids["p13"]})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 {
			t.Fatalf("%d events of p13, want 1", len(page.Items))
		}
		ev := page.Items[0]
		if ev.ID != r.Faces[0].EventID || !ev.Matched || ev.CameraID != "door" || ev.FaceID != r.Faces[0].Matches[0].FaceID {
			t.Errorf("event %+v, want id %d, matched, camera door", ev, r.Faces[0].EventID)
		}
		// A stranger is recorded unmatched.
		r = e.identify(t, "?record=1", photo(t, "img20.jpg"))
		if r.Faces[0].EventID == 0 || r.Faces[0].EventID == ev.ID {
			t.Errorf("stranger recorded as event %d", r.Faces[0].EventID)
		}
		if ev.HasSnapshot {
			t.Error("record=true kept a crop without snapshot=true")
		}
		// snapshot=true keeps the aligned crop with the event.
		r = e.identify(t, "?record=true&snapshot=true", probes["p13"])
		ev, err = e.Svc.GetEvent(ctx, r.Faces[0].EventID)
		if err != nil || !ev.HasSnapshot {
			t.Fatalf("record&snapshot: event %+v, %v: want a kept crop", ev, err)
		}
		if crop, err := e.Svc.EventCrop(ctx, ev.ID); err != nil || len(crop) < 100 || crop[0] != 0xFF || crop[1] != 0xD8 {
			t.Errorf("crop: %d bytes, %v, want a JPEG", len(crop), err)
		}
		status, hdr, body := e.call(t, "/v1/identify?snapshot=true", "image/jpeg", probes["p13"])
		expectProblem(t, status, hdr, body, http.StatusBadRequest, "invalid")
	})
	t.Run("deleted person", func(t *testing.T) {
		if err := e.Svc.DeletePerson(ctx, ids["angelina"]); err != nil {
			t.Fatal(err)
		}
		r := e.identify(t, "?n=3&threshold=none", probes["angelina"])
		for _, m := range r.Faces[0].Matches {
			if m.Person.ID == ids["angelina"] {
				t.Errorf("deleted person still matches: %+v", m)
			}
		}
		if len(r.Faces[0].Matches) != 2 {
			t.Errorf("%d matches left, want the other 2", len(r.Faces[0].Matches))
		}
	})
}

func TestLiveness(t *testing.T) {
	e := newEnv(t, Config{})
	for name, want := range map[string]bool{"image_T1.jpg": true, "image_F1.jpg": false} {
		var r struct {
			Faces []struct {
				Box   wireBox  `json:"box"`
				Score *float64 `json:"score"`
				Live  *bool    `json:"live"`
			} `json:"faces"`
		}
		e.callOK(t, "/v1/liveness", "image/jpeg", testenv.ReadPhoto(t, "antispoof/"+name), &r)
		if len(r.Faces) != 1 {
			t.Fatalf("%s: %d faces, want 1", name, len(r.Faces))
		}
		f := r.Faces[0]
		if f.Score == nil || f.Live == nil || *f.Live != want || *f.Live != (*f.Score >= 0.5) || f.Box.X2 <= f.Box.X1 {
			t.Errorf("%s: %+v (score %v, live %v), want live=%v", name, f, f.Score, f.Live, want)
		}
	}
	status, hdr, body := e.call(t, "/v1/liveness?mf_selector=sometimes", "image/jpeg", img12(t))
	expectProblem(t, status, hdr, body, http.StatusBadRequest, "bad_selector")
	status, hdr, body = e.call(t, "/v1/liveness", "application/json", []byte(`{}`))
	expectProblem(t, status, hdr, body, http.StatusBadRequest, "no_photo")
}

func TestDevice(t *testing.T) {
	e := newEnv(t, Config{Version: "test-1", Backend: "onnxrt"})
	if _, _, err := e.Svc.Enroll(context.Background(), service.EnrollRequest{Person: store.Person{Name: "a"}, Photos: [][]byte{img12(t)}}); err != nil {
		t.Fatal(err)
	}
	status, hdr, b := e.do(t, http.MethodGet, "/v1/device", e.Read, "", nil)
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/device: %d %s", status, b)
	}
	var r struct {
		Version  string `json:"version"`
		Backend  string `json:"backend"`
		Embedder string `json:"embedder"`
		Uptime   *int   `json:"uptime_s"`
		Faces    *int   `json:"faces"`
		Models   []struct {
			Name   string `json:"name"`
			Task   string `json:"task"`
			SHA256 string `json:"sha256"`
		} `json:"models"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if r.Version != "test-1" || r.Backend != "onnxrt" || r.Uptime == nil || *r.Uptime < 0 {
		t.Errorf("version %q, backend %q, uptime %v", r.Version, r.Backend, r.Uptime)
	}
	if r.Faces == nil || *r.Faces != 1 {
		t.Errorf("faces %v, want 1", r.Faces)
	}
	if r.Embedder != e.Svc.EmbedderID() || !regexp.MustCompile(`^[a-z0-9-]+(\+[a-z0-9-]+){0,2}@([0-9a-f]{6}){2,3}$`).MatchString(r.Embedder) {
		t.Errorf("embedder %q, want %s as name@<sha prefix>", r.Embedder, e.Svc.EmbedderID())
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	tasks := map[string]string{}
	for _, m := range r.Models {
		tasks[m.Name] = m.Task
		if !hex64.MatchString(m.SHA256) || m.Task == "" {
			t.Errorf("model %+v: want a task and a 64-hex sha256", m)
		}
	}
	// The embedder ID names the embedder (or the fused ones) and carries
	// 6 hex digits of each file's sha256 (12 of a single one).
	cfg := daemon.DefaultVision()
	names := strings.Split(cfg.Embedder, "+")
	name, sum, _ := strings.Cut(r.Embedder, "@")
	want := ""
	for _, n := range names {
		i := slices.IndexFunc(r.Models, func(m struct {
			Name   string `json:"name"`
			Task   string `json:"task"`
			SHA256 string `json:"sha256"`
		}) bool {
			return m.Name == n
		})
		if i < 0 || r.Models[i].Task != "embed" {
			t.Errorf("embedder %s is not listed as an embed model in %v", n, tasks)
			continue
		}
		digits := 6
		if len(names) == 1 {
			digits = 12
		}
		want += r.Models[i].SHA256[:digits]
	}
	if name != cfg.Embedder || sum != want {
		t.Errorf("embedder %q, want %s@%s", r.Embedder, cfg.Embedder, want)
	}
	for _, name := range append([]string{cfg.Detector, cfg.Landmarks, cfg.Liveness}, names...) {
		if _, ok := tasks[name]; !ok {
			t.Errorf("model %s missing from %v", name, tasks)
		}
	}
	if len(r.Models) != len(vision.Pipeline.Models()) {
		t.Errorf("models %v, want the %d loaded", tasks, len(vision.Pipeline.Models()))
	}
	// Device is not an inference route: it answers while the queue is full.
	e2 := newEnv(t, Config{MaxInFlight: 1, MaxQueue: 1})
	release, err := e2.Srv.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if status, _, b := e2.do(t, http.MethodGet, "/v1/device", e2.Read, "", nil); status != http.StatusOK {
		t.Errorf("device with the inference slot taken: %d %s", status, b)
	}
}
