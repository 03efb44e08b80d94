package api

import (
	"net/http"
	"testing"
)

// Without cameras the list is empty and a camera id is a clear 404;
// from_event needs an event that exists and excludes photos.
func TestCamerasWithoutCamerasAndFromEventErrors(t *testing.T) {
	e := newEnv(t, Config{})
	var list struct {
		Cameras []any `json:"cameras"`
	}
	crudDecode(t, crudJSON(t, e, "GET", "/v1/cameras", e.Read, nil, http.StatusOK, ""), &list)
	if list.Cameras == nil || len(list.Cameras) != 0 {
		t.Fatalf("cameras %+v, want an empty list", list.Cameras)
	}
	for _, path := range []string{"/v1/cameras/door-cam", "/v1/cameras/door-cam/frame.jpg", "/v1/cameras/door-cam/mjpeg"} {
		crudJSON(t, e, "GET", path, e.Read, nil, http.StatusNotFound, "not_found")
	}
	crudJSON(t, e, "GET", "/v1/cameras", "", nil, http.StatusUnauthorized, "unauthorized")
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "x", "from_event": 99999}, http.StatusNotFound, "not_found")
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "x", "from_event": "abc"}, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "x", "from_event": "1", "photo": "aGVsbG8="}, http.StatusBadRequest, "invalid")
}
