package trueface

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

func (h *handler) enroll(r *request) (any, error) {
	ctx := r.Context()
	photos, err := r.images()
	if err != nil {
		return nil, err
	}
	name, _, err := r.str("name")
	if err != nil {
		return nil, err
	}
	cid, hasCollection, err := r.str("collection_id")
	if err != nil {
		return nil, err
	}
	if hasCollection {
		if cid = strings.TrimSpace(cid); cid == "" {
			hasCollection = false
		} else if _, err := h.collection(ctx, cid); err != nil {
			return nil, err
		}
	}
	p, faces, err := h.svc.Enroll(ctx, service.EnrollRequest{
		Person:    store.Person{Name: name, Meta: store.Metadata{marker: true}},
		Photos:    photos,
		FaceInput: service.FaceInput{Selector: face.SelectBiggest},
	})
	if err != nil {
		return nil, err
	}
	if hasCollection {
		for _, f := range faces {
			if _, err := h.svc.UpdateFace(ctx, f.ID, service.FaceUpdate{Galleries: &service.GalleryChange{Add: []string{cid}}}); err != nil {
				// Undo: enroll is all or nothing.
				if derr := h.svc.DeletePerson(context.WithoutCancel(ctx), p.ID); derr != nil {
					h.front.Logger.Error("trueface: undo enroll", "person", p.ID, "err", derr)
				}
				if errors.Is(err, store.ErrNotFound) {
					return nil, fail(http.StatusNotFound, "collection not found")
				}
				return nil, err
			}
		}
	}
	return ok(map[string]string{"enrollment_id": p.ID}, "enrollment processed successfully"), nil
}

func (h *handler) updateEnroll(r *request) (any, error) {
	ctx := r.Context()
	eid, err := r.required("enrollment_id")
	if err != nil {
		return nil, err
	}
	photos, err := r.images()
	if err != nil {
		return nil, err
	}
	if _, err := h.enrollment(ctx, eid); err != nil {
		return nil, err
	}
	existing, err := h.personFaces(ctx, eid)
	if err != nil {
		return nil, err
	}
	var galleries []string
	for _, f := range existing {
		for _, g := range f.Galleries {
			if !slices.Contains(galleries, g) {
				galleries = append(galleries, g)
			}
		}
	}
	if _, err := h.svc.AddFaces(ctx, eid, photos, service.FaceInput{Galleries: galleries, Selector: face.SelectBiggest}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fail(http.StatusNotFound, "enrollment not found")
		}
		return nil, err
	}
	return ok(map[string]string{"enrollment_id": eid}, "enrollment updated successfully"), nil
}

func (h *handler) deleteEnroll(r *request) (any, error) {
	eid, err := r.required("enrollment_id")
	if err != nil {
		return nil, err
	}
	if _, err := h.enrollment(r.Context(), eid); err != nil {
		return nil, err
	}
	if err := h.svc.DeletePerson(r.Context(), eid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fail(http.StatusNotFound, "enrollment not found")
		}
		return nil, err
	}
	return reply{data: fmt.Sprintf("Enrollment *%s* has been deleted", eid)}, nil
}
