// Package api serves faced's HTTP interface. This first layer is the
// health endpoints and POST /v1/detect; persons, galleries and the vendor
// dialects build on it (see the issue tracker).
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/facedhq/faced/face"
)

// Server holds what the handlers need.
type Server struct {
	pipeline *face.Pipeline
	logger   *slog.Logger
	started  time.Time
	version  string
	backend  string
	// MaxBody caps request bodies.
	MaxBody int64
	ready   atomic.Bool
}

// New returns a server for a loaded pipeline.
func New(p *face.Pipeline, logger *slog.Logger, version, backend string) *Server {
	s := &Server{pipeline: p, logger: logger, started: time.Now(), version: version, backend: backend, MaxBody: 10 << 20}
	s.ready.Store(p != nil)
	return s
}

// Handler routes the endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /v1/device", s.device)
	mux.HandleFunc("POST /v1/detect", s.detect)
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeProblem(w, http.StatusServiceUnavailable, "not_ready", "models are not loaded")
		return
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) {
	if s.pipeline == nil {
		writeProblem(w, http.StatusServiceUnavailable, "not_ready", "models are not loaded")
		return
	}
	type model struct {
		Name   string `json:"name"`
		Task   string `json:"task"`
		SHA256 string `json:"sha256"`
	}
	var ms []model
	for _, m := range s.pipeline.Models() {
		ms = append(ms, model{m.Name, string(m.Task), m.SHA256})
	}
	writeJSON(w, 200, map[string]any{
		"version": s.version, "backend": s.backend, "models": ms,
		"embedder": s.pipeline.EmbedderID(), "uptime_s": int(time.Since(s.started).Seconds()),
	})
}

// detect finds faces in a photo sent as a raw image/* body or as the
// "photo" file of a multipart form. Query flags: landmarks68, liveness,
// attributes, embedding, mf_selector, min_size.
func (s *Server) detect(w http.ResponseWriter, r *http.Request) {
	if s.pipeline == nil {
		writeProblem(w, http.StatusServiceUnavailable, "not_ready", "models are not loaded")
		return
	}
	photo, err := s.readPhoto(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	sel, err := face.ParseSelector(q.Get("mf_selector"))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "bad_selector", err.Error())
		return
	}
	opts := face.Options{
		Landmarks68: q.Get("landmarks68") == "true",
		Liveness:    q.Get("liveness") == "true",
		Attributes:  q.Get("attributes") == "true",
		Embed:       q.Get("embedding") == "true",
		Selector:    sel,
	}
	if v := q.Get("min_size"); v != "" {
		if _, err := fmt.Sscanf(v, "%d", &opts.MinFaceSize); err != nil || opts.MinFaceSize < 0 {
			writeProblem(w, http.StatusBadRequest, "bad_min_size", "min_size must be a non-negative integer")
			return
		}
	}
	faces, err := s.pipeline.Detect(r.Context(), photo, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	if faces == nil {
		faces = []face.Face{}
	}
	writeJSON(w, 200, map[string]any{"faces": faces})
}

var errTooLarge = errors.New("request body too large")

func (s *Server) readPhoto(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.MaxBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var src io.Reader = r.Body
	switch {
	case strings.HasPrefix(ct, "image/"), ct == "application/octet-stream":
	case ct == "multipart/form-data":
		f, _, err := r.FormFile("photo")
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			return nil, &problem{status: http.StatusRequestEntityTooLarge, code: "too_large", detail: errTooLarge.Error()}
		}
		if err != nil {
			return nil, badRequest("no_photo", "multipart form needs a \"photo\" file: "+err.Error())
		}
		defer f.Close()
		src = f
	default:
		return nil, &problem{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", detail: "send image/* or multipart/form-data"}
	}
	data, err := io.ReadAll(src)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &problem{status: http.StatusRequestEntityTooLarge, code: "too_large", detail: errTooLarge.Error()}
	}
	if err != nil {
		return nil, badRequest("bad_body", err.Error())
	}
	return data, nil
}

// problem is an RFC 9457 application/problem+json error with a stable code.
type problem struct {
	status int
	code   string
	detail string
}

func (p *problem) Error() string { return p.detail }

func badRequest(code, detail string) *problem {
	return &problem{status: http.StatusBadRequest, code: code, detail: detail}
}

func writeError(w http.ResponseWriter, err error) {
	var p *problem
	var many *face.ErrTooManyFaces
	switch {
	case errors.As(err, &p):
	case errors.As(err, &many):
		p = badRequest("too_many_faces", err.Error())
	case errors.Is(err, face.ErrTooLarge):
		p = &problem{status: http.StatusRequestEntityTooLarge, code: "too_large", detail: err.Error()}
	case errors.Is(err, face.ErrUnsupportedFormat):
		p = &problem{status: http.StatusUnsupportedMediaType, code: "unsupported_image", detail: err.Error()}
	case errors.Is(err, face.ErrEmpty), errors.Is(err, face.ErrCorrupt), errors.Is(err, face.ErrTooSmall), errors.Is(err, face.ErrTooManyPixels):
		p = badRequest("bad_image", err.Error())
	default:
		p = &problem{status: http.StatusInternalServerError, code: "internal", detail: "internal error"}
	}
	writeProblem(w, p.status, p.code, p.detail)
}

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "code": code, "detail": detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
