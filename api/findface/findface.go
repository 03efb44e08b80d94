// Package findface serves NtechLab FindFace's face API (v0, plus /v1/detect)
// on top of package service, so that clients written against FindFace work
// unchanged when given faced's base URL (the mount prefix, e.g.
// https://device/compat/findface, or the root of the dialect's own listener,
// dialects.findface.listen) and a faced API key.
//
// Endpoints, relative to the base URL, each exactly as written and with a
// trailing slash, and each under /v0 (the document), /v1 and with no
// version prefix (see "Versions" below); nothing else is routed, so an
// unknown path, even one below a known route, is 404:
//
//	POST   /v1/detect/, /v0/detect/    faces with age, gender, emotions
//	POST   /v0/verify/                 photo1 vs photo2
//	POST   /v0/identify/               search the galleries
//	POST   /v0/faces/gallery/{g}/identify/  search gallery g
//	POST   /v0/face/                   enrol
//	GET    /v0/face/id/{id}/           get a face
//	PUT    /v0/face/id/{id}/           update meta, person_id, galleries
//	DELETE /v0/face/id/{id}/           delete (204)
//	GET    /v0/face/meta/{meta}/       faces with a meta
//	DELETE /v0/face/meta/{meta}/       delete the faces with a meta (204)
//	GET    /v0/faces/                  every face
//	GET    /v0/faces/gallery/{g}/      the faces of gallery g
//	GET    /v0/faces/gallery/{g}/meta/{meta}/  faces of g with a meta
//	GET    /v0/meta/                   every meta with a count and a face
//	GET    /v0/meta/gallery/{g}/       the same within gallery g
//	GET    /v0/galleries/              gallery names
//	POST   /v0/galleries/{name}/       create a gallery (201)
//	POST   /v0/galleries/              create, {"name"} in the body (201)
//	DELETE /v0/galleries/{name}/       delete a gallery (204)
//	GET    /v0/docs/, /v0/docs/{v}/    versions and endpoint lists, no auth
//	GET|POST /v0/person/id/{id}/, /v0/person/history/id/{id}/ and
//	         /person/history/id/{id}/  a person's history (the document's
//	                                   example path has no /v0)
//	GET|POST /v0/history/search/       event history, paged
//
// Real clients this package accommodates beyond the document (issue 19),
// each replayed request by request in clients_test.go:
//
//   - a Go FindFace client: base URL ending in /v1/, paths without a
//     trailing slash, absolute paths ("/faces") that resolve to the host's
//     root (served by the unversioned routes, at the root of the dialect's
//     own listener), its options struct sent as the JSON body of GETs, null
//     for unset fields, POST /galleries with {"name"}, gallery-scoped
//     lists and identify, a "thumbnail" field in faces (TestGoClient);
//   - two Ruby gems: form-encoded bodies with galleries[]= arrays, the
//     gallery-scoped face, meta and identify routes, POST /v0/detect/,
//     DELETE /v0/galleries/{name} and DELETE /v0/face/meta/{meta}; JSON
//     bodies with identify's box as "bbox" (as /face takes it) rather than
//     the document's x1..y2 (TestRubyGems);
//   - a PHP client: JSON to /v1/face/ and /v1/identify/ with empty bbox
//     and galleries arrays and a numeric threshold, face lists paged with
//     ?max_id=&min_id= (TestPHPClient);
//   - a CRM's face-ID module (PHP): multipart photo files to POST
//     /v0/faces/gallery/{g}/identify/ with threshold=medium
//     (TestCRMModule);
//   - clients that read a string error code: error_code (TestErrorCodes).
//
// Choices where the document is vague:
//
//   - Authentication: "Authorization: Token <full faced key>" only (scheme
//     case-insensitive); any other style or no key is 401, a key without
//     the scope 403. Writes (face, face PUT/DELETE, gallery create) need
//     write; the rest read. /v0/docs needs nothing.
//
//   - Requests: a JSON object, multipart/form-data or urlencoded form;
//     query parameters fill fields the body lacks. JSON with trailing
//     commas (as in the document's history example) is tolerated. Photos
//     (photo, photo1, photo2) are an uploaded file part of that name or a
//     base64 string (optionally a data: URL), or an http(s) URL, fetched
//     only from the hosts the device allow-lists (api.FetchConfig; none by
//     default, then the URL is refused with 400 {"code":400,...}).
//     Bodies are capped at 20 MiB (413).
//
//   - Errors: {"code": <HTTP status>, "error_code": "<CODE>", "reason":
//     "<text>"}; "Too many faces: N" (mf_selector reject) adds "faces" with
//     every box. code stays the document's number; error_code is the
//     string some clients read (FindFace's later servers put it in "code";
//     faced cannot, without breaking the document's clients, so it is a
//     field of its own that neither kind of client trips over): BAD_PARAM,
//     EXTRACTION_ERROR (unreadable photo, no face, too many faces, a bbox
//     over no face), URL_NOT_ALLOWED, FETCH_ERROR, UNAUTHORIZED, FORBIDDEN,
//     NOT_FOUND, METHOD_NOT_ALLOWED, ALREADY_EXISTS, TOO_LARGE,
//     UNSUPPORTED_FORMAT, BUSY, TIMEOUT, INTERNAL_ERROR. Statuses: 400 bad
//     parameter, no face, bad photo; 401; 403; 404 unknown face, person,
//     gallery or path; 405 (with Allow); 409 gallery exists; 413; 415
//     image format; 429 queue full (Retry-After: 1); 503 timeout; 500.
//
//   - Versions: the document serves detect under /v1 and the rest under
//     /v0; clients use /v1 (and no prefix) for everything, so every route
//     answers under all three. The routes are identical.
//
//   - GET bodies are ignored (HTTP gives them no meaning; a Go client sends
//     its options struct in them), except on the person-history and
//     history-search routes, whose document example is a GET with a JSON
//     body; there a body that does not parse is ignored too.
//
//   - Form arrays: "galleries[]=a&galleries[]=b" (PHP and Rails clients)
//     and a repeated name are lists.
//
//   - Gallery routes: an unknown gallery is 404 for the gallery-scoped
//     lists and identify. Deleting a gallery deletes the faces that are in
//     no other gallery (a face enrolled here is always in "default" too,
//     unless PUT changed that); "default" cannot be deleted (400). The face
//     lists are whole (no next_page is ever sent); max_id and min_id, which
//     clients send to page, keep the faces with a smaller, respectively
//     greater, id (0 or empty: no bound).
//
//   - Boxes: {"x1","x2","y1","y2"} in integer pixels. The identify
//     results map key is FindFace's "[y2, x1, y1, x2]" (the document's
//     "[419, 236, 345, 311]" for x1=236 x2=311 y1=345 y2=419). Boxes sent by
//     clients (bbox, bbox1, bbox2, identify's x1..y2) may be [x1,y1,x2,y2]
//     arrays, {"x1",...} objects, a single box or a list, or such JSON as a
//     form string. A bbox restricts detection: every face is detected and,
//     per bbox, the one overlapping it best (IoU) is used; a bbox over no
//     face is 400. A bbox overrides mf_selector, as documented.
//
//   - Thresholds: strict, medium, low, none or a number in [0, 1] on
//     faced's calibrated confidence scale, where medium is 0.75, FindFace's
//     default. With none, verify omits "verified".
//
//   - mf_selector: biggest (default), reject or all. verify's top
//     "verified" is true when every face of photo1 matches a face of
//     photo2. identify answers every selected face (an empty array when it
//     matches nothing).
//
//   - Faces: id is faced's integer face id. meta is kept in the face's
//     metadata ("meta") and as the person's name. "photo" is always "":
//     faced keeps no photo URL; "thumbnail", which FindFace's later face
//     objects carry and clients read (the document's have none), is
//     always "" too. photo_hash is faced's SHA-256 hex of the uploaded
//     photo (64 digits, not FindFace's 32). timestamp is the
//     creation time, UTC, "2006-01-02T15:04:05.000000". person_id and
//     cam_id are added when known. galleries always include "default"
//     unless changed by PUT; listed galleries that do not exist yet are
//     created (a bad name is 400).
//
//   - person_id: FindFace's person id is the faced person's external id
//     (the namespace miicloud's customer_person_id uses too). A face
//     enrolled with person_id joins the faced person with that external id
//     (created if needed). A face without one gets a person of its own,
//     whose external id is set to the face's id (so person_id == id), unless
//     that external id is taken. PUT person_id moves the face to that
//     person; when no such person exists the face's current person is
//     renamed if the face is its only face, else it is 400 (faced cannot
//     create a person without a photo). A person left without faces is
//     deleted.
//
//   - mf_selector all on /v0/face enrols every face; faces other than the
//     biggest are enrolled from a crop of the photo around them (JPEG or
//     PNG, no EXIF rotation), so their stored box and hash are the crop's;
//     the original box and photo hash are kept in the face's metadata
//     ("findface_box", "findface_photo_hash") and reported here. Same for a
//     bbox that selects a face other than the biggest.
//
//   - detect: age is rounded to an integer; emotions lists every emotion
//     with probability at least 0.25, most likely first (at least one).
//     gender is "male" or "female".
//
//   - History: events are recorded by identify when it is given cam_id
//     (FindFace's video pipeline has no counterpart). history/search
//     takes person_id, cam_ids (numbers or strings), start, end (ISO 8601,
//     without a zone read as UTC), friend (matched or not) and limit (0:
//     all). next_page is "/v0/history/search?…" carrying every filter and
//     a cursor; results are newest first. Each result has id, person_id
//     (when known), face_id, cam_id, meta, friend, photo_hash (of the
//     matched face), photo and screenshot (""), timestamp and the box.
//
//   - Not served: the identify "strict" parameter is accepted and ignored
//     (faced has no shards; no X-Live-Servers header).
package findface

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/dialect"
	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
)

// MaxBodyBytes caps a request body.
const MaxBodyBytes = 20 << 20

// handler serves the routes; the Front does the rest.
type handler struct {
	svc   *service.Service
	front *dialect.Front[*request]
}

// New returns the dialect's handler; mount it with api.Server.Mount.
func New(svc *service.Service, q api.Queue, logger *slog.Logger) http.Handler {
	h := &handler{svc: svc}
	f := &dialect.Front[*request]{
		Name: "findface", Service: svc, Queue: q, Logger: logger,
		Key:         dialect.Scheme("Token"),
		MaxBody:     MaxBodyBytes,
		ContentType: "application/json; charset=UTF-8",
		// A GET body is ignored (HTTP gives it no meaning; a Go client
		// sends its options struct in it); history reads it (h.history).
		Parse: func(r *http.Request) (*request, error) { return h.parse(r, r.Method != http.MethodGet) },
		// Photo URLs are fetched before the inference slot is taken (those
		// of any of the three photo fields a request carries).
		BeforeSlot: func(r *request) error { return r.fetchURLs("photo", "photo1", "photo2") },
		Fail: func(err error) (int, any) {
			e := classify(err)
			code := e.code
			if code == "" {
				code = errorCodes[e.status]
			}
			return e.status, ErrorBody{Code: e.status, ErrorCode: code, Faces: e.faces, Reason: e.msg}
		},
	}
	// Each route is served under /v0 (the document), /v1 (which the
	// document uses for detect and some clients for everything) and with no
	// version (clients that resolve absolute paths such as "/faces"
	// against their base URL; the document's own history example has none).
	// The Front anchors every pattern: "p" and "p/" exactly, never a path
	// below (issue 19: POST /v0/face/gallery/G/identify enrolled the probe).
	h.front = f
	const read, write = auth.ScopeRead, auth.ScopeWrite
	var routes []dialect.Route[*request]
	for _, rt := range []dialect.Route[*request]{
		{Method: "POST", Pattern: "/detect", Scope: read, Slot: true, Serve: h.detect},
		{Method: "POST", Pattern: "/verify", Scope: read, Slot: true, Serve: h.verify},
		{Method: "POST", Pattern: "/identify", Scope: read, Slot: true, Serve: h.identify},
		{Method: "POST", Pattern: "/faces/gallery/{gallery}/identify", Scope: read, Slot: true, Serve: h.identify},
		{Method: "POST", Pattern: "/face", Scope: write, Slot: true, Serve: h.enroll},
		{Method: "GET", Pattern: "/face/id/{id}", Scope: read, Serve: h.getFace},
		{Method: "PUT", Pattern: "/face/id/{id}", Scope: write, Serve: h.putFace},
		{Method: "DELETE", Pattern: "/face/id/{id}", Scope: write, Serve: h.deleteFace},
		{Method: "GET", Pattern: "/face/meta/{meta}", Scope: read, Serve: h.byMeta},
		{Method: "DELETE", Pattern: "/face/meta/{meta}", Scope: write, Serve: h.deleteByMeta},
		{Method: "GET", Pattern: "/faces", Scope: read, Serve: h.faces},
		{Method: "GET", Pattern: "/faces/gallery/{gallery}", Scope: read, Serve: h.faces},
		{Method: "GET", Pattern: "/faces/gallery/{gallery}/meta/{meta}", Scope: read, Serve: h.byMeta},
		{Method: "GET", Pattern: "/meta", Scope: read, Serve: h.metas},
		{Method: "GET", Pattern: "/meta/gallery/{gallery}", Scope: read, Serve: h.metas},
		{Method: "GET", Pattern: "/galleries", Scope: read, Serve: h.galleries},
		{Method: "POST", Pattern: "/galleries", Scope: write, Serve: h.createGallery},
		{Method: "POST", Pattern: "/galleries/{name}", Scope: write, Serve: h.createGallery},
		{Method: "DELETE", Pattern: "/galleries/{name}", Scope: write, Serve: h.deleteGallery},
		{Method: "GET", Pattern: "/docs", Serve: h.docs},
		{Method: "GET", Pattern: "/docs/{version}", Serve: h.docs},
		{Method: "GET POST", Pattern: "/person/id/{pid}", Scope: read, Serve: h.history},
		{Method: "GET POST", Pattern: "/person/history/id/{pid}", Scope: read, Serve: h.history},
		{Method: "GET POST", Pattern: "/history/search", Scope: read, Serve: h.history},
	} {
		for _, v := range []string{"/v0", "/v1", ""} {
			versioned := rt
			versioned.Pattern = v + rt.Pattern
			routes = append(routes, versioned)
		}
	}
	return f.Handler(routes)
}

// answers are the errors' reasons by kind, in the order of their statuses.
var answers = dialect.Table[string]{
	Says: map[dialect.Kind]string{
		dialect.BadBody:          "Cannot read the request body",
		dialect.NoFace:           "No faces found on the photo",
		dialect.BadImage:         "Cannot read the image",
		dialect.Unauthorized:     "Authentication credentials were not provided or are invalid",
		dialect.Forbidden:        "Permission denied",
		dialect.NoRoute:          "Not found",
		dialect.NotFound:         "Not found",
		dialect.MethodNotAllowed: "Method not allowed",
		dialect.Duplicate:        "Already exists",
		dialect.BodyTooLarge:     "Request body too large",
		dialect.ImageTooLarge:    "Image too large",
		dialect.ImageFormat:      "Unsupported image format",
		dialect.Busy:             "Too many requests in progress, retry later",
		dialect.Internal:         "Internal error",
		dialect.Timeout:          "Request timed out",
	},
}

// apiError is an answer in the dialect's error style.
type apiError struct {
	status int
	msg    string
	code   string // error_code; "" means the status's (errorCodes)
	faces  []Box
}

func (e *apiError) Error() string { return strconv.Itoa(e.status) + " " + e.msg }

func badRequest(format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

// extraction is a 400 about the photo's content.
func extraction(format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...), code: CodeExtraction}
}

// ErrorBody is the dialect's error shape: the document's numeric code
// (the HTTP status) and reason, plus the string error_code that clients
// written for FindFace's later servers read.
type ErrorBody struct {
	Code      int    `json:"code"`
	ErrorCode string `json:"error_code"`
	Faces     []Box  `json:"faces,omitempty"`
	Reason    string `json:"reason"`
}

// Error codes (error_code), by cause.
const (
	CodeBadParam         = "BAD_PARAM"        // 400: a missing or invalid parameter or body
	CodeExtraction       = "EXTRACTION_ERROR" // 400: no usable face: unreadable photo, no face, too many, bbox over no face
	CodeURLNotAllowed    = "URL_NOT_ALLOWED"  // 400: a photo URL whose host is not allow-listed (or fetching is off)
	CodeFetch            = "FETCH_ERROR"      // 400: fetching an allowed photo URL failed
	CodeUnauthorized     = "UNAUTHORIZED"     // 401
	CodeForbidden        = "FORBIDDEN"        // 403
	CodeNotFound         = "NOT_FOUND"        // 404
	CodeMethod           = "METHOD_NOT_ALLOWED"
	CodeConflict         = "ALREADY_EXISTS" // 409
	CodeTooLarge         = "TOO_LARGE"      // 413
	CodeUnsupportedImage = "UNSUPPORTED_FORMAT"
	CodeBusy             = "BUSY"    // 429
	CodeTimeout          = "TIMEOUT" // 503
	CodeInternal         = "INTERNAL_ERROR"
)

// errorCodes is the error_code of an error that names none, by status.
var errorCodes = map[int]string{
	http.StatusBadRequest: CodeBadParam, http.StatusUnauthorized: CodeUnauthorized, http.StatusForbidden: CodeForbidden,
	http.StatusNotFound: CodeNotFound, http.StatusMethodNotAllowed: CodeMethod, http.StatusConflict: CodeConflict,
	http.StatusRequestEntityTooLarge: CodeTooLarge, http.StatusUnsupportedMediaType: CodeUnsupportedImage,
	http.StatusTooManyRequests: CodeBusy, http.StatusServiceUnavailable: CodeTimeout, http.StatusInternalServerError: CodeInternal,
}

func classify(err error) *apiError {
	var e *apiError
	var many *face.ErrTooManyFaces
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &many):
		out := &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("Too many faces: %d", len(many.Faces)), faces: []Box{}, code: CodeExtraction}
		for _, b := range many.Faces {
			out.faces = append(out.faces, boxJSON(b))
		}
		return out
	case dialect.KindOf(err) == dialect.Invalid || dialect.KindOf(err) == dialect.BadValue:
		return badRequest("Invalid parameter: %v", err)
	}
	return dialect.Classify(err, answers, func(k dialect.Kind, status int, msg string) *apiError {
		e := &apiError{status: status, msg: msg}
		if k == dialect.NoFace || k == dialect.BadImage {
			e.code = CodeExtraction
		}
		return e
	})
}

// status is a response without a body.
type status = dialect.Status

type request struct {
	*http.Request
	f     map[string]any
	files map[string][]byte
	q     api.Queue // for photo URLs
}

// parse reads the parameters: the body (unless useBody is false), then
// query parameters for the fields the body lacks. A GET body that cannot
// be read as parameters is ignored rather than refused.
func (h *handler) parse(r *http.Request, useBody bool) (*request, error) {
	req := &request{Request: r, f: map[string]any{}, files: map[string][]byte{}, q: h.front.Queue}
	if useBody {
		if err := req.readBody(); err != nil {
			if r.Method != http.MethodGet {
				return nil, err
			}
			req.f, req.files = map[string]any{}, map[string][]byte{}
		}
	}
	setValues(req.f, r.URL.Query())
	return req, nil
}

// readBody reads a multipart, urlencoded or JSON body into the request.
func (req *request) readBody() error {
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt == "multipart/form-data" || mt == "application/x-www-form-urlencoded" {
		form, err := dialect.ReadForm(req.Request, MaxBodyBytes)
		if err != nil {
			return err
		}
		setValues(req.f, form.Values)
		for k, f := range form.Files {
			req.files[k] = f.Data
		}
		return nil
	}
	b, err := dialect.ReadBody(req.Request)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return err
	}
	if err := json.Unmarshal(b, &req.f); err != nil {
		if err2 := json.Unmarshal(api.StripTrailingCommas(b), &req.f); err2 != nil {
			return badRequest("Invalid JSON body: %v", err)
		}
	}
	if req.f == nil { // the body was JSON null
		req.f = map[string]any{}
	}
	return nil
}

// setValues adds form or query values to f, keeping fields already set.
// "name[]" (PHP and Rails form arrays, e.g. galleries[]=a&galleries[]=b)
// and a repeated name are lists; a single value is a string.
func setValues(f map[string]any, vals map[string][]string) {
	for k, v := range vals {
		list := strings.HasSuffix(k, "[]")
		k = strings.TrimSuffix(k, "[]")
		if _, ok := f[k]; ok || len(v) == 0 {
			continue
		}
		if len(v) == 1 && !list {
			f[k] = v[0]
			continue
		}
		l := make([]any, len(v))
		for i := range v {
			l[i] = v[i]
		}
		f[k] = l
	}
}

func (r *request) has(k string) bool { _, ok := r.f[k]; return ok || r.files[k] != nil }

func (r *request) str(k string) string {
	switch v := r.f[k].(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

func (r *request) boolean(k string) (bool, error) {
	switch v := r.f[k].(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case float64:
		return v != 0, nil
	case string:
		if strings.TrimSpace(v) == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return false, badRequest("Invalid boolean %s", k)
		}
		return b, nil
	}
	return false, badRequest("Invalid boolean %s", k)
}

func (r *request) integer(k string, def int) (int, error) {
	s := r.str(k)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, badRequest("Invalid integer %s", k)
	}
	return n, nil
}

// list reads an array of strings or numbers, a JSON array string or a
// comma-separated string.
func (r *request) list(k string) ([]string, error) {
	return listOf(r.f[k], k)
}

func listOf(v any, k string) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		s := strings.TrimSpace(v)
		if strings.HasPrefix(s, "[") {
			var l []any
			if err := json.Unmarshal([]byte(s), &l); err != nil {
				return nil, badRequest("Invalid list %s", k)
			}
			return listOf(l, k)
		}
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	case float64:
		return []string{strconv.FormatFloat(v, 'f', -1, 64)}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			switch x := x.(type) {
			case string:
				out = append(out, x)
			case float64:
				out = append(out, strconv.FormatFloat(x, 'f', -1, 64))
			default:
				return nil, badRequest("Invalid list %s", k)
			}
		}
		return out, nil
	}
	return nil, badRequest("Invalid list %s", k)
}

// boxes reads a bbox parameter.
func (r *request) boxes(k string) ([]face.Box, error) {
	v := r.f[k]
	if s, ok := v.(string); ok {
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, badRequest("Invalid %s", k)
		}
	}
	if v == nil {
		return nil, nil
	}
	if b, ok := boxOf(v); ok {
		return []face.Box{b}, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, badRequest("Invalid %s", k)
	}
	var out []face.Box
	for _, x := range l {
		b, ok := boxOf(x)
		if !ok {
			return nil, badRequest("Invalid %s", k)
		}
		out = append(out, b)
	}
	return out, nil
}

func boxOf(v any) (face.Box, bool) {
	var coords []any // x1, y1, x2, y2
	switch v := v.(type) {
	case []any:
		coords = v
	case map[string]any:
		coords = []any{v["x1"], v["y1"], v["x2"], v["y2"]}
	}
	if len(coords) != 4 {
		return face.Box{}, false
	}
	var c [4]float32
	for i, x := range coords {
		switch x := x.(type) {
		case float64:
			c[i] = float32(x)
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 32)
			if err != nil {
				return face.Box{}, false
			}
			c[i] = float32(f)
		default:
			return face.Box{}, false
		}
	}
	return face.Box{X1: c[0], Y1: c[1], X2: c[2], Y2: c[3]}, c[2] > c[0] && c[3] > c[1]
}

// fetchURLs fetches the photos of the fields given as URLs, keeping them
// as if uploaded; a field that fails is the error photo would return.
func (r *request) fetchURLs(fields ...string) error {
	for _, k := range fields {
		if s, _ := r.f[k].(string); r.files[k] == nil && dialect.IsURL(s) {
			b, err := r.photo(k)
			if err != nil {
				return err
			}
			r.files[k] = b
		}
	}
	return nil
}

// photo reads an uploaded, base64 or URL photo; URLs are fetched only from
// the hosts the device allow-lists (none: refused).
func (r *request) photo(k string) ([]byte, error) {
	s, _ := r.f[k].(string)
	b, err := dialect.Photos{Fetch: dialect.FetchFrom(r.q)}.Read(r.Context(), r.files[k], s)
	var fetch *dialect.FetchError
	var p *api.Problem
	switch {
	case err == nil, errors.Is(err, face.ErrTooLarge):
		return b, err
	case errors.Is(err, dialect.ErrNoPhoto):
		return nil, badRequest("Parameter %s is required", k)
	case errors.Is(err, dialect.ErrURLNotAllowed):
		e := badRequest("Cannot fetch %s: this server does not download images from URLs; upload the image (multipart) or send it base64-encoded", k)
		e.code = CodeURLNotAllowed
		return nil, e
	case errors.As(err, &fetch):
		e := badRequest("Cannot fetch %s: %s", k, fetch.Err.Error())
		e.code = CodeFetch
		if errors.As(err, &p) && p.Code == "url_not_allowed" {
			e.code = CodeURLNotAllowed
		} else if errors.As(err, &p) && p.Code == "bad_photo" {
			e.code = CodeBadParam // a malformed URL
		}
		return nil, e
	}
	return nil, badRequest("Invalid %s: not an uploaded file nor base64", k)
}
