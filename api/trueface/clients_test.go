package trueface_test

import (
	"testing"
)

// TestIdentifyConfidence: the Trueface TypeScript and Android SDKs and an
// iOS app read identify's "confidence" (issue 19); it is the score. data
// stays the document's object.
func TestIdentifyConfidence(t *testing.T) {
	e := newEnv(t, nil)
	img1, img2, other := photo(t, "deepface/img1.jpg"), photo(t, "deepface/img2.jpg"), photo(t, "deepface/img13.jpg")
	coll := decode[collData](t, want(t, "collection", e.json(t, "POST", "/v1/collection", e.write, map[string]any{"name": "Home"}), 200))
	en := decode[enrollData](t, want(t, "enroll", e.json(t, "POST", "/v1/enroll", e.write, map[string]any{"img0": b64(img1), "name": "John Doe", "collection_id": coll.CollectionID}), 200))

	m := decode[map[string]any](t, want(t, "identify", e.json(t, "POST", "/v1/identify", e.read, map[string]any{"img": b64(img2), "collection_id": coll.CollectionID}), 200))
	conf, ok := m["confidence"].(float64)
	if !ok || conf != m["score"] || conf < 0.5 || conf > 1 || m["key"] != en.EnrollmentID {
		t.Fatalf("identify: %v, want confidence equal to score", m)
	}
	// No match: no candidate, so neither score nor confidence.
	m = decode[map[string]any](t, want(t, "identify stranger", e.json(t, "POST", "/v1/identify", e.read, map[string]any{"img": b64(other), "collection_id": coll.CollectionID}), 200))
	if _, ok := m["confidence"]; ok || m["key"] != nil {
		t.Fatalf("identify stranger: %v", m)
	}
}
