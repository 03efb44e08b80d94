// Package users serves the vendor "Users" identity API (enrol, 1:N search,
// unenrol) on top of package service, so that clients written against that
// vendor work unchanged when given faced's base URL (the mount prefix, e.g.
// https://device/compat/users) and a faced API key.
//
// Endpoints, relative to the base URL:
//
//	POST   /users/{id}      {"face": "<base64>"}                 → 200, empty body
//	POST   /users/search    {"face": "<base64>", "threshold": 75.5} → 200 {"matches": [...]}
//	DELETE /users/{id}                                            → 200, empty body
//
// Each is also served with a trailing slash.
//
// The vendor document is vague or silent in places; these are the choices:
//
//   - Authentication: only the "x-api-key" header, holding a full faced key
//     (<id>.<secret>), as the document shows. "Authorization: Bearer" is
//     the native API's style and is not read here: a client of this dialect
//     never sends it, so it answers 401 like a missing key. Enrol and
//     unenrol need the write scope, search the read scope. A missing,
//     malformed, unknown or revoked key is 401; a valid key without the
//     scope is 403.
//
//   - Error bodies: every error has the document's shape, {"status",
//     "title", "detail", "type", "errors"}, with Content-Type
//     application/json exactly as the document shows (not
//     application/problem+json), and type the MDN page of the status
//     (https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/NNN), as in
//     the document's samples. "errors" lists short, stable, lower-case
//     messages; it is present on every error except 404, whose body is
//     exactly the documented one (the document's 404 has no "errors").
//     The 400 detail is always "Invalid request." and the 404 detail
//     "Server cannot find the requested resource.", as documented.
//
//   - Success bodies: enrol and unenrol answer 200 with an empty body (the
//     document shows only "200 OK"); search answers 200 with
//     {"matches": [{"userId", "similarity"}]}.
//
//   - Images: the document allows "Base64 encoded or tokenized" images.
//     Tokenized images are the vendor's own storage and are not supported:
//     a face that is not base64 is 400 "invalid image encoding". Base64 may
//     be standard or URL-safe, padded or not, may contain line breaks, and
//     may be a data: URI (data:image/jpeg;base64,...). Only JPEG and PNG
//     are accepted, recognised by their magic bytes (never by a declared
//     type); anything else, WebP and BMP included although faced's pipeline
//     reads them, is 400 "invalid image format", because the document
//     names JPEG and PNG only.
//
//   - Size: "the maximum supported size is 5MB" is read as 5 MiB
//     (5,242,880 bytes) of decoded image, the lenient reading. A bigger
//     image is 400 (the document answers invalid images with 400, and has
//     no 413) with errors ["image exceeds the maximum size of 5MB"]. The
//     JSON body is capped at 8 MiB (the base64 of 5 MiB plus room); a
//     bigger body can only carry a too-big image, so it gets the same 400.
//
//   - Trailing commas: the document's search sample ends its object with a
//     trailing comma ("threshold": {THRESHOLD},\n}), which is not JSON;
//     clients copied from it send exactly that. Before decoding, a comma
//     outside strings that directly precedes (up to whitespace) a closing
//     } or ] and follows a value is dropped. Valid JSON never has such a
//     comma, so this changes nothing for valid bodies and only rescues that
//     one common mistake; other malformed JSON is still 400 "invalid JSON
//     body". Unknown fields are ignored; the request Content-Type is not
//     checked (curl's --data sends form-urlencoded unless told otherwise).
//
//   - Enrol: the user id is the faced person id (so the native API sees the
//     same person under /v1/persons/{id}); one face, the biggest of the
//     photo, goes to the default gallery. An existing id is 400 with
//     errors ["provided userId already exists"], a photo without a face
//     400 with errors ["no face detected in the provided image"], both as
//     documented. An id faced cannot store (over 128 bytes, control
//     characters) is 400 "invalid userId".
//
//   - "search" is reserved: POST /users/search is always the search, so a
//     user with the id "search" cannot be enrolled through this dialect (a
//     body without "face" there is 400 "face is required"). DELETE
//     /users/search deletes a person of that id if one was made through the
//     native API.
//
//   - Search: the biggest face of the photo is searched in every gallery
//     (the vendor has one collection; faced persons enrolled through the
//     native API in any gallery are found too). threshold is a percentage
//     0–100 on faced's calibrated confidence scale (default 80, i.e.
//     faced's "strict" preset, a false-accept rate of about 1e-5); it may
//     be a JSON number or a numeric string; null or absent means 80.
//     Anything else, or outside 0–100, is 400 "threshold must be a number
//     from 0 to 100". similarity is the confidence × 100 rounded to 5
//     decimals, each user is listed once (its best face), best first, at
//     most 10 users, and only matches with similarity ≥ threshold. No match
//     is the documented 404. A photo without a face is 400 "no face detected
//     in the provided image" (the document is silent; this is the enrol
//     message, and telling "no face" from "nobody" helps the client).
//
//   - Unenrol: deletes the person and all its faces; an unknown id is the
//     documented 404.
//
//   - Load: enrol and search take an inference slot from the shared queue
//     (api.Queue, the native API's bounded queue); a full queue is 429 with
//     Retry-After: 1. Each request is bounded by 30 s; the deadline
//     passing is 503.
//
//   - Routing: an unknown path is the documented 404 (also one below a
//     known route: cmd/faced TestUnknownSubPathsAreNotFound); a known path
//     with another method is 405 with an Allow header.
//
// Real clients: none beyond the document's examples has been replayed
// against this dialect yet (issue 19 found none), so it accommodates
// nothing the document does not show.
package users

import (
	"cmp"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/dialect"
	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Limits of the dialect.
const (
	// MaxImageBytes is the decoded image limit ("5MB", read as 5 MiB).
	MaxImageBytes = 5 << 20
	// MaxBodyBytes caps the JSON body: base64 of MaxImageBytes (about
	// 6.7 MiB) plus room for a data: prefix, line breaks and the rest.
	MaxBodyBytes = 8 << 20
	// DefaultThreshold is the search threshold in percent.
	DefaultThreshold = 80.0
	// maxMatches is how many users a search returns at most.
	maxMatches = 10
)

// Error messages in "errors" (stable: clients may compare them).
const (
	msgDuplicate  = "provided userId already exists"
	msgNoFace     = "no face detected in the provided image"
	msgEncoding   = "invalid image encoding"
	msgFormat     = "invalid image format"
	msgTooBig     = "image exceeds the maximum size of 5MB"
	msgUnreadable = "invalid image"
	msgThreshold  = "threshold must be a number from 0 to 100"
	msgJSON       = "invalid JSON body"
)

// handler serves the dialect.
type handler struct {
	svc *service.Service
}

// New returns the dialect's handler; mount it with api.Server.Mount, which
// strips the prefix, so it sees paths like /users/{id}.
func New(svc *service.Service, q api.Queue, logger *slog.Logger) http.Handler {
	h := &handler{svc: svc}
	f := &dialect.Front[*http.Request]{
		Name: "users", Service: svc, Queue: q, Logger: logger,
		Key:     dialect.Header("x-api-key"),
		MaxBody: MaxBodyBytes,
		Parse:   func(r *http.Request) (*http.Request, error) { return r, nil }, // handlers read it; the toolkit has it arrive before the slot
		Fail: func(err error) (int, any) {
			return errorBody(answers.Failure(err))
		},
	}
	return f.Handler([]dialect.Route[*http.Request]{
		{Method: "POST", Pattern: "/users/search", Scope: auth.ScopeRead, Slot: true, Serve: h.search},
		{Method: "POST", Pattern: "/users/{id}", Scope: auth.ScopeWrite, Slot: true, Serve: h.enroll},
		{Method: "DELETE", Pattern: "/users/{id}", Scope: auth.ScopeWrite, Serve: h.unenroll},
	})
}

// answers are the errors' "errors" entries by kind, in the order of their
// statuses (404 has none, as documented).
var answers = dialect.Table[string]{
	Says: map[dialect.Kind]string{
		dialect.BodyTooLarge:     msgTooBig,
		dialect.BadBody:          msgJSON,
		dialect.Duplicate:        msgDuplicate,
		dialect.NoFace:           msgNoFace,
		dialect.ImageFormat:      msgFormat,
		dialect.ImageTooLarge:    msgTooBig,
		dialect.BadImage:         msgUnreadable,
		dialect.BadValue:         "invalid userId",
		dialect.NoPhoto:          "face is required",
		dialect.BadBase64:        msgEncoding,
		dialect.URLNotAllowed:    msgEncoding,
		dialect.Invalid:          "invalid request",
		dialect.Unauthorized:     "missing or invalid x-api-key",
		dialect.Forbidden:        "the API key lacks the required scope",
		dialect.NoRoute:          "",
		dialect.NotFound:         "",
		dialect.MethodNotAllowed: "method not allowed",
		dialect.Busy:             "too many requests in progress, retry later",
		dialect.Internal:         "internal error",
		dialect.Timeout:          "the request could not be completed in time",
	},
	Plain400: true, // the document has no 409, 413 or 415
}

// apiError is an answer in the document's error style: a status and the
// "errors" entry (none for 404).
type apiError = dialect.Failure[string]

func badRequest(msg string) *apiError { return dialect.Fail(http.StatusBadRequest, msg) }

// ErrorBody is the document's error shape.
type ErrorBody struct {
	Status int      `json:"status"`
	Title  string   `json:"title"`
	Detail string   `json:"detail"`
	Type   string   `json:"type"`
	Errors []string `json:"errors,omitempty"`
}

// details are the "detail" texts; the 400 and 404 ones are the document's.
var details = map[int]string{
	http.StatusBadRequest:          "Invalid request.",
	http.StatusUnauthorized:        "Authentication is required and has failed or has not been provided.",
	http.StatusForbidden:           "The client does not have access rights to the content.",
	http.StatusNotFound:            "Server cannot find the requested resource.",
	http.StatusMethodNotAllowed:    "The request method is not supported by the target resource.",
	http.StatusTooManyRequests:     "The user has sent too many requests in a given amount of time.",
	http.StatusInternalServerError: "The server has encountered a situation it does not know how to handle.",
	http.StatusServiceUnavailable:  "The server is not ready to handle the request.",
}

func errorBody(e *apiError) (int, ErrorBody) {
	b := ErrorBody{
		Status: e.Status,
		Title:  http.StatusText(e.Status),
		Detail: details[e.Status],
		Type:   "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/" + strconv.Itoa(e.Status),
	}
	if e.Says != "" {
		b.Errors = []string{e.Says}
	}
	return e.Status, b
}

// enroll serves POST /users/{id}.
func (h *handler) enroll(r *http.Request) (any, error) {
	var req struct {
		Face string `json:"face"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	photo, err := decodeFace(r, req.Face)
	if err != nil {
		return nil, err
	}
	_, _, err = h.svc.Enroll(r.Context(), service.EnrollRequest{
		Person:    store.Person{ID: r.PathValue("id")},
		Photos:    [][]byte{photo},
		FaceInput: service.FaceInput{Selector: face.SelectBiggest},
	})
	return nil, err
}

// Match is one search result.
type Match struct {
	UserID     string  `json:"userId"`
	Similarity float64 `json:"similarity"`
}

// search serves POST /users/search.
func (h *handler) search(r *http.Request) (any, error) {
	var req struct {
		Face      string          `json:"face"`
		Threshold json.RawMessage `json:"threshold"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	threshold, err := parseThreshold(req.Threshold)
	if err != nil {
		return nil, err
	}
	photo, err := decodeFace(r, req.Face)
	if err != nil {
		return nil, err
	}
	// Filter here on the rounded percentage rather than in the service on
	// float32 confidences, so that what is shown agrees with the threshold.
	res, err := h.svc.Identify(r.Context(), service.IdentifyRequest{
		Photo:     photo,
		N:         maxMatches,
		Threshold: service.Threshold{None: true},
		Selector:  face.SelectBiggest,
	})
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, badRequest(msgNoFace)
	}
	matches := []Match{}
	for _, m := range res[0].Matches {
		sim := math.Round(float64(m.Confidence)*100*1e5) / 1e5
		if sim < threshold {
			continue
		}
		if i := slices.IndexFunc(matches, func(x Match) bool { return x.UserID == m.Person.ID }); i >= 0 {
			matches[i].Similarity = max(matches[i].Similarity, sim)
			continue
		}
		matches = append(matches, Match{UserID: m.Person.ID, Similarity: sim})
	}
	if len(matches) == 0 {
		return nil, dialect.Fail(http.StatusNotFound, "")
	}
	slices.SortStableFunc(matches, func(a, b Match) int { return cmp.Compare(b.Similarity, a.Similarity) })
	return map[string][]Match{"matches": matches}, nil
}

// unenroll serves DELETE /users/{id}.
func (h *handler) unenroll(r *http.Request) (any, error) {
	return nil, h.svc.DeletePerson(r.Context(), r.PathValue("id"))
}

// decodeBody reads the JSON body into v, tolerating a trailing comma.
func decodeBody(r *http.Request, v any) error {
	b, err := dialect.ReadBody(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(api.StripTrailingCommas(b), v); err != nil {
		return badRequest(msgJSON)
	}
	return nil
}

// parseThreshold reads the optional percentage.
func parseThreshold(raw json.RawMessage) (float64, error) {
	v, given, err := dialect.Float(raw, 0, 100)
	if err != nil {
		return 0, badRequest(msgThreshold)
	}
	if !given {
		return DefaultThreshold, nil
	}
	return v, nil
}

// decodeFace turns the "face" field into image bytes: base64 (standard or
// URL-safe, padding optional, line breaks ignored, optionally a data: URI)
// of a JPEG or PNG of at most MaxImageBytes.
func decodeFace(r *http.Request, f string) ([]byte, error) {
	photo, err := dialect.Photos{MaxBytes: MaxImageBytes}.Read(r.Context(), nil, f)
	if err == nil && !isJPEG(photo) && !isPNG(photo) {
		return nil, badRequest(msgFormat)
	}
	return photo, err
}

func isJPEG(b []byte) bool { return len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF }

func isPNG(b []byte) bool { return strings.HasPrefix(string(b), "\x89PNG\r\n\x1a\n") }
