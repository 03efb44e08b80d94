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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/dialect"
	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/service"
)

// Limits and defaults of the dialect.
const (
	MaxImageBytes    = 5 << 20
	MaxBodyBytes     = 8 << 20
	MaxEnrollBytes   = 32 << 20 // POST/PUT /v1/enroll: up to 10 images
	MaxImages        = 10
	DefaultThreshold = 0.5 // match, and identify with unknowns
	LooseThreshold   = 0.4 // identify without unknowns
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
	svc   *service.Service
	front *dialect.Front[*request]
}

// New returns the dialect's handler; mount it with api.Server.Mount, which
// strips the prefix.
func New(svc *service.Service, q api.Queue, logger *slog.Logger) http.Handler {
	f := &dialect.Front[*request]{
		Name: "trueface", Service: svc, Queue: q, Logger: logger,
		Key:     dialect.Header("x-api-key"),
		MaxBody: MaxBodyBytes,
		Parse: func(r *http.Request) (*request, error) {
			b, err := dialect.ReadAll(r)
			return &request{Body: b}, err
		},
		Reply: func(result any) any {
			res, _ := result.(reply)
			return Envelope{Data: res.data, Message: res.msg, Success: true}
		},
		Fail: func(err error) (int, any) {
			var noFace *service.NoFaceError
			var e *dialect.Failure[string]
			if errors.As(err, &noFace) && !errors.As(err, &e) {
				err = bad(fmt.Sprintf("no face detected in img%d", noFace.Photo))
			}
			e = answers.Failure(err)
			return e.Status, Envelope{Message: &e.Says}
		},
	}
	h := &handler{svc: svc, front: f}
	const read, write = auth.ScopeRead, auth.ScopeWrite
	return f.Handler([]dialect.Route[*request]{
		{Method: "POST", Pattern: "/v1/spdetect", Scope: read, Slot: true, Serve: h.spdetect},
		{Method: "POST", Pattern: "/v1/facedetect", Scope: read, Slot: true, Serve: h.facedetect},
		{Method: "POST", Pattern: "/v1/enroll", Scope: write, Slot: true, MaxBody: MaxEnrollBytes, Serve: h.enroll},
		{Method: "PUT", Pattern: "/v1/enroll", Scope: write, Slot: true, MaxBody: MaxEnrollBytes, Serve: h.updateEnroll},
		{Method: "DELETE", Pattern: "/v1/enroll", Scope: write, Serve: h.deleteEnroll},
		{Method: "POST", Pattern: "/v1/collection", Scope: write, Serve: h.createCollection},
		{Method: "PUT", Pattern: "/v1/collection", Scope: write, Serve: h.updateCollection},
		{Method: "DELETE", Pattern: "/v1/collection", Scope: write, Serve: h.deleteCollection},
		{Method: "GET", Pattern: "/v1/collection", Scope: read, Serve: h.listCollections},
		{Method: "POST", Pattern: "/v1/train", Scope: write, Serve: h.train},
		{Method: "POST", Pattern: "/v1/match", Scope: read, Slot: true, Serve: h.match},
		{Method: "POST", Pattern: "/v1/identify", Scope: read, Slot: true, Serve: h.identify},
	})
}

// answers are the errors' messages by kind, in the order of their statuses.
var answers = dialect.Table[string]{
	Says: map[dialect.Kind]string{
		dialect.BodyTooLarge:     "request body too large",
		dialect.BadBody:          "cannot read request body",
		dialect.NoFace:           "no face detected",
		dialect.EmptyImage:       "empty image",
		dialect.BadImage:         "invalid image",
		dialect.ImageFormat:      "invalid image",
		dialect.ImageTooLarge:    "image too large",
		dialect.ManyPixels:       "image too large",
		dialect.SmallImage:       "image too small",
		dialect.TooManyFaces:     "too many faces",
		dialect.Invalid:          "invalid request",
		dialect.Duplicate:        "already exists",
		dialect.Unauthorized:     "invalid api key",
		dialect.Forbidden:        "api key lacks the scope for this request",
		dialect.NoRoute:          "not found",
		dialect.NotFound:         "not found",
		dialect.MethodNotAllowed: "method not allowed",
		dialect.Busy:             "too many requests",
		dialect.Internal:         "internal error",
		dialect.Timeout:          "request timed out",
		dialect.ModelMissing:     "model not configured on this device",
	},
	Plain400: true, // the document's table has no 409, 413 or 415
}

func fail(status int, msg string) error { return dialect.Fail(status, msg) }

func bad(msg string) error { return fail(http.StatusBadRequest, msg) }

// reply is a success answer: data and message (nil message is JSON null).
type reply struct {
	data any
	msg  *string
}

func ok(data any, msg string) reply { return reply{data: data, msg: &msg} }

// request is a request with its body, read as a JSON object on first use.
type request struct {
	*dialect.Body
	obj    map[string]json.RawMessage
	objErr error
}

// object parses the body as a JSON object.
func (r *request) object() (map[string]json.RawMessage, error) {
	if r.obj == nil && r.objErr == nil {
		if err := json.Unmarshal(r.Bytes, &r.obj); err != nil || r.obj == nil {
			r.obj, r.objErr = nil, bad("invalid JSON body")
		}
	}
	return r.obj, r.objErr
}

// str reads an optional string field; has reports it was present and not
// null.
func (r *request) str(k string) (s string, has bool, err error) {
	m, err := r.object()
	if err != nil {
		return "", false, err
	}
	raw, has := m[k]
	if !has || strings.TrimSpace(string(raw)) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, bad(k + " must be a string")
	}
	return s, true, nil
}

// required reads a required non-empty string field.
func (r *request) required(k string) (string, error) {
	s, _, err := r.str(k)
	if err == nil && strings.TrimSpace(s) == "" {
		err = bad(k + " is required")
	}
	return strings.TrimSpace(s), err
}

// image reads a required base64 image field.
func (r *request) image(k string) ([]byte, error) {
	s, _, err := r.str(k)
	if err != nil {
		return nil, err
	}
	b, err := dialect.Photos{MaxBytes: MaxImageBytes}.Read(r.Context(), nil, s)
	switch {
	case errors.Is(err, dialect.ErrNoPhoto):
		return nil, bad(k + " is required")
	case errors.Is(err, dialect.ErrPhotoTooLarge):
		return nil, bad(k + " exceeds 5 MiB")
	case err != nil:
		return nil, bad(k + " is not valid base64")
	}
	return b, nil
}

var imgKey = regexp.MustCompile(`^img[0-9]+$`)

// images reads img0..img9 in order.
func (r *request) images() ([][]byte, error) {
	m, err := r.object()
	if err != nil {
		return nil, err
	}
	for k := range m {
		if n, err := strconv.Atoi(strings.TrimPrefix(k, "img")); imgKey.MatchString(k) && (err != nil || n >= MaxImages || k != "img"+strconv.Itoa(n)) {
			return nil, bad("at most 10 images, img0 to img9")
		}
	}
	var out [][]byte
	for n := range MaxImages {
		if _, has := m["img"+strconv.Itoa(n)]; has {
			b, err := r.image("img" + strconv.Itoa(n))
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, bad("img0 is required")
	}
	return out, nil
}

// threshold reads an optional threshold on the Trueface scale.
func (r *request) threshold(def float64) (float64, bool, error) {
	m, err := r.object()
	if err != nil {
		return 0, false, err
	}
	v, given, err := dialect.Float(m["threshold"], 0, 1)
	if err != nil {
		return 0, false, bad("threshold must be a number from 0 to 1")
	}
	if !given {
		return def, false, nil
	}
	return v, true, nil
}

// photo reads the image of spdetect/facedetect: binary or {"img"}.
func (r *request) photo() ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if !isJSON && !strings.HasPrefix(mt, "image/") {
		isJSON = strings.HasPrefix(strings.TrimSpace(string(r.Bytes)), "{")
	}
	if isJSON {
		return r.image("img")
	}
	if len(r.Bytes) == 0 {
		return nil, bad("image body is empty")
	}
	if len(r.Bytes) > MaxImageBytes {
		return nil, bad("image exceeds 5 MiB")
	}
	return r.Bytes, nil
}
