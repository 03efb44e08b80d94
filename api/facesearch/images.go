package facesearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/facedhq/faced/api/dialect"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

func imageOf(f store.Face) Image {
	m := f.Meta
	if m == nil {
		m = map[string]any{}
	}
	return Image{ID: f.ID, Metadata: m}
}

// list serves GET /images.
func (h *handler) list(r *request) (any, error) {
	offset, err := intParam(r.Request, "offset", 0)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r.Request, "limit", DefaultLimit)
	if err != nil {
		return nil, err
	}
	limit = min(limit, MaxLimit)
	out := []Image{}
	if limit == 0 {
		return out, nil
	}
	skipped, cursor := 0, ""
	for {
		page, err := h.svc.ListFaces(r.Context(), store.ListOptions{Cursor: cursor, Limit: store.MaxLimit})
		if err != nil {
			return nil, err
		}
		for _, f := range page.Items {
			if skipped < offset {
				skipped++
				continue
			}
			out = append(out, imageOf(f))
			if len(out) == limit {
				return out, nil
			}
		}
		if page.Next == "" {
			return out, nil
		}
		cursor = page.Next
	}
}

func intParam(r *http.Request, name string, def int) (int, error) {
	s := strings.TrimSpace(r.URL.Query().Get(name))
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, badFormat()
	}
	return v, nil
}

type imageIn struct {
	Base64   *string         `json:"base64"`
	URL      *string         `json:"url"`
	Metadata json.RawMessage `json:"metadata"`
}

// bodyImage reads the body's {"image": {...}}.
func bodyImage(r *request) (*imageIn, error) {
	var req struct {
		Image *imageIn `json:"image"`
	}
	if err := json.Unmarshal(r.Bytes, &req); err != nil {
		return nil, badFormat()
	}
	if req.Image == nil {
		return nil, fail(http.StatusBadRequest, CodeNoContent)
	}
	return req.Image, nil
}

// add serves POST /images.
func (h *handler) add(r *request) (any, error) {
	in, err := bodyImage(r)
	if err != nil {
		return nil, err
	}
	meta, err := parseMeta(in.Metadata)
	if err != nil {
		return nil, err
	}
	photo, err := decodeImage(r.Context(), in)
	if err != nil {
		return nil, err
	}
	release, err := h.front.Acquire(r.Context())
	if err != nil {
		return nil, err
	}
	defer release()
	_, faces, err := h.svc.Enroll(r.Context(), service.EnrollRequest{
		Person:    store.Person{Meta: store.Metadata{personMarker: true}},
		Photos:    [][]byte{photo},
		FaceInput: service.FaceInput{Selector: face.SelectBiggest, Meta: meta},
	})
	if err != nil {
		return nil, err
	}
	if len(faces) != 1 {
		return nil, fmt.Errorf("facesearch: enrol stored %d faces", len(faces))
	}
	return imageOf(faces[0]), nil
}

// parseMeta reads optional metadata: a JSON object without reserved keys.
func parseMeta(raw json.RawMessage) (store.Metadata, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, badFormat()
	}
	for _, k := range ReservedMeta {
		if _, ok := m[k]; ok {
			return nil, badFormat()
		}
	}
	return m, nil
}

// decodeImage turns {"base64"} into photo bytes; a url is refused (code
// 2), faced does not fetch for this dialect.
func decodeImage(ctx context.Context, in *imageIn) ([]byte, error) {
	if (in.Base64 == nil || strings.TrimSpace(*in.Base64) == "") && in.URL != nil && strings.TrimSpace(*in.URL) != "" {
		return nil, dialect.ErrURLNotAllowed
	}
	if in.Base64 == nil {
		return nil, dialect.ErrNoPhoto
	}
	return dialect.Photos{MaxBytes: MaxImageBytes}.Read(ctx, nil, *in.Base64)
}

// parseID reads an image id: a JSON number or numeric string.
func parseID(raw json.RawMessage) (uint64, error) {
	s, _, err := dialect.Number(raw)
	if err != nil {
		return 0, badFormat()
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, badFormat()
	}
	return id, nil
}

// update serves PUT (and POST) /images/{id}.
func (h *handler) update(r *request) (any, error) {
	id, err := parseID(json.RawMessage(strconv.Quote(r.PathValue("id"))))
	if err != nil {
		return nil, err
	}
	var req struct {
		ImageID  json.RawMessage `json:"image_id"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(r.Bytes, &req); err != nil {
		return nil, badFormat()
	}
	if s := strings.TrimSpace(string(req.ImageID)); s != "" && s != "null" {
		bid, err := parseID(req.ImageID)
		if err != nil {
			return nil, err
		}
		if bid != id {
			return nil, badFormat()
		}
	}
	meta, err := parseMeta(req.Metadata)
	if err != nil {
		return nil, err
	}
	f, err := h.svc.UpdateFace(r.Context(), id, service.FaceUpdate{Meta: &meta})
	if err != nil {
		return nil, err
	}
	return imageOf(f), nil
}

// deleteMany serves DELETE (and POST with "ids") /images.
func (h *handler) deleteMany(r *request) (any, error) {
	var req struct {
		IDs []json.RawMessage `json:"ids"`
	}
	if err := json.Unmarshal(r.Bytes, &req); err != nil || len(req.IDs) == 0 {
		return nil, badFormat()
	}
	faces := make([]store.Face, 0, len(req.IDs))
	for _, raw := range req.IDs {
		id, err := parseID(raw)
		if err != nil {
			return nil, err
		}
		f, err := h.svc.GetFace(r.Context(), id)
		if err != nil {
			return nil, err
		}
		faces = append(faces, f)
	}
	for _, f := range faces {
		if err := h.svc.DeleteFace(r.Context(), f.ID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // listed twice, or deleted meanwhile
			}
			return nil, err
		}
		if err := h.dropPerson(r.Context(), f.PersonID); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// dropPerson deletes a person made by this dialect once it has no face.
func (h *handler) dropPerson(ctx context.Context, id string) error {
	p, err := h.svc.GetPerson(ctx, id)
	if err != nil {
		return nil // gone already
	}
	if v, _ := p.Meta[personMarker].(bool); !v {
		return nil
	}
	page, err := h.svc.ListFaces(ctx, store.ListOptions{PersonID: id, Limit: 1})
	if err != nil || len(page.Items) > 0 {
		return nil
	}
	if err := h.svc.DeletePerson(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// search serves POST /search.
func (h *handler) search(r *request) (any, error) {
	in, err := bodyImage(r)
	if err != nil {
		return nil, err
	}
	photo, err := decodeImage(r.Context(), in)
	if err != nil {
		return nil, err
	}
	threshold, err := h.svc.Threshold("")
	if err != nil {
		return nil, err
	}
	res, err := h.svc.Identify(r.Context(), service.IdentifyRequest{
		Photo:     photo,
		N:         maxMatches,
		Threshold: threshold,
		Selector:  face.SelectBiggest,
	})
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, fail(http.StatusBadRequest, CodeNoContent)
	}
	out := []Image{}
	for _, m := range res[0].Matches {
		f, err := h.svc.GetFace(r.Context(), m.FaceID)
		if err != nil {
			continue // deleted meanwhile
		}
		img := imageOf(f)
		score := math.Round(float64(m.Confidence)*1e5) / 1e5
		img.Score = &score
		out = append(out, img)
	}
	return out, nil
}
