// Package api serves faced's native HTTP API (/v1) on top of package
// service: authentication with scoped API keys, bounded inference
// concurrency, request limits and RFC 9457 problem+json errors with stable
// codes. Vendor dialects mount beside it and share the same middleware.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/door"
	"github.com/facedhq/faced/service"
)

// Config tunes a Server.
type Config struct {
	// Service runs the operations; nil means not ready (503) — the daemon
	// serves health checks while models load.
	Service *service.Service
	Logger  *slog.Logger
	Version string
	Backend string
	// MaxBody caps request bodies (default 10 MB).
	MaxBody int64
	// RequestTimeout bounds one request (default 30 s). It is also the
	// read deadline of a request's body, on every route and dialect: a
	// body must arrive within it (408 body_timeout natively).
	RequestTimeout time.Duration
	// MaxInFlight requests may run the pipeline at once (default one per
	// core); up to MaxQueue more wait, and beyond that requests get 429.
	MaxInFlight int
	MaxQueue    int
	// Fetch enables photo URLs; off (the zero value) unless hosts are
	// allow-listed.
	Fetch FetchConfig
	// Cameras are the watched cameras (nil: none).
	Cameras Cameras
	// Doors decides at the configured doors (nil: none).
	Doors *door.Controller
	// UI is the admin page (package webui), served at / and below /ui/
	// (nil: / answers 404 like any unknown path). It does its own auth
	// (sessions) and answers HTML.
	UI http.Handler
}

// FetchConfig allows photos given as http(s) URLs. Edge devices must not
// become proxies into the networks they sit on, so fetching is off unless
// AllowHosts names the hosts (exact host names, optionally host:port) that
// may be fetched from, and every fetch is bounded in size and time.
type FetchConfig struct {
	AllowHosts []string
	// MaxBytes and Timeout are one request's budget: every photo URL of
	// the request counts against them (a request naming 40 URLs costs no
	// more than one naming one).
	MaxBytes int64         // default 10 MB
	Timeout  time.Duration // default 5 s
}

// Server is the HTTP front. It is safe for concurrent use.
type Server struct {
	cfg     Config
	svc     atomic.Pointer[service.Service]
	started time.Time
	slots   chan struct{}
	queued  atomic.Int64
	active  atomic.Int64 // requests inside a handler
	fetcher *fetcher     // nil: photo URLs refused
	metrics *metrics
	mounts  []mount
}

// mount is a vendor dialect served below a path prefix.
type mount struct {
	prefix  string
	handler http.Handler
}

// Mount serves a vendor dialect below prefix (e.g. "/compat/users"); the
// dialect sees paths with the prefix stripped and does its own auth and
// error format. Call it before Handler.
func (s *Server) Mount(prefix string, h http.Handler) {
	s.mounts = append(s.mounts, mount{strings.TrimRight(prefix, "/"), h})
}

// Acquire takes an inference slot for a dialect request, sharing the
// native API's bounded queue; it fails with ErrBusy when the queue is full.
func (s *Server) Acquire(ctx context.Context) (release func(), err error) {
	release, err = s.acquire(ctx)
	if errors.Is(err, errBusy) {
		return nil, ErrBusy
	}
	return release, err
}

// Queue hands out inference slots to the vendor dialects; *Server is
// one. A dialect given a nil Queue (tested on its own) runs unlimited.
type Queue interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// AcquireFrom takes a slot from q, or none when q is nil.
func AcquireFrom(ctx context.Context, q Queue) (release func(), err error) {
	if q == nil {
		return func() {}, nil
	}
	return q.Acquire(ctx)
}

// ErrBusy is Acquire's "queue full": dialects answer it as they answer
// overload (usually 429).
var ErrBusy = errors.New("api: inference queue full")

// New returns a server; SetService may supply the service later.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 10 << 20
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = runtime.NumCPU()
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 4 * cfg.MaxInFlight
	}
	s := &Server{cfg: cfg, started: time.Now(), slots: make(chan struct{}, cfg.MaxInFlight), fetcher: newFetcher(cfg.Fetch)}
	s.metrics = newMetrics(s)
	if cfg.Service != nil {
		s.svc.Store(cfg.Service)
	}
	return s
}

// SetService makes the server ready.
func (s *Server) SetService(svc *service.Service) { s.svc.Store(svc) }

// route is one endpoint: the scope it needs ("" for none) and either a
// handler, or, for a route that runs the vision pipeline, a recognizer and
// the photos it reads. A recognizer's request is read whole (and its photo
// URLs fetched) before it takes an inference slot, so the slot is held
// only while the models run: never by a client sending its body slowly.
type route struct {
	pattern    string
	scope      string
	handler    handler
	recognizer recognizer
	photos     photoSpec
	// params the route reads besides its photos: query parameters (and,
	// on a recognition route or POST /v1/galleries, form fields and JSON
	// members). Anything else is 400 unknown_field.
	params []string
}

// fields is what the route accepts, by name.
func (rt route) fields() fieldSet { return newFieldSet(rt.pattern, rt.params, rt.photos) }

// inference reports whether the route runs the models (and so takes an
// inference slot).
func (rt route) inference() bool { return rt.recognizer != nil }

// recognizer serves a route that runs the models, given its parsed
// request.
type recognizer func(r *http.Request, q *request, svc *service.Service) (response, error)

func plain(pattern, scope string, h handler, params ...string) route {
	return route{pattern: pattern, scope: scope, handler: h, params: params}
}

func recognition(pattern, scope string, photos photoSpec, h recognizer, params ...string) route {
	return route{pattern: pattern, scope: scope, recognizer: h, photos: photos, params: params}
}

// handler serves a route. It returns its answer instead of writing it, and
// wrap writes it: an error as problem+json (see fail), else the response.
// So a handler cannot forget to return after an error, and every success
// is written the same way.
type handler func(r *http.Request, svc *service.Service) (response, error)

// response is a handler's successful answer: one small struct rather than
// a (status, body) pair plus a side channel, so the few routes that add
// headers (Location after a create, Cache-Control on the OpenAPI document)
// need no access to the ResponseWriter. The body is written as JSON, or as
// is when it is rawJSON; a nil body writes none (204 No Content).
type response struct {
	status int
	body   any
	header http.Header
}

// rawJSON is a body already encoded as JSON, written byte for byte.
type rawJSON []byte

// Parameter lists shared by several routes.
var (
	listParams   = []string{"cursor", "limit"}
	enrolParams  = []string{"allow_duplicate", "camera_id", "embedding", "galleries", "meta", "mf_selector"}
	personFields = []string{"card_number", "email", "enabled", "external_id", "id", "name", "phone", "valid_from", "valid_until"}
	// galleryCreateParams are POST /v1/galleries' fields.
	galleryCreateParams = []string{"meta", "name"}
)

func (s *Server) routes() []route {
	return append([]route{
		plain("GET /v1/device", auth.ScopeRead, s.device),
		plain("GET /v1/reembed", auth.ScopeRead, s.reembed),
		recognition("POST /v1/detect", auth.ScopeRead, onePhoto, s.detect,
			"attributes", "embedding", "landmarks68", "liveness", "mf_selector", "min_size"),
		recognition("POST /v1/verify", auth.ScopeRead, photoPair, s.verify,
			"mf_selector", "person_id", "similarity_threshold", "threshold"),
		recognition("POST /v1/identify", auth.ScopeRead, onePhoto, s.identify,
			"camera_id", "gallery", "liveness", "mf_selector", "n", "record", "similarity_threshold", "snapshot", "threshold"),
		recognition("POST /v1/liveness", auth.ScopeRead, onePhoto, s.liveness, "mf_selector"),
		plain("GET /v1/openapi.json", "", s.openapi),
		recognition("POST /v1/persons", auth.ScopeWrite, enrolment, s.createPerson, slices.Concat(personFields, enrolParams, []string{"from_event"})...),
		plain("GET /v1/persons", auth.ScopeRead, s.listPersons, slices.Concat(listParams, []string{"gallery"})...),
		plain("GET /v1/persons/{id}", auth.ScopeRead, s.getPerson, "embedding"),
		plain("PATCH /v1/persons/{id}", auth.ScopeWrite, s.updatePerson),
		plain("DELETE /v1/persons/{id}", auth.ScopeWrite, s.deletePerson),
		recognition("POST /v1/persons/{id}/faces", auth.ScopeWrite, enrolment, s.addFaces, enrolParams...),
		plain("DELETE /v1/persons/{id}/faces/{face_id}", auth.ScopeWrite, s.deletePersonFace),
		plain("GET /v1/faces", auth.ScopeRead, s.listFaces, slices.Concat(listParams, []string{"embedding", "gallery", "person_id"})...),
		plain("GET /v1/faces/{id}", auth.ScopeRead, s.getFace, "embedding"),
		plain("PATCH /v1/faces/{id}", auth.ScopeWrite, s.updateFace, "embedding"),
		plain("DELETE /v1/faces/{id}", auth.ScopeWrite, s.deleteFace),
		plain("GET /v1/galleries", auth.ScopeRead, s.listGalleries, listParams...),
		plain("POST /v1/galleries", auth.ScopeWrite, s.createGallery, galleryCreateParams...),
		plain("DELETE /v1/galleries/{name}", auth.ScopeWrite, s.deleteGallery, "with_faces"),
		plain("GET /v1/events", auth.ScopeRead, s.listEvents, slices.Concat(listParams, []string{"camera_id", "decision", "door_id", "from", "matched", "person_id", "to"})...),
	}, slices.Concat(s.cameraRoutes(), s.doorRoutes())...)
}

// Routes lists the served patterns ("METHOD /path"), for the OpenAPI check.
func (s *Server) Routes() []string {
	out := []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /v1/cameras/{id}/mjpeg"}
	for _, r := range s.routes() {
		out = append(out, r.pattern)
	}
	return out
}

// Handler routes every endpoint through the middleware.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.svc.Load() == nil {
			writeProblem(w, r, errNotReady)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	// /metrics takes no key, like the health checks, so Prometheus can
	// scrape it, and is served while not ready (the service's gauges are
	// then left out). It exposes counts, durations, route patterns, model
	// and gallery names only — never person or face ids, keys or
	// biometrics.
	mux.Handle("GET /metrics", s.metricsHandler())
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.wrap(rt))
	}
	mux.Handle("GET /v1/cameras/{id}/mjpeg", s.cameraMJPEG())
	if s.cfg.UI != nil {
		mux.Handle("/{$}", s.cfg.UI)
		mux.Handle("/ui/", s.cfg.UI)
	}
	for _, m := range s.mounts {
		mux.Handle(m.prefix+"/", http.StripPrefix(m.prefix, m.handler))
	}
	return s.perRequest(s.logRequests(routeProblems(mux)))
}

// perRequest sets what every request gets, native or dialect: a read
// deadline for its body (RequestTimeout from now; net/http lifts it when
// the body has been read to its end, so a handler running longer is not
// cut off), a shared budget for the photo URLs it fetches, and a place in
// the in-flight count.
func (s *Server) perRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.active.Add(1)
		defer s.active.Add(-1)
		if r.Body != nil && r.Body != http.NoBody {
			// Not every writer supports deadlines (a test's recorder);
			// the server's own limits then still apply.
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
		}
		if s.fetcher != nil {
			r = r.WithContext(context.WithValue(r.Context(), budgetKey{}, s.fetcher.newBudget()))
		}
		next.ServeHTTP(w, r)
	})
}

// Root serves a vendor dialect at the root of a listener of its own (for
// clients with hard-coded absolute paths), with Handler's request ids,
// logs and metrics; its requests count under the route "<name>:/", as a
// mount's count under its prefix.
func (s *Server) Root(name string, h http.Handler) http.Handler {
	return s.logRequests(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		r.Pattern = name + ":/" // read by logRequests once this returns
	}))
}

// routeProblems answers requests that match no route with problem+json
// (404, or 405 keeping the mux's Allow header) instead of the mux's
// text/plain, so clients parse one error format everywhere.
func routeProblems(mux *http.ServeMux) http.Handler {
	return Unrouted(mux, func(w http.ResponseWriter, r *http.Request, allowed bool) {
		p := &Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "no such route: " + r.URL.Path}
		if allowed {
			p = &Problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Detail: r.Method + " is not served on " + r.URL.Path}
		}
		writeProblem(w, r, p)
	})
}

// Unrouted serves mux, and hands requests no route matches to answer in
// the front's own error format: wrongMethod is set (and the Allow header
// already is) when the path exists under other methods (405), else it is
// a 404. The mux decides which; only its status and Allow are kept.
func Unrouted(mux *http.ServeMux, answer func(w http.ResponseWriter, r *http.Request, wrongMethod bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		c := &captureHeader{header: http.Header{}, status: http.StatusNotFound}
		h.ServeHTTP(c, r)
		wrongMethod := c.status == http.StatusMethodNotAllowed
		if wrongMethod {
			w.Header().Set("Allow", c.header.Get("Allow"))
		}
		answer(w, r, wrongMethod)
	})
}

// captureHeader records a handler's status and headers and drops its body.
type captureHeader struct {
	header http.Header
	status int
}

func (c *captureHeader) Header() http.Header         { return c.header }
func (c *captureHeader) Write(b []byte) (int, error) { return len(b), nil }
func (c *captureHeader) WriteHeader(status int)      { c.status = status }

// wrap applies readiness, limits, auth and the inference queue to a route,
// in that order: the key is checked before the body is read (an anonymous
// client cannot make the server buffer a body), and a recognition route's
// body is read whole, size-checked and its photos fetched before it takes
// an inference slot. The slot is released before the response is written.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		svc := s.svc.Load()
		if svc == nil {
			writeProblem(w, r, errNotReady)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		if scope := routeScope(rt.scope, r); scope != "" {
			if _, err := svc.Authenticate(ctx, requestToken(r), scope); err != nil {
				writeProblem(w, r, err)
				return
			}
		}
		fields := rt.fields()
		if rt.recognizer == nil {
			if err := fields.checkQuery(r); err != nil {
				writeProblem(w, r, err)
				return
			}
			res, err := rt.handler(r, svc)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			res.write(w)
			return
		}
		q, err := s.parseRequest(r, rt.photos, fields)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		release, err := s.acquire(ctx)
		if err != nil {
			writeProblem(w, r, err) // busy, or gave up waiting: no fault to log
			return
		}
		res, err := func() (response, error) {
			defer release()
			return rt.recognizer(r, q, svc)
		}()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		res.write(w)
	})
}

// fail answers with the error's problem and logs what the client is not
// told (server-side failures).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if p := problemFor(err); p.Status >= 500 {
		s.cfg.Logger.Error("request failed", "path", r.URL.Path, "err", err)
	}
	writeProblem(w, r, err)
}

// write sends the response: its headers, then the status and body.
func (res response) write(w http.ResponseWriter) {
	for k, vs := range res.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	switch body := res.body.(type) {
	case nil:
		w.WriteHeader(res.status)
	case rawJSON:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(res.status)
		w.Write(body)
	case rawBody:
		w.Header().Set("Content-Type", body.contentType)
		w.WriteHeader(res.status)
		w.Write(body.data)
	default:
		writeJSON(w, res.status, body)
	}
}

// requestToken reads the native API's key: "Authorization: Bearer <key>"
// or "X-API-Key: <key>".
func requestToken(r *http.Request) string {
	// The scheme is case-insensitive (RFC 9110 §11.1).
	if scheme, v, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return v
	}
	return r.Header.Get("X-API-Key")
}

// acquire takes an inference slot, waiting in a bounded queue: beyond
// MaxQueue waiters the request is refused with 429 at once, so load beyond
// capacity costs a fast error, not a pile of goroutines and memory.
func (s *Server) acquire(ctx context.Context) (func(), error) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	default:
	}
	if s.queued.Add(1) > int64(s.cfg.MaxQueue) {
		s.queued.Add(-1)
		s.metrics.busy.Inc()
		return nil, errBusy
	}
	defer s.queued.Add(-1)
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// logRequests gives every request an id (echoed as X-Request-ID), logs
// method, path, status, duration, the key id the request presented and
// the client's address — never bodies, secrets or biometrics — and counts it in the metrics under its route pattern (r.Pattern, which
// the mux sets on this same request while routing it).
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if id == "" || len(id) > 64 {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-ID", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r)
		took := time.Since(start)
		s.metrics.observeRequest(r.Pattern, rec.status, took)
		s.cfg.Logger.Info("request", "id", id, "method", r.Method, "path", r.URL.Path, "status", rec.status, "took", took,
			"key_id", presentedKeyID(r), "client", clientAddr(r))
	})
}

// presentedKeyID is the id part of the API key a request presents, in any
// of the headers the native API and the dialects read it from
// (Authorization Bearer, Token or Basic with the id as user name;
// X-API-Key), or "-". For a refused request it is the id it claimed. It
// is only ever the 12 hex digits of an id: a header holding anything else
// (a secret pasted alone, a foreign token) logs "-", so the secret never
// reaches the log.
func presentedKeyID(r *http.Request) string {
	var candidates []string
	if scheme, v, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok {
		switch strings.ToLower(scheme) {
		case "bearer", "token":
			candidates = append(candidates, v)
		case "basic":
			if user, _, ok := r.BasicAuth(); ok {
				if auth.ValidID(user) {
					return user
				}
			}
		}
	}
	candidates = append(candidates, r.Header.Get("X-API-Key"))
	for _, c := range candidates {
		if id, _, err := auth.Parse(c); err == nil {
			return id
		}
	}
	return "-"
}

// clientAddr is the peer's address as the connection saw it (a proxy's,
// behind one: forwarded headers are not trusted), or "-".
func clientAddr(r *http.Request) string {
	if r.RemoteAddr == "" {
		return "-"
	}
	return r.RemoteAddr
}

// QueueState reports the inference queue: requests running the models,
// requests waiting for a slot, and the slots (the admin page's
// dashboard).
func (s *Server) QueueState() (running, waiting, slots int) {
	return len(s.slots), int(s.queued.Load()), cap(s.slots)
}

// routeScope is the scope a request needs: the route's, with a {name} in
// it replaced by the request's path value (door:{id} on /v1/doors/front/…
// needs door:front).
func routeScope(scope string, r *http.Request) string {
	open := strings.IndexByte(scope, '{')
	end := strings.IndexByte(scope, '}')
	if open < 0 || end < open {
		return scope
	}
	return scope[:open] + r.PathValue(scope[open+1:end]) + scope[end+1:]
}
