package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/facedhq/faced/internal/spell"
)

// The native API refuses what it does not know: a misspelled parameter
// (`treshold`, `galery`, `nmae`) silently left a default in force or
// enrolled a person unnamed. Every query parameter, form field, multipart
// file and JSON member must be one the route documents (its params, and
// its photo fields); anything else is 400 unknown_field, naming the field
// and the nearest known one. The vendor dialects do not go through this:
// they accept what their documents' clients send.

// fieldSet is what a route accepts, by name.
type fieldSet struct {
	route string // "identify", for the message
	names []string
}

// newFieldSet collects a route's params and photo fields, sorted.
func newFieldSet(route string, params []string, spec photoSpec) fieldSet {
	names := slices.Clone(params)
	for f := range spec.fields {
		names = append(names, f)
	}
	slices.Sort(names)
	return fieldSet{route: route, names: slices.Compact(names)}
}

func (fs fieldSet) has(name string) bool {
	_, ok := slices.BinarySearch(fs.names, name)
	return ok
}

// check refuses the first (in sorted order) name not in the set; where
// says where it arrived ("query", "JSON body", "form").
func (fs fieldSet) check(names []string, where string) error {
	slices.Sort(names)
	for _, n := range names {
		if !fs.has(n) {
			return fs.unknown(n, where)
		}
	}
	return nil
}

// checkQuery refuses unknown query parameters.
func (fs fieldSet) checkQuery(r *http.Request) error {
	var names []string
	for k := range r.URL.Query() {
		names = append(names, k)
	}
	return fs.check(names, "query")
}

// unknown is the 400 for one unknown field.
func (fs fieldSet) unknown(name, where string) *Problem {
	p := badRequest("unknown_field", "")
	p.Field = name
	var b strings.Builder
	fmt.Fprintf(&b, "unknown %s field %q", where, name)
	if n := spell.Nearest(name, fs.names); n != "" {
		p.Nearest = n
		fmt.Fprintf(&b, "; did you mean %q?", n)
	}
	switch {
	case len(fs.names) == 0:
		fmt.Fprintf(&b, " %s takes no parameters", fs.route)
	default:
		fmt.Fprintf(&b, " %s takes: %s", fs.route, strings.Join(fs.names, ", "))
	}
	b.WriteString(" (see GET /v1/openapi.json)")
	p.Detail = b.String()
	return p
}

// ambiguous is the 400 for a request whose fields contradict each other.
func ambiguous(detail string) *Problem { return badRequest("ambiguous", detail) }
