package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/door"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

func (u *UI) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("GET /ui/static/", u.static)
	m.HandleFunc("GET /ui/login", u.loginPage)
	m.HandleFunc("POST /ui/login", u.login)
	m.HandleFunc("POST /ui/logout", u.logout)
	m.Handle("GET /{$}", u.authed(needRead, u.dashboard))
	m.Handle("GET /ui/{$}", u.authed(needRead, u.dashboard))
	m.Handle("GET /ui/persons", u.authed(needRead, u.persons))
	m.Handle("POST /ui/persons", u.authed(needWrite, u.createPerson))
	m.Handle("GET /ui/persons/{id}", u.authed(needRead, u.person))
	m.Handle("POST /ui/persons/{id}", u.authed(needWrite, u.updatePerson))
	m.Handle("POST /ui/persons/{id}/faces", u.authed(needWrite, u.addFace))
	m.Handle("POST /ui/persons/{id}/delete", u.authed(needWrite, u.deletePerson))
	m.Handle("GET /ui/faces/{id}/image", u.authed(needRead, u.faceImage))
	m.Handle("GET /ui/events", u.authed(needRead, u.events))
	m.Handle("GET /ui/events/{id}/crop", u.authed(needRead, u.eventCrop))
	m.Handle("POST /ui/events/{id}/enrol", u.authed(needWrite, u.enrolEvent))
	m.Handle("GET /ui/keys", u.authed(needAdmin, u.keys))
	m.Handle("POST /ui/keys", u.authed(needAdmin, u.createKey))
	m.Handle("POST /ui/keys/{id}/revoke", u.authed(needAdmin, u.revokeKey))
	m.Handle("GET /ui/cameras", u.authed(needRead, u.cameras))
	m.Handle("GET /ui/cameras/{id}/mjpeg", u.authed(needRead, u.cameraStream))
	m.Handle("GET /ui/doors", u.authed(needRead, u.doors))
	m.Handle("POST /ui/doors/{id}/open", u.authed(needAdmin, u.openDoor))
	m.Handle("GET /ui/settings", u.authed(needAdmin, u.settings))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.fail(w, r, u.session(r), http.StatusNotFound, "error.notfound")
	})
	return m
}

// --- login ---

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	if u.session(r) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	u.render(w, http.StatusOK, "login", u.newView(nil, text["login.title"], nil))
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	v := u.newView(nil, text["login.title"], nil)
	if !u.logins.allow(r) {
		w.Header().Set("Retry-After", "60")
		v.Error = text["login.limited"]
		u.render(w, http.StatusTooManyRequests, "login", v)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token := strings.TrimSpace(r.PostFormValue("key"))
	k, err := u.cfg.Service.Authenticate(r.Context(), token, auth.ScopeRead)
	if err != nil {
		v.Error = text["login.bad"]
		if !errors.Is(err, service.ErrUnauthorized) && !errors.Is(err, service.ErrForbidden) {
			u.cfg.Logger.Error("admin page: login", "err", err)
		}
		u.render(w, http.StatusUnauthorized, "login", v)
		return
	}
	if old := u.session(r); old != nil {
		u.sessions.end(old.id) // a new login never reuses an id
	}
	s := u.sessions.create(token, k.ID, k.Name, k.Scopes)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: s.id, Path: "/", HttpOnly: true, Secure: u.cfg.TLS,
		SameSite: http.SameSiteStrictMode, MaxAge: int(u.cfg.MaxAge.Seconds())})
	u.cfg.Logger.Info("admin page: logged in", "key_id", k.ID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	s := u.session(r)
	if s == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	if !validCSRF(s, r.PostFormValue("csrf")) {
		u.fail(w, r, s, http.StatusForbidden, "error.csrf")
		return
	}
	u.sessions.end(s.id)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: u.cfg.TLS,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// --- dashboard ---

type dashboard struct {
	Version, Backend, Embedder string
	Models                     []string
	Faces                      int
	Started                    time.Time
	Outbox                     store.OutboxStats
	OutboxErr                  string
	Galleries                  []service.GalleryCount
	Queue                      bool
	Running, Waiting, Slots    int
	MQTT                       string // text key: not configured, connected, disconnected
	Cameras                    []cameraRow
	Doors                      []door.Status
}

type cameraRow struct {
	ID, State, Error string
	FPS              string
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request, s *session) error {
	svc := u.cfg.Service
	d := dashboard{Version: u.cfg.Version, Backend: u.cfg.Backend, Embedder: svc.EmbedderID(), Faces: svc.IndexSize(), Started: u.started}
	for _, m := range svc.Pipeline().Models() {
		d.Models = append(d.Models, fmt.Sprintf("%s (%s)", m.Name, m.Task))
	}
	if st, err := svc.OutboxStats(r.Context()); err != nil {
		d.OutboxErr = err.Error()
	} else {
		d.Outbox = st
	}
	gs, _, err := svc.GalleryCounts(r.Context(), 50)
	if err != nil {
		return err
	}
	d.Galleries = gs
	d.Cameras = u.cameraRows()
	d.Doors = u.doorStatus()
	if u.cfg.Queue != nil {
		d.Queue = true
		d.Running, d.Waiting, d.Slots = u.cfg.Queue()
	}
	switch {
	case u.cfg.MQTTConnected == nil:
		d.MQTT = "dash.mqtt.off"
	case u.cfg.MQTTConnected():
		d.MQTT = "dash.mqtt.up"
	default:
		d.MQTT = "dash.mqtt.down"
	}
	u.render(w, http.StatusOK, "dashboard", u.newView(s, text["dash.title"], d))
	return nil
}

func (u *UI) cameraRows() []cameraRow {
	if u.cfg.Cameras == nil {
		return nil
	}
	var rows []cameraRow
	for _, c := range u.cfg.Cameras.Status() {
		rows = append(rows, cameraRow{ID: c.ID, State: c.State, Error: c.Error, FPS: strconv.FormatFloat(c.ProcessedFPS, 'f', 1, 64)})
	}
	return rows
}

func (u *UI) doorStatus() []door.Status {
	if u.cfg.Doors == nil {
		return nil
	}
	var out []door.Status
	for _, d := range u.cfg.Doors.Doors() {
		out = append(out, d.Status(u.cfg.Now()))
	}
	return out
}

// --- persons ---

type personsData struct {
	Query   string
	Persons []store.Person
	Next    string
}

// maxScan bounds a search's walk through the persons: a device holds
// thousands at most, and a search must not become a denial of service.
const maxScan = 20000

func (u *UI) persons(w http.ResponseWriter, r *http.Request, s *session) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := personsData{Query: q}
	if q == "" {
		page, err := u.cfg.Service.ListPersons(r.Context(), store.ListOptions{Cursor: r.URL.Query().Get("cursor"), Limit: 50})
		if err != nil {
			return err
		}
		d.Persons, d.Next = page.Items, page.Next
	} else {
		needle := strings.ToLower(q)
		cursor := ""
		for scanned := 0; scanned < maxScan && len(d.Persons) < 50; {
			page, err := u.cfg.Service.ListPersons(r.Context(), store.ListOptions{Cursor: cursor, Limit: store.MaxLimit})
			if err != nil {
				return err
			}
			for _, p := range page.Items {
				if strings.Contains(strings.ToLower(p.Name), needle) || strings.Contains(strings.ToLower(p.ID), needle) {
					d.Persons = append(d.Persons, p)
				}
			}
			scanned += len(page.Items)
			if cursor = page.Next; cursor == "" {
				break
			}
		}
	}
	u.render(w, http.StatusOK, "persons", u.newView(s, text["persons.title"], d))
	return nil
}

// personForm reads the editable fields of a person from a form into p.
func personForm(r *http.Request, p *store.Person) error {
	p.Name = strings.TrimSpace(r.PostFormValue("name"))
	p.CardNumber = strings.TrimSpace(r.PostFormValue("card_number"))
	p.Disabled = r.PostFormValue("disabled") == "on"
	var err error
	if p.ValidFrom, err = formDate(r, "valid_from"); err != nil {
		return err
	}
	if p.ValidUntil, err = formDate(r, "valid_until"); err != nil {
		return err
	}
	p.Meta = nil
	if m := strings.TrimSpace(r.PostFormValue("meta")); m != "" {
		if err := json.Unmarshal([]byte(m), &p.Meta); err != nil {
			return fmt.Errorf("%w: metadata: want a JSON object, e.g. {\"team\": \"night\"}: %v", service.ErrInvalid, err)
		}
	}
	return nil
}

// metaJSON shows a person's metadata in the edit form.
func metaJSON(m store.Metadata) string {
	if len(m) == 0 {
		return ""
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

// formDate reads a <input type="date"> (empty: no bound), as UTC midnight.
func formDate(r *http.Request, name string) (time.Time, error) {
	v := strings.TrimSpace(r.PostFormValue(name))
	if v == "" {
		return time.Time{}, nil
	}
	tm, err := time.Parse("2006-01-02", v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: want a date YYYY-MM-DD, got %q", service.ErrInvalid, name, v)
	}
	return tm, nil
}

func formGalleries(r *http.Request) []string {
	var out []string
	for g := range strings.SplitSeq(r.PostFormValue("galleries"), ",") {
		if g = strings.TrimSpace(g); g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// formPhoto reads the uploaded photo.
func formPhoto(r *http.Request) ([]byte, error) {
	f, _, err := r.FormFile("photo")
	if errors.Is(err, http.ErrMissingFile) || errors.Is(err, multipart.ErrMessageTooLarge) {
		return nil, fmt.Errorf("%w: choose a photo", service.ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: photo: %v", service.ErrInvalid, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("webui: read photo: %w", err)
	}
	return b, nil
}

func (u *UI) createPerson(w http.ResponseWriter, r *http.Request, s *session) error {
	p := store.Person{ID: strings.TrimSpace(r.PostFormValue("id"))}
	if err := personForm(r, &p); err != nil {
		return err
	}
	photo, err := formPhoto(r)
	if err != nil {
		return err
	}
	p, _, err = u.cfg.Service.Enroll(r.Context(), service.EnrollRequest{Person: p, Photos: [][]byte{photo},
		FaceInput: service.FaceInput{Galleries: formGalleries(r), RejectDuplicates: true}})
	if err != nil {
		return err
	}
	u.back(w, r, s, "/ui/persons/"+pathEscape(p.ID), text["person.created"])
	return nil
}

type personData struct {
	Person    store.Person
	Meta      string
	Faces     []store.Face
	Galleries string
	Events    []store.Event
}

func (u *UI) person(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	p, err := u.cfg.Service.GetPerson(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	faces, err := u.cfg.Service.ListFaces(ctx, store.ListOptions{PersonID: p.ID, Limit: store.MaxLimit})
	if err != nil {
		return err
	}
	var gs []string
	for _, f := range faces.Items {
		for _, g := range f.Galleries {
			if !slices.Contains(gs, g) {
				gs = append(gs, g)
			}
		}
	}
	evs, err := u.cfg.Service.ListEvents(ctx, store.EventQuery{PersonID: p.ID, Limit: 20})
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "person", u.newView(s, p.Name, personData{Person: p, Meta: metaJSON(p.Meta), Faces: faces.Items, Galleries: strings.Join(gs, ", "), Events: evs.Items}))
	return nil
}

func (u *UI) updatePerson(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	id := r.PathValue("id")
	var form store.Person
	if err := personForm(r, &form); err != nil {
		return err
	}
	if _, err := u.cfg.Service.UpdatePerson(ctx, id, func(p *store.Person) error {
		p.Name, p.CardNumber, p.Disabled, p.ValidFrom, p.ValidUntil = form.Name, form.CardNumber, form.Disabled, form.ValidFrom, form.ValidUntil
		p.Meta = form.Meta
		return nil
	}); err != nil {
		return err
	}
	// Galleries belong to faces: the person's list is set on each of them.
	if gs := formGalleries(r); len(gs) > 0 {
		faces, err := u.cfg.Service.ListFaces(ctx, store.ListOptions{PersonID: id, Limit: store.MaxLimit})
		if err != nil {
			return err
		}
		for _, f := range faces.Items {
			if _, err := u.cfg.Service.UpdateFace(ctx, f.ID, service.FaceUpdate{Galleries: &service.GalleryChange{Set: gs, SetGiven: true}}); err != nil {
				return err
			}
		}
	}
	u.back(w, r, s, "/ui/persons/"+pathEscape(id), text["person.saved"])
	return nil
}

func (u *UI) addFace(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	photo, err := formPhoto(r)
	if err != nil {
		return err
	}
	if _, err := u.cfg.Service.AddFaces(r.Context(), id, [][]byte{photo}, service.FaceInput{Galleries: formGalleries(r), RejectDuplicates: true}); err != nil {
		return err
	}
	u.back(w, r, s, "/ui/persons/"+pathEscape(id), text["person.faceadded"])
	return nil
}

func (u *UI) deletePerson(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := u.cfg.Service.DeletePerson(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	u.back(w, r, s, "/ui/persons", text["person.deleted"])
	return nil
}

func (u *UI) faceImage(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: face id %q", service.ErrInvalid, r.PathValue("id"))
	}
	img, err := u.cfg.Service.FaceImage(r.Context(), id)
	if err != nil {
		return err
	}
	writeJPEG(w, img)
	return nil
}

func writeJPEG(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "image/jpeg")
	w.Write(b)
}

// --- events ---

type eventsData struct {
	PersonID, CameraID, Matched string
	Events                      []store.Event
	Next                        string
}

func (u *UI) events(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := eventsData{PersonID: q.Get("person_id"), CameraID: q.Get("camera_id"), Matched: q.Get("matched")}
	eq := store.EventQuery{PersonID: d.PersonID, Cursor: q.Get("cursor"), Limit: 50}
	if d.CameraID != "" {
		eq.CameraIDs = []string{d.CameraID}
	}
	switch d.Matched {
	case "yes", "no":
		m := d.Matched == "yes"
		eq.Matched = &m
	}
	page, err := u.cfg.Service.ListEvents(r.Context(), eq)
	if err != nil {
		return err
	}
	d.Events, d.Next = page.Items, page.Next
	u.render(w, http.StatusOK, "events", u.newView(s, text["events.title"], d))
	return nil
}

func eventID(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: event id %q", service.ErrInvalid, r.PathValue("id"))
	}
	return id, nil
}

func (u *UI) eventCrop(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	crop, err := u.cfg.Service.EventCrop(r.Context(), id)
	if err != nil {
		return err
	}
	writeJPEG(w, crop)
	return nil
}

// enrolEvent enrols an event's crop: as another face of an existing
// person, or as a new person (named in the form).
func (u *UI) enrolEvent(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	id, err := eventID(r)
	if err != nil {
		return err
	}
	pid := strings.TrimSpace(r.PostFormValue("person_id"))
	in := service.FaceInput{Galleries: formGalleries(r), RejectDuplicates: true}
	if pid != "" {
		if _, err := u.cfg.Service.GetPerson(ctx, pid); err == nil {
			if _, err := u.cfg.Service.AddFaceFromEvent(ctx, pid, id, in); err != nil {
				return err
			}
			u.back(w, r, s, "/ui/persons/"+pathEscape(pid), text["events.enrolled"])
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	p, _, err := u.cfg.Service.EnrollFromEvent(ctx, store.Person{ID: pid, Name: strings.TrimSpace(r.PostFormValue("name"))}, id, in)
	if err != nil {
		return err
	}
	u.back(w, r, s, "/ui/persons/"+pathEscape(p.ID), text["events.enrolled"])
	return nil
}

// --- keys ---

type keysData struct {
	Keys   []store.APIKey
	Scopes []string
	Token  string // the key just created, shown once
}

func (u *UI) keysPage(w http.ResponseWriter, r *http.Request, s *session, status int, token string) error {
	keys, err := u.cfg.Service.ListKeys(r.Context())
	if err != nil {
		return err
	}
	u.render(w, status, "keys", u.newView(s, text["keys.title"], keysData{Keys: keys, Scopes: auth.AllScopes, Token: token}))
	return nil
}

func (u *UI) keys(w http.ResponseWriter, r *http.Request, s *session) error {
	return u.keysPage(w, r, s, http.StatusOK, "")
}

func (u *UI) createKey(w http.ResponseWriter, r *http.Request, s *session) error {
	k, err := u.cfg.Service.CreateKey(r.Context(), strings.TrimSpace(r.PostFormValue("name")), r.PostForm["scopes"])
	if err != nil {
		return err
	}
	u.cfg.Logger.Info("admin page: key created", "key_id", k.ID, "by", s.keyID)
	// Rendered, not redirected to: the token is shown on this answer only
	// (no-store keeps it out of the cache).
	return u.keysPage(w, r, s, http.StatusCreated, k.Token)
}

func (u *UI) revokeKey(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	if err := u.cfg.Service.RevokeKey(r.Context(), id); err != nil {
		return err
	}
	u.cfg.Logger.Info("admin page: key revoked", "key_id", id, "by", s.keyID)
	u.back(w, r, s, "/ui/keys", text["keys.revokedmsg"])
	return nil
}

// --- cameras and doors ---

func (u *UI) cameras(w http.ResponseWriter, r *http.Request, s *session) error {
	u.render(w, http.StatusOK, "cameras", u.newView(s, text["cameras.title"], u.cameraRows()))
	return nil
}

// cameraStream serves a camera's annotated MJPEG stream to the session,
// as GET /v1/cameras/{id}/mjpeg does to a key.
func (u *UI) cameraStream(w http.ResponseWriter, r *http.Request, s *session) error {
	if u.cfg.Cameras == nil {
		return &service.NotFoundError{Kind: "camera", ID: r.PathValue("id"), Err: store.ErrNotFound}
	}
	c, ok := u.cfg.Cameras.Camera(r.PathValue("id"))
	if !ok {
		return &service.NotFoundError{Kind: "camera", ID: r.PathValue("id"), Err: store.ErrNotFound}
	}
	c.ServeMJPEG(r.Context(), w)
	return nil
}

type doorRow struct {
	door.Status
	Last []store.Event
}

func (u *UI) doors(w http.ResponseWriter, r *http.Request, s *session) error {
	var rows []doorRow
	for _, st := range u.doorStatus() {
		evs, err := u.cfg.Service.ListEvents(r.Context(), store.EventQuery{DoorIDs: []string{st.ID}, Limit: 10})
		if err != nil {
			return err
		}
		rows = append(rows, doorRow{Status: st, Last: evs.Items})
	}
	u.render(w, http.StatusOK, "doors", u.newView(s, text["doors.title"], rows))
	return nil
}

func (u *UI) openDoor(w http.ResponseWriter, r *http.Request, s *session) error {
	if u.cfg.Doors == nil {
		return &service.NotFoundError{Kind: "door", ID: r.PathValue("id"), Err: store.ErrNotFound}
	}
	if _, err := u.cfg.Doors.Open(r.Context(), r.PathValue("id"), s.keyID); err != nil {
		return err
	}
	u.back(w, r, s, "/ui/doors", text["doors.opened"])
	return nil
}

// isClientError reports errors the user can fix (shown with 400).
func isClientError(err error) bool {
	var many *face.ErrTooManyFaces
	var noFace *service.NoFaceError
	var dup *service.DuplicateFaceError
	return errors.Is(err, service.ErrInvalid) || errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrDuplicate) ||
		errors.Is(err, store.ErrNotFound) || errors.As(err, &many) || errors.As(err, &noFace) || errors.As(err, &dup) ||
		errors.Is(err, face.ErrUnsupportedFormat) || errors.Is(err, face.ErrEmpty) || errors.Is(err, face.ErrCorrupt) ||
		errors.Is(err, face.ErrTooSmall) || errors.Is(err, face.ErrTooManyPixels) || errors.Is(err, face.ErrTooLarge) ||
		errors.Is(err, service.ErrNoFace)
}

func pathEscape(s string) string { return url.PathEscape(s) }

// settings shows the effective configuration, read-only (admin: the API
// reserves configuration to that scope), secrets masked by the daemon.
func (u *UI) settings(w http.ResponseWriter, r *http.Request, s *session) error {
	if u.cfg.Settings == nil {
		return &service.NotFoundError{Kind: "page", ID: "settings", Err: store.ErrNotFound}
	}
	b, err := u.cfg.Settings()
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "settings", u.newView(s, text["settings.title"], string(b)))
	return nil
}
