package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/testenv"
)

// vision is the default pipeline, loaded once for every test (and every
// fuzz worker): loading the models is the slow part.
var vision *daemon.Vision

func TestMain(m *testing.M) {
	v, err := daemon.OpenVision(context.Background(), daemon.DefaultVision())
	if err != nil {
		fmt.Fprintln(os.Stderr, "api tests need the runtimes and models (`make deps`):", err)
		os.Exit(1)
	}
	vision = v
	code := m.Run()
	if err := v.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "closing the pipeline:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func newServer() *Server {
	return New(vision.Pipeline, slog.New(slog.DiscardHandler), "test", "onnxrt")
}

// startServer serves srv over real HTTP on loopback.
func startServer(t *testing.T, srv *Server) string {
	t.Helper()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// The response types below spell out the JSON the API documents, so a
// renamed field breaks the tests as it would break a client.
type point struct{ X, Y float64 }

type apiFace struct {
	Box struct {
		X1 float64 `json:"x1"`
		Y1 float64 `json:"y1"`
		X2 float64 `json:"x2"`
		Y2 float64 `json:"y2"`
	} `json:"box"`
	Score       float64   `json:"score"`
	Landmarks   []point   `json:"landmarks"`
	Landmarks68 []point   `json:"landmarks68"`
	Embedding   []float64 `json:"embedding"`
	Embedder    string    `json:"embedder"`
	Liveness    *float64  `json:"liveness"`
	Attributes  *struct {
		Age         float64            `json:"age"`
		Gender      string             `json:"gender"`
		GenderScore float64            `json:"gender_score"`
		Emotion     string             `json:"emotion"`
		Emotions    map[string]float64 `json:"emotions"`
		Pose        map[string]float64 `json:"pose"`
		LeftEyeOpen float64            `json:"left_eye_open"`
	} `json:"attributes"`
	Quality *struct {
		Score float64 `json:"score"`
	} `json:"quality"`
}

type detectResponse struct {
	Faces []apiFace `json:"faces"`
}

type problemJSON struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func do(t *testing.T, method, url, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// detectOK posts a photo and decodes the 200 answer.
func detectOK(t *testing.T, url, contentType string, body []byte) detectResponse {
	t.Helper()
	resp, b := do(t, http.MethodPost, url, contentType, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var r detectResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	if !bytes.Contains(b, []byte(`"faces":[`)) {
		t.Errorf(`body lacks a "faces" array: %s`, b)
	}
	return r
}

// wantProblem checks an RFC 9457 problem answer with the given status and
// code.
func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, code string) problemJSON {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problemJSON
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decoding problem %s: %v", body, err)
	}
	if p.Code != code || p.Status != resp.StatusCode || p.Title != http.StatusText(resp.StatusCode) || p.Detail == "" || p.Type == "" {
		t.Errorf("problem %+v, want code %q, status %d and a title, type and detail", p, code, resp.StatusCode)
	}
	return p
}

// multipartBody builds a form with the given files (field name to
// content) and a plain "note" field before them.
func multipartBody(t testing.TB, files map[string][]byte) (contentType string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("note", "from the tests"); err != nil {
		t.Fatal(err)
	}
	for field, data := range files {
		fw, err := mw.CreateFormFile(field, field+".jpg")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

func TestHealth(t *testing.T) {
	url := startServer(t, newServer())
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		resp, b := do(t, http.MethodGet, url+path, "", nil)
		var r struct{ Status string }
		if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil || r.Status != want {
			t.Errorf("GET %s: %d %s, want 200 with status %q", path, resp.StatusCode, b, want)
		}
	}
}

// TestNotReady covers a server whose models are not loaded: health says
// so and the endpoints that need the pipeline answer 503, not a panic.
func TestNotReady(t *testing.T) {
	url := startServer(t, New(nil, slog.New(slog.DiscardHandler), "test", "onnxrt"))
	resp, b := do(t, http.MethodGet, url+"/healthz", "", nil)
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, http.MethodGet, url+"/readyz", "", nil)
	wantProblem(t, resp, b, http.StatusServiceUnavailable, "not_ready")
	resp, b = do(t, http.MethodGet, url+"/v1/device", "", nil)
	wantProblem(t, resp, b, http.StatusServiceUnavailable, "not_ready")
	resp, b = do(t, http.MethodPost, url+"/v1/detect", "image/jpeg", testenv.ReadPhoto(t, "deepface/img12.jpg"))
	wantProblem(t, resp, b, http.StatusServiceUnavailable, "not_ready")
}

func TestDevice(t *testing.T) {
	url := startServer(t, newServer())
	resp, b := do(t, http.MethodGet, url+"/v1/device", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var r struct {
		Version  string `json:"version"`
		Backend  string `json:"backend"`
		Embedder string `json:"embedder"`
		Uptime   *int   `json:"uptime_s"`
		Models   []struct {
			Name   string `json:"name"`
			Task   string `json:"task"`
			SHA256 string `json:"sha256"`
		} `json:"models"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if r.Version != "test" || r.Backend != "onnxrt" || r.Uptime == nil {
		t.Errorf("version %q, backend %q, uptime %v", r.Version, r.Backend, r.Uptime)
	}
	if !regexp.MustCompile(`^arcface-r512@[0-9a-f]{12}$`).MatchString(r.Embedder) {
		t.Errorf("embedder = %q, want arcface-r512@<sha prefix>", r.Embedder)
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	names := map[string]string{}
	for _, m := range r.Models {
		names[m.Name] = m.Task
		if !hex64.MatchString(m.SHA256) {
			t.Errorf("model %s: sha256 %q", m.Name, m.SHA256)
		}
	}
	cfg := daemon.DefaultVision()
	for _, name := range []string{cfg.Detector, cfg.Landmarks, cfg.Embedder, cfg.Liveness} {
		if _, ok := names[name]; !ok {
			t.Errorf("model %s missing from %v", name, names)
		}
	}
	if names[cfg.Embedder] != "embed" || len(r.Models) != len(vision.Pipeline.Models()) {
		t.Errorf("models %v, want the %d loaded, %s as the embedder", names, len(vision.Pipeline.Models()), cfg.Embedder)
	}
}

// checkFaces checks what every answer promises: boxes inside the photo,
// biggest first, five landmarks near their box.
func checkFaces(t *testing.T, faces []apiFace, w, h float64) {
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
		if f.Score < 0.7 || f.Score > 1 {
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

func TestDetectJPEG(t *testing.T) {
	url := startServer(t, newServer())
	couple := testenv.ReadPhoto(t, "deepface/couple.jpg")
	r := detectOK(t, url+"/v1/detect", "image/jpeg", couple)
	if len(r.Faces) != 2 {
		t.Fatalf("%d faces in couple.jpg, want 2", len(r.Faces))
	}
	checkFaces(t, r.Faces, 2280, 1588)
	for i, f := range r.Faces {
		if f.Landmarks68 != nil || f.Embedding != nil || f.Liveness != nil || f.Attributes != nil {
			t.Errorf("face %d: optional stages in a plain request: %+v", i, f)
		}
	}

	// application/octet-stream is accepted as a raw photo too.
	if r := detectOK(t, url+"/v1/detect", "application/octet-stream", couple); len(r.Faces) != 2 {
		t.Errorf("octet-stream: %d faces, want 2", len(r.Faces))
	}
}

func TestDetectAllStages(t *testing.T) {
	url := startServer(t, newServer())
	couple := testenv.ReadPhoto(t, "deepface/couple.jpg")
	r := detectOK(t, url+"/v1/detect?attributes=true&liveness=true&landmarks68=true&embedding=true", "image/jpeg", couple)
	if len(r.Faces) != 2 {
		t.Fatalf("%d faces, want 2", len(r.Faces))
	}
	checkFaces(t, r.Faces, 2280, 1588)
	for i, f := range r.Faces {
		if len(f.Landmarks68) != 68 {
			t.Errorf("face %d: %d landmarks68, want 68", i, len(f.Landmarks68))
		}
		if f.Liveness == nil || *f.Liveness < 0 || *f.Liveness > 1 {
			t.Errorf("face %d: liveness %v, want a score in [0, 1]", i, f.Liveness)
		}
		if a := f.Attributes; a == nil {
			t.Errorf("face %d: no attributes", i)
		} else {
			if a.Gender != "male" && a.Gender != "female" {
				t.Errorf("face %d: gender %q", i, a.Gender)
			}
			if a.Age <= 0 || a.Age > 120 || a.Emotion == "" || len(a.Emotions) == 0 || len(a.Pose) != 3 {
				t.Errorf("face %d: attributes %+v", i, *a)
			}
		}
		var norm float64
		for _, v := range f.Embedding {
			norm += v * v
		}
		if len(f.Embedding) != 512 || math.Abs(norm-1) > 1e-3 || !strings.HasPrefix(f.Embedder, "arcface-r512@") {
			t.Errorf("face %d: %d-d embedding of norm² %v from %q, want 512-d unit from arcface-r512", i, len(f.Embedding), norm, f.Embedder)
		}
	}
	// The two people in couple.jpg are different people.
	if len(r.Faces[0].Embedding) == 512 && len(r.Faces[1].Embedding) == 512 {
		var cos float64
		for i := range 512 {
			cos += r.Faces[0].Embedding[i] * r.Faces[1].Embedding[i]
		}
		t.Logf("cosine between the two faces of couple.jpg: %.3f", cos)
		if cos > 0.3 {
			t.Errorf("the two faces of couple.jpg have cosine %.3f: the same person?", cos)
		}
	}
}

func TestDetectMultipart(t *testing.T) {
	url := startServer(t, newServer())
	couple := testenv.ReadPhoto(t, "deepface/couple.jpg")
	ct, body := multipartBody(t, map[string][]byte{"photo": couple})
	raw := detectOK(t, url+"/v1/detect", "image/jpeg", couple)
	form := detectOK(t, url+"/v1/detect", ct, body)
	if len(form.Faces) != 2 {
		t.Fatalf("%d faces, want 2", len(form.Faces))
	}
	for i := range form.Faces {
		if form.Faces[i].Box != raw.Faces[i].Box {
			t.Errorf("face %d: box %+v from the form, %+v from the raw body", i, form.Faces[i].Box, raw.Faces[i].Box)
		}
	}
}

func TestDetectSelector(t *testing.T) {
	url := startServer(t, newServer())
	couple := testenv.ReadPhoto(t, "deepface/couple.jpg")

	resp, b := do(t, http.MethodPost, url+"/v1/detect?mf_selector=reject", "image/jpeg", couple)
	p := wantProblem(t, resp, b, http.StatusBadRequest, "too_many_faces")
	if !strings.Contains(p.Detail, "2") {
		t.Errorf("detail %q does not say how many faces", p.Detail)
	}

	all := detectOK(t, url+"/v1/detect?mf_selector=all", "image/jpeg", couple)
	biggest := detectOK(t, url+"/v1/detect?mf_selector=biggest", "image/jpeg", couple)
	if len(all.Faces) != 2 || len(biggest.Faces) != 1 || biggest.Faces[0].Box != all.Faces[0].Box {
		t.Errorf("all %d faces, biggest %d: want 2 and the first of them", len(all.Faces), len(biggest.Faces))
	}
	// A one-face photo passes reject.
	if r := detectOK(t, url+"/v1/detect?mf_selector=reject", "image/jpeg", testenv.ReadPhoto(t, "deepface/img1.jpg")); len(r.Faces) != 1 {
		t.Errorf("reject on img1.jpg: %d faces, want 1", len(r.Faces))
	}

	resp, b = do(t, http.MethodPost, url+"/v1/detect?mf_selector=bogus", "image/jpeg", couple)
	wantProblem(t, resp, b, http.StatusBadRequest, "bad_selector")
}

func TestDetectMinSize(t *testing.T) {
	url := startServer(t, newServer())
	couple := testenv.ReadPhoto(t, "deepface/couple.jpg")
	if r := detectOK(t, url+"/v1/detect?min_size=100000", "image/jpeg", couple); len(r.Faces) != 0 {
		t.Errorf("min_size=100000: %d faces, want none (and an empty array)", len(r.Faces))
	}
	if r := detectOK(t, url+"/v1/detect?min_size=0", "image/jpeg", couple); len(r.Faces) != 2 {
		t.Errorf("min_size=0: %d faces, want 2", len(r.Faces))
	}
	for _, v := range []string{"-1", "big"} {
		resp, b := do(t, http.MethodPost, url+"/v1/detect?min_size="+v, "image/jpeg", couple)
		wantProblem(t, resp, b, http.StatusBadRequest, "bad_min_size")
	}
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

func TestDetectErrors(t *testing.T) {
	url := startServer(t, newServer())
	couple := testenv.ReadPhoto(t, "deepface/couple.jpg")
	small := testenv.ReadPhoto(t, "deepface/img12.jpg")
	noPhotoCT, noPhoto := multipartBody(t, map[string][]byte{"picture": small})
	emptyPhotoCT, emptyPhoto := multipartBody(t, map[string][]byte{"photo": nil})
	for _, tc := range []struct {
		name        string
		contentType string
		body        []byte
		status      int
		code        string
	}{
		{"empty body", "image/jpeg", nil, 400, "bad_image"},
		{"random bytes", "image/jpeg", noise(4096), 415, "unsupported_image"},
		{"truncated jpeg", "image/jpeg", couple[:len(couple)/2], 400, "bad_image"},
		// The body of a rejected media type is not read: keep it small, so
		// the client is not still sending when the server closes.
		{"text/plain", "text/plain", small, 415, "unsupported_media_type"},
		{"no content type", "", small, 415, "unsupported_media_type"},
		{"form-urlencoded", "application/x-www-form-urlencoded", small, 415, "unsupported_media_type"},
		{"multipart without photo", noPhotoCT, noPhoto, 400, "no_photo"},
		{"multipart without boundary", "multipart/form-data", noPhoto, 400, "no_photo"},
		{"multipart that is not one", "multipart/form-data; boundary=xyz", small, 400, "no_photo"},
		{"multipart with empty body", noPhotoCT, nil, 400, "no_photo"},
		{"empty photo file", emptyPhotoCT, emptyPhoto, 400, "bad_image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, http.MethodPost, url+"/v1/detect", tc.contentType, tc.body)
			wantProblem(t, resp, b, tc.status, tc.code)
		})
	}
}

func TestDetectTooLarge(t *testing.T) {
	srv := newServer()
	srv.MaxBody = 1000
	url := startServer(t, srv)
	small := testenv.ReadPhoto(t, "deepface/img12.jpg") // 20 kB: fits the socket buffers
	resp, b := do(t, http.MethodPost, url+"/v1/detect", "image/jpeg", small)
	wantProblem(t, resp, b, http.StatusRequestEntityTooLarge, "too_large")

	ct, body := multipartBody(t, map[string][]byte{"photo": small})
	resp, b = do(t, http.MethodPost, url+"/v1/detect", ct, body)
	wantProblem(t, resp, b, http.StatusRequestEntityTooLarge, "too_large")

	// A body of exactly MaxBody bytes is read, and judged as a photo.
	resp, b = do(t, http.MethodPost, url+"/v1/detect", "image/jpeg", small[:1000])
	wantProblem(t, resp, b, http.StatusBadRequest, "bad_image")
}

func TestMethodsAndRoutes(t *testing.T) {
	url := startServer(t, newServer())
	resp, b := do(t, http.MethodGet, url+"/v1/detect", "", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Errorf("GET /v1/detect: %d (Allow %q) %s, want 405 allowing POST", resp.StatusCode, resp.Header.Get("Allow"), b)
	}
	resp, _ = do(t, http.MethodPut, url+"/v1/detect", "image/jpeg", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT /v1/detect: %d, want 405", resp.StatusCode)
	}
	resp, _ = do(t, http.MethodPost, url+"/healthz", "", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d, want 405", resp.StatusCode)
	}
	resp, _ = do(t, http.MethodGet, url+"/v1/nothing", "", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/nothing: %d, want 404", resp.StatusCode)
	}
}
