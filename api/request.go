package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/facedhq/faced/face"
)

// request is a parsed request: photos by field name and scalar parameters
// from the query, form fields or JSON body (body wins over query).
//
// Photos arrive as multipart files, as a raw image/* body (field "photo"),
// or in JSON as base64 strings (optionally a data: URI) or http(s) URLs.
// Only the route's documented photo fields (photoSpec) are photos: other
// fields are never decoded or fetched, however they are named. URLs are
// fetched only from allow-listed hosts (see FetchConfig): an edge device
// must not become an SSRF proxy into its network.
type request struct {
	photos map[string][][]byte
	params map[string]string
	lists  map[string][]string
	// query holds the query's parameters: a body field that repeats one
	// with another value is ambiguous, not silently preferred.
	query map[string]string
	// arrived says what the request sent, for the no_photo error: every
	// field name, where it came, and a body that held no field.
	arrived []string
}

// photoSpec is what a route reads as photos: its fields, the photos each
// may hold, and the photos in all. The counts are checked before any photo
// is decoded or fetched.
type photoSpec struct {
	fields map[string]int
	total  int
	// oneOf: photos under at most one of the fields ("photo" or "photos").
	oneOf bool
}

var (
	// noPhotos: routes that read parameters only.
	noPhotos = photoSpec{}
	// onePhoto: detect, identify, liveness.
	onePhoto = photoSpec{fields: map[string]int{"photo": 1}, total: 1}
	// photoPair: verify (photo2, or person_id instead).
	photoPair = photoSpec{fields: map[string]int{"photo1": 1, "photo2": 1}, total: 2}
	// enrolment: "photo" (repeatable) or "photos".
	enrolment = photoSpec{fields: map[string]int{"photo": maxEnrolPhotos, "photos": maxEnrolPhotos}, total: maxEnrolPhotos, oneOf: true}
)

// check refuses counts beyond the spec; counts maps fields to the photos
// the request gives under them.
func (spec photoSpec) check(counts map[string]int) error {
	total, present := 0, 0
	for _, field := range slices.Sorted(maps.Keys(counts)) {
		n := counts[field]
		if n == 0 {
			continue
		}
		present++
		total += n
		if spec.fields[field] == 1 && n > 1 {
			return badRequest("bad_photo", fmt.Sprintf("send one %q photo, not %d", field, n))
		}
	}
	if spec.oneOf && present > 1 {
		return badRequest("bad_photo", `send the photos under "photo" or "photos", not both`)
	}
	if total > spec.total {
		return badRequest("invalid", fmt.Sprintf("at most %d photos per request, got %d", spec.total, total))
	}
	return nil
}

// maxMultipartMemory is kept in memory; larger parts spill to temp files
// (the body itself is capped by MaxBytesReader).
const maxMultipartMemory = 16 << 20

// parseRequest reads the whole body (size-checked by the MaxBytesReader
// wrap installed) and the photos of spec. It runs before the request
// takes an inference slot: a client that sends its body slowly, or photo
// URLs that download slowly, must not hold one.
func (s *Server) parseRequest(r *http.Request, spec photoSpec, fs fieldSet) (*request, error) {
	q := &request{photos: map[string][][]byte{}, params: map[string]string{}, lists: map[string][]string{}, query: map[string]string{}}
	if err := fs.checkQuery(r); err != nil {
		return nil, err
	}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			q.params[k] = v[len(v)-1]
			q.query[k] = v[len(v)-1]
			q.arrived = append(q.arrived, k+" (query)")
		}
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case strings.HasPrefix(ct, "image/"), ct == "application/octet-stream":
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(err)
		}
		if _, ok := spec.fields["photo"]; ok {
			q.photos["photo"] = [][]byte{data}
		} else {
			q.arrived = append(q.arrived, fmt.Sprintf("a raw %s body of %d bytes", ct, len(data)))
		}
	case ct == "multipart/form-data":
		if err := r.ParseMultipartForm(maxMultipartMemory); err != nil {
			if p := bodyError(err); !isBadBody(p) {
				return nil, p
			}
			return nil, badRequest("bad_body", "malformed multipart form: "+err.Error())
		}
		defer r.MultipartForm.RemoveAll()
		var names []string
		for k := range r.MultipartForm.Value {
			names = append(names, k)
		}
		for k := range r.MultipartForm.File {
			names = append(names, k)
			q.arrived = append(q.arrived, k+" (file)")
		}
		if err := fs.check(names, "form"); err != nil {
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			if len(v) > 0 {
				if err := q.set(k, v[len(v)-1]); err != nil {
					return nil, err
				}
				q.arrived = append(q.arrived, k+" (form)")
			}
		}
		counts := map[string]int{}
		for name := range spec.fields {
			counts[name] = len(r.MultipartForm.File[name])
		}
		if err := spec.check(counts); err != nil {
			return nil, err
		}
		for name := range spec.fields {
			for _, fh := range r.MultipartForm.File[name] {
				f, err := fh.Open()
				if err != nil {
					return nil, badRequest("bad_body", err.Error())
				}
				data, err := io.ReadAll(f)
				f.Close()
				if err != nil {
					return nil, err
				}
				q.photos[name] = append(q.photos[name], data)
			}
		}
	case ct == "application/json":
		if err := q.parseJSON(r.Context(), r.Body, spec, fs, s.fetcher); err != nil {
			return nil, err
		}
	case ct == "" && r.ContentLength == 0:
		q.arrived = append(q.arrived, "no body")
	default:
		return nil, &Problem{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Detail: "send image/*, multipart/form-data or application/json"}
	}
	return q, nil
}

// set stores a body parameter; one that repeats a query parameter with
// another value is ambiguous.
func (q *request) set(k, v string) error {
	if qv, ok := q.query[k]; ok && qv != v {
		return ambiguous(fmt.Sprintf("%s is %q in the query and %q in the body; send it once", k, qv, v))
	}
	q.params[k] = v
	return nil
}

// bodyError maps a failure to read the body: too large stays a
// MaxBytesError (413), a body that did not arrive before the read
// deadline is 408 body_timeout, anything else 400 bad_body.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &Problem{Status: http.StatusRequestTimeout, Code: "body_timeout",
			Detail: "the request body did not arrive within the request timeout"}
	}
	return badRequest("bad_body", "reading the body: "+err.Error())
}

// isBadBody reports whether bodyError made a plain 400 of err.
func isBadBody(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Code == "bad_body"
}

// parseJSON reads a flat JSON object: strings, numbers and booleans become
// parameters, the fields of spec are photos (a string or an array of
// strings), other arrays of strings are lists. The whole body is read:
// anything but white space after the object is refused.
func (q *request) parseJSON(ctx context.Context, body io.Reader, spec photoSpec, fs fieldSet, f *fetcher) error {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(body)
	if err := dec.Decode(&obj); err != nil {
		if p := bodyError(err); !isBadBody(p) {
			return p
		}
		return badRequest("bad_body", "malformed JSON: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			if p := bodyError(err); !isBadBody(p) {
				return p
			}
		}
		return badRequest("bad_body", "malformed JSON: data after the object")
	}
	if err := fs.check(slices.Collect(maps.Keys(obj)), "JSON"); err != nil {
		return err
	}
	// Photo strings first, counted, and only then decoded or fetched.
	photos := map[string][]string{}
	counts := map[string]int{}
	arrays := map[string]bool{}
	for k, raw := range obj {
		raw = bytes.TrimSpace(raw)
		_, isPhoto := spec.fields[k]
		switch {
		case len(raw) > 0 && raw[0] == '[':
			var list []string
			if err := json.Unmarshal(raw, &list); err != nil {
				return badRequest("bad_body", fmt.Sprintf("%s: want an array of strings", k))
			}
			if isPhoto {
				photos[k], counts[k], arrays[k] = list, len(list), true
			} else {
				if qv, ok := q.query[k]; ok && qv != strings.Join(list, ",") {
					return ambiguous(fmt.Sprintf("%s is %q in the query and %q in the body; send it once", k, qv, list))
				}
				q.lists[k] = list
				q.arrived = append(q.arrived, k+" (JSON)")
			}
		case len(raw) > 0 && raw[0] == '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return badRequest("bad_body", err.Error())
			}
			if isPhoto {
				photos[k], counts[k] = []string{s}, 1
			} else if err := q.set(k, s); err != nil {
				return err
			}
		case string(raw) == "null":
		case len(raw) > 0 && raw[0] == '{':
			// Objects (metadata) are read by the handlers that take them.
			q.params[k] = string(raw)
		default:
			// Number or boolean, as written.
			if err := q.set(k, string(raw)); err != nil {
				return err
			}
		}
		if (isPhoto || !(len(raw) > 0 && raw[0] == '[')) && string(raw) != "null" {
			q.arrived = append(q.arrived, k+" (JSON)")
		}
	}
	if err := spec.check(counts); err != nil {
		return err
	}
	// One fetch budget (bytes and time) for every URL of this request.
	budget := f.budgetFor(ctx)
	for _, k := range slices.Sorted(maps.Keys(photos)) {
		for i, s := range photos[k] {
			data, err := photoString(ctx, s, f, budget)
			if err != nil {
				name := k
				if arrays[k] {
					name = fmt.Sprintf("%s[%d]", k, i)
				}
				return photoError(name, err)
			}
			q.photos[k] = append(q.photos[k], data)
		}
	}
	return nil
}

// photoString fetches a URL through f, within the request's budget, or
// decodes base64.
func photoString(ctx context.Context, s string, f *fetcher, budget *fetchBudget) ([]byte, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return f.fetch(ctx, s, budget)
	}
	return DecodeBase64Photo(s, 0)
}

// photoError names the field of a photo that could not be read; problems
// from fetching keep their own code.
func photoError(field string, err error) error {
	var p *Problem
	if errors.As(err, &p) {
		return &Problem{Status: p.Status, Code: p.Code, Detail: field + ": " + p.Detail}
	}
	if errors.Is(err, face.ErrTooLarge) {
		return fmt.Errorf("%s: %w", field, err)
	}
	return badRequest("bad_photo", fmt.Sprintf("%s: %v", field, err))
}

// photo returns the one photo under name.
func (q *request) photo(name string) ([]byte, error) {
	p := q.photos[name]
	switch len(p) {
	case 0:
		return nil, q.noPhoto(fmt.Sprintf("%q", name))
	case 1:
		return p[0], nil
	}
	return nil, badRequest("bad_photo", fmt.Sprintf("send one %q photo, not %d", name, len(p)))
}

// noPhoto is the 400 for a missing photo, saying what arrived instead.
func (q *request) noPhoto(want string) *Problem {
	got := "nothing else"
	if len(q.arrived) > 0 {
		slices.Sort(q.arrived)
		got = strings.Join(q.arrived, ", ")
	}
	return badRequest("no_photo", fmt.Sprintf("the request has no %s photo; it sent %s", want, got))
}

func (q *request) str(name string) string { return q.params[name] }

func (q *request) integer(name string, def int) (int, error) {
	v, ok := q.params[name]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest("invalid", fmt.Sprintf("%s must be an integer", name))
	}
	return n, nil
}

func (q *request) boolean(name string) (bool, error) {
	v, ok := q.params[name]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("invalid", fmt.Sprintf("%s must be true or false", name))
	}
	return b, nil
}

// list reads a JSON array or a comma-separated parameter.
func (q *request) list(name string) []string {
	if l, ok := q.lists[name]; ok {
		return l
	}
	var out []string
	for _, s := range strings.Split(q.params[name], ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
