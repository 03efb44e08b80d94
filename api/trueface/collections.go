package trueface

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/facedhq/faced/api/dialect"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

var galleryName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,48}$`)

// collection resolves a collection id to an existing gallery.
func (h *handler) collection(ctx context.Context, id string) (store.Gallery, error) {
	if !galleryName.MatchString(id) {
		return store.Gallery{}, fail(http.StatusNotFound, "collection not found")
	}
	gs, err := dialect.All(ctx, h.svc.ListGalleries, store.ListOptions{})
	if err != nil {
		return store.Gallery{}, err
	}
	if i := slices.IndexFunc(gs, func(g store.Gallery) bool { return g.Name == id }); i >= 0 {
		return gs[i], nil
	}
	return store.Gallery{}, fail(http.StatusNotFound, "collection not found")
}

// collectionOf reads the required collection_id and resolves it.
func (h *handler) collectionOf(r *request) (store.Gallery, error) {
	cid, err := r.required("collection_id")
	if err != nil {
		return store.Gallery{}, err
	}
	return h.collection(r.Context(), cid)
}

func newCollectionID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "tf-" + hex.EncodeToString(b), nil
}

func (h *handler) createCollection(r *request) (any, error) {
	m, err := r.object()
	if err != nil {
		return nil, err
	}
	name, err := r.required("name")
	if err != nil {
		return nil, err
	}
	unknowns := false
	if raw, has := m["unknowns"]; has && strings.TrimSpace(string(raw)) != "null" {
		if err := json.Unmarshal(raw, &unknowns); err != nil {
			return nil, bad("unknowns must be a boolean")
		}
	}
	id, err := newCollectionID()
	if err != nil {
		return nil, err
	}
	if _, err := h.svc.CreateGallery(r.Context(), store.Gallery{Name: id, Meta: store.Metadata{marker: true, "name": name, "unknowns": unknowns}}); err != nil {
		return nil, err
	}
	return ok(map[string]string{"collection_id": id}, "collection created successfully"), nil
}

// personFaces lists every face of a person, oldest first.
func (h *handler) personFaces(ctx context.Context, id string) ([]store.Face, error) {
	out, err := dialect.All(ctx, h.svc.ListFaces, store.ListOptions{PersonID: id})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(http.StatusNotFound, "enrollment not found")
	}
	return out, err
}

func (h *handler) enrollment(ctx context.Context, id string) (store.Person, error) {
	p, err := h.svc.GetPerson(ctx, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return p, fail(http.StatusNotFound, "enrollment not found")
	}
	return p, err
}

func (h *handler) updateCollection(r *request) (any, error) {
	eid, err := r.required("enrollment_id")
	if err != nil {
		return nil, err
	}
	g, err := h.collectionOf(r)
	if err != nil {
		return nil, err
	}
	cid := g.Name
	if _, err := h.enrollment(r.Context(), eid); err != nil {
		return nil, err
	}
	faces, err := h.personFaces(r.Context(), eid)
	if err != nil {
		return nil, err
	}
	for _, f := range faces {
		if _, err := h.svc.UpdateFace(r.Context(), f.ID, service.FaceUpdate{Galleries: &service.GalleryChange{Add: []string{cid}}}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return ok(map[string]string{"collection_id": cid}, "collection updated successfully"), nil
}

func (h *handler) deleteCollection(r *request) (any, error) {
	g, err := h.collectionOf(r)
	if err != nil {
		return nil, err
	}
	cid := g.Name
	if err := h.svc.DeleteGallery(r.Context(), cid, false); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fail(http.StatusNotFound, "collection not found")
		}
		if errors.Is(err, store.ErrInvalid) || errors.Is(err, service.ErrInvalid) {
			return nil, bad("collection cannot be deleted: it is the default gallery or holds faces in no other gallery")
		}
		return nil, err
	}
	return reply{data: fmt.Sprintf("Entity *%s* has been deleted", cid)}, nil
}

// Collection is one element of the collection list.
type Collection struct {
	ClassifierURL string   `json:"classifier_url"`
	Created       string   `json:"created"`
	Enrollments   []string `json:"enrollments"`
	ID            string   `json:"id"`
	LabelEncoder  string   `json:"label_encoder"`
	Name          string   `json:"name"`
	Owner         string   `json:"owner"`
	Unknown       bool     `json:"unknown"`
	Updated       string   `json:"updated"`
}

func (h *handler) listCollections(r *request) (any, error) {
	ctx := r.Context()
	out := []Collection{}
	gs, err := dialect.All(ctx, h.svc.ListGalleries, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		if v, _ := g.Meta[marker].(bool); !v {
			continue
		}
		name, _ := g.Meta["name"].(string)
		unknown, _ := g.Meta["unknowns"].(bool)
		ts := g.CreatedAt.UTC().Format(timeLayout)
		c := Collection{Created: ts, Updated: ts, ID: g.Name, Name: name, Unknown: unknown, Enrollments: []string{}}
		faces, err := dialect.All(ctx, h.svc.ListFaces, store.ListOptions{Gallery: g.Name})
		if err != nil {
			return nil, err
		}
		for _, f := range faces {
			if !slices.Contains(c.Enrollments, f.PersonID) {
				c.Enrollments = append(c.Enrollments, f.PersonID)
			}
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created < out[j].Created })
	return ok(out, "collections listed successfully"), nil
}

func (h *handler) train(r *request) (any, error) {
	g, err := h.collectionOf(r)
	if err != nil {
		return nil, err
	}
	cid := g.Name
	return ok(map[string]any{"collection_id": cid, "trained": true}, "classifier is up to date (faced's index is always current)"), nil
}
