// Package facesearch serves the computervision.com.vn "Face Search" API
// (v2) on top of package service, so that clients written against that
// vendor work unchanged when given faced's base URL (the mount prefix, e.g.
// https://device/compat/facesearch) and a faced API key.
//
// Endpoints, relative to the base URL (each also with a trailing slash):
//
//	GET    /api/v2/face_search/images?offset=&limit=          list images
//	POST   /api/v2/face_search/images  {"image":{"base64","metadata"}}  add
//	POST   /api/v2/face_search/images  {"ids":[...]}           delete many (the document's demo)
//	DELETE /api/v2/face_search/images  {"ids":[...]}           delete many
//	PUT    /api/v2/face_search/images/{id} {"image_id","metadata"} update metadata
//	POST   /api/v2/face_search/images/{id} (same body)          update metadata (the document's demo)
//	POST   /api/v2/face_search/search  {"image":{"base64"}}    search
//
// Every answer, errors included, is the document's envelope
// {"result": ..., "status_code": int, "message": string} with Content-Type
// application/json.
//
// Real clients accommodated beyond the document (issue 19), each with a
// test in clients_test.go:
//
//   - a Laravel app reads errors as "errorCode" and "error_message": with
//     WithErrorAliases (which the daemon uses) every error envelope also
//     carries them, equal to status_code and message; success envelopes
//     do not (TestErrorAliases). New without the option answers exactly
//     the document's three keys, as this package's document tests pin.
//
// The vendor document is silent in places; these are the choices:
//
//   - Authentication: HTTP Basic only, as the document's requests.auth
//     tuple sends it: username = faced key id, password = faced key secret;
//     they are joined as id+"."+secret (the full faced key) and checked by
//     service.Authenticate. Add, update and delete need the write scope,
//     list and search the read scope. Any other style (x-api-key,
//     Authorization: Bearer, nothing) is code 5 with HTTP 401; a valid key
//     without the scope is code 5 with HTTP 403.
//
//   - Images: each added image is one faced face (the biggest face of the
//     photo) in the default gallery, and each gets its own person (the
//     document has no person concept), created with a store-generated id
//     and person metadata {"facesearch": true}. The image id is the faced
//     face id, a JSON integer as in the document's samples (123456). The
//     image's metadata is the face's metadata. Every faced face is an image
//     of this dialect: list, search, update and delete see faces enrolled
//     through the native API or other dialects too.
//
//   - Image elements: {"id": int, "url": null, "metadata": {...}}. faced
//     keeps no retrievable copy of the photo, so "url" is always null
//     (present, so clients reading it do not break). metadata is {} when
//     none was given.
//
//   - Reserved metadata keys: "user", "encoding" and "_id", exactly those
//     the document names. Metadata containing any of them, or metadata that
//     is not a JSON object, is code 6 (HTTP 400); so is metadata faced
//     cannot store (over its size limit).
//
//   - Add: the image is {"base64": ...} (standard or URL-safe base64,
//     padding optional, line breaks ignored, data: URI accepted). A "url"
//     instead of base64 is code 2 "Url is unavailable": faced does not
//     fetch images for this dialect. The result is the new image element.
//
//   - Update: PUT (documented) or POST (the document's demo) with
//     {"image_id", "metadata"}; the metadata replaces the image's metadata
//     (null or absent clears it). image_id in the body is optional; if
//     given it must equal the id of the path (number or numeric string),
//     else code 6. The result is the updated image element.
//
//   - Delete many: DELETE (documented) or POST with a body holding "ids"
//     (the document's demo posts {"ids": [...]} to /images; a POST body
//     with "ids" and no "image" is a delete). Ids may be numbers or numeric
//     strings. All ids are checked first: an empty list or a malformed id
//     is code 6 (400), an unknown id is code 6 with HTTP 404 and nothing is
//     deleted. Each face is deleted; a person this dialect created is
//     deleted with its last face. result is null (the document's "None").
//
//   - List: offset (default 0) and limit (default 50, the document's
//     example, at most 1000) are non-negative integers, else code 6.
//     Images are in id order (oldest first). result is the array of image
//     elements (empty when offset is past the end).
//
//   - Search: the biggest face of the photo is searched in every gallery
//     with faced's default threshold (the "medium" preset unless the
//     daemon is configured otherwise); result is the array of matching
//     image elements, best first, at most 10, each with "score": faced's
//     calibrated confidence in [0, 1], rounded to 5 decimals (the document
//     shows no score; 0–1 is faced's native scale). No match is code 0 with
//     an empty array. A photo without a face is code 1.
//
//   - Status codes and HTTP statuses (message is always the document's
//     text for the code):
//     0 Success (200);
//     1 "The photo does not contain content": no face found, empty image,
//     missing base64 (400);
//     2 "Url is unavailable": an image given by url (400);
//     3 "Incorrect image format": not base64, not a decodable JPEG/PNG/...
//     image, image too large, too small or too many pixels (400);
//     4 "Out of requests": the inference queue is full (429, Retry-After: 1)
//     or the request timed out (503);
//     5 "Incorrect api_key or api_secret": auth (401, or 403 for scope);
//     6 "Incorrect format type": invalid JSON, invalid parameters, reserved
//     metadata keys, mismatched image_id (400), unknown image id (404),
//     unknown path (404), method not allowed (405 with Allow), internal
//     error (500, logged).
//
//   - Request bodies are read as JSON whatever their Content-Type (the
//     document's demos send data= without one) and capped at 8 MiB; a
//     decoded image is capped at 5 MiB (code 3). Unknown fields are
//     ignored. Each request is bounded by 30 s. Add and search take an
//     inference slot from the shared queue (api.Queue).
package facesearch

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/dialect"
	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/service"
)

// Limits of the dialect.
const (
	MaxImageBytes = 5 << 20
	MaxBodyBytes  = 8 << 20
	DefaultLimit  = 50
	MaxLimit      = 1000
	maxMatches    = 10
)

// The document's status codes.
const (
	CodeSuccess     = 0
	CodeNoContent   = 1
	CodeURL         = 2
	CodeImageFormat = 3
	CodeOutOfReqs   = 4
	CodeAuth        = 5
	CodeFormatType  = 6
)

// Messages are the document's texts, by code.
var Messages = map[int]string{
	CodeSuccess:     "Success",
	CodeNoContent:   "The photo does not contain content",
	CodeURL:         "Url is unavailable",
	CodeImageFormat: "Incorrect image format",
	CodeOutOfReqs:   "Out of requests",
	CodeAuth:        "Incorrect api_key or api_secret",
	CodeFormatType:  "Incorrect format type",
}

// ReservedMeta are the metadata keys the document reserves.
var ReservedMeta = []string{"user", "encoding", "_id"}

// personMarker is the person metadata key marking persons made here.
const personMarker = "facesearch"

const prefix = "/api/v2/face_search"

// Envelope is the document's response shape.
type Envelope struct {
	Result     any    `json:"result"`
	StatusCode int    `json:"status_code"`
	Message    string `json:"message"`
	// With WithErrorAliases, errors repeat status_code and message here.
	ErrorCode    *int    `json:"errorCode,omitempty"`
	ErrorMessage *string `json:"error_message,omitempty"`
}

// Image is one image element.
type Image struct {
	ID       uint64         `json:"id"`
	URL      *string        `json:"url"`
	Metadata map[string]any `json:"metadata"`
	Score    *float64       `json:"score,omitempty"`
}

type handler struct {
	svc   *service.Service
	front *dialect.Front[*request]
	// errorAliases adds errorCode and error_message to error envelopes.
	errorAliases bool
}

// Option changes one of the dialect's defaults.
type Option func(*handler)

// WithErrorAliases makes every error envelope also carry "errorCode" and
// "error_message", mirroring status_code and message, which clients such
// as a Laravel app read. Off by default, the envelope is exactly the
// document's three keys; the daemon turns it on (issue 19).
func WithErrorAliases() Option { return func(h *handler) { h.errorAliases = true } }

// New returns the dialect's handler; mount it with api.Server.Mount, which
// strips the prefix.
func New(svc *service.Service, q api.Queue, logger *slog.Logger, opts ...Option) http.Handler {
	h := &handler{svc: svc}
	for _, o := range opts {
		o(h)
	}
	h.front = &dialect.Front[*request]{
		Name: "facesearch", Service: svc, Queue: q, Logger: logger,
		Key:     dialect.Basic(),
		MaxBody: MaxBodyBytes,
		Parse:   dialect.ReadAll,
		Reply:   func(result any) any { return h.envelope(CodeSuccess, result) },
		Fail: func(err error) (int, any) {
			e := answers.Failure(err)
			return e.Status, h.envelope(e.Says, nil)
		},
	}
	type route = dialect.Route[*request]
	return h.front.Handler([]route{
		{Method: "GET", Pattern: prefix + "/images", Scope: auth.ScopeRead, Serve: h.list},
		{Method: "POST", Pattern: prefix + "/images", Scope: auth.ScopeWrite, Serve: h.postImages},
		{Method: "DELETE", Pattern: prefix + "/images", Scope: auth.ScopeWrite, Serve: h.deleteMany},
		{Method: "PUT POST", Pattern: prefix + "/images/{id}", Scope: auth.ScopeWrite, Serve: h.update},
		{Method: "POST", Pattern: prefix + "/search", Scope: auth.ScopeRead, Slot: true, Serve: h.search},
	})
}

// answers are the errors' codes by kind, in the order of their statuses.
var answers = dialect.Table[int]{
	Says: map[dialect.Kind]int{
		dialect.BodyTooLarge:     CodeImageFormat,
		dialect.BadBody:          CodeFormatType,
		dialect.NoFace:           CodeNoContent,
		dialect.NoPhoto:          CodeNoContent,
		dialect.URLNotAllowed:    CodeURL,
		dialect.EmptyImage:       CodeNoContent,
		dialect.ImageFormat:      CodeImageFormat,
		dialect.ImageTooLarge:    CodeImageFormat,
		dialect.BadImage:         CodeImageFormat,
		dialect.Invalid:          CodeFormatType,
		dialect.Duplicate:        CodeFormatType,
		dialect.Unauthorized:     CodeAuth,
		dialect.Forbidden:        CodeAuth,
		dialect.NoRoute:          CodeFormatType,
		dialect.NotFound:         CodeFormatType,
		dialect.MethodNotAllowed: CodeFormatType,
		dialect.Busy:             CodeOutOfReqs,
		dialect.Internal:         CodeFormatType,
		dialect.Timeout:          CodeOutOfReqs,
	},
	Plain400: true, // the document has no 409, 413 or 415
}

// request is a request with its body, read as JSON whatever its
// Content-Type (the document's demos send data= without one).
type request = dialect.Body

func fail(status, code int) error { return dialect.Fail(status, code) }

func badFormat() error { return fail(http.StatusBadRequest, CodeFormatType) }

func (h *handler) envelope(code int, result any) Envelope {
	env := Envelope{Result: result, StatusCode: code, Message: Messages[code]}
	if h.errorAliases && code != CodeSuccess {
		env.ErrorCode, env.ErrorMessage = &env.StatusCode, &env.Message
	}
	return env
}

// postImages serves POST /images: a delete when the body has "ids" and no
// "image" (the document's delete demo), else an add. Both need the write
// scope, checked before the body is read.
func (h *handler) postImages(r *request) (any, error) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(r.Bytes, &probe) == nil {
		_, hasIDs := probe["ids"]
		_, hasImage := probe["image"]
		if hasIDs && !hasImage {
			return h.deleteMany(r)
		}
	}
	return h.add(r)
}
