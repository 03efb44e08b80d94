package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/camera"
	"github.com/facedhq/faced/service"
)

// Cameras is what the API shows of the watched cameras; *camera.Manager is
// one. Nil serves an empty list.
type Cameras interface {
	Status() []camera.Status
	Camera(id string) (*camera.Camera, bool)
}

// cameraList is GET /v1/cameras.
type cameraList struct {
	Cameras []camera.Status `json:"cameras"`
}

func (s *Server) cameraRoutes() []route {
	return []route{
		plain("GET /v1/cameras", auth.ScopeRead, s.listCameras),
		plain("GET /v1/cameras/{id}", auth.ScopeRead, s.getCamera),
		plain("GET /v1/cameras/{id}/frame.jpg", auth.ScopeRead, s.cameraFrame),
	}
}

// listCameras: GET /v1/cameras — every camera's state and figures.
func (s *Server) listCameras(r *http.Request, _ *service.Service) (response, error) {
	out := cameraList{Cameras: []camera.Status{}}
	if s.cfg.Cameras != nil {
		out.Cameras = append(out.Cameras, s.cfg.Cameras.Status()...)
	}
	return response{status: http.StatusOK, body: out}, nil
}

func (s *Server) camera(r *http.Request) (*camera.Camera, error) {
	id := r.PathValue("id")
	if s.cfg.Cameras != nil {
		if c, ok := s.cfg.Cameras.Camera(id); ok {
			return c, nil
		}
	}
	return nil, &Problem{Status: http.StatusNotFound, Code: "not_found",
		Detail: "no camera " + strconv.Quote(id) + "; GET /v1/cameras lists the configured ones (cameras: in the configuration)"}
}

// getCamera: GET /v1/cameras/{id}.
func (s *Server) getCamera(r *http.Request, _ *service.Service) (response, error) {
	c, err := s.camera(r)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: c.Status()}, nil
}

// cameraFrame: GET /v1/cameras/{id}/frame.jpg — the last processed frame
// with face boxes and the names decided for them.
func (s *Server) cameraFrame(r *http.Request, _ *service.Service) (response, error) {
	c, err := s.camera(r)
	if err != nil {
		return response{}, err
	}
	jpg, err := c.FrameJPEG()
	if errors.Is(err, camera.ErrNoFrame) {
		return response{}, &Problem{Status: http.StatusServiceUnavailable, Code: "no_frame",
			Detail: "the camera has not delivered a frame yet; GET /v1/cameras/" + c.ID() + " shows its state and error"}
	}
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: rawBody{contentType: "image/jpeg", data: jpg},
		header: http.Header{"Cache-Control": {"no-store"}}}, nil
}

// cameraMJPEG: GET /v1/cameras/{id}/mjpeg — the annotated frames as a
// live multipart/x-mixed-replace stream. It is served outside wrap: a
// stream has no request timeout (each frame has a write deadline instead)
// and takes no inference slot.
func (s *Server) cameraMJPEG() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		svc := s.svc.Load()
		if svc == nil {
			writeProblem(w, r, errNotReady)
			return
		}
		if _, err := svc.Authenticate(r.Context(), requestToken(r), auth.ScopeRead); err != nil {
			writeProblem(w, r, err)
			return
		}
		c, err := s.camera(r)
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		c.ServeMJPEG(r.Context(), w)
	})
}

// rawBody is a response body written as is, with its content type.
type rawBody struct {
	contentType string
	data        []byte
}
