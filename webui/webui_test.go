package webui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/apitest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

var vision *daemon.Vision

func TestMain(m *testing.M) { apitest.Main(m, &vision) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	*apitest.Fixture
	url   string
	clock *clock
}

func newEnv(t *testing.T, tls bool) *env {
	t.Helper()
	f := apitest.New(t, vision)
	c := &clock{t: time.Now()}
	u, err := New(Config{Service: f.Svc, Version: "test", Backend: "onnx", TLS: tls, Now: c.now,
		Settings:      func() ([]byte, error) { return []byte("listen: 127.0.0.1:8080\n<script>x</script>\n"), nil },
		Queue:         func() (int, int, int) { return 1, 3, 2 },
		MQTTConnected: func() bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	return &env{Fixture: f, url: srv.URL, clock: c}
}

// browser is a client with its own cookies that does not follow
// redirects, so tests see them.
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if m := csrfField.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return res, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, b.e.url+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodPost, b.e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) postPhoto(path string, fields map[string]string, photo []byte) (*http.Response, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("photo", "photo.jpg")
	fw.Write(photo)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.e.url+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

func (b *browser) login(key string) *http.Response {
	b.t.Helper()
	res, body := b.post("/ui/login", url.Values{"key": {key}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		b.t.Fatalf("login: %d %s\n%s", res.StatusCode, res.Header.Get("Location"), body)
	}
	if res, body := b.get("/"); res.StatusCode != http.StatusOK {
		b.t.Fatalf("dashboard after login: %d\n%s", res.StatusCode, body)
	}
	return res
}

func wantStatus(t *testing.T, what string, res *http.Response, body string, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Errorf("%s: %d, want %d\n%s", what, res.StatusCode, want, body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	for _, path := range []string{"/ui/login", "/ui/static/app.js", "/", "/ui/nothing"} {
		res, _ := b.get(path)
		h := res.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") ||
			strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
	_, page := b.get("/ui/login")
	if strings.Contains(page, "<script>") || strings.Contains(page, " style=") || strings.Contains(page, "<style") || strings.Contains(page, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(page) {
		t.Errorf("login page has inline script or style:\n%s", page)
	}
}

func TestLoginSessionLogout(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	res, _ := b.get("/")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/login" {
		t.Fatalf("/ without a session: %d %s, want a redirect to the login", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := b.post("/ui/login", url.Values{"key": {"0123456789ab.wrongwrongwrongwrong"}})
	wantStatus(t, "bad key", res, body, http.StatusUnauthorized)
	res, body = b.post("/ui/login", url.Values{"key": {e.Admin}})
	wantStatus(t, "login", res, body, http.StatusSeeOther)
	var c *http.Cookie
	for _, k := range res.Cookies() {
		if k.Name == CookieName {
			c = k
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || strings.Contains(c.Value, e.Admin) {
		t.Fatalf("session cookie %+v", c)
	}
	res, body = b.get("/")
	wantStatus(t, "dashboard", res, body, http.StatusOK)
	for _, want := range []string{`id="faces"`, "1 running · 3 waiting · 2 slots", "MQTT: not connected"} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q:\n%s", want, body)
		}
	}
	res, body = b.post("/ui/logout", url.Values{"csrf": {b.csrf}})
	wantStatus(t, "logout", res, body, http.StatusSeeOther)
	res, _ = b.get("/")
	wantStatus(t, "/ after logout", res, "", http.StatusSeeOther)
}

func TestSecureCookieUnderTLS(t *testing.T) {
	e := newEnv(t, true)
	res, _ := e.browser(t).post("/ui/login", url.Values{"key": {e.Admin}})
	for _, k := range res.Cookies() {
		if k.Name == CookieName && !k.Secure {
			t.Errorf("cookie not Secure under TLS: %+v", k)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	for i := range 5 {
		res, body := b.post("/ui/login", url.Values{"key": {"nope"}})
		wantStatus(t, "attempt", res, body, http.StatusUnauthorized)
		_ = i
	}
	res, body := b.post("/ui/login", url.Values{"key": {e.Admin}})
	wantStatus(t, "6th attempt in a minute, a good key", res, body, http.StatusTooManyRequests)
	if res.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	e.clock.add(61 * time.Second)
	b.login(e.Admin)
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.login(e.Admin)
	photo := testenv.ReadPhoto(t, "deepface/img1.jpg")
	res, body := b.postPhoto("/ui/persons", map[string]string{"name": "Forged"}, photo)
	wantStatus(t, "create without the CSRF token", res, body, http.StatusForbidden)
	res, body = b.postPhoto("/ui/persons", map[string]string{"name": "Forged", "csrf": "x" + b.csrf}, photo)
	wantStatus(t, "create with a wrong CSRF token", res, body, http.StatusForbidden)
	res, body = b.post("/ui/logout", url.Values{})
	wantStatus(t, "logout without the token", res, body, http.StatusForbidden)
	// A cross-site Origin is refused even with the token.
	req, _ := http.NewRequest(http.MethodPost, e.url+"/ui/keys", strings.NewReader(url.Values{"csrf": {b.csrf}, "name": {"x"}, "scopes": {"read"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	res, body = b.do(req)
	wantStatus(t, "cross-origin post", res, body, http.StatusForbidden)
	page, err := e.Svc.ListPersons(context.Background(), storeAll())
	if err != nil || len(page.Items) != 0 {
		t.Errorf("persons after forged posts: %v %v", page.Items, err)
	}
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.login(e.Read)
	e.clock.add(29 * time.Minute)
	if res, _ := b.get("/"); res.StatusCode != http.StatusOK {
		t.Fatalf("29 min idle: %d", res.StatusCode)
	}
	e.clock.add(30 * time.Minute)
	if res, _ := b.get("/"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("30 min idle: %d, want the login", res.StatusCode)
	}
	// Active all along, a session still ends after 12 h.
	b.login(e.Read)
	start := e.clock.now()
	for e.clock.now().Sub(start) < 13*time.Hour {
		e.clock.add(20 * time.Minute)
		if res, _ := b.get("/ui/persons"); res.StatusCode != http.StatusOK {
			if age := e.clock.now().Sub(start); age < 12*time.Hour {
				t.Fatalf("an active session ended after %v, before 12 h", age)
			}
			return
		}
	}
	t.Fatal("an active session outlived 12 h")
}

func TestRevokedKeyEndsSession(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.login(e.Write)
	id := strings.SplitN(e.Write, ".", 2)[0]
	if err := e.Svc.RevokeKey(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if res, _ := b.get("/"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("revoked key's session: %d, want the login", res.StatusCode)
	}
}

// TestReadKeyRefused: a read key sees persons but no edit controls, and
// the server refuses its changes (403) even with a valid CSRF token.
func TestReadKeyRefused(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.login(e.Read)
	res, body := b.get("/ui/persons")
	wantStatus(t, "persons", res, body, http.StatusOK)
	if strings.Contains(body, `id="create-person"`) || !strings.Contains(body, `id="readonly"`) {
		t.Errorf("read key's persons page shows the create form or no read-only mark:\n%s", body)
	}
	res, body = b.postPhoto("/ui/persons", map[string]string{"name": "X", "csrf": b.csrf}, testenv.ReadPhoto(t, "deepface/img1.jpg"))
	wantStatus(t, "read key creates", res, body, http.StatusForbidden)
	res, body = b.get("/ui/keys")
	wantStatus(t, "read key lists keys", res, body, http.StatusForbidden)
	res, body = b.get("/ui/settings")
	wantStatus(t, "read key reads the settings", res, body, http.StatusForbidden)
	res, body = b.post("/ui/keys", url.Values{"csrf": {b.csrf}, "name": {"x"}, "scopes": {"admin"}})
	wantStatus(t, "read key creates a key", res, body, http.StatusForbidden)
}

// TestPersonsAndKeys walks the admin's pages: enrol by upload, find,
// edit, the detail page, keys created (shown once) and revoked.
func TestPersonsAndKeys(t *testing.T) {
	e := newEnv(t, false)
	for _, g := range []string{"staff", "vip"} {
		if _, err := e.Svc.CreateGallery(context.Background(), store.Gallery{Name: g}); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser(t)
	b.login(e.Admin)
	res, body := b.postPhoto("/ui/persons", map[string]string{"name": "Angelina Jolie", "id": "angelina", "galleries": "staff", "card_number": "1234", "csrf": b.csrf},
		testenv.ReadPhoto(t, "deepface/img1.jpg"))
	wantStatus(t, "create", res, body, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/ui/persons/angelina" {
		t.Fatalf("create redirects to %q", loc)
	}
	res, body = b.get("/ui/persons?q=jolie")
	if !strings.Contains(body, `href="/ui/persons/angelina"`) {
		t.Errorf("search lacks the person:\n%s", body)
	}
	_, body = b.get("/ui/persons?q=nobody")
	if strings.Contains(body, "angelina") {
		t.Errorf("search for nobody lists angelina")
	}
	res, body = b.post("/ui/persons/angelina", url.Values{"csrf": {b.csrf}, "name": {"A. Jolie"}, "galleries": {"staff, vip"}, "card_number": {"99"}, "valid_until": {"2030-01-31"}, "disabled": {"on"}, "meta": {`{"team": "night"}`}})
	wantStatus(t, "edit", res, body, http.StatusSeeOther)
	p, err := e.Svc.GetPerson(context.Background(), "angelina")
	if err != nil || p.Name != "A. Jolie" || p.CardNumber != "99" || !p.Disabled || p.ValidUntil.Format("2006-01-02") != "2030-01-31" || p.Meta["team"] != "night" {
		t.Errorf("after edit: %+v %v", p, err)
	}
	res, body = b.get("/ui/persons/angelina")
	wantStatus(t, "detail", res, body, http.StatusOK)
	if !strings.Contains(body, "staff, vip") || !strings.Contains(body, "Saved.") {
		t.Errorf("detail lacks the galleries or the saved message:\n%s", body)
	}
	res, body = b.post("/ui/persons/angelina", url.Values{"csrf": {b.csrf}, "name": {"A. Jolie"}, "meta": {"[1, 2"}})
	wantStatus(t, "edit with bad metadata", res, body, http.StatusBadRequest)
	if !strings.Contains(body, "want a JSON object") {
		t.Errorf("bad metadata: the error does not say what to give:\n%s", body)
	}
	res, body = b.postPhoto("/ui/persons", map[string]string{"name": "No face", "csrf": b.csrf}, []byte("not a photo"))
	wantStatus(t, "create from a non-photo", res, body, http.StatusBadRequest)

	res, body = b.post("/ui/keys", url.Values{"csrf": {b.csrf}, "name": {"door-1"}, "scopes": {"read"}})
	wantStatus(t, "create key", res, body, http.StatusCreated)
	m := regexp.MustCompile(`id="new-key">([^<]+)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("new key not shown:\n%s", body)
	}
	if _, err := e.Svc.Authenticate(context.Background(), m[1], "read"); err != nil {
		t.Fatalf("the shown key: %v", err)
	}
	if _, body = b.get("/ui/keys"); strings.Contains(body, m[1]) {
		t.Error("the key is shown again")
	}
	id := strings.SplitN(m[1], ".", 2)[0]
	res, body = b.post("/ui/keys/"+id+"/revoke", url.Values{"csrf": {b.csrf}})
	wantStatus(t, "revoke", res, body, http.StatusSeeOther)
	if _, err := e.Svc.Authenticate(context.Background(), m[1], "read"); err == nil {
		t.Error("revoked key still works")
	}
	res, body = b.post("/ui/persons/angelina/delete", url.Values{"csrf": {b.csrf}})
	wantStatus(t, "delete", res, body, http.StatusSeeOther)
	res, body = b.get("/ui/persons/angelina")
	wantStatus(t, "deleted person", res, body, http.StatusNotFound)
	for _, path := range []string{"/ui/events", "/ui/cameras", "/ui/doors", "/ui/persons", "/ui/settings"} {
		res, body := b.get(path)
		wantStatus(t, path, res, body, http.StatusOK)
	}
	_, body = b.get("/ui/settings")
	if !strings.Contains(body, "listen: 127.0.0.1:8080") || strings.Contains(body, "<script>x") {
		t.Errorf("settings page: the configuration missing or not escaped:\n%s", body)
	}
}

func storeAll() store.ListOptions { return store.ListOptions{Limit: store.MaxLimit} }

// TestEnrolUnknownFromEvent: an unknown face's event, recorded with its
// crop, is listed with the crop and enrolled as a new person from the
// events section; an event without a crop offers no enrolment.
func TestEnrolUnknownFromEvent(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	res, err := e.Svc.Identify(ctx, service.IdentifyRequest{Photo: testenv.ReadPhoto(t, "deepface/img17.jpg"), Record: true, Snapshot: true, CameraID: "gate"})
	if err != nil || len(res) != 1 || res[0].EventID == 0 {
		t.Fatalf("identify: %+v, %v", res, err)
	}
	id := res[0].EventID
	plain, err := e.Svc.Identify(ctx, service.IdentifyRequest{Photo: testenv.ReadPhoto(t, "deepface/img17.jpg"), Record: true})
	if err != nil || len(plain) != 1 {
		t.Fatalf("identify: %+v, %v", plain, err)
	}
	b := e.browser(t)
	b.login(e.Write)
	r, body := b.get("/ui/events?camera_id=gate&matched=no")
	wantStatus(t, "events", r, body, http.StatusOK)
	crop := fmt.Sprintf(`/ui/events/%d/crop`, id)
	if !strings.Contains(body, crop) || !strings.Contains(body, fmt.Sprintf(`/ui/events/%d/enrol`, id)) {
		t.Fatalf("the unknown face's event lacks its crop or enrol form:\n%s", body)
	}
	if strings.Contains(body, fmt.Sprintf(`event-%d"`, plain[0].EventID)) {
		t.Error("the camera filter kept another camera's event")
	}
	r, img := b.get(crop)
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "image/jpeg" || !strings.HasPrefix(img, "\xff\xd8") {
		t.Errorf("crop: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	_, body = b.get("/ui/events")
	if strings.Contains(body, fmt.Sprintf(`/ui/events/%d/enrol`, plain[0].EventID)) {
		t.Error("an event without a crop offers enrolment")
	}
	r, body = b.post(fmt.Sprintf("/ui/events/%d/enrol", id), url.Values{"csrf": {b.csrf}, "person_id": {"visitor-1"}, "name": {"Visitor"}})
	wantStatus(t, "enrol from the event", r, body, http.StatusSeeOther)
	p, err := e.Svc.GetPerson(ctx, "visitor-1")
	if err != nil || p.Name != "Visitor" {
		t.Fatalf("enrolled person: %+v, %v", p, err)
	}
	again, err := e.Svc.Identify(ctx, service.IdentifyRequest{Photo: testenv.ReadPhoto(t, "deepface/img17.jpg")})
	if err != nil || len(again) != 1 || len(again[0].Matches) == 0 || again[0].Matches[0].Person.ID != "visitor-1" {
		t.Errorf("the face enrolled from the event is not identified: %+v, %v", again, err)
	}
}
