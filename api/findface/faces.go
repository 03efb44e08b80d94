package findface

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/draw"
	"image/jpeg"
	_ "image/png" // decode PNG crops
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"github.com/facedhq/faced/api/dialect"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// How faces are kept and shown: the metadata keys of FindFace's meta and
// of the original box and photo hash of a cropped face, and the time
// format of face and history timestamps.
const (
	metaKey    = "meta"
	boxKey     = "findface_box"
	hashKey    = "findface_photo_hash"
	timeLayout = "2006-01-02T15:04:05.000000"
)

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

// numeric shows an id as FindFace does: a number when it is one (of at
// most bits bits), else the string; "" is nil.
func numeric(id string, bits int) any {
	if id == "" {
		return nil
	}
	if n, err := strconv.ParseUint(id, 10, bits); err == nil && strconv.FormatUint(n, 10) == id {
		return n
	}
	return id
}

// personIDOf shows a faced person's external id as FindFace's person_id.
func personIDOf(ext string) any { return numeric(ext, 64) }

func camOf(c string) any { return numeric(c, 32) }

// personID is FindFace's person_id of a faced person, looked up once per
// response (persons caches the external ids; nil: no cache).
func (h *handler) personID(ctx context.Context, id string, persons map[string]string) any {
	ext, ok := persons[id]
	if !ok {
		if p, err := h.svc.GetPerson(ctx, id); err == nil {
			ext = p.ExternalID
		}
		if persons != nil {
			persons[id] = ext
		}
	}
	return personIDOf(ext)
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
	out.PersonID = h.personID(ctx, f.PersonID, persons)
	return out
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
		biggest := faces[0].Box
		if len(bbox) > 0 {
			if faces, err = pick(faces, faceBox, bbox); err != nil {
				return nil, err
			}
		}
		for _, f := range faces {
			if f.Box == biggest {
				f.Box = face.Box{} // the photo as is
			}
			targets = append(targets, f.Box)
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
			h.front.Logger.Warn("findface: person id", "face", fs[0].ID, "err", err)
		}
	}
	return fs[0], nil
}

// pathFace is the face of the path's {id}; an id that is not a face id
// is 404 like an unknown one.
func (h *handler) pathFace(r *request) (store.Face, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return store.Face{}, &apiError{status: http.StatusNotFound, msg: "Not found"}
	}
	return h.svc.GetFace(r.Context(), id)
}

func (h *handler) getFace(r *request) (any, error) {
	f, err := h.pathFace(r)
	if err != nil {
		return nil, err
	}
	return h.faceJSON(r.Context(), f, nil), nil
}

// galleryChange reads PUT's galleries: a list (the new set) or one of
// {"add": [...]}, {"del": [...]}, {"set": [...]}, possibly as a JSON
// string. Galleries added or set that do not exist yet are created.
func (h *handler) galleryChange(ctx context.Context, v any) (*service.GalleryChange, error) {
	const invalid = `Invalid galleries: want one of {"add": [...]}, {"del": [...]}, {"set": [...]}`
	if s, ok := v.(string); ok {
		var x any
		if json.Unmarshal([]byte(s), &x) == nil {
			v = x
		}
	}
	op, l := "set", v
	if m, ok := v.(map[string]any); ok {
		if len(m) != 1 {
			return nil, badRequest(invalid)
		}
		for op, l = range m {
		}
	}
	names, err := listOf(l, "galleries")
	if err != nil {
		return nil, err
	}
	var c service.GalleryChange
	switch op {
	case "add":
		c.Add = names
	case "del":
		c.Del = names
	case "set":
		c.Set, c.SetGiven = names, true
	default:
		return nil, badRequest(invalid)
	}
	if op != "del" {
		if err := h.ensureGalleries(ctx, names); err != nil {
			return nil, err
		}
	}
	if c.SetGiven && len(c.Set) == 0 {
		return nil, badRequest("Invalid galleries: a face must stay in at least one gallery")
	}
	return &c, nil
}

func (h *handler) putFace(r *request) (any, error) {
	f, err := h.pathFace(r)
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
		if u.Galleries, err = h.galleryChange(r.Context(), v); err != nil {
			return nil, err
		}
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
	f, err = h.svc.UpdateFace(r.Context(), f.ID, u)
	if err != nil {
		return nil, err
	}
	if u.PersonID != nil && *u.PersonID != old {
		h.dropIfEmpty(r.Context(), old)
	}
	if u.Meta != nil {
		meta := r.str("meta")
		if _, err := h.svc.UpdatePerson(r.Context(), f.PersonID, func(p *store.Person) error { p.Name = meta; return nil }); err != nil {
			h.front.Logger.Warn("findface: person name", "err", err)
		}
	}
	return h.faceJSON(r.Context(), f, nil), nil
}

func (h *handler) dropIfEmpty(ctx context.Context, pid string) {
	page, err := h.svc.ListFaces(ctx, store.ListOptions{PersonID: pid, Limit: 1})
	if err == nil && len(page.Items) == 0 {
		if err := h.svc.DeletePerson(ctx, pid); err != nil {
			h.front.Logger.Warn("findface: drop empty person", "err", err)
		}
	}
}

func (h *handler) deleteFace(r *request) (any, error) {
	f, err := h.pathFace(r)
	if err != nil {
		return nil, err
	}
	if err := h.svc.DeleteFace(r.Context(), f.ID); err != nil {
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
	out, err := dialect.All(ctx, h.svc.ListFaces, store.ListOptions{Gallery: gallery})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b store.Face) int { return cmp.Compare(a.ID, b.ID) })
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
