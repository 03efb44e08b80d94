package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/apitest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// vision is the default pipeline, loaded once for every test (and every
// fuzz worker): loading the models is the slow part.
var vision *daemon.Vision

func TestMain(m *testing.M) { apitest.Main(m, &vision) }

// embedDim is the length of the default pipeline's embeddings (832 for the
// three fused embedders).
func embedDim() int { return vision.Pipeline.EmbedderDim() }

// env is a real server on loopback over a fresh store, with one key per
// scope.
type env struct {
	URL   string
	Srv   *Server
	Svc   *service.Service
	DB    *store.DB
	Read  string // token with the read scope
	Write string // read + write
	Admin string // admin
}

// newEnv starts a server; cfg.Service is filled in.
func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	f := apitest.New(t, vision)
	e := &env{Svc: f.Svc, DB: f.DB, Read: f.Read, Write: f.Write, Admin: f.Admin}
	cfg.Service = f.Svc
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e.Srv = New(cfg)
	ts := httptest.NewServer(e.Srv.Handler())
	t.Cleanup(ts.Close)
	e.URL = ts.URL
	return e
}

// do sends a request with a key (empty: none) and returns status, headers
// and body.
func (e *env) do(t testing.TB, method, path, key, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// doJSON sends v as JSON.
func (e *env) doJSON(t testing.TB, method, path, key string, v any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := e.do(t, method, path, key, "application/json", b)
	return status, body
}

// multipartBody builds a form with files and fields.
func multipartBody(t testing.TB, files map[string][]byte, fields map[string]string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for name, data := range files {
		fw, err := w.CreateFormFile(name, name+".jpg")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	for k, v := range fields {
		w.WriteField(k, v)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func photo(t testing.TB, name string) []byte { return testenv.ReadPhoto(t, "deepface/"+name) }

// problemCode decodes a problem+json body's code.
func problemCode(t testing.TB, hdr http.Header, body []byte) string {
	t.Helper()
	if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (body %s)", ct, body)
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Code == "" {
		t.Fatalf("problem body %s: %v", body, err)
	}
	return p.Code
}
