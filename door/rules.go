// Package door turns recognitions into access decisions and drives the
// outputs that open a door or turnstile.
//
// A door's Rules (galleries, weekly schedule, liveness) apply to the
// matched person's access (enabled, validity, card number); the
// Controller takes decisions from cameras and from photos, applies each
// person's cooldown, records every decision as an event, and fires the
// door's outputs: a GPIO relay pulse (Relay), a Wiegand 26/34 frame to an
// access panel (WiegandOut), a signed webhook (Webhook) and an MQTT
// message (MQTT). Queued outputs (webhook, MQTT) store their message in
// the decision's transaction, so a receiver that is down loses nothing;
// the others act at once and in the background, so one output failing
// never holds up another, nor recognition.
package door

import (
	"slices"
	"time"
)

// Decisions a door makes. Every decision carries its reason and evidence.
const (
	Granted        = "granted"
	DeniedUnknown  = "denied_unknown"
	DeniedSpoof    = "denied_spoof"
	DeniedSchedule = "denied_schedule"
	DeniedExpired  = "denied_expired"
	DeniedDisabled = "denied_disabled"
	DeniedGallery  = "denied_gallery"
)

// Rules are a door's access rules.
type Rules struct {
	// Galleries admitted; empty admits every gallery.
	Galleries []string
	// Schedule; nil is open at all times.
	Schedule *Schedule
	// RequireLiveness denies a face that is not live.
	RequireLiveness bool
}

// Person is what the rules need to know of a matched person.
type Person struct {
	ID         string
	Enabled    bool
	ValidFrom  time.Time // zero: no start
	ValidUntil time.Time // zero: no end
	CardNumber string
	// Galleries are those of the face that matched.
	Galleries []string
}

// Evidence is what a recognition found: the matched person (nil when none
// matched), the confidence of the best candidate, and liveness.
type Evidence struct {
	Person     *Person
	Candidate  string // best candidate's id when no person matched
	Confidence float32
	Liveness   *float32
	Live       bool
}

// Verdict is a decision and why.
type Verdict struct {
	Decision string
	Reason   string
}

// Check applies the rules in the order a guard would: a spoof is refused
// whoever it shows; then who it is; then whether that person may be let in
// at all, through this door, and now.
func (r Rules) Check(ev Evidence, now time.Time) Verdict {
	switch {
	case r.RequireLiveness && !ev.Live:
		return Verdict{DeniedSpoof, "the face did not pass the liveness check"}
	case ev.Person == nil:
		return Verdict{DeniedUnknown, "no enrolled person matched"}
	case !ev.Person.Enabled:
		return Verdict{DeniedDisabled, "the person is disabled"}
	case !ev.Person.ValidFrom.IsZero() && now.Before(ev.Person.ValidFrom):
		return Verdict{DeniedExpired, "the person's access starts " + ev.Person.ValidFrom.Format(time.RFC3339)}
	case !ev.Person.ValidUntil.IsZero() && !now.Before(ev.Person.ValidUntil):
		return Verdict{DeniedExpired, "the person's access ended " + ev.Person.ValidUntil.Format(time.RFC3339)}
	case len(r.Galleries) > 0 && !slices.ContainsFunc(ev.Person.Galleries, func(g string) bool { return slices.Contains(r.Galleries, g) }):
		return Verdict{DeniedGallery, "the person's gallery is not admitted through this door"}
	case !r.Schedule.Open(now):
		return Verdict{DeniedSchedule, "outside the door's schedule"}
	}
	return Verdict{Granted, "matched, live, valid, admitted gallery, within the schedule"}
}
