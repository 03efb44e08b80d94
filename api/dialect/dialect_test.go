package dialect_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/dialect"
	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/apitest"
	"github.com/facedhq/faced/internal/apitest/dialecttest"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

var vision *daemon.Vision

func TestMain(m *testing.M) { apitest.Main(m, &vision) }

// table is the test vendor's error table: it says the kind's number.
var table = dialect.Table[string]{Says: map[dialect.Kind]string{
	dialect.Internal: "internal", dialect.Unauthorized: "unauthorized", dialect.Forbidden: "forbidden",
	dialect.Busy: "busy", dialect.Timeout: "timeout", dialect.NoRoute: "no route",
	dialect.MethodNotAllowed: "method", dialect.BodyTooLarge: "body too large", dialect.NotFound: "not found",
	dialect.BadImage: "bad image",
}}

type answer struct {
	status int
	header http.Header
	body   string
}

// serve runs a test vendor on the toolkit: its key style is
// "Authorization: Token", its envelope {"error": ...} or {"ok": result}.
func serve(t *testing.T, q api.Queue, logs io.Writer) (*apitest.Fixture, func(method, path, key, body string) answer) {
	t.Helper()
	fx := apitest.New(t, vision)
	f := &dialect.Front[*http.Request]{
		Name: "test", Service: fx.Svc, Queue: q, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Key:     dialect.Scheme("Token"),
		MaxBody: 64,
		Timeout: 2 * time.Second,
		Parse:   func(r *http.Request) (*http.Request, error) { return r, nil },
		BeforeSlot: func(r *http.Request) error {
			if r.URL.Query().Has("before") {
				return fmt.Errorf("before the slot: %w", store.ErrNotFound)
			}
			return nil
		},
		Reply: func(result any) any { return map[string]any{"ok": result} },
		Fail: func(err error) (int, any) {
			e := table.Failure(err)
			return e.Status, map[string]string{"error": e.Says}
		},
	}
	h := f.Handler([]dialect.Route[*http.Request]{
		{Method: "GET", Pattern: "/things/{id}", Scope: auth.ScopeRead, Serve: func(r *http.Request) (any, error) {
			return r.PathValue("id"), nil
		}},
		{Method: "POST PUT", Pattern: "/things", Scope: auth.ScopeWrite, Slot: true, Serve: func(r *http.Request) (any, error) {
			b, err := dialect.ReadBody(r)
			return string(b), err
		}},
		{Method: "POST", Pattern: "/big", Scope: auth.ScopeWrite, MaxBody: 1 << 10, Serve: func(r *http.Request) (any, error) {
			b, err := dialect.ReadBody(r)
			return len(b), err
		}},
		{Method: "DELETE", Pattern: "/open", Serve: func(*http.Request) (any, error) { return dialect.Status(http.StatusNoContent), nil }},
		{Method: "GET", Pattern: "/slow", Scope: auth.ScopeRead, Serve: func(r *http.Request) (any, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		}},
		{Method: "GET", Pattern: "/broken", Scope: auth.ScopeRead, Serve: func(*http.Request) (any, error) {
			return nil, errors.New("secret detail of the failure")
		}},
		{Method: "GET", Pattern: "/corrupt", Scope: auth.ScopeRead, Serve: func(*http.Request) (any, error) {
			return nil, fmt.Errorf("decoding: %w", face.ErrCorrupt)
		}},
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return fx, func(method, path, key, body string) answer {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Authorization", "token "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, string(b)}
	}
}

func wantAnswer(t *testing.T, what string, got answer, status int, body string) {
	t.Helper()
	if got.status != status || strings.TrimSpace(got.body) != body {
		t.Errorf("%s: %d %s, want %d %s", what, got.status, got.body, status, body)
	}
	if body != "" && got.header.Get("Content-Type") != "application/json" {
		t.Errorf("%s: Content-Type %q", what, got.header.Get("Content-Type"))
	}
}

// TestFront: routing, keys, scopes, the body cap, the timeout and the
// hooks, as every dialect gets them.
func TestFront(t *testing.T) {
	var logs bytes.Buffer
	fx, do := serve(t, nil, &logs)
	wantAnswer(t, "exact", do("GET", "/things/7", fx.Read, ""), 200, `{"ok":"7"}`)
	wantAnswer(t, "trailing slash", do("GET", "/things/7/", fx.Read, ""), 200, `{"ok":"7"}`)
	wantAnswer(t, "below a route", do("GET", "/things/7/more", fx.Read, ""), 404, `{"error":"no route"}`)
	wantAnswer(t, "unknown", do("GET", "/nothing", fx.Read, ""), 404, `{"error":"no route"}`)
	r := do("PATCH", "/things", fx.Write, "")
	wantAnswer(t, "other method", r, 405, `{"error":"method"}`)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") || !strings.Contains(allow, "PUT") {
		t.Errorf("Allow %q, want POST and PUT", allow)
	}
	wantAnswer(t, "several methods", do("PUT", "/things", fx.Write, "x"), 200, `{"ok":"x"}`)

	wantAnswer(t, "no key", do("GET", "/things/7", "", ""), 401, `{"error":"unauthorized"}`)
	wantAnswer(t, "bad key", do("GET", "/things/7", "nobody.nothing", ""), 401, `{"error":"unauthorized"}`)
	wantAnswer(t, "scope", do("POST", "/things", fx.Read, "x"), 403, `{"error":"forbidden"}`)
	wantAnswer(t, "no scope needed", do("DELETE", "/open", "", ""), 204, "")

	wantAnswer(t, "body cap", do("POST", "/things", fx.Write, strings.Repeat("x", 65)), 413, `{"error":"body too large"}`)
	wantAnswer(t, "route's own cap", do("POST", "/big", fx.Write, strings.Repeat("x", 1000)), 200, `{"ok":1000}`)
	wantAnswer(t, "broader kind", do("GET", "/corrupt", fx.Read, ""), 400, `{"error":"bad image"}`)
	wantAnswer(t, "timeout", do("GET", "/slow", fx.Read, ""), 503, `{"error":"timeout"}`)

	r = do("GET", "/broken", fx.Read, "")
	wantAnswer(t, "internal", r, 500, `{"error":"internal"}`)
	if !strings.Contains(logs.String(), "secret detail of the failure") {
		t.Errorf("a 500 is not logged with its cause: %q", logs.String())
	}
}

// TestBusy: a route with Slot answers 429 with Retry-After when the queue
// is full, without running, but after BeforeSlot; others run.
func TestBusy(t *testing.T) {
	fx, do := serve(t, dialecttest.BusyQueue{}, io.Discard)
	r := do("POST", "/things", fx.Write, "x")
	wantAnswer(t, "busy", r, 429, `{"error":"busy"}`)
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	wantAnswer(t, "no slot needed", do("GET", "/things/7", fx.Read, ""), 200, `{"ok":"7"}`)
	wantAnswer(t, "BeforeSlot runs first", do("POST", "/things?before", fx.Write, "x"), 404, `{"error":"not found"}`)
}

func TestKindOf(t *testing.T) {
	for err, want := range map[error]dialect.Kind{
		fmt.Errorf("x: %w", service.ErrUnauthorized): dialect.Unauthorized,
		api.ErrBusy:                           dialect.Busy,
		&service.NoFaceError{Photo: 1}:        dialect.NoFace,
		fmt.Errorf("x: %w", store.ErrInvalid): dialect.BadValue,
		&face.ErrTooManyFaces{}:               dialect.TooManyFaces,
		context.DeadlineExceeded:              dialect.Timeout,
		dialect.ErrNoPhoto:                    dialect.NoPhoto,
		errors.New("anything else"):           dialect.Internal,
	} {
		if got := dialect.KindOf(err); got != want {
			t.Errorf("KindOf(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestTableAnswer(t *testing.T) {
	tb := dialect.Table[string]{Says: map[dialect.Kind]string{
		dialect.Internal: "oops", dialect.Invalid: "invalid", dialect.Duplicate: "exists", dialect.ImageTooLarge: "big",
	}}
	for _, c := range []struct {
		err    error
		kind   dialect.Kind
		status int
		says   string
	}{
		{store.ErrInvalid, dialect.Invalid, 400, "invalid"},           // BadValue falls back to Invalid
		{store.ErrDuplicate, dialect.Duplicate, 409, "exists"},        // the usual status
		{dialect.ErrPhotoTooLarge, dialect.ImageTooLarge, 413, "big"}, // PhotoTooLarge → ImageTooLarge
		{service.ErrForbidden, dialect.Internal, 500, "oops"},         // not in the table
	} {
		k, s, says := tb.Answer(c.err)
		if k != c.kind || s != c.status || says != c.says {
			t.Errorf("Answer(%v) = %d %d %q, want %d %d %q", c.err, k, s, says, c.kind, c.status, c.says)
		}
	}
	tb.Plain400, tb.Status = true, map[dialect.Kind]int{dialect.ImageTooLarge: http.StatusRequestEntityTooLarge}
	if _, s, _ := tb.Answer(store.ErrDuplicate); s != 400 {
		t.Errorf("Plain400: duplicate is %d", s)
	}
	if _, s, _ := tb.Answer(face.ErrTooLarge); s != 413 {
		t.Errorf("Status override: image too large is %d", s)
	}
	own := dialect.Fail(418, "teapot")
	if got := tb.Failure(fmt.Errorf("wrapped: %w", own)); got != own {
		t.Errorf("a handler's Failure is replaced by %v", got)
	}
}

func TestKeys(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("x-api-key", " id.secret ")
	r.Header.Set("Authorization", "TOKEN  id.secret")
	if k := dialect.Header("X-Api-Key")(r); k != "id.secret" {
		t.Errorf("Header: %q", k)
	}
	if k := dialect.Scheme("Token")(r); k != "id.secret" {
		t.Errorf("Scheme: %q", k)
	}
	if k := dialect.Scheme("Bearer")(r); k != "" {
		t.Errorf("Scheme Bearer read %q from a Token header", k)
	}
	r.SetBasicAuth("id", "secret")
	if k := dialect.Basic()(r); k != "id.secret" {
		t.Errorf("Basic: %q", k)
	}
	r.SetBasicAuth("id", "")
	if k := dialect.Basic()(r); k != "" {
		t.Errorf("Basic without a secret: %q", k)
	}
}

func TestPhotos(t *testing.T) {
	ctx := context.Background()
	raw := []byte("\xff\xd8\xff not really a JPEG")
	b64 := base64.StdEncoding.EncodeToString(raw)
	fetched := func(context.Context, string) ([]byte, error) { return raw, nil }
	for _, c := range []struct {
		what string
		p    dialect.Photos
		file []byte
		text string
		want error
	}{
		{"file wins", dialect.Photos{}, raw, "ignored", nil},
		{"base64", dialect.Photos{}, nil, b64, nil},
		{"data URL", dialect.Photos{}, nil, "data:image/jpeg;base64," + b64, nil},
		{"empty", dialect.Photos{}, nil, "  ", dialect.ErrNoPhoto},
		{"not base64", dialect.Photos{}, nil, "not base64!", dialect.ErrBadBase64},
		{"too large", dialect.Photos{MaxBytes: 4}, nil, b64, dialect.ErrPhotoTooLarge},
		{"URL, no fetching", dialect.Photos{}, nil, "https://example.com/a.jpg", dialect.ErrURLNotAllowed},
		{"ftp", dialect.Photos{Fetch: fetched}, nil, "ftp://example.com/a.jpg", dialect.ErrURLNotAllowed},
		{"URL fetched", dialect.Photos{Fetch: fetched}, nil, "HTTPS://example.com/a.jpg", nil},
		{"fetch too large", dialect.Photos{Fetch: func(context.Context, string) ([]byte, error) { return nil, face.ErrTooLarge }}, nil, "http://x/a", face.ErrTooLarge},
	} {
		got, err := c.p.Read(ctx, c.file, c.text)
		if !errors.Is(err, c.want) || (c.want == nil && !bytes.Equal(got, raw)) {
			t.Errorf("%s: %q, %v; want %v", c.what, got, err, c.want)
		}
	}
	_, err := dialect.Photos{Fetch: func(context.Context, string) ([]byte, error) { return nil, errors.New("refused") }}.Read(ctx, nil, "http://x/a")
	var fe *dialect.FetchError
	if !errors.As(err, &fe) || fe.Err.Error() != "refused" {
		t.Errorf("a failed fetch: %v", err)
	}
}

func TestReadForm(t *testing.T) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("name", "Ann")
	w, _ := mw.CreateFormFile("photo", "a.jpg")
	w.Write([]byte("jpeg bytes"))
	mw.Close()
	r := httptest.NewRequest("POST", "/", &buf)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	f, err := dialect.ReadForm(r, 1<<20)
	if err != nil || f.Values["name"][0] != "Ann" || f.Files["photo"].Name != "a.jpg" || string(f.Files["photo"].Data) != "jpeg bytes" {
		t.Errorf("multipart: %+v, %v", f, err)
	}
	r = httptest.NewRequest("POST", "/", strings.NewReader("a=1&a=2"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if f, err := dialect.ReadForm(r, 1<<20); err != nil || len(f.Values["a"]) != 2 {
		t.Errorf("urlencoded: %+v, %v", f, err)
	}
}

func TestNumbers(t *testing.T) {
	for raw, want := range map[string]struct {
		v     float64
		given bool
		ok    bool
	}{
		``: {0, false, true}, `null`: {0, false, true}, `0.5`: {0.5, true, true}, `" 75 "`: {75, true, true},
		`""`: {0, true, false}, `"NaN"`: {0, true, false}, `101`: {0, true, false}, `true`: {0, true, false},
	} {
		v, given, err := dialect.Float(json.RawMessage(raw), 0, 100)
		if v != want.v || given != want.given || (err == nil) != want.ok {
			t.Errorf("Float(%s) = %v %v %v, want %+v", raw, v, given, err, want)
		}
	}
}
