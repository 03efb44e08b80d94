package api

import (
	_ "embed"
	"net/http"

	"github.com/facedhq/faced/service"
)

// openAPI describes every route of Server.Routes (openapi_test.go keeps the
// two in step).
//
//go:embed openapi.json
var openAPI []byte

// openapi: GET /v1/openapi.json, without a key.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request, _ *service.Service) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(openAPI)
}
