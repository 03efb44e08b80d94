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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	_ "image/png" // decode PNG crops
	"io"
	"log/slog"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
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

const (
	// MaxBodyBytes caps a request body.
	MaxBodyBytes   = 20 << 20
	requestTimeout = 30 * time.Second
	timeLayout     = "2006-01-02T15:04:05.000000"
	metaKey        = "meta"
	boxKey         = "findface_box"
	hashKey        = "findface_photo_hash"
)

type handler struct {
	svc    *service.Service
	q      api.Queue
	logger *slog.Logger
	mux    *http.ServeMux
}

// New returns the dialect's handler; mount it with api.Server.Mount.
func New(svc *service.Service, q api.Queue, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, q: q, logger: logger, mux: http.NewServeMux()}
	// Every route is anchored: "p" and "p/" exactly ("{$}"), never a bare
	// trailing-slash pattern, which Go's mux would match for every path
	// below it (issue 19: POST /v0/face/gallery/G/identify enrolled the
	// probe). Each route is served under /v0 (the document), /v1 (which the
	// document uses for detect and some clients for everything) and with no
	// version (clients that resolve absolute paths such as "/faces"
	// against their base URL; the document's own history example has none).
	add := func(method, p, scope string, fn serve, o routeOpts) {
		for _, v := range []string{"/v0", "/v1", ""} {
			for _, pat := range []string{v + p, v + p + "/{$}"} {
				h.mux.Handle(method+" "+pat, h.route(scope, fn, o))
			}
		}
	}
	none := routeOpts{}
	add("POST", "/detect", auth.ScopeRead, h.detect, none)
	add("POST", "/verify", auth.ScopeRead, h.verify, none)
	add("POST", "/identify", auth.ScopeRead, h.identify, none)
	add("POST", "/faces/gallery/{gallery}/identify", auth.ScopeRead, h.identify, none)
	add("POST", "/face", auth.ScopeWrite, h.enroll, none)
	add("GET", "/face/id/{id}", auth.ScopeRead, h.getFace, none)
	add("PUT", "/face/id/{id}", auth.ScopeWrite, h.putFace, none)
	add("DELETE", "/face/id/{id}", auth.ScopeWrite, h.deleteFace, none)
	add("GET", "/face/meta/{meta}", auth.ScopeRead, h.byMeta, none)
	add("DELETE", "/face/meta/{meta}", auth.ScopeWrite, h.deleteByMeta, none)
	add("GET", "/faces", auth.ScopeRead, h.faces, none)
	add("GET", "/faces/gallery/{gallery}", auth.ScopeRead, h.faces, none)
	add("GET", "/faces/gallery/{gallery}/meta/{meta}", auth.ScopeRead, h.byMeta, none)
	add("GET", "/meta", auth.ScopeRead, h.metas, none)
	add("GET", "/meta/gallery/{gallery}", auth.ScopeRead, h.metas, none)
	add("GET", "/galleries", auth.ScopeRead, h.galleries, none)
	add("POST", "/galleries", auth.ScopeWrite, h.createGallery, none)
	add("POST", "/galleries/{name}", auth.ScopeWrite, h.createGallery, none)
	add("DELETE", "/galleries/{name}", auth.ScopeWrite, h.deleteGallery, none)
	add("GET", "/docs", "", h.docs, none)
	add("GET", "/docs/{version}", "", h.docs, none)
	// The document's history example is a GET with a JSON body: these
	// routes read a GET body, every other GET ignores it.
	getBody := routeOpts{getBody: true}
	for _, p := range []string{"/person/id/{pid}", "/person/history/id/{pid}"} {
		add("GET", p, auth.ScopeRead, h.history, getBody)
		add("POST", p, auth.ScopeRead, h.history, getBody)
	}
	add("GET", "/history/search", auth.ScopeRead, h.history, getBody)
	add("POST", "/history/search", auth.ScopeRead, h.history, getBody)
	return h
}

// routeOpts are a route's exceptions to the common handling.
type routeOpts struct {
	// getBody: a GET's body carries parameters (the document's history
	// example); elsewhere a GET body is ignored, as HTTP gives it no
	// meaning and some clients send their options struct in it.
	getBody bool
}

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
		writeError(w, &apiError{status: http.StatusMethodNotAllowed, msg: "Method not allowed"})
		return
	}
	writeError(w, &apiError{status: http.StatusNotFound, msg: "Not found"})
}

type capture struct {
	header http.Header
	status int
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) Write(b []byte) (int, error) { return len(b), nil }
func (c *capture) WriteHeader(status int)      { c.status = status }

type apiError struct {
	status int
	msg    string
	code   string // error_code; "" means the status's (errorCodes)
	faces  []Box
	err    error
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %v", e.status, e.msg, e.err) }

func badRequest(format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
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

func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	code := e.code
	if code == "" {
		code = errorCodes[e.status]
	}
	writeJSON(w, e.status, ErrorBody{Code: e.status, ErrorCode: code, Faces: e.faces, Reason: e.msg})
}

// extraction is a 400 about the photo's content.
func extraction(format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...), code: CodeExtraction}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":500,"error_code":"INTERNAL_ERROR","reason":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// status is a response without a body.
type status int

type serve func(r *request) (any, error)

func (h *handler) route(scope string, fn serve, o routeOpts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		body, err := h.serve(r, scope, fn, o)
		if err != nil {
			e := classify(err)
			if e.status >= 500 {
				h.logger.Error("findface: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, e)
			return
		}
		if s, ok := body.(status); ok {
			w.WriteHeader(int(s))
			return
		}
		writeJSON(w, http.StatusOK, body)
	})
}

func (h *handler) serve(r *http.Request, scope string, fn serve, o routeOpts) (any, error) {
	if scope != "" {
		token, ok := tokenOf(r.Header.Get("Authorization"))
		if !ok {
			return nil, service.ErrUnauthorized
		}
		if _, err := h.svc.Authenticate(r.Context(), token, scope); err != nil {
			return nil, err
		}
	}
	req, err := parse(r, r.Method != http.MethodGet || o.getBody)
	if f, ok := h.q.(Fetcher); ok && err == nil {
		req.fetch = f.FetchPhoto
		// With no host allow-listed, a URL is refused as not allowed.
		if e, ok := h.q.(interface{ FetchEnabled() bool }); ok && !e.FetchEnabled() {
			req.fetch = nil
		}
	}
	if err != nil {
		return nil, err
	}
	return fn(req)
}

func tokenOf(v string) (string, bool) {
	scheme, key, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Token") {
		return "", false
	}
	key = strings.TrimSpace(key)
	return key, key != ""
}

type request struct {
	*http.Request
	f     map[string]any
	files map[string][]byte
	// fetch downloads photo URLs when the server allows it (nil: refuse).
	fetch func(ctx context.Context, url string) ([]byte, error)
}

// Fetcher is implemented by an api.Queue that can also download photo URLs
// (api.Server, from its allow-listed hosts only).
type Fetcher interface {
	FetchPhoto(ctx context.Context, url string) ([]byte, error)
}

// parse reads the parameters: the body (unless useBody is false), then
// query parameters for the fields the body lacks. A GET body that cannot
// be read as parameters is ignored rather than refused.
func parse(r *http.Request, useBody bool) (*request, error) {
	req := &request{Request: r, f: map[string]any{}, files: map[string][]byte{}}
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
	r := req.Request
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(MaxBodyBytes); err != nil {
			return bodyError(err)
		}
		defer r.MultipartForm.RemoveAll()
		setValues(req.f, r.MultipartForm.Value)
		for k, fs := range r.MultipartForm.File {
			if len(fs) == 0 {
				continue
			}
			b, err := readPart(fs[0])
			if err != nil {
				return err
			}
			req.files[k] = b
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return bodyError(err)
		}
		setValues(req.f, r.PostForm)
	default:
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return bodyError(err)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			if err := json.Unmarshal(b, &req.f); err != nil {
				if err2 := json.Unmarshal(api.StripTrailingCommas(b), &req.f); err2 != nil {
					return badRequest("Invalid JSON body: %v", err)
				}
			}
			if req.f == nil { // the body was JSON null
				req.f = map[string]any{}
			}
		}
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

func readPart(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, bodyError(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || errors.Is(err, multipart.ErrMessageTooLarge) {
		return &apiError{status: http.StatusRequestEntityTooLarge, msg: "Request body too large"}
	}
	return badRequest("Cannot read the request body")
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
	num := func(x any) (float32, bool) {
		switch x := x.(type) {
		case float64:
			return float32(x), true
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 32)
			return float32(f), err == nil
		}
		return 0, false
	}
	switch v := v.(type) {
	case []any:
		if len(v) != 4 {
			return face.Box{}, false
		}
		var c [4]float32
		for i := range v {
			f, ok := num(v[i])
			if !ok {
				return face.Box{}, false
			}
			c[i] = f
		}
		return face.Box{X1: c[0], Y1: c[1], X2: c[2], Y2: c[3]}, c[2] > c[0] && c[3] > c[1]
	case map[string]any:
		var c [4]float32
		for i, k := range []string{"x1", "y1", "x2", "y2"} {
			f, ok := num(v[k])
			if !ok {
				return face.Box{}, false
			}
			c[i] = f
		}
		return face.Box{X1: c[0], Y1: c[1], X2: c[2], Y2: c[3]}, c[2] > c[0] && c[3] > c[1]
	}
	return face.Box{}, false
}

// photo reads an uploaded or base64 photo.
func (r *request) photo(k string) ([]byte, error) {
	if b := r.files[k]; b != nil {
		return b, nil
	}
	s, _ := r.f[k].(string)
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, badRequest("Parameter %s is required", k)
	}
	low := strings.ToLower(s)
	if strings.HasPrefix(low, "http://") || strings.HasPrefix(low, "https://") || strings.HasPrefix(low, "ftp://") {
		if r.fetch == nil || strings.HasPrefix(low, "ftp://") {
			e := badRequest("Cannot fetch %s: this server does not download images from URLs; upload the image (multipart) or send it base64-encoded", k)
			e.code = CodeURLNotAllowed
			return nil, e
		}
		b, err := r.fetch(r.Context(), s)
		if err != nil {
			e := badRequest("Cannot fetch %s: %s", k, err.Error())
			e.code = CodeFetch
			if p := (*api.Problem)(nil); errors.As(err, &p) && p.Code == "url_not_allowed" {
				e.code = CodeURLNotAllowed
			} else if errors.As(err, &p) && p.Code == "bad_photo" {
				e.code = CodeBadParam // a malformed URL
			} else if errors.Is(err, face.ErrTooLarge) {
				return nil, err
			}
			return nil, e
		}
		return b, nil
	}
	if b, err := api.DecodeBase64Photo(s, 0); err == nil {
		return b, nil
	}
	return nil, badRequest("Invalid %s: not an uploaded file nor base64", k)
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
	case errors.Is(err, service.ErrUnauthorized):
		return &apiError{status: http.StatusUnauthorized, msg: "Authentication credentials were not provided or are invalid"}
	case errors.Is(err, service.ErrForbidden):
		return &apiError{status: http.StatusForbidden, msg: "Permission denied"}
	case errors.Is(err, api.ErrBusy):
		return &apiError{status: http.StatusTooManyRequests, msg: "Too many requests in progress, retry later"}
	case errors.Is(err, service.ErrNoFace):
		return extraction("No faces found on the photo")
	case errors.Is(err, store.ErrNotFound):
		return &apiError{status: http.StatusNotFound, msg: "Not found"}
	case errors.Is(err, store.ErrDuplicate):
		return &apiError{status: http.StatusConflict, msg: "Already exists"}
	case errors.Is(err, face.ErrUnsupportedFormat):
		return &apiError{status: http.StatusUnsupportedMediaType, msg: "Unsupported image format"}
	case errors.Is(err, face.ErrTooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, msg: "Image too large"}
	case errors.Is(err, face.ErrEmpty), errors.Is(err, face.ErrCorrupt), errors.Is(err, face.ErrTooSmall), errors.Is(err, face.ErrTooManyPixels):
		return extraction("Cannot read the image")
	case errors.Is(err, store.ErrInvalid), errors.Is(err, service.ErrInvalid):
		return badRequest("Invalid parameter: %v", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apiError{status: http.StatusServiceUnavailable, msg: "Request timed out", err: err}
	}
	return &apiError{status: http.StatusInternalServerError, msg: "Internal error", err: err}
}

// Box is a face rectangle.
type Box struct {
	X1 int `json:"x1"`
	X2 int `json:"x2"`
	Y1 int `json:"y1"`
	Y2 int `json:"y2"`
}

func rnd(v float32) int { return int(math.Round(float64(v))) }

func boxJSON(b face.Box) Box { return Box{X1: rnd(b.X1), X2: rnd(b.X2), Y1: rnd(b.Y1), Y2: rnd(b.Y2)} }

// BoxKey is FindFace's identify results key: "[y2, x1, y1, x2]".
func BoxKey(b Box) string { return fmt.Sprintf("[%d, %d, %d, %d]", b.Y2, b.X1, b.Y1, b.X2) }

func iou(a, b face.Box) float32 {
	w := min(a.X2, b.X2) - max(a.X1, b.X1)
	hh := min(a.Y2, b.Y2) - max(a.Y1, b.Y1)
	if w <= 0 || hh <= 0 {
		return 0
	}
	in := w * hh
	return in / ((a.X2-a.X1)*(a.Y2-a.Y1) + (b.X2-b.X1)*(b.Y2-b.Y1) - in)
}

// pick returns, per bbox, the index of the face overlapping it best.
func pick(faces []face.Face, bboxes []face.Box) ([]int, error) {
	var out []int
	for _, bb := range bboxes {
		best, bi := float32(0), -1
		for i, f := range faces {
			if v := iou(f.Box, bb); v > best {
				best, bi = v, i
			}
		}
		if bi < 0 {
			return nil, extraction("No faces found in the bounding box")
		}
		out = append(out, bi)
	}
	return out, nil
}

func selectorOf(r *request) (face.Selector, error) {
	s := r.str("mf_selector")
	if s == "" {
		return face.SelectBiggest, nil
	}
	sel, err := face.ParseSelector(strings.ToLower(s))
	if err != nil {
		return "", badRequest("Invalid mf_selector %q: want reject, biggest or all", s)
	}
	return sel, nil
}

// DetectedFace is a /v1/detect face.
type DetectedFace struct {
	Age      *int     `json:"age,omitempty"`
	Emotions []string `json:"emotions,omitempty"`
	Gender   string   `json:"gender,omitempty"`
	Box
}

func (h *handler) detect(r *request) (any, error) {
	img, err := r.photo("photo")
	if err != nil {
		return nil, err
	}
	var want [3]bool
	for i, k := range []string{"age", "gender", "emotions"} {
		if want[i], err = r.boolean(k); err != nil {
			return nil, err
		}
	}
	release, err := api.AcquireFrom(r.Context(), h.q)
	if err != nil {
		return nil, err
	}
	defer release()
	faces, err := h.svc.Detect(r.Context(), img, face.Options{Selector: face.SelectAll, Attributes: want[0] || want[1] || want[2]})
	if err != nil {
		return nil, err
	}
	out := []DetectedFace{}
	for _, f := range faces {
		d := DetectedFace{Box: boxJSON(f.Box)}
		if a := f.Attributes; a != nil {
			if want[0] {
				age := rnd(a.Age)
				d.Age = &age
			}
			if want[1] {
				d.Gender = a.Gender
			}
			if want[2] {
				d.Emotions = emotions(a)
			}
		}
		out = append(out, d)
	}
	return map[string]any{"faces": out}, nil
}

func emotions(a *face.Attributes) []string {
	type kv struct {
		k string
		v float32
	}
	var l []kv
	for k, v := range a.Emotions {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	out := []string{}
	for i, e := range l {
		if i == 0 || e.v >= 0.25 {
			out = append(out, e.k)
		}
	}
	if len(out) == 0 && a.Emotion != "" {
		out = append(out, a.Emotion)
	}
	return out
}

// embed detects and embeds the faces of a photo under a selector or bboxes.
func (h *handler) embed(ctx context.Context, img []byte, sel face.Selector, bboxes []face.Box, n int) ([]face.Face, error) {
	if len(bboxes) > 0 {
		sel = face.SelectAll
	}
	faces, err := h.svc.Detect(ctx, img, face.Options{Embed: true, Selector: sel})
	if err != nil {
		return nil, err
	}
	if len(faces) == 0 {
		return nil, extraction("No faces found on photo%s", map[int]string{0: "", 1: "1", 2: "2"}[n])
	}
	if len(bboxes) == 0 {
		return faces, nil
	}
	idx, err := pick(faces, bboxes)
	if err != nil {
		return nil, err
	}
	out := make([]face.Face, len(idx))
	for i, j := range idx {
		out[i] = faces[j]
	}
	return out, nil
}

// VerifyPair is one pair of a verify response.
type VerifyPair struct {
	BBox1      Box     `json:"bbox1"`
	BBox2      Box     `json:"bbox2"`
	Confidence float64 `json:"confidence"`
	Verified   *bool   `json:"verified,omitempty"`
}

// VerifyResponse is the verify response.
type VerifyResponse struct {
	Results  []VerifyPair `json:"results"`
	Verified *bool        `json:"verified,omitempty"`
}

func (h *handler) verify(r *request) (any, error) {
	p1, err := r.photo("photo1")
	if err != nil {
		return nil, err
	}
	p2, err := r.photo("photo2")
	if err != nil {
		return nil, err
	}
	b1, err := r.boxes("bbox1")
	if err != nil {
		return nil, err
	}
	b2, err := r.boxes("bbox2")
	if err != nil {
		return nil, err
	}
	thr, err := h.svc.Threshold(r.str("threshold"))
	if err != nil {
		return nil, badRequest("Invalid threshold: want strict, medium, low, none or a number from 0 to 1")
	}
	sel, err := selectorOf(r)
	if err != nil {
		return nil, err
	}
	release, err := api.AcquireFrom(r.Context(), h.q)
	if err != nil {
		return nil, err
	}
	defer release()
	fa, err := h.embed(r.Context(), p1, sel, b1, 1)
	if err != nil {
		return nil, err
	}
	fb, err := h.embed(r.Context(), p2, sel, b2, 2)
	if err != nil {
		return nil, err
	}
	out := VerifyResponse{Results: []VerifyPair{}}
	all := true
	for _, a := range fa {
		any := false
		for _, b := range fb {
			conf := h.svc.Confidence(models.Cosine(a.Embedding, b.Embedding))
			p := VerifyPair{BBox1: boxJSON(a.Box), BBox2: boxJSON(b.Box), Confidence: float64(conf)}
			if !thr.None {
				ok := thr.Accepts(conf)
				any = any || ok
				p.Verified = &ok
			}
			out.Results = append(out.Results, p)
		}
		all = all && any
	}
	if !thr.None {
		out.Verified = &all
	}
	return out, nil
}

// Face is FindFace's face object.
type Face struct {
	Galleries []string `json:"galleries"`
	ID        uint64   `json:"id"`
	Meta      string   `json:"meta"`
	Photo     string   `json:"photo"`
	PhotoHash string   `json:"photo_hash"`
	Thumbnail string   `json:"thumbnail"`
	Timestamp string   `json:"timestamp"`
	PersonID  any      `json:"person_id,omitempty"`
	CamID     any      `json:"cam_id,omitempty"`
	Box
}

// personIDOf shows a faced person's external id as FindFace's person_id
// (a number when it is one).
func personIDOf(ext string) any {
	if ext == "" {
		return nil
	}
	if n, err := strconv.ParseUint(ext, 10, 64); err == nil && strconv.FormatUint(n, 10) == ext {
		return n
	}
	return ext
}

func camOf(c string) any {
	if c == "" {
		return nil
	}
	if n, err := strconv.ParseUint(c, 10, 32); err == nil && strconv.FormatUint(n, 10) == c {
		return n
	}
	return c
}

func (h *handler) faceJSON(ctx context.Context, f store.Face, persons map[string]string) Face {
	meta, _ := f.Meta[metaKey].(string)
	out := Face{
		Galleries: f.Galleries, ID: f.ID, Meta: meta, PhotoHash: f.PhotoHash,
		Timestamp: f.CreatedAt.UTC().Format(timeLayout), CamID: camOf(f.CameraID),
		Box: boxJSON(face.Box{X1: f.Box[0], Y1: f.Box[1], X2: f.Box[2], Y2: f.Box[3]}),
	}
	if out.Galleries == nil {
		out.Galleries = []string{}
	}
	if hsh, ok := f.Meta[hashKey].(string); ok {
		out.PhotoHash = hsh
	}
	if l, ok := f.Meta[boxKey].([]any); ok && len(l) == 4 {
		var c [4]float32
		for i := range l {
			v, _ := l[i].(float64)
			c[i] = float32(v)
		}
		out.Box = boxJSON(face.Box{X1: c[0], Y1: c[1], X2: c[2], Y2: c[3]})
	}
	ext, ok := persons[f.PersonID]
	if !ok {
		if p, err := h.svc.GetPerson(ctx, f.PersonID); err == nil {
			ext = p.ExternalID
		}
		if persons != nil {
			persons[f.PersonID] = ext
		}
	}
	out.PersonID = personIDOf(ext)
	return out
}

// IdentifyMatch is one match of an identify response.
type IdentifyMatch struct {
	Confidence float64 `json:"confidence"`
	Face       Face    `json:"face"`
}

func (h *handler) identify(r *request) (any, error) {
	img, err := r.photo("photo")
	if err != nil {
		return nil, err
	}
	req := service.IdentifyRequest{Photo: img, Faces: true} // the document's results are faces
	if req.N, err = r.integer("n", 1); err != nil || req.N < 1 || req.N > 100 {
		return nil, badRequest("Invalid n: want an integer from 1 to 100")
	}
	if req.Threshold, err = h.svc.Threshold(r.str("threshold")); err != nil {
		return nil, badRequest("Invalid threshold: want strict, medium, low, none or a number from 0 to 1")
	}
	if req.Selector, err = selectorOf(r); err != nil {
		return nil, err
	}
	if g := r.PathValue("gallery"); g != "" {
		req.Galleries = []string{g} // /faces/gallery/{gallery}/identify
	} else if g := r.str("gallery"); g != "" {
		req.Galleries = []string{g}
	} else if req.Galleries, err = r.list("galleries"); err != nil {
		return nil, err
	}
	if c := r.str("cam_id"); c != "" {
		req.Record, req.CameraID = true, c
	}
	var bbox []face.Box
	if r.has("x1") || r.has("y1") || r.has("x2") || r.has("y2") {
		b, ok := boxOf(map[string]any{"x1": r.f["x1"], "y1": r.f["y1"], "x2": r.f["x2"], "y2": r.f["y2"]})
		if !ok {
			return nil, badRequest("Invalid bounding box x1, y1, x2, y2")
		}
		bbox = []face.Box{b}
	} else if bbox, err = r.boxes("bbox"); err != nil { // as /face takes it (a Ruby gem sends it)
		return nil, err
	}
	if len(bbox) > 0 {
		req.Selector = face.SelectAll
	}
	release, err := api.AcquireFrom(r.Context(), h.q)
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := h.svc.Identify(r.Context(), req)
	if err != nil {
		return nil, err
	}
	if len(bbox) > 0 {
		faces := make([]face.Face, len(res))
		for i := range res {
			faces[i] = res[i].Face
		}
		idx, err := pick(faces, bbox)
		if err != nil {
			return nil, err
		}
		picked := make([]service.IdentifiedFace, len(idx))
		for i, j := range idx {
			picked[i] = res[j]
		}
		res = picked
	}
	if len(res) == 0 {
		return nil, extraction("No faces found on the photo")
	}
	results := map[string][]IdentifyMatch{}
	persons := map[string]string{}
	for _, f := range res {
		l := []IdentifyMatch{}
		for _, m := range f.Matches {
			sf, err := h.svc.GetFace(r.Context(), m.FaceID)
			if err != nil {
				continue
			}
			persons[m.Person.ID] = m.Person.ExternalID
			l = append(l, IdentifyMatch{Confidence: float64(m.Confidence), Face: h.faceJSON(r.Context(), sf, persons)})
		}
		results[BoxKey(boxJSON(f.Face.Box))] = l
	}
	return map[string]any{"results": results}, nil
}

var galleryName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,48}$`)

func (h *handler) ensureGalleries(ctx context.Context, names []string) error {
	for _, g := range names {
		if !galleryName.MatchString(g) {
			return badRequest("Invalid gallery name %q: use [a-zA-Z0-9_-], at most 48 characters", g)
		}
		if _, err := h.svc.CreateGallery(ctx, store.Gallery{Name: g}); err != nil && !errors.Is(err, store.ErrDuplicate) {
			return err
		}
	}
	return nil
}

// crop cuts the photo around a face (with a margin) and re-encodes it.
func crop(img []byte, b face.Box) ([]byte, error) {
	src, _, err := image.Decode(bytes.NewReader(img))
	if err != nil {
		return nil, extraction("Cannot select this face: only JPEG or PNG photos can be cropped")
	}
	w, hh := b.X2-b.X1, b.Y2-b.Y1
	rect := image.Rect(int(b.X1-w*0.4), int(b.Y1-hh*0.4), int(b.X2+w*0.4), int(b.Y2+hh*0.4)).Intersect(src.Bounds())
	dst := image.NewRGBA(image.Rect(0, 0, rect.Dx(), rect.Dy()))
	draw.Draw(dst, dst.Bounds(), src, rect.Min, draw.Src)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 95}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (h *handler) enroll(r *request) (any, error) {
	img, err := r.photo("photo")
	if err != nil {
		return nil, err
	}
	sel, err := selectorOf(r)
	if err != nil {
		return nil, err
	}
	bbox, err := r.boxes("bbox")
	if err != nil {
		return nil, err
	}
	gals, err := r.list("galleries")
	if err != nil {
		return nil, err
	}
	if err := h.ensureGalleries(r.Context(), gals); err != nil {
		return nil, err
	}
	gals = append([]string{"default"}, slices.DeleteFunc(gals, func(g string) bool { return g == "default" })...)
	meta := r.str("meta")
	pid := r.str("person_id")
	cam := r.str("cam_id")
	release, err := api.AcquireFrom(r.Context(), h.q)
	if err != nil {
		return nil, err
	}
	defer release()
	// Which faces: nil means "the biggest, from the photo as is".
	var targets []face.Box
	if len(bbox) > 0 || sel == face.SelectAll {
		faces, err := h.svc.Detect(r.Context(), img, face.Options{Selector: face.SelectAll})
		if err != nil {
			return nil, err
		}
		if len(faces) == 0 {
			return nil, extraction("No faces found on the photo")
		}
		if len(bbox) > 0 {
			idx, err := pick(faces, bbox)
			if err != nil {
				return nil, err
			}
			for _, i := range idx {
				targets = append(targets, faces[i].Box)
			}
		} else {
			for _, f := range faces {
				targets = append(targets, f.Box)
			}
		}
		biggest := faces[0].Box
		for i, t := range targets {
			if t == biggest {
				targets[i] = face.Box{} // the photo as is
			}
		}
	} else {
		targets = []face.Box{{}}
	}
	hash := models.SHA256Hex(img)
	persons := map[string]string{}
	out := []Face{}
	for _, t := range targets {
		photo := img
		m := store.Metadata{metaKey: meta}
		s := sel
		if s == face.SelectAll || len(bbox) > 0 {
			s = face.SelectBiggest
		}
		if t != (face.Box{}) {
			if photo, err = crop(img, t); err != nil {
				return nil, err
			}
			m[boxKey] = []any{float64(t.X1), float64(t.Y1), float64(t.X2), float64(t.Y2)}
			m[hashKey] = hash
		}
		f, err := h.addFace(r.Context(), photo, pid, meta, service.FaceInput{Galleries: gals, Meta: m, CameraID: cam, Selector: s})
		if err != nil {
			return nil, err
		}
		out = append(out, h.faceJSON(r.Context(), f, persons))
	}
	return map[string]any{"results": out}, nil
}

// addFace enrols one face for person_id pid ("" : a person of its own).
func (h *handler) addFace(ctx context.Context, photo []byte, pid, name string, in service.FaceInput) (store.Face, error) {
	if pid != "" {
		p, err := h.svc.GetPersonByExternalID(ctx, pid)
		if err == nil {
			fs, err := h.svc.AddFaces(ctx, p.ID, [][]byte{photo}, in)
			if err != nil {
				return store.Face{}, err
			}
			return fs[0], nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.Face{}, err
		}
	}
	p, fs, err := h.svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ExternalID: pid, Name: name}, Photos: [][]byte{photo}, FaceInput: in})
	if err != nil {
		return store.Face{}, err
	}
	if pid == "" {
		ext := strconv.FormatUint(fs[0].ID, 10)
		if _, err := h.svc.UpdatePerson(ctx, p.ID, func(p *store.Person) error { p.ExternalID = ext; return nil }); err != nil {
			h.logger.Warn("findface: person id", "face", fs[0].ID, "err", err)
		}
	}
	return fs[0], nil
}

func faceID(r *request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, &apiError{status: http.StatusNotFound, msg: "Not found"}
	}
	return id, nil
}

func (h *handler) getFace(r *request) (any, error) {
	id, err := faceID(r)
	if err != nil {
		return nil, err
	}
	f, err := h.svc.GetFace(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return h.faceJSON(r.Context(), f, nil), nil
}

func (h *handler) putFace(r *request) (any, error) {
	id, err := faceID(r)
	if err != nil {
		return nil, err
	}
	f, err := h.svc.GetFace(r.Context(), id)
	if err != nil {
		return nil, err
	}
	var u service.FaceUpdate
	if r.has("meta") {
		m := store.Metadata{}
		for k, v := range f.Meta {
			m[k] = v
		}
		m[metaKey] = r.str("meta")
		u.Meta = &m
	}
	if v, ok := r.f["galleries"]; ok && v != nil {
		var c service.GalleryChange
		if s, ok := v.(string); ok {
			var x any
			if json.Unmarshal([]byte(s), &x) == nil {
				v = x
			}
		}
		switch v := v.(type) {
		case map[string]any:
			if len(v) != 1 {
				return nil, badRequest(`Invalid galleries: want one of {"add": [...]}, {"del": [...]}, {"set": [...]}`)
			}
			for k, l := range v {
				names, err := listOf(l, "galleries")
				if err != nil {
					return nil, err
				}
				switch k {
				case "add":
					if err := h.ensureGalleries(r.Context(), names); err != nil {
						return nil, err
					}
					c.Add = names
				case "del":
					c.Del = names
				case "set":
					if err := h.ensureGalleries(r.Context(), names); err != nil {
						return nil, err
					}
					c.Set, c.SetGiven = names, true
				default:
					return nil, badRequest(`Invalid galleries: want one of {"add": [...]}, {"del": [...]}, {"set": [...]}`)
				}
			}
		default:
			names, err := listOf(v, "galleries")
			if err != nil {
				return nil, err
			}
			if err := h.ensureGalleries(r.Context(), names); err != nil {
				return nil, err
			}
			c.Set, c.SetGiven = names, true
		}
		if c.SetGiven && len(c.Set) == 0 {
			return nil, badRequest("Invalid galleries: a face must stay in at least one gallery")
		}
		u.Galleries = &c
	}
	old := f.PersonID
	if pid := r.str("person_id"); pid != "" {
		p, err := h.svc.GetPersonByExternalID(r.Context(), pid)
		switch {
		case err == nil:
			u.PersonID = &p.ID
		case errors.Is(err, store.ErrNotFound):
			page, err := h.svc.ListFaces(r.Context(), store.ListOptions{PersonID: old, Limit: 2})
			if err != nil {
				return nil, err
			}
			if len(page.Items) > 1 {
				return nil, badRequest("Unknown person_id %s: faced can only rename a person whose only face this is", pid)
			}
			if _, err := h.svc.UpdatePerson(r.Context(), old, func(p *store.Person) error { p.ExternalID = pid; return nil }); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
	}
	f, err = h.svc.UpdateFace(r.Context(), id, u)
	if err != nil {
		return nil, err
	}
	if u.PersonID != nil && *u.PersonID != old {
		h.dropIfEmpty(r.Context(), old)
	}
	if u.Meta != nil {
		meta := r.str("meta")
		if _, err := h.svc.UpdatePerson(r.Context(), f.PersonID, func(p *store.Person) error { p.Name = meta; return nil }); err != nil {
			h.logger.Warn("findface: person name", "err", err)
		}
	}
	return h.faceJSON(r.Context(), f, nil), nil
}

func (h *handler) dropIfEmpty(ctx context.Context, pid string) {
	page, err := h.svc.ListFaces(ctx, store.ListOptions{PersonID: pid, Limit: 1})
	if err == nil && len(page.Items) == 0 {
		if err := h.svc.DeletePerson(ctx, pid); err != nil {
			h.logger.Warn("findface: drop empty person", "err", err)
		}
	}
}

func (h *handler) deleteFace(r *request) (any, error) {
	id, err := faceID(r)
	if err != nil {
		return nil, err
	}
	f, err := h.svc.GetFace(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if err := h.svc.DeleteFace(r.Context(), id); err != nil {
		return nil, err
	}
	h.dropIfEmpty(r.Context(), f.PersonID)
	return status(http.StatusNoContent), nil
}

// allFaces lists every face (of gallery, unless ""), oldest id first. An
// unknown gallery is store.ErrNotFound.
func (h *handler) allFaces(ctx context.Context, gallery string) ([]store.Face, error) {
	if gallery != "" {
		if err := h.galleryExists(ctx, gallery); err != nil {
			return nil, err
		}
	}
	var out []store.Face
	opts := store.ListOptions{Limit: store.MaxLimit, Gallery: gallery}
	for {
		page, err := h.svc.ListFaces(ctx, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			break
		}
		opts.Cursor = page.Next
	}
	slices.SortFunc(out, func(a, b store.Face) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

// byMeta lists the faces with a meta (of the path's gallery, if any).
func (h *handler) byMeta(r *request) (any, error) {
	meta := r.PathValue("meta")
	if meta == "" {
		return nil, badRequest("Invalid meta")
	}
	faces, err := h.allFaces(r.Context(), r.PathValue("gallery"))
	if err != nil {
		return nil, err
	}
	out := []Face{}
	persons := map[string]string{}
	for _, f := range faces {
		if m, _ := f.Meta[metaKey].(string); m == meta {
			out = append(out, h.faceJSON(r.Context(), f, persons))
		}
	}
	return map[string]any{"results": out}, nil
}

// deleteByMeta deletes every face with a meta (the Ruby gems'
// delete_by_meta); persons left without faces go too. 204, or 404 when no
// face has the meta.
func (h *handler) deleteByMeta(r *request) (any, error) {
	meta := r.PathValue("meta")
	faces, err := h.allFaces(r.Context(), "")
	if err != nil {
		return nil, err
	}
	n := 0
	for _, f := range faces {
		if m, _ := f.Meta[metaKey].(string); m != meta || meta == "" {
			continue
		}
		if err := h.svc.DeleteFace(r.Context(), f.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		h.dropIfEmpty(r.Context(), f.PersonID)
		n++
	}
	if n == 0 {
		return nil, &apiError{status: http.StatusNotFound, msg: "Not found"}
	}
	return status(http.StatusNoContent), nil
}

// faces lists every face, or the path's gallery's; max_id and min_id
// (FindFace's paging parameters, which clients send) keep the faces with
// a smaller, respectively greater, id.
func (h *handler) faces(r *request) (any, error) {
	var bounds [2]uint64
	for i, k := range []string{"max_id", "min_id"} {
		if v := r.str(k); v != "" && v != "0" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, badRequest("Invalid %s", k)
			}
			bounds[i] = n
		}
	}
	faces, err := h.allFaces(r.Context(), r.PathValue("gallery"))
	if err != nil {
		return nil, err
	}
	out := make([]Face, 0, len(faces))
	persons := map[string]string{}
	for _, f := range faces {
		if bounds[0] != 0 && f.ID >= bounds[0] || f.ID <= bounds[1] {
			continue
		}
		out = append(out, h.faceJSON(r.Context(), f, persons))
	}
	return map[string]any{"results": out}, nil
}

// MetaEntry is one /v0/meta result.
type MetaEntry struct {
	Count int    `json:"count"`
	Face  Face   `json:"face"`
	Meta  string `json:"meta"`
}

func (h *handler) metas(r *request) (any, error) {
	faces, err := h.allFaces(r.Context(), r.PathValue("gallery"))
	if err != nil {
		return nil, err
	}
	by := map[string]*MetaEntry{}
	var order []string
	persons := map[string]string{}
	for _, f := range faces {
		m, _ := f.Meta[metaKey].(string)
		if m == "" {
			continue
		}
		if e, ok := by[m]; ok {
			e.Count++
			continue
		}
		by[m] = &MetaEntry{Count: 1, Face: h.faceJSON(r.Context(), f, persons), Meta: m}
		order = append(order, m)
	}
	sort.Strings(order)
	out := make([]MetaEntry, 0, len(order))
	for _, m := range order {
		out = append(out, *by[m])
	}
	return map[string]any{"results": out}, nil
}

// galleryNames lists every gallery's name.
func (h *handler) galleryNames(ctx context.Context) ([]string, error) {
	out := []string{}
	opts := store.ListOptions{Limit: store.MaxLimit}
	for {
		page, err := h.svc.ListGalleries(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, g := range page.Items {
			out = append(out, g.Name)
		}
		if page.Next == "" {
			return out, nil
		}
		opts.Cursor = page.Next
	}
}

func (h *handler) galleryExists(ctx context.Context, name string) error {
	names, err := h.galleryNames(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(names, name) {
		return &apiError{status: http.StatusNotFound, msg: "Gallery not found"}
	}
	return nil
}

func (h *handler) galleries(r *request) (any, error) {
	out, err := h.galleryNames(r.Context())
	if err != nil {
		return nil, err
	}
	return map[string]any{"results": out}, nil
}

// createGallery serves POST /galleries/{name} (the document) and POST
// /galleries with the name in the body (a Go client and a Ruby gem).
func (h *handler) createGallery(r *request) (any, error) {
	name := r.PathValue("name")
	if name == "" {
		name = r.str("name")
	}
	if !galleryName.MatchString(name) {
		return nil, badRequest("Invalid gallery name: use [a-zA-Z0-9_-], at most 48 characters")
	}
	if _, err := h.svc.CreateGallery(r.Context(), store.Gallery{Name: name}); err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			return nil, &apiError{status: http.StatusConflict, msg: "Gallery already exists"}
		}
		return nil, err
	}
	return status(http.StatusCreated), nil
}

// deleteGallery deletes a gallery (204); faces in no other gallery are
// deleted with it. "default" cannot be deleted (400).
func (h *handler) deleteGallery(r *request) (any, error) {
	name := r.PathValue("name")
	if err := h.galleryExists(r.Context(), name); err != nil {
		return nil, err
	}
	if err := h.svc.DeleteGallery(r.Context(), name, true); err != nil {
		return nil, err
	}
	return status(http.StatusNoContent), nil
}

var docs = map[string][]string{
	"v0": {
		"POST /v0/detect/", "POST /v0/verify/", "POST /v0/identify/", "POST /v0/faces/gallery/<gallery>/identify/", "POST /v0/face/",
		"GET /v0/face/id/<id>/", "PUT /v0/face/id/<id>/", "DELETE /v0/face/id/<id>/", "GET /v0/face/meta/<meta>/",
		"DELETE /v0/face/meta/<meta>/", "GET /v0/faces/", "GET /v0/faces/gallery/<gallery>/", "GET /v0/faces/gallery/<gallery>/meta/<meta>/",
		"GET /v0/meta/", "GET /v0/meta/gallery/<gallery>/", "GET /v0/galleries/", "POST /v0/galleries/", "POST /v0/galleries/<gallery>",
		"DELETE /v0/galleries/<gallery>/", "GET /v0/docs", "GET /v0/docs/<version>", "GET /v0/person/id/<id>", "POST /v0/history/search",
	},
	"v1": {"POST /v1/detect/", "every v0 endpoint, under /v1/"},
}

func (h *handler) docs(r *request) (any, error) {
	v := r.PathValue("version")
	if v == "" {
		return map[string]any{"versions": []string{"v0", "v1"}}, nil
	}
	eps, ok := docs[v]
	if !ok {
		return nil, &apiError{status: http.StatusNotFound, msg: "Unknown API version " + v}
	}
	return map[string]any{"version": v, "endpoints": eps}, nil
}

func parseTime(s string) (time.Time, error) {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badRequest("Invalid time %q: want ISO 8601", s)
}

// HistoryEvent is one history result.
type HistoryEvent struct {
	ID         uint64 `json:"id"`
	PersonID   any    `json:"person_id,omitempty"`
	FaceID     uint64 `json:"face_id,omitempty"`
	CamID      any    `json:"cam_id"`
	Meta       string `json:"meta"`
	Friend     bool   `json:"friend"`
	PhotoHash  string `json:"photo_hash"`
	Photo      string `json:"photo"`
	Screenshot string `json:"screenshot"`
	Timestamp  string `json:"timestamp"`
	Box
}

func (h *handler) history(r *request) (any, error) {
	q := store.EventQuery{}
	next := url.Values{}
	pid := r.PathValue("pid")
	if pid == "" {
		pid = r.str("person_id")
	}
	if pid != "" {
		next.Set("person_id", pid)
		p, err := h.svc.GetPersonByExternalID(r.Context(), pid)
		if err != nil {
			return nil, err
		}
		q.PersonID = p.ID
	}
	cams, err := r.list("cam_ids")
	if err != nil {
		return nil, err
	}
	q.CameraIDs = cams
	for _, c := range cams {
		next.Add("cam_ids", c)
	}
	if s := r.str("start"); s != "" {
		if q.From, err = parseTime(s); err != nil {
			return nil, err
		}
		next.Set("start", s)
	}
	if s := r.str("end"); s != "" {
		if q.To, err = parseTime(s); err != nil {
			return nil, err
		}
		next.Set("end", s)
	}
	if r.has("friend") {
		fr, err := r.boolean("friend")
		if err != nil {
			return nil, err
		}
		q.Matched = &fr
		next.Set("friend", strconv.FormatBool(fr))
	}
	limit, err := r.integer("limit", 0)
	if err != nil || limit < 0 {
		return nil, badRequest("Invalid limit")
	}
	q.Cursor = r.str("cursor")
	var events []store.Event
	nextCursor := ""
	for {
		q.Limit = store.MaxLimit
		if limit > 0 {
			q.Limit = limit - len(events)
		}
		page, err := h.svc.ListEvents(r.Context(), q)
		if err != nil {
			return nil, err
		}
		events = append(events, page.Items...)
		if page.Next == "" {
			break
		}
		if limit > 0 && len(events) >= limit {
			nextCursor = page.Next
			break
		}
		q.Cursor = page.Next
	}
	out := []HistoryEvent{}
	persons := map[string]string{}
	for _, e := range events {
		he := HistoryEvent{
			ID: e.ID, FaceID: e.FaceID, CamID: camOf(e.CameraID), Friend: e.Matched, Timestamp: e.Time.UTC().Format(timeLayout),
			Box: boxJSON(face.Box{X1: e.Box[0], Y1: e.Box[1], X2: e.Box[2], Y2: e.Box[3]}),
		}
		if he.CamID == nil {
			he.CamID = ""
		}
		if e.PersonID != "" {
			ext, ok := persons[e.PersonID]
			if !ok {
				if p, err := h.svc.GetPerson(r.Context(), e.PersonID); err == nil {
					ext = p.ExternalID
				}
				persons[e.PersonID] = ext
			}
			he.PersonID = personIDOf(ext)
		}
		if e.FaceID != 0 {
			if f, err := h.svc.GetFace(r.Context(), e.FaceID); err == nil {
				ff := h.faceJSON(r.Context(), f, persons)
				he.Meta, he.PhotoHash = ff.Meta, ff.PhotoHash
			}
		}
		out = append(out, he)
	}
	resp := map[string]any{"results": out}
	if nextCursor != "" {
		next.Set("cursor", nextCursor)
		next.Set("limit", strconv.Itoa(limit))
		resp["next_page"] = "/v0/history/search?" + next.Encode()
	}
	return resp, nil
}
