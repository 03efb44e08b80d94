package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

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
	// Field names an unknown_field's field, Nearest the known field it
	// is closest to (absent when none is close).
	Field   string `json:"field,omitempty"`
	Nearest string `json:"nearest,omitempty"`
	// PersonID names the person a duplicate_face photo already matches.
	PersonID string `json:"person_id,omitempty"`
}

func (p *Problem) Error() string { return p.Detail }

var (
	errNotReady = &Problem{Status: http.StatusServiceUnavailable, Code: "not_ready", Detail: "models or store are not loaded yet"}
	errBusy     = &Problem{Status: http.StatusTooManyRequests, Code: "busy", Detail: "the inference queue is full; retry shortly"}
)

func badRequest(code, detail string) *Problem {
	return &Problem{Status: http.StatusBadRequest, Code: code, Detail: detail}
}

// problemFor maps an error to its problem. Its detail says what went
// wrong and what to do, in the API's terms: never the error chain of the
// packages below (that, for a server-side failure, goes to the log; see
// Server.fail).
func problemFor(err error) *Problem {
	var p *Problem
	var many *face.ErrTooManyFaces
	var noFace *service.NoFaceError
	var dup *service.DuplicateFaceError
	var nf *service.NotFoundError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &tooBig):
		return &Problem{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Detail: fmt.Sprintf("the body is larger than the %d-byte limit (api.max_body_bytes); send a smaller photo", tooBig.Limit)}
	case errors.Is(err, face.ErrTooLarge):
		return &Problem{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Detail: publicDetail(err, face.ErrTooLarge) + "; send a smaller photo"}
	case errors.Is(err, service.ErrUnauthorized):
		return &Problem{Status: http.StatusUnauthorized, Code: "unauthorized", Detail: "missing, malformed, unknown or revoked API key: send Authorization: Bearer <id>.<secret> (faced keys add makes one)"}
	case errors.Is(err, service.ErrForbidden):
		return &Problem{Status: http.StatusForbidden, Code: "forbidden", Detail: publicDetail(err, service.ErrForbidden)}
	case errors.As(err, &many):
		return &Problem{Status: http.StatusBadRequest, Code: "too_many_faces", Detail: many.Error() + "; send a photo of one face, or mf_selector=biggest", Faces: many.Faces}
	case errors.As(err, &noFace):
		n := noFace.Photo
		return &Problem{Status: http.StatusBadRequest, Code: "no_face", Detail: noFace.Error() + "; send a photo in which the face is visible, frontal and well lit", Photo: &n}
	case errors.As(err, &dup):
		n := dup.Photo
		return &Problem{Status: http.StatusConflict, Code: "duplicate_face", Photo: &n, PersonID: dup.PersonID,
			Detail: fmt.Sprintf("%s; add the photo to that person with POST /v1/persons/%s/faces, or pass allow_duplicate=true to enrol it anyway",
				dup.Error(), url.PathEscape(dup.PersonID))}
	case errors.As(err, &nf):
		return &Problem{Status: http.StatusNotFound, Code: "not_found", Detail: notFoundDetail(nf)}
	case errors.Is(err, face.ErrUnsupportedFormat):
		return &Problem{Status: http.StatusUnsupportedMediaType, Code: "unsupported_image", Detail: publicDetail(err, face.ErrUnsupportedFormat) + "; send a JPEG, PNG, BMP or WebP photo"}
	case errors.Is(err, face.ErrEmpty), errors.Is(err, face.ErrCorrupt), errors.Is(err, face.ErrTooSmall), errors.Is(err, face.ErrTooManyPixels):
		return badRequest("bad_image", publicDetail(err, face.ErrEmpty, face.ErrCorrupt, face.ErrTooSmall, face.ErrTooManyPixels))
	case errors.Is(err, face.ErrStageDisabled):
		return badRequest("not_configured", publicDetail(err, face.ErrStageDisabled)+": this device runs no model for it (vision settings)")
	case errors.Is(err, store.ErrNotFound):
		return &Problem{Status: http.StatusNotFound, Code: "not_found", Detail: publicDetail(err, store.ErrNotFound)}
	case errors.Is(err, store.ErrDuplicate):
		return &Problem{Status: http.StatusConflict, Code: "duplicate", Detail: publicDetail(err, store.ErrDuplicate)}
	case errors.Is(err, service.ErrInvalid), errors.Is(err, store.ErrInvalid):
		return badRequest("invalid", publicDetail(err, service.ErrInvalid, store.ErrInvalid))
	case errors.Is(err, store.ErrNoSpace):
		// The device's disk is full: nothing was stored, and the same
		// request succeeds once space is freed (retention, or an operator).
		return &Problem{Status: http.StatusInsufficientStorage, Code: "insufficient_storage", Detail: "the device's storage is full; nothing was stored"}
	case errors.Is(err, context.DeadlineExceeded):
		return &Problem{Status: http.StatusServiceUnavailable, Code: "timeout", Detail: "the request took too long"}
	case errors.Is(err, context.Canceled):
		return &Problem{Status: 499, Code: "canceled", Detail: "the client went away"}
	}
	return &Problem{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error (logged with the request id)"}
}

// notFoundDetail names what does not exist and how to make or find it.
func notFoundDetail(nf *service.NotFoundError) string {
	switch nf.Kind {
	case "gallery":
		return fmt.Sprintf("gallery %q does not exist; create it with POST /v1/galleries (GET /v1/galleries lists them)", nf.ID)
	case "person":
		return fmt.Sprintf("person %q does not exist; GET /v1/persons lists them", nf.ID)
	case "face":
		return fmt.Sprintf("face %s does not exist; GET /v1/faces lists them", nf.ID)
	}
	return nf.Error()
}

// publicDetail is an error's message without the chain of packages and
// operations it passed through: the text the innermost of sentinels was
// wrapped with ("%w: id too long" gives "id too long"; "gallery %q: %w"
// gives `gallery "x": not found`), with package prefixes ("store: ",
// "face: decode: ") removed.
func publicDetail(err error, sentinels ...error) string {
	msg := err.Error()
	for _, s := range sentinels {
		if !errors.Is(err, s) {
			continue
		}
		text := s.Error()
		label := stripPrefixes(text) + ": "
		if text == service.ErrInvalid.Error() || text == store.ErrInvalid.Error() {
			label = "" // "invalid" says nothing the status does not
		}
		if i := strings.Index(msg, text+": "); i >= 0 {
			// "%w: what": the sentinel and what it was wrapped with.
			msg = label + msg[i+len(text)+2:]
		} else if strings.HasSuffix(msg, text) {
			// "subject: %w": the last segment before it, then the sentinel.
			before := strings.TrimSuffix(strings.TrimSuffix(msg, text), ": ")
			if j := strings.LastIndex(before, ": "); j >= 0 {
				before = before[j+2:]
			}
			msg = before + ": " + stripPrefixes(text)
		}
		break
	}
	return stripPrefixes(msg)
}

// stripPrefixes removes leading package and operation prefixes
// ("service: identify: ", "face: decode: ") from a message.
func stripPrefixes(msg string) string {
	for {
		pkg, rest, ok := strings.Cut(msg, ": ")
		if !ok || !internalPackages[pkg] {
			return strings.TrimPrefix(msg, ": ")
		}
		msg = rest
		// An operation word after the package ("decode: ", "identify: ").
		if op, rest, ok := strings.Cut(msg, ": "); ok && !strings.ContainsAny(op, " \"%") {
			msg = rest
		}
	}
}

// internalPackages are the packages whose names prefix error messages.
var internalPackages = map[string]bool{"service": true, "store": true, "face": true, "index": true, "models": true, "api": true, "auth": true}

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
