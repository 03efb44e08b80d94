package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/facedhq/faced/face"
)

// request is a parsed request: photos by field name and scalar parameters
// from the query, form fields or JSON body (body wins over query).
//
// Photos arrive as multipart files, as a raw image/* body (field "photo"),
// or in JSON as base64 strings (optionally a data: URI) or http(s) URLs.
// URLs are fetched only from allow-listed hosts (see FetchConfig): an edge
// device must not become an SSRF proxy into its network.
type request struct {
	photos map[string][][]byte
	params map[string]string
	lists  map[string][]string
}

// maxMultipartMemory is kept in memory; larger parts spill to temp files
// (the body itself is capped by MaxBytesReader).
const maxMultipartMemory = 16 << 20

func (s *Server) parseRequest(r *http.Request) (*request, error) {
	q := &request{photos: map[string][][]byte{}, params: map[string]string{}, lists: map[string][]string{}}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			q.params[k] = v[len(v)-1]
		}
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case strings.HasPrefix(ct, "image/"), ct == "application/octet-stream":
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		q.photos["photo"] = [][]byte{data}
	case ct == "multipart/form-data":
		if err := r.ParseMultipartForm(maxMultipartMemory); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, err
			}
			return nil, badRequest("bad_body", "malformed multipart form: "+err.Error())
		}
		defer r.MultipartForm.RemoveAll()
		for k, v := range r.MultipartForm.Value {
			if len(v) > 0 {
				q.params[k] = v[len(v)-1]
			}
		}
		for name, files := range r.MultipartForm.File {
			for _, fh := range files {
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
		if err := q.parseJSON(r.Context(), r.Body, s.fetcher); err != nil {
			return nil, err
		}
	case ct == "" && r.ContentLength == 0:
	default:
		return nil, &Problem{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Detail: "send image/*, multipart/form-data or application/json"}
	}
	return q, nil
}

// parsePhoto parses the request and takes its one photo under name: the
// first step of the recognition routes.
func (s *Server) parsePhoto(r *http.Request, name string) (*request, []byte, error) {
	q, err := s.parseRequest(r)
	if err != nil {
		return nil, nil, err
	}
	photo, err := q.photo(name)
	if err != nil {
		return nil, nil, err
	}
	return q, photo, nil
}

// parseJSON reads a flat JSON object: strings, numbers and booleans become
// parameters, strings (or arrays of strings) under photo* keys are photos,
// other arrays of strings are lists.
func (q *request) parseJSON(ctx context.Context, body io.Reader, f *fetcher) error {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(body)
	if err := dec.Decode(&obj); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return badRequest("bad_body", "malformed JSON: "+err.Error())
	}
	for k, raw := range obj {
		raw = bytes.TrimSpace(raw)
		switch {
		case len(raw) > 0 && raw[0] == '[':
			var list []string
			if err := json.Unmarshal(raw, &list); err != nil {
				return badRequest("bad_body", fmt.Sprintf("%s: want an array of strings", k))
			}
			if strings.HasPrefix(k, "photo") {
				for i, s := range list {
					data, err := photoString(ctx, s, f)
					if err != nil {
						return photoError(fmt.Sprintf("%s[%d]", k, i), err)
					}
					q.photos[k] = append(q.photos[k], data)
				}
			} else {
				q.lists[k] = list
			}
		case len(raw) > 0 && raw[0] == '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return badRequest("bad_body", err.Error())
			}
			if strings.HasPrefix(k, "photo") {
				data, err := photoString(ctx, s, f)
				if err != nil {
					return photoError(k, err)
				}
				q.photos[k] = [][]byte{data}
			} else {
				q.params[k] = s
			}
		case string(raw) == "null":
		case len(raw) > 0 && raw[0] == '{':
			// Objects (metadata) are read by the handlers that take them.
			q.params[k] = string(raw)
		default:
			q.params[k] = string(raw) // number or boolean, as written
		}
	}
	return nil
}

// photoString fetches a URL through f, or decodes base64.
func photoString(ctx context.Context, s string, f *fetcher) ([]byte, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return f.fetch(ctx, s)
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
		return nil, badRequest("no_photo", fmt.Sprintf("the request has no %q photo", name))
	case 1:
		return p[0], nil
	}
	return nil, badRequest("bad_photo", fmt.Sprintf("send one %q photo, not %d", name, len(p)))
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
