// Package trueface serves the Trueface.ai / chui.ai REST API (v1) on top of
// package service, so that clients written against that vendor work
// unchanged when given faced's base URL (the mount prefix, e.g.
// https://device/compat/trueface) and a faced API key.
//
// Endpoints, relative to the base URL (each also with a trailing slash):
//
//	POST   /v1/spdetect    image body or {"img"}                 spoof detection
//	POST   /v1/facedetect  image body or {"img"}; ?rawlandmarks=true  face detection
//	POST   /v1/enroll      {"img0".."img9", "name", "collection_id"}  create enrollment
//	PUT    /v1/enroll      {"enrollment_id", "img0".."img9"}     add photos
//	DELETE /v1/enroll      {"enrollment_id"}                     delete enrollment
//	POST   /v1/collection  {"name", "unknowns"}                  create collection
//	PUT    /v1/collection  {"enrollment_id", "collection_id"}    add enrollment
//	DELETE /v1/collection  {"collection_id"}                     delete collection
//	GET    /v1/collection                                        list collections
//	POST   /v1/train       {"collection_id"}                     no-op, succeeds
//	POST   /v1/match       {"img", "id", "threshold"}            1:1 against an enrollment
//	POST   /v1/identify    {"img", "collection_id", "threshold"} 1:N in a collection
//
// Real clients accommodated beyond the document (issue 19), each with a
// test:
//
//   - the Trueface TypeScript and Android SDKs and an iOS app read
//     identify's "confidence" (TestIdentifyConfidence);
//   - the Android SDK's paths are absolute (@POST("/v1/...")), so it cannot
//     reach a mount below /compat/trueface: the daemon can serve this
//     dialect at the root of its own listener (dialects.trueface.listen;
//     cmd/faced TestDialectRootListener).
//
// Every answer, errors included, is the document's envelope
// {"data": ..., "message": ..., "success": bool} with Content-Type
// application/json.
//
// The vendor document is vague, silent or self-contradictory in places;
// these are the choices:
//
//   - Authentication: only the "x-api-key" header, holding a full faced key
//     (<id>.<secret>), as the document shows. Any other style
//     ("Authorization: Token", "Authorization: Bearer", nothing) is 401.
//     Detection, spoof detection, match, identify and the collection list
//     need the read scope; enroll, collection changes and train need the
//     write scope. A valid key without the scope is 403.
//
//   - Errors: HTTP status from the document's table (400, 401, 403, 404,
//     405 with Allow, 429 with Retry-After: 1, 500, 503) and the body
//     {"data": null, "message": "<short lower-case reason>", "success":
//     false}. Unknown paths are 404, a known path with another method 405.
//     The document's 406/410/418 are never produced.
//
//   - Images: JSON fields img, img0..img9 are base64 (standard or URL-safe,
//     padding optional, line breaks ignored, data: URI accepted). spdetect
//     and facedetect also take the raw image as the body: a Content-Type of
//     application/json (or +json) means JSON, image/* means a binary body;
//     anything else or none is sniffed (a body starting with "{" is JSON).
//     Any format faced's pipeline reads is accepted. The decoded image is
//     capped at 5 MiB each and the body at 8 MiB, 32 MiB for POST and PUT
//     /v1/enroll, which carry up to ten images (400 beyond). Bad base64 or an
//     undecodable image is 400. A JSON body is read whatever its
//     Content-Type; unknown fields are ignored.
//
//   - Mapping: an enrollment is a faced person (enrollment_id = person id,
//     store-generated; name = person name; person metadata
//     {"trueface": true}); each enrollment image is one faced face, the
//     biggest face of the photo. A collection is a faced gallery: its
//     collection_id is the gallery name, minted here as "tf-" + 24 hex
//     digits, so it always fits faced's rule [a-zA-Z0-9_-]{1,48}; the
//     collection's name and unknowns flag are gallery metadata
//     ({"trueface": true, "name": ..., "unknowns": ...}). A collection_id a
//     client sends that does not fit the rule cannot name a faced gallery
//     and is refused as 404 "collection not found" (no mapping: ids are
//     minted by the server, so a valid one always fits). Any faced gallery
//     (also native ones) can be used as a collection_id.
//
//   - Enroll: img0..img9 (at least one; any other imgN key, e.g. img10, is
//     400: the document's maximum is 10). Faces always go to faced's
//     default gallery; with collection_id they are added to that
//     collection too (unknown collection: 404, nothing stored). Enroll is
//     atomic: a photo without a face is 400 and nothing is stored.
//     Update (PUT) adds the photos with the galleries the enrollment's
//     faces are already in; unknown enrollment_id is 404. Delete removes
//     the person with all its faces; data is "Enrollment *<id>* has been
//     deleted" and message null, as documented. Enrollment ids are any
//     faced person id, so persons enrolled natively can be matched too.
//
//   - Collections: create answers {"collection_id"}; name is required (a
//     non-empty string), unknowns an optional boolean (default false). PUT
//     adds every face of the enrollment to the gallery (404 for an unknown
//     enrollment or collection). DELETE deletes the gallery but never the
//     enrollments (their faces stay in the default gallery); a gallery
//     holding faces that are in no other gallery (only possible for native
//     galleries) or the default gallery is refused with 400. data is
//     "Entity *<id>* has been deleted", message null, as documented. GET
//     lists the collections made through this dialect, oldest first, as
//     the document's objects: classifier_url "", created and updated (the
//     gallery's creation time, UTC, "2006-01-02T15:04:05.000000"),
//     enrollments (distinct person ids of the gallery's faces), id, name,
//     label_encoder "", owner "", unknown. The document's list sample has
//     only "data"; message and success are added for uniformity.
//
//   - Train: faced's index is updated on every write, so there is nothing
//     to train. train checks the collection exists (404 otherwise) and
//     answers {"collection_id", "trained": true} with the message
//     "classifier is up to date (faced's index is always current)".
//
//   - Scores: Trueface scores are faced's calibrated confidence remapped
//     piecewise linearly through (0, 0), (low 0.70, 0.40), (medium 0.75,
//     0.50), (strict 0.80, 0.60), (1, 1). The document gives two default
//     thresholds, 0.4 ("Concepts") and 0.5 (the match section); with this
//     scale 0.4 is faced's low preset (FAR about 1e-3) and 0.5 its medium
//     preset (about 1e-4), so either reading a client relies on means what
//     faced means by it. The default is 0.5, the reading of the match
//     endpoint's own section. A client threshold is a JSON number or
//     numeric string in [0, 1] on the Trueface scale (else 400) and is
//     used as sent. Scores are rounded to 6 decimals.
//
//   - Match: id is an enrollment id (404 if unknown). The biggest face of
//     img is compared with every stored face of the enrollment, in face
//     id order (emb0 is the oldest); data holds embN_score and embN_match
//     (score >= threshold) for each. A photo without a face is 400.
//
//   - Identify: the biggest face of img is searched in the collection
//     (404 if unknown). Without a client threshold, a collection created
//     with unknowns=true uses 0.5 (medium) and one without uses 0.4 (low):
//     "unknowns" is documented to filter out unknowns and reduce false
//     positives, so it selects the stricter of the two documented
//     defaults; faced never names someone below the threshold. A match
//     answers {"name", "key", "score", "confidence"} (key = enrollment id,
//     name = person name or null if it has none; confidence, which the
//     SDKs read, is the same number as score); no match answers success
//     with {"name": null, "key": null}. A photo without a face is 400.
//     data stays the document's single object: a client that expects an
//     array of candidates gets that object instead, so in JavaScript or
//     TypeScript data[0] and data.length are undefined (no candidate), and
//     a typed decoder expecting a list (Gson, Moshi, Codable) fails with a
//     type error. Serving an array would break the document's clients, so
//     faced does not.
//
//   - Face detection: every face, biggest first. bounding_box is [x1, y1,
//     x2, y2, detection confidence]; points are the five landmarks (left
//     eye, right eye, nose, left and right mouth corner) as the document
//     lays them out, the five x's then the five y's, rounded to integer
//     pixels. With rawlandmarks=true (or the document's "rawlandmark=true"
//     spelling; also 1) points holds the 68 landmarks the same way: 68 x's
//     then 68 y's. No face is success with an empty list.
//
//   - Spoof detection: faced's liveness model on the biggest face. class is
//     "real" when the live score is >= 0.5, else "fake"; score is the
//     probability of the reported class (>= 0.5, matching the document's
//     fake sample 0.5789); key is a fresh random id (faced keeps no
//     snapshot). A photo without a face is 400; liveness not configured is
//     503.
//
//   - Load: every request that runs the pipeline takes an inference slot
//     from the shared queue (api.Queue); a full queue is 429 with
//     Retry-After: 1. Each request is bounded by 30 s (503 past it).
package trueface

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Limits and defaults of the dialect.
const (
	MaxImageBytes    = 5 << 20
	MaxBodyBytes     = 8 << 20
	MaxEnrollBytes   = 32 << 20 // POST/PUT /v1/enroll: up to 10 images
	MaxImages        = 10
	DefaultThreshold = 0.5 // match, and identify with unknowns
	LooseThreshold   = 0.4 // identify without unknowns
	requestTimeout   = 30 * time.Second
	marker           = "trueface"
	timeLayout       = "2006-01-02T15:04:05.000000"
)

// Envelope is the document's response shape.
type Envelope struct {
	Data    any     `json:"data"`
	Message *string `json:"message"`
	Success bool    `json:"success"`
}

type handler struct {
	svc    *service.Service
	q      api.Queue
	logger *slog.Logger
	mux    *http.ServeMux
}

// New returns the dialect's handler; mount it with api.Server.Mount, which
// strips the prefix.
func New(svc *service.Service, q api.Queue, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, q: q, logger: logger, mux: http.NewServeMux()}
	for _, s := range []string{"", "/{$}"} {
		h.mux.Handle("POST /v1/spdetect"+s, h.route(auth.ScopeRead, h.spdetect))
		h.mux.Handle("POST /v1/facedetect"+s, h.route(auth.ScopeRead, h.facedetect))
		h.mux.Handle("POST /v1/enroll"+s, h.routeN(auth.ScopeWrite, MaxEnrollBytes, h.enroll))
		h.mux.Handle("PUT /v1/enroll"+s, h.routeN(auth.ScopeWrite, MaxEnrollBytes, h.updateEnroll))
		h.mux.Handle("DELETE /v1/enroll"+s, h.route(auth.ScopeWrite, h.deleteEnroll))
		h.mux.Handle("POST /v1/collection"+s, h.route(auth.ScopeWrite, h.createCollection))
		h.mux.Handle("PUT /v1/collection"+s, h.route(auth.ScopeWrite, h.updateCollection))
		h.mux.Handle("DELETE /v1/collection"+s, h.route(auth.ScopeWrite, h.deleteCollection))
		h.mux.Handle("GET /v1/collection"+s, h.route(auth.ScopeRead, h.listCollections))
		h.mux.Handle("POST /v1/train"+s, h.route(auth.ScopeWrite, h.train))
		h.mux.Handle("POST /v1/match"+s, h.route(auth.ScopeRead, h.match))
		h.mux.Handle("POST /v1/identify"+s, h.route(auth.ScopeRead, h.identify))
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
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	writeError(w, http.StatusNotFound, "not found")
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
	status int
	msg    string
	err    error
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %v", e.status, e.msg, e.err) }

func fail(status int, msg string) *apiError { return &apiError{status: status, msg: msg} }

func bad(msg string) *apiError { return fail(http.StatusBadRequest, msg) }

// reply is a success answer: data and message (nil message is JSON null).
type reply struct {
	data any
	msg  *string
}

func ok(data any, msg string) reply { return reply{data: data, msg: &msg} }

func write(w http.ResponseWriter, status int, env Envelope) {
	b, err := json.Marshal(env)
	if err != nil {
		status = http.StatusInternalServerError
		msg := "internal error"
		b, _ = json.Marshal(Envelope{Message: &msg})
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	write(w, status, Envelope{Message: &msg})
}

type serve func(r *http.Request, body []byte) (reply, error)

// route applies the timeout, auth and body cap, then answers.
func (h *handler) route(scope string, fn serve) http.Handler {
	return h.routeN(scope, MaxBodyBytes, fn)
}

func (h *handler) routeN(scope string, limit int64, fn serve) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		var res reply
		err := h.authenticate(r, scope)
		if err == nil {
			var body []byte
			if body, err = readBody(w, r, limit); err == nil {
				res, err = fn(r, body)
			}
		}
		if err != nil {
			e := classify(err)
			if e.status >= 500 {
				h.logger.Error("trueface: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, e.status, e.msg)
			return
		}
		write(w, http.StatusOK, Envelope{Data: res.data, Message: res.msg, Success: true})
	})
}

func (h *handler) authenticate(r *http.Request, scope string) error {
	key := strings.TrimSpace(r.Header.Get("x-api-key"))
	if key == "" {
		return service.ErrUnauthorized
	}
	_, err := h.svc.Authenticate(r.Context(), key, scope)
	return err
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, bad("request body too large")
		}
		return nil, &apiError{status: http.StatusBadRequest, msg: "cannot read request body", err: err}
	}
	return b, nil
}

func classify(err error) *apiError {
	var e *apiError
	var noFace *service.NoFaceError
	var many *face.ErrTooManyFaces
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, service.ErrUnauthorized):
		return fail(http.StatusUnauthorized, "invalid api key")
	case errors.Is(err, service.ErrForbidden):
		return fail(http.StatusForbidden, "api key lacks the scope for this request")
	case errors.Is(err, api.ErrBusy):
		return fail(http.StatusTooManyRequests, "too many requests")
	case errors.As(err, &noFace):
		return bad(fmt.Sprintf("no face detected in img%d", noFace.Photo))
	case errors.Is(err, service.ErrNoFace):
		return bad("no face detected")
	case errors.Is(err, face.ErrEmpty):
		return bad("empty image")
	case errors.Is(err, face.ErrUnsupportedFormat), errors.Is(err, face.ErrCorrupt):
		return bad("invalid image")
	case errors.Is(err, face.ErrTooLarge), errors.Is(err, face.ErrTooManyPixels):
		return bad("image too large")
	case errors.Is(err, face.ErrTooSmall):
		return bad("image too small")
	case errors.As(err, &many):
		return bad("too many faces")
	case errors.Is(err, face.ErrStageDisabled):
		return &apiError{status: http.StatusServiceUnavailable, msg: "model not configured on this device", err: err}
	case errors.Is(err, store.ErrNotFound):
		return fail(http.StatusNotFound, "not found")
	case errors.Is(err, store.ErrInvalid), errors.Is(err, service.ErrInvalid):
		return bad("invalid request")
	case errors.Is(err, store.ErrDuplicate):
		return bad("already exists")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apiError{status: http.StatusServiceUnavailable, msg: "request timed out", err: err}
	default:
		return &apiError{status: http.StatusInternalServerError, msg: "internal error", err: err}
	}
}

// ---- decoding ----

// object parses a JSON object body.
func object(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, bad("invalid JSON body")
	}
	return m, nil
}

// str reads an optional string field; ok reports it was present and not null.
func str(m map[string]json.RawMessage, k string) (string, bool, error) {
	raw, has := m[k]
	if !has || strings.TrimSpace(string(raw)) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, bad(k + " must be a string")
	}
	return s, true, nil
}

// required reads a required non-empty string field.
func required(m map[string]json.RawMessage, k string) (string, error) {
	s, has, err := str(m, k)
	if err != nil {
		return "", err
	}
	if !has || strings.TrimSpace(s) == "" {
		return "", bad(k + " is required")
	}
	return strings.TrimSpace(s), nil
}

// decodeB64 turns a base64 string into image bytes.
func decodeB64(field, s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, bad(field + " is required")
	}
	b, err := api.DecodeBase64Photo(s, MaxImageBytes)
	if errors.Is(err, api.ErrPhotoTooLarge) {
		return nil, bad(field + " exceeds 5 MiB")
	}
	if err != nil {
		return nil, bad(field + " is not valid base64")
	}
	return b, nil
}

// image reads a required base64 image field.
func image(m map[string]json.RawMessage, k string) ([]byte, error) {
	s, has, err := str(m, k)
	if err != nil {
		return nil, err
	}
	if !has {
		return nil, bad(k + " is required")
	}
	return decodeB64(k, s)
}

var imgKey = regexp.MustCompile(`^img([0-9]+)$`)

// images reads img0..img9 in order.
func images(m map[string]json.RawMessage) ([][]byte, error) {
	type numbered struct {
		n   int
		key string
	}
	var keys []numbered
	for k := range m {
		sub := imgKey.FindStringSubmatch(k)
		if sub == nil {
			continue
		}
		n, err := strconv.Atoi(sub[1])
		if err != nil || n >= MaxImages || (len(sub[1]) > 1 && sub[1][0] == '0') {
			return nil, bad("at most 10 images, img0 to img9")
		}
		keys = append(keys, numbered{n, k})
	}
	if len(keys) == 0 {
		return nil, bad("img0 is required")
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].n < keys[j].n })
	out := make([][]byte, 0, len(keys))
	for _, k := range keys {
		b, err := image(m, k.key)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// threshold reads an optional threshold on the Trueface scale.
func threshold(m map[string]json.RawMessage, def float64) (float64, bool, error) {
	raw, has := m["threshold"]
	s := strings.TrimSpace(string(raw))
	if !has || s == "null" {
		return def, false, nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, bad("threshold must be a number from 0 to 1")
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
		return 0, false, bad("threshold must be a number from 0 to 1")
	}
	return v, true, nil
}

// photoBody reads the image of spdetect/facedetect: binary or {"img"}.
func photoBody(r *http.Request, body []byte) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if !isJSON && !strings.HasPrefix(mt, "image/") {
		isJSON = strings.HasPrefix(strings.TrimSpace(string(body)), "{")
	}
	if !isJSON {
		if len(body) == 0 {
			return nil, bad("image body is empty")
		}
		if len(body) > MaxImageBytes {
			return nil, bad("image exceeds 5 MiB")
		}
		return body, nil
	}
	m, err := object(body)
	if err != nil {
		return nil, err
	}
	return image(m, "img")
}

// ---- scores ----

// scale anchors: faced confidence → Trueface score.
var (
	confAnchors = [5]float64{0, float64(service.Presets["low"]), float64(service.Presets["medium"]), float64(service.Presets["strict"]), 1}
	tfAnchors   = [5]float64{0, 0.4, 0.5, 0.6, 1}
)

func interp(v float64, xs, ys [5]float64) float64 {
	v = min(max(v, 0), 1)
	for i := 1; i < len(xs); i++ {
		if v <= xs[i] {
			return ys[i-1] + (ys[i]-ys[i-1])*(v-xs[i-1])/(xs[i]-xs[i-1])
		}
	}
	return 1
}

// Score maps faced's confidence to the Trueface scale.
func Score(conf float32) float64 { return interp(float64(conf), confAnchors, tfAnchors) }

// Confidence maps a Trueface score (or threshold) to faced's confidence.
func Confidence(score float64) float32 { return float32(interp(score, tfAnchors, confAnchors)) }

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// ---- collections ----

var galleryName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,48}$`)

// collection resolves a collection id to an existing gallery.
func (h *handler) collection(ctx context.Context, id string) (store.Gallery, error) {
	if !galleryName.MatchString(id) {
		return store.Gallery{}, fail(http.StatusNotFound, "collection not found")
	}
	page, err := h.svc.ListGalleries(ctx, store.ListOptions{Limit: store.MaxLimit})
	for err == nil {
		for _, g := range page.Items {
			if g.Name == id {
				return g, nil
			}
		}
		if page.Next == "" {
			break
		}
		page, err = h.svc.ListGalleries(ctx, store.ListOptions{Cursor: page.Next, Limit: store.MaxLimit})
	}
	if err != nil {
		return store.Gallery{}, err
	}
	return store.Gallery{}, fail(http.StatusNotFound, "collection not found")
}

func newCollectionID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "tf-" + hex.EncodeToString(b), nil
}

func (h *handler) createCollection(r *http.Request, body []byte) (reply, error) {
	m, err := object(body)
	if err != nil {
		return reply{}, err
	}
	name, err := required(m, "name")
	if err != nil {
		return reply{}, err
	}
	unknowns := false
	if raw, has := m["unknowns"]; has && strings.TrimSpace(string(raw)) != "null" {
		if err := json.Unmarshal(raw, &unknowns); err != nil {
			return reply{}, bad("unknowns must be a boolean")
		}
	}
	id, err := newCollectionID()
	if err != nil {
		return reply{}, err
	}
	if _, err := h.svc.CreateGallery(r.Context(), store.Gallery{Name: id, Meta: store.Metadata{marker: true, "name": name, "unknowns": unknowns}}); err != nil {
		return reply{}, err
	}
	return ok(map[string]string{"collection_id": id}, "collection created successfully"), nil
}

// personFaces lists every face of a person, oldest first.
func (h *handler) personFaces(ctx context.Context, id string) ([]store.Face, error) {
	var out []store.Face
	cursor := ""
	for {
		page, err := h.svc.ListFaces(ctx, store.ListOptions{PersonID: id, Cursor: cursor, Limit: store.MaxLimit})
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, fail(http.StatusNotFound, "enrollment not found")
			}
			return nil, err
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out, nil
		}
		cursor = page.Next
	}
}

func (h *handler) enrollment(ctx context.Context, id string) (store.Person, error) {
	p, err := h.svc.GetPerson(ctx, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return p, fail(http.StatusNotFound, "enrollment not found")
	}
	return p, err
}

func (h *handler) updateCollection(r *http.Request, body []byte) (reply, error) {
	m, err := object(body)
	if err != nil {
		return reply{}, err
	}
	eid, err := required(m, "enrollment_id")
	if err != nil {
		return reply{}, err
	}
	cid, err := required(m, "collection_id")
	if err != nil {
		return reply{}, err
	}
	if _, err := h.collection(r.Context(), cid); err != nil {
		return reply{}, err
	}
	if _, err := h.enrollment(r.Context(), eid); err != nil {
		return reply{}, err
	}
	faces, err := h.personFaces(r.Context(), eid)
	if err != nil {
		return reply{}, err
	}
	for _, f := range faces {
		if _, err := h.svc.UpdateFace(r.Context(), f.ID, service.FaceUpdate{Galleries: &service.GalleryChange{Add: []string{cid}}}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return reply{}, err
		}
	}
	return ok(map[string]string{"collection_id": cid}, "collection updated successfully"), nil
}

func (h *handler) deleteCollection(r *http.Request, body []byte) (reply, error) {
	m, err := object(body)
	if err != nil {
		return reply{}, err
	}
	cid, err := required(m, "collection_id")
	if err != nil {
		return reply{}, err
	}
	if _, err := h.collection(r.Context(), cid); err != nil {
		return reply{}, err
	}
	if err := h.svc.DeleteGallery(r.Context(), cid, false); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return reply{}, fail(http.StatusNotFound, "collection not found")
		}
		if errors.Is(err, store.ErrInvalid) || errors.Is(err, service.ErrInvalid) {
			return reply{}, bad("collection cannot be deleted: it is the default gallery or holds faces in no other gallery")
		}
		return reply{}, err
	}
	return reply{data: fmt.Sprintf("Entity *%s* has been deleted", cid)}, nil
}

// Collection is one element of the collection list.
type Collection struct {
	ClassifierURL string   `json:"classifier_url"`
	Created       string   `json:"created"`
	Enrollments   []string `json:"enrollments"`
	ID            string   `json:"id"`
	LabelEncoder  string   `json:"label_encoder"`
	Name          string   `json:"name"`
	Owner         string   `json:"owner"`
	Unknown       bool     `json:"unknown"`
	Updated       string   `json:"updated"`
}

func (h *handler) listCollections(r *http.Request, _ []byte) (reply, error) {
	ctx := r.Context()
	out := []Collection{}
	cursor := ""
	for {
		page, err := h.svc.ListGalleries(ctx, store.ListOptions{Cursor: cursor, Limit: store.MaxLimit})
		if err != nil {
			return reply{}, err
		}
		for _, g := range page.Items {
			if v, _ := g.Meta[marker].(bool); !v {
				continue
			}
			name, _ := g.Meta["name"].(string)
			unknown, _ := g.Meta["unknowns"].(bool)
			ts := g.CreatedAt.UTC().Format(timeLayout)
			c := Collection{Created: ts, Updated: ts, ID: g.Name, Name: name, Unknown: unknown, Enrollments: []string{}}
			fc := ""
			for {
				fp, err := h.svc.ListFaces(ctx, store.ListOptions{Gallery: g.Name, Cursor: fc, Limit: store.MaxLimit})
				if err != nil {
					return reply{}, err
				}
				for _, f := range fp.Items {
					if !slices.Contains(c.Enrollments, f.PersonID) {
						c.Enrollments = append(c.Enrollments, f.PersonID)
					}
				}
				if fp.Next == "" {
					break
				}
				fc = fp.Next
			}
			out = append(out, c)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created < out[j].Created })
	return ok(out, "collections listed successfully"), nil
}

func (h *handler) train(r *http.Request, body []byte) (reply, error) {
	m, err := object(body)
	if err != nil {
		return reply{}, err
	}
	cid, err := required(m, "collection_id")
	if err != nil {
		return reply{}, err
	}
	if _, err := h.collection(r.Context(), cid); err != nil {
		return reply{}, err
	}
	return ok(map[string]any{"collection_id": cid, "trained": true}, "classifier is up to date (faced's index is always current)"), nil
}

// ---- enrollments ----

func (h *handler) enroll(r *http.Request, body []byte) (reply, error) {
	ctx := r.Context()
	m, err := object(body)
	if err != nil {
		return reply{}, err
	}
	photos, err := images(m)
	if err != nil {
		return reply{}, err
	}
	name, _, err := str(m, "name")
	if err != nil {
		return reply{}, err
	}
	cid, hasCollection, err := str(m, "collection_id")
	if err != nil {
		return reply{}, err
	}
	if hasCollection {
		if cid = strings.TrimSpace(cid); cid == "" {
			hasCollection = false
		} else if _, err := h.collection(ctx, cid); err != nil {
			return reply{}, err
		}
	}
	release, err := api.AcquireFrom(ctx, h.q)
	if err != nil {
		return reply{}, err
	}
	p, faces, err := h.svc.Enroll(ctx, service.EnrollRequest{
		Person:    store.Person{Name: name, Meta: store.Metadata{marker: true}},
		Photos:    photos,
		FaceInput: service.FaceInput{Selector: face.SelectBiggest},
	})
	release()
	if err != nil {
		return reply{}, err
	}
	if hasCollection {
		for _, f := range faces {
			if _, err := h.svc.UpdateFace(ctx, f.ID, service.FaceUpdate{Galleries: &service.GalleryChange{Add: []string{cid}}}); err != nil {
				// Undo: enroll is all or nothing.
				if derr := h.svc.DeletePerson(context.WithoutCancel(ctx), p.ID); derr != nil {
					h.logger.Error("trueface: undo enroll", "person", p.ID, "err", derr)
				}
				if errors.Is(err, store.ErrNotFound) {
					return reply{}, fail(http.StatusNotFound, "collection not found")
				}
				return reply{}, err
			}
		}
	}
	return ok(map[string]string{"enrollment_id": p.ID}, "enrollment processed successfully"), nil
}

func (h *handler) updateEnroll(r *http.Request, body []byte) (reply, error) {
	ctx := r.Context()
	m, err := object(body)
	if err != nil {
		return reply{}, err
	}
	eid, err := required(m, "enrollment_id")
	if err != nil {
		return reply{}, err
	}
	photos, err := images(m)
	if err != nil {
		return reply{}, err
	}
	if _, err := h.enrollment(ctx, eid); err != nil {
		return reply{}, err
	}
	existing, err := h.personFaces(ctx, eid)
	if err != nil {
		return reply{}, err
	}
	var galleries []string
	for _, f := range existing {
		for _, g := range f.Galleries {
			if !slices.Contains(galleries, g) {
				galleries = append(galleries, g)
			}
		}
	}
	release, err := api.AcquireFrom(ctx, h.q)
	if err != nil {
		return reply{}, err
	}
	defer release()
	if _, err := h.svc.AddFaces(ctx, eid, photos, service.FaceInput{Galleries: galleries, Selector: face.SelectBiggest}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return reply{}, fail(http.StatusNotFound, "enrollment not found")
		}
		return reply{}, err
	}
	return ok(map[string]string{"enrollment_id": eid}, "enrollment updated successfully"), nil
}

func (h *handler) deleteEnroll(r *http.Request, body []byte) (reply, error) {
	m, err := object(body)
	if err != nil {
		return reply{}, err
	}
	eid, err := required(m, "enrollment_id")
	if err != nil {
		return reply{}, err
	}
	if _, err := h.enrollment(r.Context(), eid); err != nil {
		return reply{}, err
	}
	if err := h.svc.DeletePerson(r.Context(), eid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return reply{}, fail(http.StatusNotFound, "enrollment not found")
		}
		return reply{}, err
	}
	return reply{data: fmt.Sprintf("Enrollment *%s* has been deleted", eid)}, nil
}

// ---- recognition ----

func (h *handler) match(r *http.Request, body []byte) (reply, error) {
	ctx := r.Context()
	m, err := object(body)
	if err != nil {
		return reply{}, err
	}
	photo, err := image(m, "img")
	if err != nil {
		return reply{}, err
	}
	id, err := required(m, "id")
	if err != nil {
		return reply{}, err
	}
	th, _, err := threshold(m, DefaultThreshold)
	if err != nil {
		return reply{}, err
	}
	if _, err := h.enrollment(ctx, id); err != nil {
		return reply{}, err
	}
	listed, err := h.personFaces(ctx, id)
	if err != nil {
		return reply{}, err
	}
	var stored []store.Face
	for _, lf := range listed {
		if lf.EmbedderID != h.svc.EmbedderID() {
			continue
		}
		f, err := h.svc.GetFace(ctx, lf.ID)
		if err == nil {
			stored = append(stored, f)
		}
	}
	if len(stored) == 0 {
		return reply{}, fail(http.StatusNotFound, "enrollment has no face to match")
	}
	release, err := api.AcquireFrom(ctx, h.q)
	if err != nil {
		return reply{}, err
	}
	faces, err := h.svc.Detect(ctx, photo, face.Options{Embed: true, Selector: face.SelectBiggest})
	release()
	if err != nil {
		return reply{}, err
	}
	if len(faces) == 0 {
		return reply{}, bad("no face detected")
	}
	data := map[string]any{}
	for i, f := range stored {
		s := round6(Score(h.svc.Confidence(models.Cosine(faces[0].Embedding, f.Embedding))))
		data[fmt.Sprintf("emb%d_score", i)] = s
		data[fmt.Sprintf("emb%d_match", i)] = s >= th
	}
	return ok(data, "face processed successfully"), nil
}

func (h *handler) identify(r *http.Request, body []byte) (reply, error) {
	ctx := r.Context()
	m, err := object(body)
	if err != nil {
		return reply{}, err
	}
	photo, err := image(m, "img")
	if err != nil {
		return reply{}, err
	}
	cid, err := required(m, "collection_id")
	if err != nil {
		return reply{}, err
	}
	g, err := h.collection(ctx, cid)
	if err != nil {
		return reply{}, err
	}
	def := LooseThreshold
	if u, _ := g.Meta["unknowns"].(bool); u {
		def = DefaultThreshold
	}
	th, _, err := threshold(m, def)
	if err != nil {
		return reply{}, err
	}
	release, err := api.AcquireFrom(ctx, h.q)
	if err != nil {
		return reply{}, err
	}
	res, err := h.svc.Identify(ctx, service.IdentifyRequest{
		Photo:     photo,
		Galleries: []string{cid},
		N:         1,
		Threshold: service.Threshold{Value: Confidence(th)},
		Selector:  face.SelectBiggest,
	})
	release()
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return reply{}, fail(http.StatusNotFound, "collection not found")
		}
		return reply{}, err
	}
	if len(res) == 0 {
		return reply{}, bad("no face detected")
	}
	data := map[string]any{"name": nil, "key": nil}
	if len(res[0].Matches) > 0 {
		best := res[0].Matches[0]
		data["key"] = best.Person.ID
		if best.Person.Name != "" {
			data["name"] = best.Person.Name
		}
		data["score"] = round6(Score(best.Confidence))
		// The SDKs read "confidence": the same number (package doc).
		data["confidence"] = data["score"]
	}
	return ok(data, "identify processed successfully"), nil
}

// ---- detection ----

// FaceOut is one detected face.
type FaceOut struct {
	BoundingBox [5]float64 `json:"bounding_box"`
	Points      []int      `json:"points"`
}

func truthy(v string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	return err == nil && b
}

func (h *handler) facedetect(r *http.Request, body []byte) (reply, error) {
	photo, err := photoBody(r, body)
	if err != nil {
		return reply{}, err
	}
	q := r.URL.Query()
	raw := truthy(q.Get("rawlandmarks")) || truthy(q.Get("rawlandmark"))
	release, err := api.AcquireFrom(r.Context(), h.q)
	if err != nil {
		return reply{}, err
	}
	faces, err := h.svc.Detect(r.Context(), photo, face.Options{Landmarks68: raw, Selector: face.SelectAll})
	release()
	if err != nil {
		return reply{}, err
	}
	out := []FaceOut{}
	for _, f := range faces {
		pts := f.Landmarks[:]
		if raw {
			if len(f.Landmarks68) == 0 {
				return reply{}, &apiError{status: http.StatusServiceUnavailable, msg: "model not configured on this device", err: errors.New("no 68 landmarks")}
			}
			pts = f.Landmarks68
		}
		o := FaceOut{
			BoundingBox: [5]float64{float64(f.Box.X1), float64(f.Box.Y1), float64(f.Box.X2), float64(f.Box.Y2), float64(f.Score)},
			Points:      make([]int, 2*len(pts)),
		}
		for i, p := range pts {
			o.Points[i] = int(math.Round(float64(p.X)))
			o.Points[len(pts)+i] = int(math.Round(float64(p.Y)))
		}
		out = append(out, o)
	}
	return ok(map[string]any{"faces": out}, "face processed successfully"), nil
}

func (h *handler) spdetect(r *http.Request, body []byte) (reply, error) {
	photo, err := photoBody(r, body)
	if err != nil {
		return reply{}, err
	}
	release, err := api.AcquireFrom(r.Context(), h.q)
	if err != nil {
		return reply{}, err
	}
	faces, err := h.svc.Liveness(r.Context(), photo, face.SelectBiggest)
	release()
	if err != nil {
		return reply{}, err
	}
	if len(faces) == 0 {
		return reply{}, bad("no face detected")
	}
	if faces[0].Liveness == nil {
		return reply{}, &apiError{status: http.StatusServiceUnavailable, msg: "model not configured on this device", err: errors.New("no liveness score")}
	}
	live := float64(*faces[0].Liveness)
	class, score := "real", live
	if live < 0.5 {
		class, score = "fake", 1-live
	}
	k := make([]byte, 16)
	if _, err := rand.Read(k); err != nil {
		return reply{}, err
	}
	return ok(map[string]any{
		"class":   class,
		"key":     hex.EncodeToString(k),
		"score":   round6(score),
		"success": true,
	}, "data processed successfully"), nil
}
