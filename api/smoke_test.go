package api

import (
	"net/http"
	"testing"
)

func TestSmokeDetectNeedsKey(t *testing.T) {
	e := newEnv(t, Config{})
	status, hdr, body := e.do(t, "POST", "/v1/detect", "", "image/jpeg", photo(t, "img1.jpg"))
	if status != http.StatusUnauthorized || problemCode(t, hdr, body) != "unauthorized" {
		t.Fatalf("no key: %d %s", status, body)
	}
	if status, _, body := e.do(t, "POST", "/v1/detect", e.Read, "image/jpeg", photo(t, "img1.jpg")); status != http.StatusOK {
		t.Fatalf("read key: %d %s", status, body)
	}
}
