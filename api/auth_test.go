package api

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/service"
)

// doHeaders sends a request with exactly the given headers.
func (e *env) doHeaders(t testing.TB, method, path string, hdr map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, buf.Bytes()
}

func expectUnauthorized(t testing.TB, status int, hdr http.Header, body []byte) {
	t.Helper()
	expectProblem(t, status, hdr, body, http.StatusUnauthorized, "unauthorized")
	if got := hdr.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
		t.Errorf("WWW-Authenticate %q, want a Bearer challenge", got)
	}
}

func TestAuthRefused(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	id, secret, err := auth.Parse(e.Read)
	if err != nil {
		t.Fatal(err)
	}
	_, otherSecret, _ := auth.Parse(e.Write)
	revoked, err := service.CreateAPIKey(ctx, e.DB, "gone", []string{"admin"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DB.RevokeAPIKey(ctx, revoked.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	unknownID := "000000000000"
	if id == unknownID {
		unknownID = "111111111111"
	}

	for name, hdr := range map[string]map[string]string{
		"no key":                 nil,
		"empty bearer":           {"Authorization": "Bearer "},
		"bearer without space":   {"Authorization": "Bearer" + e.Read},
		"basic scheme":           {"Authorization": "Basic " + e.Read},
		"bare token":             {"Authorization": e.Read},
		"malformed":              {"Authorization": "Bearer not-a-key"},
		"no secret":              {"Authorization": "Bearer " + id + "."},
		"id not hex":             {"Authorization": "Bearer zzzzzzzzzzzz." + secret},
		"secret too long":        {"Authorization": "Bearer " + id + "." + strings.Repeat("a", 129)},
		"unknown id":             {"Authorization": "Bearer " + unknownID + "." + secret},
		"wrong secret":           {"Authorization": "Bearer " + id + "." + otherSecret},
		"wrong secret x-api-key": {"X-API-Key": id + "." + otherSecret},
		"revoked":                {"Authorization": "Bearer " + revoked.Token},
		"revoked x-api-key":      {"X-API-Key": revoked.Token},
		// A Bearer header wins over X-API-Key, even when it is wrong.
		"bad bearer, good x-api-key": {"Authorization": "Bearer " + id + "." + otherSecret, "X-API-Key": e.Read},
	} {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/v1/device", "/v1/detect"} {
				method := http.MethodPost
				if path == "/v1/device" {
					method = http.MethodGet
				}
				status, rh, body := e.doHeaders(t, method, path, hdr, nil)
				expectUnauthorized(t, status, rh, body)
			}
		})
	}
	// Keys in the query string are not read (they would end up in logs).
	status, hdr, body := e.do(t, http.MethodGet, "/v1/device?api_key="+e.Read, "", "", nil)
	expectUnauthorized(t, status, hdr, body)
}

func TestAuthAccepted(t *testing.T) {
	e := newEnv(t, Config{})
	for name, hdr := range map[string]map[string]string{
		"bearer":                   {"Authorization": "Bearer " + e.Read},
		"x-api-key":                {"X-API-Key": e.Read},
		"padded x-api-key":         {"X-API-Key": "  " + e.Read + " "},
		"lower-case bearer scheme": {"Authorization": "bearer " + e.Read},
		"upper-case bearer scheme": {"Authorization": "BEARER " + e.Read},
		// Scope hierarchy: admin implies write implies read.
		"write key":           {"Authorization": "Bearer " + e.Write},
		"admin key":           {"Authorization": "Bearer " + e.Admin},
		"admin key x-api-key": {"X-API-Key": e.Admin},
	} {
		t.Run(name, func(t *testing.T) {
			if status, _, body := e.doHeaders(t, http.MethodGet, "/v1/device", hdr, nil); status != http.StatusOK {
				t.Errorf("GET /v1/device: %d %s", status, body)
			}
			h := map[string]string{"Content-Type": "image/jpeg"}
			for k, v := range hdr {
				h[k] = v
			}
			if status, _, body := e.doHeaders(t, http.MethodPost, "/v1/detect", h, img12(t)); status != http.StatusOK {
				t.Errorf("POST /v1/detect: %d %s", status, body)
			}
		})
	}
	// Health checks need no key.
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`} {
		status, _, body := e.do(t, http.MethodGet, path, "", "", nil)
		if status != http.StatusOK || !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET %s without a key: %d %s", path, status, body)
		}
	}
}

// TestAuthScopes runs the middleware on routes that need more than read
// (no such route is served yet, so the test makes its own).
func TestAuthScopes(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	writeOnly, err := service.CreateAPIKey(ctx, e.DB, "w", []string{"write"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ok := func(r *http.Request, svc *service.Service) (response, error) {
		return response{status: http.StatusOK, body: map[string]string{"status": "done"}}, nil
	}
	mux := http.NewServeMux()
	mux.Handle("POST /write", e.Srv.wrap(plain("POST /write", auth.ScopeWrite, ok)))
	mux.Handle("POST /admin", e.Srv.wrap(plain("POST /admin", auth.ScopeAdmin, ok)))
	mux.Handle("POST /read", e.Srv.wrap(plain("POST /read", auth.ScopeRead, ok)))
	mux.Handle("POST /open", e.Srv.wrap(plain("POST /open", "", ok)))
	srv := &env{URL: serve(t, mux)}

	keys := map[string]string{"read": e.Read, "read+write": e.Write, "write": writeOnly.Token, "admin": e.Admin}
	for _, tc := range []struct {
		path    string
		allowed []string
	}{
		{"/read", []string{"read", "read+write", "write", "admin"}},
		{"/write", []string{"read+write", "write", "admin"}},
		{"/admin", []string{"admin"}},
	} {
		for name, key := range keys {
			status, hdr, body := srv.do(t, http.MethodPost, tc.path, key, "", nil)
			allowed := false
			for _, a := range tc.allowed {
				allowed = allowed || a == name
			}
			if allowed {
				if status != http.StatusOK {
					t.Errorf("%s key on %s: %d %s, want 200", name, tc.path, status, body)
				}
				continue
			}
			p := expectProblem(t, status, hdr, body, http.StatusForbidden, "forbidden")
			if hdr.Get("WWW-Authenticate") != "" || !strings.Contains(p.Detail, "scope") {
				t.Errorf("%s key on %s: %+v, WWW-Authenticate %q", name, tc.path, p, hdr.Get("WWW-Authenticate"))
			}
		}
		status, hdr, body := srv.do(t, http.MethodPost, tc.path, "", "", nil)
		expectUnauthorized(t, status, hdr, body)
	}
	// A route without a scope takes no key.
	if status, _, body := srv.do(t, http.MethodPost, "/open", "", "", nil); status != http.StatusOK {
		t.Errorf("open route without a key: %d %s", status, body)
	}
}

// TestAuthBeforeWork: an unauthenticated request is refused before its
// body is read and without taking an inference slot, so anonymous clients
// cannot fill the queue or make the server buffer their uploads.
func TestAuthBeforeWork(t *testing.T) {
	e := newEnv(t, Config{MaxBody: 1000, MaxInFlight: 1, MaxQueue: 1})
	release, err := e.Srv.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	status, hdr, body := e.do(t, http.MethodPost, "/v1/detect", "", "image/jpeg", img12(t))
	expectUnauthorized(t, status, hdr, body)
	if n := e.Srv.queued.Load(); n != 0 {
		t.Errorf("%d requests queued after a refused one", n)
	}
}
