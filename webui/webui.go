// Package webui serves faced's local admin page: plain HTML from Go
// templates, with a small embedded stylesheet and script (no front-end
// library: nothing to vendor, works offline, no build step). It runs
// every operation through package service, as the native API does, and
// applies the API's scopes: a read key sees but cannot change.
//
// Security: logging in with an API key makes a server-side session (an
// HttpOnly, SameSite=Strict cookie holding a random id; Secure under
// TLS) with an idle and an absolute expiry; every state change is a POST
// carrying the session's CSRF token; login attempts are rate-limited per
// client address; every answer carries a strict Content-Security-Policy
// (no inline script or style), X-Frame-Options DENY and no-store.
package webui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/camera"
	"github.com/facedhq/faced/door"
	"github.com/facedhq/faced/service"
)

//go:embed assets
var assets embed.FS

// Cameras are the watched cameras (the daemon's camera set).
type Cameras interface {
	Status() []camera.Status
	Camera(id string) (*camera.Camera, bool)
}

// Config is what the page shows and acts on.
type Config struct {
	Service *service.Service
	Logger  *slog.Logger
	Version string
	Backend string
	Cameras Cameras          // nil: none
	Doors   *door.Controller // nil: none
	// Settings returns the effective configuration for display, secrets
	// already masked (nil: no settings section).
	Settings func() ([]byte, error)
	// Queue reports the inference queue (running, waiting, slots); nil:
	// not shown.
	Queue func() (running, waiting, slots int)
	// MQTTConnected reports the fleet broker connection; nil: MQTT is
	// not configured.
	MQTTConnected func() bool
	// TLS marks the session cookie Secure.
	TLS bool
	// IdleTimeout and MaxAge end a session (defaults 30 min and 12 h).
	IdleTimeout, MaxAge time.Duration
	// LoginRate login attempts per minute per client (default 5).
	LoginRate int
	// MaxUpload caps a form's body (default 10 MB).
	MaxUpload int64
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// CookieName is the session cookie's name.
const CookieName = "faced_session"

// UI is the admin page's handler. Mount it at "/" (exactly) and "/ui/".
type UI struct {
	cfg      Config
	sessions *sessions
	logins   *limiter
	pages    map[string]*template.Template
	static   http.Handler
	started  time.Time
	mux      *http.ServeMux
}

// New builds the page; it fails only when an embedded template does not
// parse (a build defect).
func New(cfg Config) (*UI, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 12 * time.Hour
	}
	if cfg.LoginRate <= 0 {
		cfg.LoginRate = 5
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 10 << 20
	}
	u := &UI{cfg: cfg, started: cfg.Now(),
		sessions: newSessions(cfg.IdleTimeout, cfg.MaxAge, 1000, cfg.Now),
		logins:   newLimiter(cfg.LoginRate, time.Minute, cfg.Now),
		pages:    map[string]*template.Template{}}
	funcs := template.FuncMap{"t": t, "since": func(tm time.Time) string { return tm.UTC().Format("2006-01-02 15:04:05") }}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html")
	if err != nil {
		return nil, fmt.Errorf("webui: %w", err)
	}
	for _, p := range []string{"login", "dashboard", "persons", "person", "events", "keys", "cameras", "doors", "settings", "error"} {
		c, err := template.Must(layout.Clone()).ParseFS(assets, "assets/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("webui: page %s: %w", p, err)
		}
		u.pages[p] = c
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, fmt.Errorf("webui: %w", err)
	}
	u.static = http.StripPrefix("/ui/static/", http.FileServerFS(static))
	u.mux = u.routes()
	return u, nil
}

// t is the template's text lookup: an unknown key is an error, so a
// missing string fails the page (and its test) instead of showing a key.
func t(key string) (string, error) {
	s, ok := text[key]
	if !ok {
		return "", fmt.Errorf("webui: no text %q", key)
	}
	return s, nil
}

// csp allows scripts, styles, images and forms from the page's own origin
// only: no inline script or style, no plugins, no framing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ServeHTTP serves the page with its security headers.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer Chrome sends
	// "Origin: null" on the page's own form posts.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if r.Method == http.MethodPost && !sameOrigin(r) {
		u.fail(w, r, nil, http.StatusForbidden, "error.csrf")
		return
	}
	u.mux.ServeHTTP(w, r)
}

// sameOrigin refuses a POST whose Origin (sent by every current browser
// on a POST) names another site: defence in depth beside the CSRF token
// and SameSite=Strict, and the login form's only CSRF guard.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	switch o {
	case "":
		return true
	case "null":
		// Privacy settings can blank the origin; the browser's own
		// Fetch Metadata then still says where the post came from.
		return r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	ou, err := url.Parse(o)
	return err == nil && ou.Host == r.Host
}

// access is what a page needs of the session.
type access int

const (
	needRead access = iota
	needWrite
	needAdmin
)

func (a access) scope() string {
	switch a {
	case needWrite:
		return auth.ScopeWrite
	case needAdmin:
		return auth.ScopeAdmin
	}
	return auth.ScopeRead
}

// view is what every page template gets.
type view struct {
	Title    string
	Session  *session
	Who      string // the session key's name and id
	CSRF     string
	Flash    string
	Error    string
	CanWrite bool
	CanAdmin bool
	Cameras  bool
	Doors    bool
	Settings bool
	Data     any
}

// page is a handler for a logged-in session.
type page func(w http.ResponseWriter, r *http.Request, s *session) error

// authed wraps a page: a session is required (else the login page), the
// key behind it is authenticated again with the scope need (403 when it
// lacks it), and a POST must carry the session's CSRF token (403).
func (u *UI) authed(need access, p page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := u.session(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
				return
			}
			u.fail(w, r, nil, http.StatusForbidden, "error.csrf")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, u.cfg.MaxUpload)
			if err := r.ParseMultipartForm(u.cfg.MaxUpload); err != nil && !errors.Is(err, http.ErrNotMultipart) {
				u.fail(w, r, s, http.StatusBadRequest, "error.title")
				return
			}
			if !validCSRF(s, r.PostFormValue("csrf")) {
				u.fail(w, r, s, http.StatusForbidden, "error.csrf")
				return
			}
		}
		if _, err := u.cfg.Service.Authenticate(r.Context(), s.token, need.scope()); err != nil {
			if errors.Is(err, service.ErrForbidden) {
				u.fail(w, r, s, http.StatusForbidden, "error.forbidden")
				return
			}
			// Revoked, or gone: the session ends with its key.
			u.sessions.end(s.id)
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		if err := p(w, r, s); err != nil {
			u.serviceError(w, r, s, err)
		}
	})
}

// session is the request's live session, or nil.
func (u *UI) session(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil
	}
	return u.sessions.get(c.Value)
}

// newView fills what every page shows for session s.
func (u *UI) newView(s *session, title string, data any) view {
	v := view{Title: title, Session: s, Data: data, Cameras: u.cfg.Cameras != nil, Doors: u.cfg.Doors != nil && len(u.cfg.Doors.Doors()) > 0,
		Settings: u.cfg.Settings != nil}
	if s != nil {
		v.CSRF = s.csrf
		v.Who = s.keyName + " (" + s.keyID + ")"
		v.Flash = u.sessions.takeFlash(s)
		v.CanWrite = auth.Allows(s.scopes, auth.ScopeWrite)
		v.CanAdmin = auth.Allows(s.scopes, auth.ScopeAdmin)
	}
	return v
}

// render writes a page.
func (u *UI) render(w http.ResponseWriter, status int, name string, v view) {
	var b strings.Builder
	if err := u.pages[name].ExecuteTemplate(&b, "layout.html", v); err != nil {
		u.cfg.Logger.Error("admin page: render", "page", name, "err", err)
		http.Error(w, "page failed to render", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

// fail renders the error page with a message key.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	v := u.newView(s, text["error.title"], nil)
	v.Error = text[msg]
	u.render(w, status, "error", v)
}

// serviceError shows what a service call refused, in words from the
// service's own error (no secret or biometric ends up in one).
func (u *UI) serviceError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status := http.StatusInternalServerError
	var nf *service.NotFoundError
	switch {
	case errors.As(err, &nf), errors.Is(err, door.ErrNoDoor):
		status = http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	case isClientError(err):
		status = http.StatusBadRequest
	default:
		u.cfg.Logger.Error("admin page: request failed", "path", r.URL.Path, "err", err)
	}
	v := u.newView(s, text["error.title"], nil)
	v.Error = err.Error()
	if status == http.StatusInternalServerError {
		v.Error = text["error.internal"]
	}
	u.render(w, status, "error", v)
}

// back redirects to a page after a POST, with a message for it.
func (u *UI) back(w http.ResponseWriter, r *http.Request, s *session, to, flash string) {
	if flash != "" {
		u.sessions.setFlash(s, flash)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
