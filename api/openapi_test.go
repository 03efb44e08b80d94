package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// oaDoc is the embedded document, decoded.
func oaDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Fatalf("openapi version %q, want 3.0.x", v)
	}
	return doc
}

var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaOperations maps "METHOD /path" to its operation object.
func oaOperations(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	ops := map[string]map[string]any{}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		for k, v := range item.(map[string]any) {
			if !slices.Contains(oaMethods, k) {
				continue
			}
			ops[strings.ToUpper(k)+" "+path] = v.(map[string]any)
		}
	}
	return ops
}

// muxToOpenAPI turns a ServeMux pattern into OpenAPI's path template:
// {name...} becomes {name} and a trailing {$} goes.
func muxToOpenAPI(pattern string) string {
	pattern = strings.TrimSuffix(pattern, "{$}")
	return regexp.MustCompile(`\{([A-Za-z0-9_]+)\.\.\.\}`).ReplaceAllString(pattern, "{$1}")
}

// TestOpenAPIRoutes: the document describes exactly the served routes.
func TestOpenAPIRoutes(t *testing.T) {
	doc := oaDoc(t)
	ops := oaOperations(t, doc)
	srv := New(Config{})
	served := map[string]bool{}
	for _, r := range srv.Routes() {
		served[muxToOpenAPI(r)] = true
	}
	var missing, extra []string
	for r := range served {
		if ops[r] == nil {
			missing = append(missing, r)
		}
	}
	for r := range ops {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("openapi.json and Server.Routes() differ:\n  served, undocumented: %v\n  documented, not served: %v", missing, extra)
	}
	if len(ops) != len(srv.Routes()) {
		t.Fatalf("%d operations for %d routes (a route listed twice?)", len(ops), len(srv.Routes()))
	}
}

// TestOpenAPIOperations checks each operation against the route table:
// scope, inference, security, the responses those imply, path parameters.
func TestOpenAPIOperations(t *testing.T) {
	doc := oaDoc(t)
	ops := oaOperations(t, doc)
	type info struct {
		scope     string
		inference bool
	}
	routes := map[string]info{"GET /healthz": {}, "GET /readyz": {}, "GET /metrics": {}}
	srv := New(Config{})
	for _, r := range srv.routes() {
		routes[muxToOpenAPI(r.pattern)] = info{r.scope, r.inference()}
	}
	ids := map[string]string{}
	for key, o := range ops {
		rt, ok := routes[key]
		if !ok {
			continue // TestOpenAPIRoutes reports it
		}
		id, _ := o["operationId"].(string)
		if id == "" || ids[id] != "" {
			t.Errorf("%s: operationId %q missing or shared with %s", key, id, ids[id])
		}
		ids[id] = key
		if s, _ := o["x-faced-scope"].(string); s != rt.scope {
			t.Errorf("%s: x-faced-scope %q, route needs %q", key, s, rt.scope)
		}
		if inf, _ := o["x-faced-inference"].(bool); inf != rt.inference {
			t.Errorf("%s: x-faced-inference %v, route has %v", key, inf, rt.inference)
		}
		sec, hasSec := o["security"].([]any)
		switch {
		case rt.scope == "" && (!hasSec || len(sec) != 0):
			t.Errorf("%s: a public route needs security: []", key)
		case rt.scope != "" && hasSec:
			t.Errorf("%s: a keyed route should use the global security", key)
		}
		resp, _ := o["responses"].(map[string]any)
		want := []string{}
		if rt.scope != "" {
			want = append(want, "401", "403", "503")
		}
		if rt.inference {
			want = append(want, "400", "413", "429")
		}
		// Routes that write the store (identify records events) answer
		// 507 when the disk is full.
		if (rt.scope == "write" || rt.scope == "admin") && !strings.HasPrefix(key, "GET ") || key == "POST /v1/identify" || key == "POST /v1/doors/{id}/decide" {
			want = append(want, "507")
		}
		for _, code := range want {
			if resp[code] == nil {
				t.Errorf("%s: no %s response", key, code)
			}
		}
		success := false
		for code := range resp {
			success = success || strings.HasPrefix(code, "2")
		}
		if !success {
			t.Errorf("%s: no 2xx response", key)
		}
		// Path parameters: declared exactly for the template's {names}.
		_, path, _ := strings.Cut(key, " ")
		var inPath []string
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
			inPath = append(inPath, m[1])
		}
		var declared []string
		params, _ := o["parameters"].([]any)
		for _, p := range params {
			pm := oaResolve(t, doc, p)
			if pm["in"] == "path" {
				declared = append(declared, pm["name"].(string))
				if pm["required"] != true {
					t.Errorf("%s: path parameter %v not required", key, pm["name"])
				}
			}
		}
		sort.Strings(inPath)
		sort.Strings(declared)
		if !slices.Equal(inPath, declared) {
			t.Errorf("%s: path parameters %v, declared %v", key, inPath, declared)
		}
	}
	schemes, _ := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	bearer, _ := schemes["bearer"].(map[string]any)
	apiKey, _ := schemes["apiKey"].(map[string]any)
	if bearer["type"] != "http" || bearer["scheme"] != "bearer" || apiKey["type"] != "apiKey" || apiKey["in"] != "header" || apiKey["name"] != "X-API-Key" {
		t.Errorf("securitySchemes %v", schemes)
	}
}

// oaResolve follows a local $ref.
func oaResolve(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	r, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
		cm, _ := cur.(map[string]any)
		if cur = cm[part]; cur == nil {
			t.Fatalf("$ref %s does not resolve", r)
		}
	}
	return cur.(map[string]any)
}

// TestOpenAPIRefs: every $ref resolves.
func TestOpenAPIRefs(t *testing.T) {
	doc := oaDoc(t)
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["$ref"].(string); ok {
				oaResolve(t, doc, v)
				n++
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	if n < 50 {
		t.Fatalf("only %d $refs", n)
	}
}

// TestOpenAPIProblemCodes: the Problem schema lists exactly the codes the
// package's sources can answer with.
func TestOpenAPIProblemCodes(t *testing.T) {
	doc := oaDoc(t)
	problem := doc["components"].(map[string]any)["schemas"].(map[string]any)["Problem"].(map[string]any)
	var documented []string
	for _, c := range problem["properties"].(map[string]any)["code"].(map[string]any)["enum"].([]any) {
		documented = append(documented, c.(string))
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?:badRequest\(|Code:\s*)"([a-z_]+)"`)
	used := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			used[string(m[1])] = true
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d codes in the sources: %v", len(used), used)
	}
	for c := range used {
		if !slices.Contains(documented, c) {
			t.Errorf("code %q is used but not in the Problem schema", c)
		}
	}
	for _, c := range documented {
		if !used[c] {
			t.Errorf("code %q is documented but never used", c)
		}
	}
}

// TestOpenAPIServed: the document is served without a key.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, Config{})
	status, hdr, body := e.do(t, "GET", "/v1/openapi.json", "", "", nil)
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/json" || !bytes.Equal(body, openAPI) {
		t.Fatalf("GET /v1/openapi.json: %d %q, %d bytes", status, hdr.Get("Content-Type"), len(body))
	}
}

// TestOpenAPIFieldsAreTheAcceptedOnes: what a route accepts (its params
// and photo fields: anything else is 400 unknown_field) is exactly what
// the document lists for it, as query parameters and body members. PATCH
// bodies are checked by decodePatch's own lists (TestPersonsPatch).
func TestOpenAPIFieldsAreTheAcceptedOnes(t *testing.T) {
	doc := oaDoc(t)
	ops := oaOperations(t, doc)
	var props func(schema any) []string
	props = func(schema any) []string {
		s := oaResolve(t, doc, schema)
		var out []string
		for name := range s["properties"].(map[string]any) {
			out = append(out, name)
		}
		for _, k := range []string{"allOf", "oneOf", "anyOf"} {
			for _, sub := range asList(s[k]) {
				out = append(out, props(sub)...)
			}
		}
		return out
	}
	srv := New(Config{})
	for _, rt := range srv.routes() {
		op := ops[muxToOpenAPI(rt.pattern)]
		var documented []string
		for _, p := range asList(op["parameters"]) {
			if pm := oaResolve(t, doc, p); pm["in"] == "query" {
				documented = append(documented, pm["name"].(string))
			}
		}
		if !strings.HasPrefix(rt.pattern, "PATCH ") {
			if body, ok := op["requestBody"].(map[string]any); ok {
				for _, media := range body["content"].(map[string]any) {
					if schema := oaResolve(t, doc, media.(map[string]any)["schema"]); schema["type"] == "object" || schema["$ref"] != nil || schema["properties"] != nil {
						documented = append(documented, props(schema)...)
					}
				}
			}
		}
		slices.Sort(documented)
		documented = slices.Compact(documented)
		if accepted := rt.fields().names; !slices.Equal(accepted, documented) {
			t.Errorf("%s accepts %v, the document lists %v", rt.pattern, accepted, documented)
		}
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }
