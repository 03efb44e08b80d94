package findface

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/store"
)

var docs = map[string][]string{
	"v0": {
		"POST /v0/detect/", "POST /v0/verify/", "POST /v0/identify/", "POST /v0/faces/gallery/<gallery>/identify/", "POST /v0/face/",
		"GET /v0/face/id/<id>/", "PUT /v0/face/id/<id>/", "DELETE /v0/face/id/<id>/", "GET /v0/face/meta/<meta>/",
		"DELETE /v0/face/meta/<meta>/", "GET /v0/faces/", "GET /v0/faces/gallery/<gallery>/", "GET /v0/faces/gallery/<gallery>/meta/<meta>/",
		"GET /v0/meta/", "GET /v0/meta/gallery/<gallery>/", "GET /v0/galleries/", "POST /v0/galleries/", "POST /v0/galleries/<gallery>",
		"DELETE /v0/galleries/<gallery>/", "GET /v0/docs", "GET /v0/docs/<version>", "GET /v0/person/id/<id>", "POST /v0/history/search",
	},
	"v1": {"POST /v1/detect/", "every v0 endpoint, under /v1/"},
}

func (h *handler) docs(r *request) (any, error) {
	v := r.PathValue("version")
	if v == "" {
		return map[string]any{"versions": []string{"v0", "v1"}}, nil
	}
	eps, ok := docs[v]
	if !ok {
		return nil, &apiError{status: http.StatusNotFound, msg: "Unknown API version " + v}
	}
	return map[string]any{"version": v, "endpoints": eps}, nil
}

func parseTime(s string) (time.Time, error) {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badRequest("Invalid time %q: want ISO 8601", s)
}

// HistoryEvent is one history result.
type HistoryEvent struct {
	ID         uint64 `json:"id"`
	PersonID   any    `json:"person_id,omitempty"`
	FaceID     uint64 `json:"face_id,omitempty"`
	CamID      any    `json:"cam_id"`
	Meta       string `json:"meta"`
	Friend     bool   `json:"friend"`
	PhotoHash  string `json:"photo_hash"`
	Photo      string `json:"photo"`
	Screenshot string `json:"screenshot"`
	Timestamp  string `json:"timestamp"`
	Box
}

func (h *handler) history(r *request) (any, error) {
	if r.Method == http.MethodGet {
		// The document's example is a GET with a JSON body; a body that
		// does not parse is ignored.
		r, _ = h.parse(r.Request, true)
	}
	q := store.EventQuery{}
	next := url.Values{}
	pid := r.PathValue("pid")
	if pid == "" {
		pid = r.str("person_id")
	}
	if pid != "" {
		next.Set("person_id", pid)
		p, err := h.svc.GetPersonByExternalID(r.Context(), pid)
		if err != nil {
			return nil, err
		}
		q.PersonID = p.ID
	}
	cams, err := r.list("cam_ids")
	if err != nil {
		return nil, err
	}
	q.CameraIDs = cams
	for _, c := range cams {
		next.Add("cam_ids", c)
	}
	if s := r.str("start"); s != "" {
		if q.From, err = parseTime(s); err != nil {
			return nil, err
		}
		next.Set("start", s)
	}
	if s := r.str("end"); s != "" {
		if q.To, err = parseTime(s); err != nil {
			return nil, err
		}
		next.Set("end", s)
	}
	if r.has("friend") {
		fr, err := r.boolean("friend")
		if err != nil {
			return nil, err
		}
		q.Matched = &fr
		next.Set("friend", strconv.FormatBool(fr))
	}
	limit, err := r.integer("limit", 0)
	if err != nil || limit < 0 {
		return nil, badRequest("Invalid limit")
	}
	q.Cursor = r.str("cursor")
	var events []store.Event
	nextCursor := ""
	for {
		q.Limit = store.MaxLimit
		if limit > 0 {
			q.Limit = limit - len(events)
		}
		page, err := h.svc.ListEvents(r.Context(), q)
		if err != nil {
			return nil, err
		}
		events = append(events, page.Items...)
		if page.Next == "" {
			break
		}
		if limit > 0 && len(events) >= limit {
			nextCursor = page.Next
			break
		}
		q.Cursor = page.Next
	}
	out := []HistoryEvent{}
	persons := map[string]string{}
	for _, e := range events {
		he := HistoryEvent{
			ID: e.ID, FaceID: e.FaceID, CamID: camOf(e.CameraID), Friend: e.Matched, Timestamp: e.Time.UTC().Format(timeLayout),
			Box: boxJSON(face.Box{X1: e.Box[0], Y1: e.Box[1], X2: e.Box[2], Y2: e.Box[3]}),
		}
		if he.CamID == nil {
			he.CamID = ""
		}
		if e.PersonID != "" {
			he.PersonID = h.personID(r.Context(), e.PersonID, persons)
		}
		if e.FaceID != 0 {
			if f, err := h.svc.GetFace(r.Context(), e.FaceID); err == nil {
				ff := h.faceJSON(r.Context(), f, persons)
				he.Meta, he.PhotoHash = ff.Meta, ff.PhotoHash
			}
		}
		out = append(out, he)
	}
	resp := map[string]any{"results": out}
	if nextCursor != "" {
		next.Set("cursor", nextCursor)
		next.Set("limit", strconv.Itoa(limit))
		resp["next_page"] = "/v0/history/search?" + next.Encode()
	}
	return resp, nil
}
