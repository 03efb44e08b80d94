package dialect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/face"
)

// Errors of reading a request body, for Fail (kinds BodyTooLarge and
// BadBody).
var (
	ErrBodyTooLarge = errors.New("dialect: request body too large")
	ErrBadBody      = errors.New("dialect: request body unreadable")
)

// bodyError sorts a body read error into ErrBodyTooLarge or ErrBadBody.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || errors.Is(err, multipart.ErrMessageTooLarge) {
		return fmt.Errorf("%w: %v", ErrBodyTooLarge, err)
	}
	return fmt.Errorf("%w: %v", ErrBadBody, err)
}

// ReadBody reads the whole body (capped by the Front).
func ReadBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

// Body is a request with its whole body read: the request of vendors
// whose bodies are JSON whatever their Content-Type says.
type Body struct {
	*http.Request
	Bytes []byte
}

// ReadAll is the Parse of a Front whose requests are Bodies.
func ReadAll(r *http.Request) (*Body, error) {
	b, err := ReadBody(r)
	return &Body{r, b}, err
}

// Form is a form body: its values and its uploaded files.
type Form struct {
	Values map[string][]string
	Files  map[string]File // the first file of each part name
}

// File is an uploaded file part.
type File struct {
	Name string // the client's file name
	Data []byte
}

// ReadForm reads a multipart/form-data or x-www-form-urlencoded body (by
// the request's Content-Type, which the caller has checked is one of
// them); maxMemory is the multipart limit.
func ReadForm(r *http.Request, maxMemory int64) (Form, error) {
	if !strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "multipart/") {
		if err := r.ParseForm(); err != nil {
			return Form{}, bodyError(err)
		}
		return Form{Values: r.PostForm, Files: map[string]File{}}, nil
	}
	if err := r.ParseMultipartForm(maxMemory); err != nil {
		return Form{}, bodyError(err)
	}
	defer r.MultipartForm.RemoveAll()
	f := Form{Values: r.MultipartForm.Value, Files: map[string]File{}}
	for k, fs := range r.MultipartForm.File {
		if len(fs) == 0 {
			continue
		}
		part, err := fs[0].Open()
		if err != nil {
			return Form{}, bodyError(err)
		}
		b, err := io.ReadAll(part)
		part.Close()
		if err != nil {
			return Form{}, bodyError(err)
		}
		f.Files[k] = File{Name: fs[0].Filename, Data: b}
	}
	return f, nil
}

// Errors of Photos.Read, for the vendor to word.
var (
	ErrNoPhoto       = errors.New("dialect: no photo")
	ErrBadBase64     = api.ErrBadBase64
	ErrPhotoTooLarge = api.ErrPhotoTooLarge
	ErrURLNotAllowed = errors.New("dialect: photo URLs are not fetched")
)

// FetchError is a photo URL that could not be fetched; Err is the
// fetch's error (an *api.Problem saying why).
type FetchError struct{ Err error }

func (e *FetchError) Error() string { return "dialect: fetching the photo failed: " + e.Err.Error() }

func (e *FetchError) Unwrap() error { return e.Err }

// Photos reads a photo sent in one of the forms vendors use: an uploaded
// file part, a base64 string (standard or URL alphabet, padded or not,
// wrapped, optionally a data: URL) or an http(s) URL.
type Photos struct {
	// MaxBytes caps a decoded base64 photo (0: no cap).
	MaxBytes int
	// Fetch downloads a URL from the device's allow-listed hosts (an
	// api.Server's FetchPhoto); nil refuses every URL with
	// ErrURLNotAllowed.
	Fetch func(ctx context.Context, url string) ([]byte, error)
}

// Read returns the photo of an uploaded file (if not nil) or of text. An
// empty one is ErrNoPhoto, bad base64 ErrBadBase64, one over MaxBytes
// ErrPhotoTooLarge, a URL that cannot be fetched ErrURLNotAllowed; a
// fetch that fails is a *FetchError, except a photo over the fetch
// limit: face.ErrTooLarge.
func (p Photos) Read(ctx context.Context, file []byte, text string) ([]byte, error) {
	if file != nil {
		return file, nil
	}
	s := strings.TrimSpace(text)
	if s == "" {
		return nil, ErrNoPhoto
	}
	if IsURL(s) {
		if p.Fetch == nil || strings.HasPrefix(strings.ToLower(s), "ftp://") {
			return nil, ErrURLNotAllowed
		}
		b, err := p.Fetch(ctx, s)
		if err != nil && !errors.Is(err, face.ErrTooLarge) {
			return nil, &FetchError{err}
		}
		return b, err
	}
	return api.DecodeBase64Photo(s, p.MaxBytes)
}

// IsURL reports whether a photo field holds a URL (http, https or ftp)
// rather than base64.
func IsURL(s string) bool {
	low := strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(low, "http://") || strings.HasPrefix(low, "https://") || strings.HasPrefix(low, "ftp://")
}

// Fetcher is an api.Queue that can also download photo URLs from the
// device's allow-listed hosts (api.Server).
type Fetcher interface {
	FetchPhoto(ctx context.Context, url string) ([]byte, error)
	FetchEnabled() bool
}

// FetchFrom is q's FetchPhoto when q fetches at all, else nil.
func FetchFrom(q api.Queue) func(ctx context.Context, url string) ([]byte, error) {
	if f, ok := q.(Fetcher); ok && f.FetchEnabled() {
		return f.FetchPhoto
	}
	return nil
}
