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
func (s *Server) openapi(_ *http.Request, _ *service.Service) (response, error) {
	return response{status: http.StatusOK, body: rawJSON(openAPI), header: http.Header{"Cache-Control": {"no-cache"}}}, nil
}
