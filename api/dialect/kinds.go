package dialect

import (
	"context"
	"errors"
	"fmt"
	"net/http"

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
	NoPhoto                      // ErrNoPhoto: a photo field is missing or empty
	BadBase64                    // ErrBadBase64 (else BadImage)
	PhotoTooLarge                // ErrPhotoTooLarge: over the dialect's cap (else ImageTooLarge)
	URLNotAllowed                // ErrURLNotAllowed: a photo URL this front end does not fetch
)

// broader is the kind a vendor's table falls back to.
var broader = map[Kind]Kind{
	BadValue: Invalid, BadBase64: BadImage, PhotoTooLarge: ImageTooLarge, EmptyImage: BadImage, SmallImage: BadImage, ManyPixels: BadImage, TooManyFaces: BadImage,
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
	{ErrNoPhoto, NoPhoto}, {ErrBadBase64, BadBase64}, {ErrPhotoTooLarge, PhotoTooLarge}, {ErrURLNotAllowed, URLNotAllowed},
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

// statuses are the kinds' HTTP statuses unless a vendor says otherwise;
// every other kind is 400.
var statuses = map[Kind]int{
	Internal: http.StatusInternalServerError, Unauthorized: http.StatusUnauthorized, Forbidden: http.StatusForbidden,
	Busy: http.StatusTooManyRequests, Timeout: http.StatusServiceUnavailable, ModelMissing: http.StatusServiceUnavailable,
	NoRoute: http.StatusNotFound, NotFound: http.StatusNotFound, MethodNotAllowed: http.StatusMethodNotAllowed,
	Duplicate: http.StatusConflict, BodyTooLarge: http.StatusRequestEntityTooLarge,
	ImageTooLarge: http.StatusRequestEntityTooLarge, ImageFormat: http.StatusUnsupportedMediaType,
}

// plain400 are the statuses a Plain400 vendor answers as 400.
var plain400 = map[int]bool{
	http.StatusConflict: true, http.StatusRequestEntityTooLarge: true, http.StatusUnsupportedMediaType: true,
}

// Table is a vendor's answers to the kinds of failure: what its envelope
// says for each (T: a message, a numeric code...) and, where its document
// differs from the usual status of a kind, that status.
type Table[T any] struct {
	Says map[Kind]T
	// Plain400: the vendor's document has no 409, 413 or 415, so every
	// failure that is the client's is 400 (unless Status says otherwise).
	Plain400 bool
	Status   map[Kind]int
}

// Answer looks err's kind up: the vendor's entry for it, else for the
// broader kind, else for Internal. It returns the kind found, its status
// and what the vendor says.
func (t Table[T]) Answer(err error) (k Kind, status int, says T) {
	k = KindOf(err)
	for {
		if v, ok := t.Says[k]; ok || k == Internal {
			says = v
			break
		}
		if b, ok := broader[k]; ok {
			k = b
		} else {
			k = Internal
		}
	}
	if s, ok := t.Status[k]; ok {
		return k, s, says
	}
	if s, ok := statuses[k]; ok && !(t.Plain400 && plain400[s]) {
		return k, s, says
	}
	return k, http.StatusBadRequest, says
}

// Failure is an error answer: a status and what the vendor's envelope
// says (a message, a code). Handlers return one for failures of their
// own; a vendor whose answers carry more defines its own error type and
// uses Classify.
type Failure[T any] struct {
	Status int
	Says   T
}

func (f *Failure[T]) Error() string { return fmt.Sprintf("%d %v", f.Status, f.Says) }

// Fail is a Failure.
func Fail[T any](status int, says T) *Failure[T] { return &Failure[T]{status, says} }

// Failure answers err: a *Failure[T] a handler returned is its own
// answer, any other error gets the table's.
func (t Table[T]) Failure(err error) *Failure[T] {
	return Classify(err, t, func(_ Kind, status int, says T) *Failure[T] { return Fail(status, says) })
}

// Classify answers err as the vendor does: an error of the vendor's own
// type E (one its handlers returned) is its own answer; any other is made
// by answer from the Table's entry.
func Classify[E error, T any](err error, t Table[T], answer func(k Kind, status int, says T) E) E {
	var e E
	if errors.As(err, &e) {
		return e
	}
	return answer(t.Answer(err))
}
