package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Problem is an RFC 9457 application/problem+json body with a stable,
// machine-readable Code. Clients branch on Code, not on Detail.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	// Faces lists the boxes of a too_many_faces error; Photo names the
	// photo of a no_face error (0-based).
	Faces []face.Box `json:"faces,omitempty"`
	Photo *int       `json:"photo,omitempty"`
}

func (p *Problem) Error() string { return p.Detail }

var (
	errNotReady = &Problem{Status: http.StatusServiceUnavailable, Code: "not_ready", Detail: "models or store are not loaded yet"}
	errBusy     = &Problem{Status: http.StatusTooManyRequests, Code: "busy", Detail: "the inference queue is full; retry shortly"}
)

func badRequest(code, detail string) *Problem {
	return &Problem{Status: http.StatusBadRequest, Code: code, Detail: detail}
}

// problemFor maps an error to its problem. Internal errors keep their
// detail out of the response (it is logged instead).
func problemFor(err error) *Problem {
	var p *Problem
	var many *face.ErrTooManyFaces
	var noFace *service.NoFaceError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &tooBig), errors.Is(err, face.ErrTooLarge):
		return &Problem{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Detail: err.Error()}
	case errors.Is(err, service.ErrUnauthorized):
		return &Problem{Status: http.StatusUnauthorized, Code: "unauthorized", Detail: "missing, malformed, unknown or revoked API key"}
	case errors.Is(err, service.ErrForbidden):
		return &Problem{Status: http.StatusForbidden, Code: "forbidden", Detail: err.Error()}
	case errors.As(err, &many):
		return &Problem{Status: http.StatusBadRequest, Code: "too_many_faces", Detail: err.Error(), Faces: many.Faces}
	case errors.As(err, &noFace):
		n := noFace.Photo
		return &Problem{Status: http.StatusBadRequest, Code: "no_face", Detail: err.Error(), Photo: &n}
	case errors.Is(err, face.ErrUnsupportedFormat):
		return &Problem{Status: http.StatusUnsupportedMediaType, Code: "unsupported_image", Detail: err.Error()}
	case errors.Is(err, face.ErrEmpty), errors.Is(err, face.ErrCorrupt), errors.Is(err, face.ErrTooSmall), errors.Is(err, face.ErrTooManyPixels):
		return badRequest("bad_image", err.Error())
	case errors.Is(err, store.ErrNotFound):
		return &Problem{Status: http.StatusNotFound, Code: "not_found", Detail: err.Error()}
	case errors.Is(err, store.ErrDuplicate):
		return &Problem{Status: http.StatusConflict, Code: "duplicate", Detail: err.Error()}
	case errors.Is(err, service.ErrInvalid), errors.Is(err, store.ErrInvalid):
		return badRequest("invalid", err.Error())
	case errors.Is(err, store.ErrNoSpace):
		// The device's disk is full: nothing was stored, and the same
		// request succeeds once space is freed (retention, or an operator).
		return &Problem{Status: http.StatusInsufficientStorage, Code: "insufficient_storage", Detail: "the device's storage is full; nothing was stored"}
	case errors.Is(err, context.DeadlineExceeded):
		return &Problem{Status: http.StatusServiceUnavailable, Code: "timeout", Detail: "the request took too long"}
	case errors.Is(err, context.Canceled):
		return &Problem{Status: 499, Code: "canceled", Detail: "the client went away"}
	}
	return &Problem{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error"}
}

// writeProblem answers with the problem for err.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := *problemFor(err)
	p.Type, p.Title = "about:blank", problemTitle(p.Status)
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="faced"`)
	}
	if p.Status == http.StatusTooManyRequests || p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// problemTitle is the status text, including 499 (nginx's "client closed
// request", which net/http does not name).
func problemTitle(status int) string {
	if status == 499 {
		return "Client Closed Request"
	}
	return http.StatusText(status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
