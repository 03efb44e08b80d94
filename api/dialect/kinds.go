package dialect

import (
	"context"
	"errors"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Kind is what went wrong, in the terms every vendor has an answer for.
// Some kinds are refinements of a broader one (EmptyImage of BadImage):
// a vendor that answers them alike lists only the broader kind.
type Kind int

// The kinds, with the errors KindOf sorts into them.
const (
	Internal         Kind = iota // anything else (logged)
	Unauthorized                 // service.ErrUnauthorized: no, bad or revoked key
	Forbidden                    // service.ErrForbidden: the key lacks the scope
	Busy                         // api.ErrBusy: the inference queue is full
	Timeout                      // the request's deadline passed (or it was cancelled)
	NoRoute                      // ErrNoRoute: an unknown path
	MethodNotAllowed             // ErrMethodNotAllowed: a known path, another method
	BodyTooLarge                 // ErrBodyTooLarge: the body passed its cap
	BadBody                      // ErrBadBody: the body could not be read
	NotFound                     // store.ErrNotFound
	Duplicate                    // store.ErrDuplicate
	Invalid                      // service.ErrInvalid: a parameter the service refuses
	BadValue                     // store.ErrInvalid: a value the store cannot keep (else Invalid)
	NoFace                       // service.ErrNoFace (also a *service.NoFaceError)
	ImageFormat                  // face.ErrUnsupportedFormat
	ImageTooLarge                // face.ErrTooLarge
	BadImage                     // face.ErrCorrupt, and the refinements below
	EmptyImage                   // face.ErrEmpty (else BadImage)
	SmallImage                   // face.ErrTooSmall (else BadImage)
	ManyPixels                   // face.ErrTooManyPixels (else BadImage)
	TooManyFaces                 // *face.ErrTooManyFaces (else BadImage)
	ModelMissing                 // face.ErrStageDisabled (else Internal)
)

// broader is the kind a vendor's table falls back to.
var broader = map[Kind]Kind{
	BadValue: Invalid, EmptyImage: BadImage, SmallImage: BadImage, ManyPixels: BadImage, TooManyFaces: BadImage,
}

// kinds maps sentinel errors to their kind, in the order they are tried.
var kinds = []struct {
	err  error
	kind Kind
}{
	{service.ErrUnauthorized, Unauthorized}, {service.ErrForbidden, Forbidden}, {api.ErrBusy, Busy},
	{ErrNoRoute, NoRoute}, {ErrMethodNotAllowed, MethodNotAllowed}, {ErrBodyTooLarge, BodyTooLarge}, {ErrBadBody, BadBody},
	{service.ErrNoFace, NoFace}, {store.ErrNotFound, NotFound}, {store.ErrDuplicate, Duplicate},
	{service.ErrInvalid, Invalid}, {store.ErrInvalid, BadValue},
	{face.ErrUnsupportedFormat, ImageFormat}, {face.ErrTooLarge, ImageTooLarge}, {face.ErrCorrupt, BadImage},
	{face.ErrEmpty, EmptyImage}, {face.ErrTooSmall, SmallImage}, {face.ErrTooManyPixels, ManyPixels},
	{face.ErrStageDisabled, ModelMissing},
	{context.DeadlineExceeded, Timeout}, {context.Canceled, Timeout},
}

// KindOf sorts an error into its kind.
func KindOf(err error) Kind {
	var many *face.ErrTooManyFaces
	if errors.As(err, &many) {
		return TooManyFaces
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return Internal
}

// Classify answers err from a vendor's table: an error of the vendor's
// own type E (one its handlers returned) is its own answer; any other is
// the table's entry for its kind, or for the broader kind, or for
// Internal. Table entries are shared: do not modify them.
func Classify[E error](err error, table map[Kind]E) E {
	var e E
	if errors.As(err, &e) {
		return e
	}
	k := KindOf(err)
	for {
		if a, ok := table[k]; ok || k == Internal {
			return a
		}
		if b, ok := broader[k]; ok {
			k = b
		} else {
			k = Internal
		}
	}
}
