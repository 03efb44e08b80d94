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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Limits of the dialect.
const (
	MaxImageBytes  = 5 << 20
	MaxBodyBytes   = 8 << 20
	DefaultLimit   = 50
	MaxLimit       = 1000
	maxMatches     = 10
	requestTimeout = 30 * time.Second
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
	svc    *service.Service
	q      api.Queue
	logger *slog.Logger
	mux    *http.ServeMux
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
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, q: q, logger: logger, mux: http.NewServeMux()}
	for _, o := range opts {
		o(h)
	}
	for _, s := range []string{"", "/{$}"} {
		h.mux.Handle("GET "+prefix+"/images"+s, h.route(auth.ScopeRead, h.list))
		h.mux.Handle("POST "+prefix+"/images"+s, h.postImages())
		h.mux.Handle("DELETE "+prefix+"/images"+s, h.route(auth.ScopeWrite, h.deleteMany))
		h.mux.Handle("PUT "+prefix+"/images/{id}"+s, h.route(auth.ScopeWrite, h.update))
		h.mux.Handle("POST "+prefix+"/images/{id}"+s, h.route(auth.ScopeWrite, h.update))
		h.mux.Handle("POST "+prefix+"/search"+s, h.route(auth.ScopeRead, h.search))
	}
	return h
}

// ServeHTTP answers unrouted requests with the envelope.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mh, pattern := h.mux.Handler(r)
	if pattern != "" {
		h.mux.ServeHTTP(w, r)
		return
	}
	c := &capture{header: http.Header{}, status: http.StatusNotFound}
	mh.ServeHTTP(c, r)
	if c.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", c.header.Get("Allow"))
		h.writeEnvelope(w, http.StatusMethodNotAllowed, CodeFormatType, nil)
		return
	}
	h.writeEnvelope(w, http.StatusNotFound, CodeFormatType, nil)
}

type capture struct {
	header http.Header
	status int
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) Write(b []byte) (int, error) { return len(b), nil }
func (c *capture) WriteHeader(status int)      { c.status = status }

// apiError is an error answer.
type apiError struct {
	status, code int
	err          error
}

func (e *apiError) Error() string { return fmt.Sprintf("%d code %d: %v", e.status, e.code, e.err) }

func fail(status, code int) *apiError { return &apiError{status: status, code: code} }

func badFormat() *apiError { return fail(http.StatusBadRequest, CodeFormatType) }

func (h *handler) writeEnvelope(w http.ResponseWriter, status, code int, result any) {
	env := Envelope{Result: result, StatusCode: code, Message: Messages[code]}
	if h.errorAliases && code != CodeSuccess {
		env.ErrorCode, env.ErrorMessage = &env.StatusCode, &env.Message
	}
	b, err := json.Marshal(env)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(Envelope{StatusCode: CodeFormatType, Message: Messages[CodeFormatType]})
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

type serve func(r *http.Request, body []byte) (any, error)

// route applies the timeout, body cap and Basic auth, then answers.
func (h *handler) route(scope string, fn serve) http.Handler {
	return h.routeBy(scope, func([]byte) serve { return fn })
}

// routeBy is route with the handler picked from the body. The key is
// checked before the body is read: an anonymous client cannot make the
// server read and hold up to MaxBodyBytes.
func (h *handler) routeBy(scope string, pick func(body []byte) serve) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		var result any
		err := h.authenticate(r, scope)
		if err == nil {
			var body []byte
			if body, err = readBody(w, r); err == nil {
				result, err = pick(body)(r, body)
			}
		}
		if err != nil {
			e := classify(err)
			if e.status >= 500 {
				h.logger.Error("facesearch: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			h.writeEnvelope(w, e.status, e.code, nil)
			return
		}
		h.writeEnvelope(w, http.StatusOK, CodeSuccess, result)
	})
}

// postImages serves POST /images: a delete when the body has "ids" and no
// "image" (the document's delete demo), else an add. Both need the write
// scope, checked before the body is read.
func (h *handler) postImages() http.Handler {
	return h.routeBy(auth.ScopeWrite, func(b []byte) serve {
		var probe map[string]json.RawMessage
		if json.Unmarshal(b, &probe) == nil {
			_, hasIDs := probe["ids"]
			_, hasImage := probe["image"]
			if hasIDs && !hasImage {
				return h.deleteMany
			}
		}
		return h.add
	})
}

func (h *handler) authenticate(r *http.Request, scope string) error {
	id, secret, ok := r.BasicAuth()
	if !ok || id == "" || secret == "" {
		return service.ErrUnauthorized
	}
	_, err := h.svc.Authenticate(r.Context(), id+"."+secret, scope)
	return err
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fail(http.StatusBadRequest, CodeImageFormat)
		}
		return nil, &apiError{status: http.StatusBadRequest, code: CodeFormatType, err: err}
	}
	return b, nil
}

func classify(err error) *apiError {
	var e *apiError
	var many *face.ErrTooManyFaces
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, service.ErrUnauthorized):
		return fail(http.StatusUnauthorized, CodeAuth)
	case errors.Is(err, service.ErrForbidden):
		return fail(http.StatusForbidden, CodeAuth)
	case errors.Is(err, api.ErrBusy):
		return fail(http.StatusTooManyRequests, CodeOutOfReqs)
	case errors.Is(err, service.ErrNoFace), errors.Is(err, face.ErrEmpty):
		return fail(http.StatusBadRequest, CodeNoContent)
	case errors.Is(err, face.ErrUnsupportedFormat), errors.Is(err, face.ErrTooLarge), errors.Is(err, face.ErrCorrupt),
		errors.Is(err, face.ErrTooSmall), errors.Is(err, face.ErrTooManyPixels), errors.As(err, &many):
		return fail(http.StatusBadRequest, CodeImageFormat)
	case errors.Is(err, store.ErrNotFound):
		return fail(http.StatusNotFound, CodeFormatType)
	case errors.Is(err, store.ErrInvalid), errors.Is(err, service.ErrInvalid), errors.Is(err, store.ErrDuplicate):
		return badFormat()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apiError{status: http.StatusServiceUnavailable, code: CodeOutOfReqs, err: err}
	default:
		return &apiError{status: http.StatusInternalServerError, code: CodeFormatType, err: err}
	}
}

func imageOf(f store.Face) Image {
	m := f.Meta
	if m == nil {
		m = map[string]any{}
	}
	return Image{ID: f.ID, Metadata: m}
}

// list serves GET /images.
func (h *handler) list(r *http.Request, _ []byte) (any, error) {
	offset, err := intParam(r, "offset", 0)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit", DefaultLimit)
	if err != nil {
		return nil, err
	}
	limit = min(limit, MaxLimit)
	out := []Image{}
	if limit == 0 {
		return out, nil
	}
	skipped, cursor := 0, ""
	for {
		page, err := h.svc.ListFaces(r.Context(), store.ListOptions{Cursor: cursor, Limit: store.MaxLimit})
		if err != nil {
			return nil, err
		}
		for _, f := range page.Items {
			if skipped < offset {
				skipped++
				continue
			}
			out = append(out, imageOf(f))
			if len(out) == limit {
				return out, nil
			}
		}
		if page.Next == "" {
			return out, nil
		}
		cursor = page.Next
	}
}

func intParam(r *http.Request, name string, def int) (int, error) {
	s := strings.TrimSpace(r.URL.Query().Get(name))
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, badFormat()
	}
	return v, nil
}

type imageIn struct {
	Base64   *string         `json:"base64"`
	URL      *string         `json:"url"`
	Metadata json.RawMessage `json:"metadata"`
}

// add serves POST /images.
func (h *handler) add(r *http.Request, body []byte) (any, error) {
	var req struct {
		Image *imageIn `json:"image"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badFormat()
	}
	if req.Image == nil {
		return nil, fail(http.StatusBadRequest, CodeNoContent)
	}
	meta, err := parseMeta(req.Image.Metadata)
	if err != nil {
		return nil, err
	}
	photo, err := decodeImage(req.Image)
	if err != nil {
		return nil, err
	}
	release, err := api.AcquireFrom(r.Context(), h.q)
	if err != nil {
		return nil, err
	}
	defer release()
	_, faces, err := h.svc.Enroll(r.Context(), service.EnrollRequest{
		Person:    store.Person{Meta: store.Metadata{personMarker: true}},
		Photos:    [][]byte{photo},
		FaceInput: service.FaceInput{Selector: face.SelectBiggest, Meta: meta},
	})
	if err != nil {
		return nil, err
	}
	if len(faces) != 1 {
		return nil, fmt.Errorf("facesearch: enrol stored %d faces", len(faces))
	}
	return imageOf(faces[0]), nil
}

// parseMeta reads optional metadata: a JSON object without reserved keys.
func parseMeta(raw json.RawMessage) (store.Metadata, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, badFormat()
	}
	for _, k := range ReservedMeta {
		if _, ok := m[k]; ok {
			return nil, badFormat()
		}
	}
	return m, nil
}

// decodeImage turns {"base64"} into photo bytes.
func decodeImage(in *imageIn) ([]byte, error) {
	if in.Base64 == nil || strings.TrimSpace(*in.Base64) == "" {
		if in.URL != nil && strings.TrimSpace(*in.URL) != "" {
			return nil, fail(http.StatusBadRequest, CodeURL)
		}
		return nil, fail(http.StatusBadRequest, CodeNoContent)
	}
	photo, err := api.DecodeBase64Photo(*in.Base64, MaxImageBytes)
	if err != nil {
		// Too large and malformed are both "image format" (code 3).
		return nil, fail(http.StatusBadRequest, CodeImageFormat)
	}
	return photo, nil
}

// parseID reads an image id: a JSON number or numeric string.
func parseID(raw json.RawMessage) (uint64, error) {
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return 0, badFormat()
		}
		s = strings.TrimSpace(str)
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, badFormat()
	}
	return id, nil
}

// update serves PUT (and POST) /images/{id}.
func (h *handler) update(r *http.Request, body []byte) (any, error) {
	id, err := parseID(json.RawMessage(strconv.Quote(r.PathValue("id"))))
	if err != nil {
		return nil, err
	}
	var req struct {
		ImageID  json.RawMessage `json:"image_id"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badFormat()
	}
	if s := strings.TrimSpace(string(req.ImageID)); s != "" && s != "null" {
		bid, err := parseID(req.ImageID)
		if err != nil {
			return nil, err
		}
		if bid != id {
			return nil, badFormat()
		}
	}
	meta, err := parseMeta(req.Metadata)
	if err != nil {
		return nil, err
	}
	f, err := h.svc.UpdateFace(r.Context(), id, service.FaceUpdate{Meta: &meta})
	if err != nil {
		return nil, err
	}
	return imageOf(f), nil
}

// deleteMany serves DELETE (and POST with "ids") /images.
func (h *handler) deleteMany(r *http.Request, body []byte) (any, error) {
	var req struct {
		IDs []json.RawMessage `json:"ids"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.IDs) == 0 {
		return nil, badFormat()
	}
	faces := make([]store.Face, 0, len(req.IDs))
	for _, raw := range req.IDs {
		id, err := parseID(raw)
		if err != nil {
			return nil, err
		}
		f, err := h.svc.GetFace(r.Context(), id)
		if err != nil {
			return nil, err
		}
		faces = append(faces, f)
	}
	for _, f := range faces {
		if err := h.svc.DeleteFace(r.Context(), f.ID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // listed twice, or deleted meanwhile
			}
			return nil, err
		}
		if err := h.dropPerson(r.Context(), f.PersonID); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// dropPerson deletes a person made by this dialect once it has no face.
func (h *handler) dropPerson(ctx context.Context, id string) error {
	p, err := h.svc.GetPerson(ctx, id)
	if err != nil {
		return nil // gone already
	}
	if v, _ := p.Meta[personMarker].(bool); !v {
		return nil
	}
	page, err := h.svc.ListFaces(ctx, store.ListOptions{PersonID: id, Limit: 1})
	if err != nil || len(page.Items) > 0 {
		return nil
	}
	if err := h.svc.DeletePerson(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// search serves POST /search.
func (h *handler) search(r *http.Request, body []byte) (any, error) {
	var req struct {
		Image *imageIn `json:"image"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badFormat()
	}
	if req.Image == nil {
		return nil, fail(http.StatusBadRequest, CodeNoContent)
	}
	photo, err := decodeImage(req.Image)
	if err != nil {
		return nil, err
	}
	threshold, err := h.svc.Threshold("")
	if err != nil {
		return nil, err
	}
	release, err := api.AcquireFrom(r.Context(), h.q)
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := h.svc.Identify(r.Context(), service.IdentifyRequest{
		Photo:     photo,
		N:         maxMatches,
		Threshold: threshold,
		Selector:  face.SelectBiggest,
	})
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, fail(http.StatusBadRequest, CodeNoContent)
	}
	out := []Image{}
	for _, m := range res[0].Matches {
		f, err := h.svc.GetFace(r.Context(), m.FaceID)
		if err != nil {
			continue // deleted meanwhile
		}
		img := imageOf(f)
		score := math.Round(float64(m.Confidence)*1e5) / 1e5
		img.Score = &score
		out = append(out, img)
	}
	return out, nil
}
