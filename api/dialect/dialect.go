// Package dialect is the toolkit the vendor front ends (api/users,
// api/facesearch, api/miicloud, api/trueface, api/findface) are written
// with, so that each of them holds only what its vendor does its own way.
//
// A front end is a Front: its route table (method, pattern, scope, whether
// the route takes an inference slot, the handler), how its vendor sends the
// API key (Header, Scheme, Basic), how its request is parsed, and two
// hooks that shape the answer: Reply for a result, Fail for an error. The
// Front does the rest, the same way for every vendor:
//
//   - every route is matched exactly, with or without a trailing slash; an
//     unknown path (also one below a known route) is Fail(ErrNoRoute) and a
//     known path with another method Fail(ErrMethodNotAllowed), with Allow;
//   - each request is bounded by Timeout (30 s by default) and its body by
//     MaxBody (or the route's own cap);
//   - the key is checked before the body is read, so an anonymous client
//     cannot make the server read and hold a large body;
//   - a route with Slot runs holding an inference slot of the shared queue
//     (api.Queue), so a full queue is api.ErrBusy before any work is done;
//     slow input such as fetching photo URLs goes in BeforeSlot, which
//     runs first and holds no slot;
//   - any answer with status 429 carries Retry-After: 1, and a 5xx error is
//     logged (with its cause, which the client never sees).
//
// Errors reach Fail as they are; KindOf sorts them into the kinds every
// vendor answers (unauthorized, busy, no face...), so a vendor's Fail is
// usually a table from Kind to its status and message (Classify).
package dialect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// DefaultTimeout bounds one request unless the Front says otherwise.
const DefaultTimeout = 30 * time.Second

// Handler is a route's body: it returns the result to answer (see Reply;
// a Status answers that status without a body) or an error for Fail.
type Handler[R any] func(req R) (any, error)

// Route is one entry of a dialect's route table.
type Route[R any] struct {
	// Method is one method, or several separated by spaces ("GET POST").
	Method string
	// Pattern is a net/http pattern without a trailing slash; it is
	// served as written and with one ("p" and "p/{$}"), never below.
	Pattern string
	// Scope is the key scope the route needs; "" needs no key at all.
	Scope string
	// Slot: the handler runs holding an inference slot (it runs the
	// pipeline), taken after the key check, Parse and BeforeSlot. A
	// handler that needs one only sometimes calls Front.Acquire instead.
	Slot bool
	// MaxBody overrides the Front's body cap for this route.
	MaxBody int64
	Serve   Handler[R]
}

// Status is a result answered with this status and no body (201, 204).
type Status int

// Front is one vendor front end. R is the vendor's parsed request; Parse
// makes it from an authenticated *http.Request.
type Front[R any] struct {
	Name    string // for logs, e.g. "findface"
	Service *service.Service
	Queue   api.Queue // nil: unlimited (a dialect tested on its own)
	Logger  *slog.Logger
	// Key reads the API key in the vendor's style.
	Key Key
	// MaxBody caps every request body (0: no cap).
	MaxBody int64
	// Timeout bounds one request (0: DefaultTimeout).
	Timeout time.Duration
	// ContentType of JSON answers ("": application/json).
	ContentType string
	// Parse reads the vendor's request after the key check. Its errors go
	// to Fail.
	Parse func(r *http.Request) (R, error)
	// BeforeSlot, if set, runs before a Slot route takes its slot: slow
	// input (fetching photo URLs) must not hold one.
	BeforeSlot func(req R) error
	// Reply shapes a handler's result into the body to send with 200 (nil:
	// the result as is; a nil body is an empty 200).
	Reply func(result any) any
	// Fail shapes an error into the vendor's error envelope.
	Fail func(err error) (status int, body any)
}

// Handler fills in the Front's defaults (Logger, Timeout, ContentType)
// and returns the front end serving routes. The Front must not change
// afterwards.
func (f *Front[R]) Handler(routes []Route[R]) http.Handler {
	if f.Logger == nil {
		f.Logger = slog.New(slog.DiscardHandler)
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultTimeout
	}
	if f.ContentType == "" {
		f.ContentType = "application/json"
	}
	mux := http.NewServeMux()
	for i := range routes {
		rt := &routes[i]
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, rt) })
		for _, m := range strings.Fields(rt.Method) {
			mux.Handle(m+" "+rt.Pattern, h)
			mux.Handle(m+" "+rt.Pattern+"/{$}", h)
		}
	}
	// The body of a 404 or 405 is the vendor's.
	return api.Unrouted(mux, func(w http.ResponseWriter, r *http.Request, wrongMethod bool) {
		if wrongMethod {
			f.fail(w, r, ErrMethodNotAllowed)
			return
		}
		f.fail(w, r, ErrNoRoute)
	})
}

// serve runs one routed request: timeout, body cap, key, parse, slot,
// handler, answer.
func (f *Front[R]) serve(w http.ResponseWriter, r *http.Request, rt *Route[R]) {
	ctx, cancel := context.WithTimeout(r.Context(), f.Timeout)
	defer cancel()
	r = r.WithContext(ctx)
	if limit := orDefault(rt.MaxBody, f.MaxBody); limit > 0 {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	result, err := f.run(r, rt)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if s, ok := result.(Status); ok {
		w.WriteHeader(int(s))
		return
	}
	if f.Reply != nil {
		result = f.Reply(result)
	}
	if result == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	if err := f.write(w, http.StatusOK, result); err != nil {
		f.fail(w, r, err)
	}
}

// orDefault is v, or def when v is 0.
func orDefault(v, def int64) int64 {
	if v != 0 {
		return v
	}
	return def
}

func (f *Front[R]) run(r *http.Request, rt *Route[R]) (any, error) {
	if rt.Scope != "" {
		if _, err := f.Authenticate(r, rt.Scope); err != nil {
			return nil, err
		}
	}
	body := &arrival{src: r.Body}
	r.Body = body
	req, err := f.Parse(r)
	if err != nil {
		return nil, err
	}
	if rt.Slot && f.BeforeSlot != nil {
		if err := f.BeforeSlot(req); err != nil {
			return nil, err
		}
	}
	if rt.Slot {
		// Whatever Parse read, the body has arrived before the slot is
		// taken: a client sending it slowly holds none.
		if err := body.finish(); err != nil {
			return nil, err
		}
		release, err := f.Acquire(r.Context())
		if err != nil {
			return nil, err
		}
		defer release()
	}
	return rt.Serve(req)
}

// Authenticate checks the request's key (in the vendor's style) for scope.
func (f *Front[R]) Authenticate(r *http.Request, scope string) (store.APIKey, error) {
	key := f.Key(r)
	if key == "" {
		return store.APIKey{}, service.ErrUnauthorized
	}
	return f.Service.Authenticate(r.Context(), key, scope)
}

// Acquire takes an inference slot from the shared queue (none when the
// Front has no queue); it fails with api.ErrBusy when the queue is full.
func (f *Front[R]) Acquire(ctx context.Context) (release func(), err error) {
	return api.AcquireFrom(ctx, f.Queue)
}

// fail answers err in the vendor's envelope, logging server errors.
func (f *Front[R]) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := f.Fail(err)
	if status >= 500 {
		f.Logger.Error(f.Name+": request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if err := f.write(w, status, body); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// write sends v as JSON; it writes nothing when v cannot be encoded.
func (f *Front[R]) write(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", f.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
	return nil
}

// Key reads the API key of a request in a vendor's style; "" is none.
type Key func(r *http.Request) string

// Header: the key is the whole value of a header (e.g. "x-api-key").
func Header(name string) Key {
	return func(r *http.Request) string { return strings.TrimSpace(r.Header.Get(name)) }
}

// Scheme: "Authorization: <scheme> <key>", the scheme word
// case-insensitive (e.g. "Token").
func Scheme(scheme string) Key {
	return func(r *http.Request) string {
		word, key, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if !ok || !strings.EqualFold(word, scheme) {
			return ""
		}
		return strings.TrimSpace(key)
	}
}

// Basic: HTTP Basic with the key id as user name and the secret as
// password, joined into the full key id.secret.
func Basic() Key {
	return func(r *http.Request) string {
		id, secret, ok := r.BasicAuth()
		if !ok || id == "" || secret == "" {
			return ""
		}
		return id + "." + secret
	}
}

// Errors of the Front itself, for Fail.
var (
	ErrNoRoute          = errors.New("dialect: no such path")
	ErrMethodNotAllowed = errors.New("dialect: method not allowed")
)

// arrival is a request body that knows whether it was read to its end, so
// that run can read the rest into memory before a Slot route takes its
// inference slot; the handler then reads that rest from memory.
type arrival struct {
	src  io.ReadCloser
	done bool
}

func (a *arrival) Read(p []byte) (int, error) {
	n, err := a.src.Read(p)
	if err == io.EOF {
		a.done = true
	}
	return n, err
}

func (a *arrival) Close() error { return a.src.Close() }

// finish reads what is left of the body (capped by the Front).
func (a *arrival) finish() error {
	if a.done {
		return nil
	}
	rest, err := io.ReadAll(a.src)
	if err != nil {
		return bodyError(err)
	}
	a.src = io.NopCloser(bytes.NewReader(rest))
	return nil
}
