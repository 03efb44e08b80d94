package findface

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/facedhq/faced/api/dialect"
	"github.com/facedhq/faced/store"
)

// galleryNames lists every gallery's name.
func (h *handler) galleryNames(ctx context.Context) ([]string, error) {
	gs, err := dialect.All(ctx, h.svc.ListGalleries, store.ListOptions{})
	out := []string{}
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out, err
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
