package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/door"
	"github.com/facedhq/faced/service"
)

// doorScope is decide's scope: the door of its {id}, filled in by
// routeScope (door:* and admin also satisfy it, see auth.Allows).
var doorScope = auth.DoorScope("{id}")

func (s *Server) doorRoutes() []route {
	return []route{
		plain("GET /v1/doors", auth.ScopeRead, s.listDoors),
		plain("GET /v1/doors/{id}", auth.ScopeRead, s.getDoor),
		recognition("POST /v1/doors/{id}/decide", doorScope, onePhoto, s.decideDoor),
		plain("POST /v1/doors/{id}/open", auth.ScopeAdmin, s.openDoor),
	}
}

// doorList is GET /v1/doors.
type doorList struct {
	Doors []door.Status `json:"doors"`
}

func (s *Server) listDoors(r *http.Request, _ *service.Service) (response, error) {
	out := doorList{Doors: []door.Status{}}
	if s.cfg.Doors != nil {
		now := time.Now()
		for _, d := range s.cfg.Doors.Doors() {
			out.Doors = append(out.Doors, d.Status(now))
		}
	}
	return response{status: http.StatusOK, body: out}, nil
}

func (s *Server) door(r *http.Request) (*door.Door, error) {
	id := r.PathValue("id")
	if s.cfg.Doors != nil {
		if d, ok := s.cfg.Doors.Door(id); ok {
			return d, nil
		}
	}
	return nil, &Problem{Status: http.StatusNotFound, Code: "not_found",
		Detail: "no door " + strconv.Quote(id) + "; GET /v1/doors lists the configured ones (doors: in the configuration)"}
}

func (s *Server) getDoor(r *http.Request, _ *service.Service) (response, error) {
	d, err := s.door(r)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: d.Status(time.Now())}, nil
}

// DecisionJSON is a door's decision: granted or denied_..., why, and the
// evidence.
type DecisionJSON struct {
	Decision          string    `json:"decision"`
	Reason            string    `json:"reason"`
	DoorID            string    `json:"door_id"`
	EventID           uint64    `json:"event_id"`
	PersonID          *string   `json:"person_id"` // null when no person matched
	CandidatePersonID string    `json:"candidate_person_id,omitempty"`
	Confidence        float32   `json:"confidence"`
	Liveness          *float32  `json:"liveness,omitempty"`
	Live              bool      `json:"live"`
	Cooldown          bool      `json:"cooldown,omitempty"`
	Time              time.Time `json:"time"`
}

func decisionJSON(res door.Result) DecisionJSON {
	out := DecisionJSON{Decision: res.Decision, Reason: res.Reason, DoorID: res.DoorID, EventID: res.EventID,
		CandidatePersonID: res.Candidate, Confidence: res.Confidence, Liveness: res.Liveness, Live: res.Live,
		Cooldown: res.Cooldown, Time: res.Time}
	if res.PersonID != "" {
		out.PersonID = &res.PersonID
	}
	return out
}

// decideDoor: POST /v1/doors/{id}/decide — the door's decision on the
// biggest face of a photo, recorded and acted on like a camera's.
func (s *Server) decideDoor(r *http.Request, q *request, svc *service.Service) (response, error) {
	d, err := s.door(r)
	if err != nil {
		return response{}, err
	}
	photo, err := q.photo("photo")
	if err != nil {
		return response{}, err
	}
	res, err := s.cfg.Doors.DecidePhoto(r.Context(), d.ID(), photo)
	if errors.Is(err, door.ErrNoFace) {
		return response{}, &Problem{Status: http.StatusBadRequest, Code: "no_face",
			Detail: "the photo shows no face: nothing was decided and the door stays shut"}
	}
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: decisionJSON(res)}, nil
}

// openDoor: POST /v1/doors/{id}/open — a manual opening (admin), recorded
// with the key that asked.
func (s *Server) openDoor(r *http.Request, _ *service.Service) (response, error) {
	d, err := s.door(r)
	if err != nil {
		return response{}, err
	}
	keyID, _, _ := strings.Cut(requestToken(r), ".")
	res, err := s.cfg.Doors.Open(r.Context(), d.ID(), keyID)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: decisionJSON(res)}, nil
}
