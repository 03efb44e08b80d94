package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// EventJSON is a recognition event. Person and face ids stay after the
// person is deleted (history). A matched event names the person in
// person_id; an unmatched one names its best candidate, below the
// threshold (or refused as not live), in candidate_person_id, so that a
// client reading person_id never mistakes a near miss for a match.
// Confidence is the best candidate's in both (0: nobody to compare with).
type EventJSON struct {
	ID                uint64         `json:"id"`
	CameraID          string         `json:"camera_id,omitempty"`
	Time              time.Time      `json:"time"`
	Matched           bool           `json:"matched"`
	PersonID          *string        `json:"person_id"` // null when no person matched
	FaceID            uint64         `json:"face_id,omitempty"`
	CandidatePersonID string         `json:"candidate_person_id,omitempty"`
	CandidateFaceID   uint64         `json:"candidate_face_id,omitempty"`
	Gallery           string         `json:"gallery,omitempty"`
	Confidence        float32        `json:"confidence"`
	Box               face.Box       `json:"box"`
	Meta              store.Metadata `json:"meta,omitempty"`
	HasSnapshot       bool           `json:"has_snapshot"`
	// A camera's decision (one per tracked face) adds its track, how long
	// the decision took from the first frame in which the face was at
	// least 80 px, and the shots' mean liveness with its verdict.
	TrackID           *uint64  `json:"track_id,omitempty"`
	DecisionLatencyMS *int64   `json:"decision_latency_ms,omitempty"`
	Liveness          *float32 `json:"liveness,omitempty"`
	Live              *bool    `json:"live,omitempty"`
	// A door's decision adds the door, the decision and why (and, for a
	// manual opening, the key that asked).
	DoorID   string `json:"door_id,omitempty"`
	Decision string `json:"decision,omitempty"`
	Reason   string `json:"reason,omitempty"`
	KeyID    string `json:"key_id,omitempty"`
}

func eventJSON(e store.Event) EventJSON {
	out := EventJSON{
		ID: e.ID, CameraID: e.CameraID, Time: e.Time, Matched: e.Matched,
		Gallery: e.Gallery, Confidence: e.Confidence,
		Box:  face.Box{X1: e.Box[0], Y1: e.Box[1], X2: e.Box[2], Y2: e.Box[3]},
		Meta: e.Meta, HasSnapshot: e.HasSnapshot,
	}
	if e.Matched {
		out.PersonID, out.FaceID = &e.PersonID, e.FaceID
	} else {
		out.CandidatePersonID, out.CandidateFaceID = e.PersonID, e.FaceID
	}
	if d := e.Door; d != nil {
		out.DoorID, out.Decision, out.Reason, out.KeyID = d.DoorID, d.Decision, d.Reason, d.KeyID
	}
	if t := e.Track; t != nil {
		ms := t.Latency.Milliseconds()
		out.TrackID, out.DecisionLatencyMS, out.Liveness, out.Live = &t.TrackID, &ms, t.Liveness, &t.Live
	}
	return out
}

// listEvents: GET /v1/events?person_id=&camera_id=&from=&to=&matched=
// &cursor=&limit=, newest first. camera_id repeats or takes a comma list;
// from (inclusive) and to (exclusive) are RFC 3339. A page may come back
// short with next set when the filters match rarely: keep following next.
func (s *Server) listEvents(r *http.Request, svc *service.Service) (response, error) {
	o, err := listOptions(r)
	if err != nil {
		return response{}, err
	}
	query := r.URL.Query()
	eq := store.EventQuery{PersonID: query.Get("person_id"), Cursor: o.Cursor, Limit: o.Limit}
	for param, dst := range map[string]*[]string{"camera_id": &eq.CameraIDs, "door_id": &eq.DoorIDs} {
		for _, v := range query[param] {
			for _, c := range strings.Split(v, ",") {
				if c = strings.TrimSpace(c); c != "" {
					*dst = append(*dst, c)
				}
			}
		}
	}
	eq.Decision = query.Get("decision")
	for name, dst := range map[string]*time.Time{"from": &eq.From, "to": &eq.To} {
		if v := query.Get(name); v != "" {
			if *dst, err = time.Parse(time.RFC3339, v); err != nil {
				return response{}, badRequest("invalid", fmt.Sprintf("%s must be an RFC 3339 time, like 2025-01-02T15:04:05Z", name))
			}
		}
	}
	if v := query.Get("matched"); v != "" {
		m, err := queryBool(r, "matched")
		if err != nil {
			return response{}, err
		}
		eq.Matched = &m
	}
	page, err := svc.ListEvents(r.Context(), eq)
	if err != nil {
		return response{}, err
	}
	out := pageJSON[EventJSON]{Items: make([]EventJSON, 0, len(page.Items)), Next: page.Next}
	for _, e := range page.Items {
		out.Items = append(out.Items, eventJSON(e))
	}
	return response{status: http.StatusOK, body: out}, nil
}
