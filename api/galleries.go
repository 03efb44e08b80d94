package api

import (
	"net/http"
	"time"

	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// GalleryJSON is a gallery; Faces counts its searchable faces.
type GalleryJSON struct {
	Name      string         `json:"name"`
	Meta      store.Metadata `json:"meta,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	Faces     int            `json:"faces"`
}

func galleryJSON(svc *service.Service, g store.Gallery) GalleryJSON {
	return GalleryJSON{Name: g.Name, Meta: g.Meta, CreatedAt: g.CreatedAt, Faces: svc.GallerySize(g.Name)}
}

// listGalleries: GET /v1/galleries?cursor=&limit=.
func (s *Server) listGalleries(r *http.Request, svc *service.Service) (response, error) {
	o, err := listOptions(r)
	if err != nil {
		return response{}, err
	}
	page, err := svc.ListGalleries(r.Context(), o)
	if err != nil {
		return response{}, err
	}
	out := pageJSON[GalleryJSON]{Items: make([]GalleryJSON, 0, len(page.Items)), Next: page.Next}
	for _, g := range page.Items {
		out.Items = append(out.Items, galleryJSON(svc, g))
	}
	return response{status: http.StatusOK, body: out}, nil
}

// createGallery: POST /v1/galleries {name, meta}.
func (s *Server) createGallery(r *http.Request, svc *service.Service) (response, error) {
	q, err := s.parseRequest(r, noPhotos, newFieldSet("POST /v1/galleries", galleryCreateParams, noPhotos))
	if err != nil {
		return response{}, err
	}
	g := store.Gallery{Name: q.str("name")}
	if g.Meta, err = parseMeta(q.str("meta")); err != nil {
		return response{}, err
	}
	if g, err = svc.CreateGallery(r.Context(), g); err != nil {
		return response{}, err
	}
	return response{status: http.StatusCreated, body: galleryJSON(svc, g)}, nil
}

// deleteGallery: DELETE /v1/galleries/{name}?with_faces= — without
// with_faces it is refused (400 invalid) while a face is only in this
// gallery; with it, such faces are deleted.
func (s *Server) deleteGallery(r *http.Request, svc *service.Service) (response, error) {
	withFaces, err := queryBool(r, "with_faces")
	if err != nil {
		return response{}, err
	}
	if err := svc.DeleteGallery(r.Context(), r.PathValue("name"), withFaces); err != nil {
		return response{}, err
	}
	return response{status: http.StatusNoContent}, nil
}
