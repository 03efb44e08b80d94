package api

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Helpers of the persons/faces/galleries/events tests (prefixed crud so
// they stay clear of the other test files of the package).

// crudDecode unmarshals a JSON body into v, zeroed first (Unmarshal
// would keep fields and map entries the body leaves out).
func crudDecode(t testing.TB, body []byte, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
}

// crudEnrolled is the 201 body of POST /v1/persons.
type crudEnrolled struct {
	Person PersonJSON `json:"person"`
	Faces  []FaceJSON `json:"faces"`
}

// crudEnrol creates a person from photos (by file name) with JSON, and
// fails the test unless it is 201.
func crudEnrol(t testing.TB, e *env, fields map[string]any, photos ...string) crudEnrolled {
	t.Helper()
	body := map[string]any{}
	for k, v := range fields {
		body[k] = v
	}
	var list []string
	for _, p := range photos {
		list = append(list, enc64(photo(t, p)))
	}
	body["photos"] = list
	status, b := e.doJSON(t, "POST", "/v1/persons", e.Write, body)
	if status != http.StatusCreated {
		t.Fatalf("enrol %v: %d %s", fields, status, b)
	}
	var out crudEnrolled
	crudDecode(t, b, &out)
	return out
}

// crudTop identifies a photo (query: extra parameters) and returns the
// best match's person id, "" for none.
func crudTop(t testing.TB, e *env, query, name string) string {
	t.Helper()
	status, _, body := e.do(t, "POST", "/v1/identify"+query, e.Read, "image/jpeg", photo(t, name))
	if status != http.StatusOK {
		t.Fatalf("identify %s%s: %d %s", name, query, status, body)
	}
	var res struct {
		Faces []struct {
			Matches []struct {
				Person PersonJSON `json:"person"`
			} `json:"matches"`
		} `json:"faces"`
	}
	crudDecode(t, body, &res)
	if len(res.Faces) == 0 || len(res.Faces[0].Matches) == 0 {
		return ""
	}
	return res.Faces[0].Matches[0].Person.ID
}

// crudWant checks a response's status and, for errors, its problem code.
func crudWant(t testing.TB, what string, status int, hdr http.Header, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d (%s)", what, status, wantStatus, body)
	}
	if wantCode != "" {
		if code := problemCode(t, hdr, body); code != wantCode {
			t.Fatalf("%s: code %q, want %q (%s)", what, code, wantCode, body)
		}
	}
}

// crudJSON sends v as JSON and checks the answer like crudWant.
func crudJSON(t testing.TB, e *env, method, path, key string, v any, wantStatus int, wantCode string) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		b = nil
	}
	status, hdr, body := e.do(t, method, path, key, "application/json", b)
	crudWant(t, method+" "+path, status, hdr, body, wantStatus, wantCode)
	return body
}

// crudRepeatedFiles builds a multipart form with several files under one name
// (multipartBody takes a map, so one file per name).
func crudRepeatedFiles(t testing.TB, name string, files [][]byte, fields map[string]string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for i, data := range files {
		fw, err := w.CreateFormFile(name, name+string(rune('a'+i))+".jpg")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	for k, v := range fields {
		w.WriteField(k, v)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func TestPersonsEnrolIdentifyDelete(t *testing.T) {
	e := newEnv(t, Config{})

	// Three ways to send the photo: multipart, JSON base64, raw body.
	ct, body := multipartBody(t, map[string][]byte{"photo": photo(t, "img1.jpg")},
		map[string]string{"id": "angelina", "name": "Angelina", "meta": `{"team":"red","level":3}`})
	status, hdr, b := e.do(t, "POST", "/v1/persons", e.Write, ct, body)
	crudWant(t, "multipart enrol", status, hdr, b, http.StatusCreated, "")
	if loc := hdr.Get("Location"); loc != "/v1/persons/angelina" {
		t.Errorf("Location %q", loc)
	}
	var a crudEnrolled
	crudDecode(t, b, &a)
	if a.Person.ID != "angelina" || a.Person.Name != "Angelina" || a.Person.Meta["team"] != "red" || a.Person.Meta["level"] != 3.0 {
		t.Fatalf("person %+v", a.Person)
	}
	if len(a.Faces) != 1 {
		t.Fatalf("faces %+v", a.Faces)
	}
	f := a.Faces[0]
	if f.ID == 0 || f.PersonID != "angelina" || !slices.Equal(f.Galleries, []string{"default"}) || f.Embedder == "" ||
		len(f.PhotoHash) != 64 || f.Quality <= 0 || f.Box.X2 <= f.Box.X1 || f.CreatedAt.IsZero() || f.Embedding != nil {
		t.Fatalf("face %+v", f)
	}
	if bytes.Contains(b, []byte(`"embedding"`)) {
		t.Fatal("enrolment answer carries the embedding without ?embedding=true")
	}

	p13 := crudEnrol(t, e, map[string]any{"id": "p13", "external_id": "crm-13", "meta": map[string]any{"k": "v"}}, "img13.jpg")
	if p13.Person.ExternalID != "crm-13" || p13.Person.Meta["k"] != "v" {
		t.Fatalf("p13 %+v", p13.Person)
	}
	status, hdr, b = e.do(t, "POST", "/v1/persons?id=p8&embedding=true", e.Write, "image/jpeg", photo(t, "img8.jpg"))
	crudWant(t, "raw enrol", status, hdr, b, http.StatusCreated, "")
	var p8 crudEnrolled
	crudDecode(t, b, &p8)
	if p8.Person.ID != "p8" || len(p8.Faces) != 1 || len(p8.Faces[0].Embedding) < 128 {
		t.Fatalf("p8 %+v", p8)
	}

	for probe, want := range map[string]string{"img2.jpg": "angelina", "img14.jpg": "p13", "img9.jpg": "p8"} {
		if got := crudTop(t, e, "", probe); got != want {
			t.Errorf("%s identified as %q, want %q", probe, got, want)
		}
	}

	var got crudEnrolled
	crudDecode(t, crudJSON(t, e, "GET", "/v1/persons/p13", e.Read, nil, http.StatusOK, ""), &got)
	if got.Person.ID != "p13" || len(got.Faces) != 1 || got.Faces[0].ID != p13.Faces[0].ID {
		t.Fatalf("GET p13: %+v", got)
	}

	crudJSON(t, e, "DELETE", "/v1/persons/p13", e.Write, nil, http.StatusNoContent, "")
	crudJSON(t, e, "GET", "/v1/persons/p13", e.Read, nil, http.StatusNotFound, "not_found")
	crudJSON(t, e, "GET", "/v1/faces/"+crudID(p13.Faces[0].ID), e.Read, nil, http.StatusNotFound, "not_found")
	crudJSON(t, e, "DELETE", "/v1/persons/p13", e.Write, nil, http.StatusNotFound, "not_found")
	status, _, b = e.do(t, "POST", "/v1/identify?threshold=none&n=3", e.Read, "image/jpeg", photo(t, "img14.jpg"))
	if status != http.StatusOK || bytes.Contains(b, []byte(`"p13"`)) || !bytes.Contains(b, []byte(`"angelina"`)) {
		t.Fatalf("identify after delete: %d %s", status, b)
	}
	if got := crudTop(t, e, "", "img14.jpg"); got != "" {
		t.Fatalf("deleted person still identified as %q", got)
	}
	// Its external id is free again.
	crudEnrol(t, e, map[string]any{"external_id": "crm-13"}, "img13.jpg")
}

func crudID(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestPersonsMultiplePhotosAndFaces(t *testing.T) {
	e := newEnv(t, Config{})
	// JSON: several photos; no id, so one is generated.
	two := crudEnrol(t, e, map[string]any{"name": "A"}, "img1.jpg", "img4.jpg")
	if len(two.Person.ID) != 32 || len(two.Faces) != 2 || two.Faces[0].ID == two.Faces[1].ID {
		t.Fatalf("two photos: %+v", two)
	}
	// Multipart: the photo field repeated.
	ct, body := crudRepeatedFiles(t, "photo", [][]byte{photo(t, "img8.jpg"), photo(t, "img9.jpg")}, map[string]string{"id": "p8"})
	status, hdr, b := e.do(t, "POST", "/v1/persons", e.Write, ct, body)
	crudWant(t, "multipart photos", status, hdr, b, http.StatusCreated, "")
	var p8 crudEnrolled
	crudDecode(t, b, &p8)
	if len(p8.Faces) != 2 {
		t.Fatalf("multipart photos: %s", b)
	}

	// Add a face, with face metadata and a camera.
	ct, body = multipartBody(t, map[string][]byte{"photo": photo(t, "img2.jpg")}, map[string]string{"meta": `{"src":"kiosk"}`, "camera_id": "door-1"})
	status, hdr, b = e.do(t, "POST", "/v1/persons/"+two.Person.ID+"/faces", e.Write, ct, body)
	crudWant(t, "add face", status, hdr, b, http.StatusCreated, "")
	var added struct{ Faces []FaceJSON }
	crudDecode(t, b, &added)
	if len(added.Faces) != 1 || added.Faces[0].PersonID != two.Person.ID || added.Faces[0].Meta["src"] != "kiosk" || added.Faces[0].CameraID != "door-1" {
		t.Fatalf("added %s", b)
	}
	var got crudEnrolled
	crudDecode(t, crudJSON(t, e, "GET", "/v1/persons/"+two.Person.ID, e.Read, nil, http.StatusOK, ""), &got)
	if len(got.Faces) != 3 || got.Faces[0].Embedding != nil {
		t.Fatalf("after add: %+v", got.Faces)
	}
	crudDecode(t, crudJSON(t, e, "GET", "/v1/persons/"+two.Person.ID+"?embedding=true", e.Read, nil, http.StatusOK, ""), &got)
	if len(got.Faces) != 3 || len(got.Faces[2].Embedding) < 128 {
		t.Fatalf("with embeddings: %d faces", len(got.Faces))
	}

	// A face by id, with and without its vector.
	var one FaceJSON
	fid := crudID(added.Faces[0].ID)
	crudDecode(t, crudJSON(t, e, "GET", "/v1/faces/"+fid, e.Read, nil, http.StatusOK, ""), &one)
	if one.ID != added.Faces[0].ID || one.Embedding != nil || one.Meta["src"] != "kiosk" {
		t.Fatalf("face %+v", one)
	}
	crudDecode(t, crudJSON(t, e, "GET", "/v1/faces/"+fid+"?embedding=true", e.Read, nil, http.StatusOK, ""), &one)
	if len(one.Embedding) < 128 {
		t.Fatal("?embedding=true left the vector out")
	}

	// Deleting a face through the wrong person is 404 and deletes nothing.
	crudJSON(t, e, "DELETE", "/v1/persons/p8/faces/"+fid, e.Write, nil, http.StatusNotFound, "not_found")
	crudJSON(t, e, "DELETE", "/v1/persons/"+two.Person.ID+"/faces/abc", e.Write, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "DELETE", "/v1/persons/"+two.Person.ID+"/faces/0", e.Write, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "DELETE", "/v1/persons/"+two.Person.ID+"/faces/-1", e.Write, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "DELETE", "/v1/persons/"+two.Person.ID+"/faces/"+fid, e.Write, nil, http.StatusNoContent, "")
	crudJSON(t, e, "DELETE", "/v1/persons/"+two.Person.ID+"/faces/"+fid, e.Write, nil, http.StatusNotFound, "not_found")
	crudDecode(t, crudJSON(t, e, "GET", "/v1/persons/"+two.Person.ID, e.Read, nil, http.StatusOK, ""), &got)
	if len(got.Faces) != 2 {
		t.Fatalf("after face delete: %d faces", len(got.Faces))
	}

	// DELETE /v1/faces/{id} too.
	crudJSON(t, e, "DELETE", "/v1/faces/"+crudID(p8.Faces[1].ID), e.Write, nil, http.StatusNoContent, "")
	crudJSON(t, e, "GET", "/v1/faces/"+crudID(p8.Faces[1].ID), e.Read, nil, http.StatusNotFound, "not_found")
	crudJSON(t, e, "GET", "/v1/faces/x1", e.Read, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "GET", "/v1/faces/18446744073709551616", e.Read, nil, http.StatusBadRequest, "invalid")
	if got := crudTop(t, e, "", "img9.jpg"); got != "p8" {
		t.Fatalf("p8's remaining face: identified as %q", got)
	}

	// Ids with a slash travel escaped in the path.
	crudEnrol(t, e, map[string]any{"id": "dept/7"}, "img13.jpg")
	crudDecode(t, crudJSON(t, e, "GET", "/v1/persons/"+url.PathEscape("dept/7"), e.Read, nil, http.StatusOK, ""), &got)
	if got.Person.ID != "dept/7" {
		t.Fatalf("escaped id: %+v", got.Person)
	}
}

func TestPersonsErrors(t *testing.T) {
	e := newEnv(t, Config{})
	crudEnrol(t, e, map[string]any{"id": "a", "external_id": "ext-a"}, "img1.jpg")

	// A photo without a face names it, and nothing is stored.
	status, hdr, b := e.do(t, "POST", "/v1/persons", e.Write, "application/json",
		jsonBody(t, map[string]any{"id": "b", "photos": []string{enc64(photo(t, "img8.jpg")), enc64(flatJPEG(t, 320, 240))}}))
	crudWant(t, "no face", status, hdr, b, http.StatusBadRequest, "no_face")
	var p Problem
	crudDecode(t, b, &p)
	if p.Photo == nil || *p.Photo != 1 {
		t.Fatalf("no_face photo index: %s", b)
	}
	crudJSON(t, e, "GET", "/v1/persons/b", e.Read, nil, http.StatusNotFound, "not_found")

	// Two faces under reject.
	ct, body := multipartBody(t, map[string][]byte{"photo": photo(t, "couple.jpg")}, map[string]string{"id": "c", "mf_selector": "reject"})
	status, hdr, b = e.do(t, "POST", "/v1/persons", e.Write, ct, body)
	crudWant(t, "reject", status, hdr, b, http.StatusBadRequest, "too_many_faces")
	crudDecode(t, b, &p)
	if len(p.Faces) != 2 {
		t.Fatalf("too_many_faces boxes: %s", b)
	}
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"photo": enc64(photo(t, "img1.jpg")), "mf_selector": "all"}, http.StatusBadRequest, "bad_selector")
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "d"}, http.StatusBadRequest, "no_photo")
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "d", "photo": enc64(photo(t, "img1.jpg")), "photos": []string{enc64(photo(t, "img1.jpg"))}}, http.StatusBadRequest, "bad_photo")
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "d", "photo": enc64(photo(t, "img1.jpg")), "meta": 5}, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "d", "photo": enc64(photo(t, "img1.jpg")), "galleries": []string{"nope"}}, http.StatusNotFound, "not_found")
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "bad\x01id", "photo": enc64(photo(t, "img1.jpg"))}, http.StatusBadRequest, "invalid")

	// Conflicts.
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "a", "photo": enc64(photo(t, "img13.jpg"))}, http.StatusConflict, "duplicate")
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "e", "external_id": "ext-a", "photo": enc64(photo(t, "img13.jpg"))}, http.StatusConflict, "duplicate")

	// Not found.
	crudJSON(t, e, "GET", "/v1/persons/nobody", e.Read, nil, http.StatusNotFound, "not_found")
	crudJSON(t, e, "PATCH", "/v1/persons/nobody", e.Write, map[string]any{"name": "x"}, http.StatusNotFound, "not_found")
	crudJSON(t, e, "POST", "/v1/persons/nobody/faces", e.Write, map[string]any{"photo": enc64(photo(t, "img1.jpg"))}, http.StatusNotFound, "not_found")
	crudJSON(t, e, "GET", "/v1/faces/999999", e.Read, nil, http.StatusNotFound, "not_found")
	crudJSON(t, e, "PATCH", "/v1/faces/999999", e.Write, map[string]any{"meta": map[string]any{}}, http.StatusNotFound, "not_found")
	crudJSON(t, e, "DELETE", "/v1/faces/999999", e.Write, nil, http.StatusNotFound, "not_found")
	crudJSON(t, e, "DELETE", "/v1/galleries/nope", e.Write, nil, http.StatusNotFound, "not_found")
	crudJSON(t, e, "GET", "/v1/persons?gallery=nope", e.Read, nil, http.StatusNotFound, "not_found")
	crudJSON(t, e, "GET", "/v1/faces?person_id=nobody", e.Read, nil, http.StatusNotFound, "not_found")

	// Galleries: names, duplicates.
	crudJSON(t, e, "POST", "/v1/galleries", e.Write, map[string]any{"name": "bad name!"}, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "POST", "/v1/galleries", e.Write, map[string]any{}, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "POST", "/v1/galleries", e.Write, map[string]any{"name": "staff"}, http.StatusCreated, "")
	crudJSON(t, e, "POST", "/v1/galleries", e.Write, map[string]any{"name": "staff"}, http.StatusConflict, "duplicate")

	// Patches: unknown or immutable fields, wrong types, wrong body.
	crudJSON(t, e, "PATCH", "/v1/persons/a", e.Write, map[string]any{"nmae": "x"}, http.StatusBadRequest, "unknown_field")
	crudJSON(t, e, "PATCH", "/v1/persons/a", e.Write, map[string]any{"id": "z"}, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "PATCH", "/v1/persons/a", e.Write, map[string]any{"name": 5}, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "PATCH", "/v1/persons/a", e.Write, map[string]any{"meta": "x"}, http.StatusBadRequest, "invalid")
	status, hdr, b = e.do(t, "PATCH", "/v1/persons/a", e.Write, "application/json", []byte(`{"name":`))
	crudWant(t, "truncated patch", status, hdr, b, http.StatusBadRequest, "bad_body")
	status, hdr, b = e.do(t, "PATCH", "/v1/persons/a", e.Write, "text/plain", []byte(`{}`))
	crudWant(t, "patch as text", status, hdr, b, http.StatusUnsupportedMediaType, "unsupported_media_type")

	// Query parameters.
	crudJSON(t, e, "GET", "/v1/persons?limit=abc", e.Read, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "GET", "/v1/persons?limit=0", e.Read, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "GET", "/v1/persons?cursor=garbage", e.Read, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "GET", "/v1/persons/a?embedding=maybe", e.Read, nil, http.StatusBadRequest, "invalid")
}

// TestPersonsAuth walks the route table: every keyed route refuses a
// request without a key (401), every write route a read key (403).
func TestPersonsAuth(t *testing.T) {
	e := newEnv(t, Config{})
	fill := strings.NewReplacer("{id}", "x", "{face_id}", "1", "{name}", "g")
	writes := 0
	for _, rt := range e.Srv.routes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = fill.Replace(path)
		status, hdr, b := e.do(t, method, path, "", "", nil)
		if rt.scope == "" {
			if status != http.StatusOK {
				t.Errorf("%s without a key: %d", rt.pattern, status)
			}
			continue
		}
		crudWant(t, rt.pattern+" without a key", status, hdr, b, http.StatusUnauthorized, "unauthorized")
		status, hdr, b = e.do(t, method, path, "not.a-key", "", nil)
		crudWant(t, rt.pattern+" with a bad key", status, hdr, b, http.StatusUnauthorized, "unauthorized")
		if rt.scope == "write" {
			writes++
			status, hdr, b = e.do(t, method, path, e.Read, "", nil)
			crudWant(t, rt.pattern+" with a read key", status, hdr, b, http.StatusForbidden, "forbidden")
		}
	}
	if writes < 9 {
		t.Fatalf("only %d write routes", writes)
	}
	// X-API-Key works as well as the bearer token.
	req, _ := http.NewRequest("GET", e.URL+"/v1/persons", nil)
	req.Header.Set("X-API-Key", e.Read)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("X-API-Key: %d", resp.StatusCode)
	}
	// A read key lists and reads.
	crudJSON(t, e, "GET", "/v1/persons", e.Read, nil, http.StatusOK, "")
	crudJSON(t, e, "GET", "/v1/galleries", e.Read, nil, http.StatusOK, "")
	crudJSON(t, e, "GET", "/v1/events", e.Read, nil, http.StatusOK, "")
}

func TestPersonsPagination(t *testing.T) {
	e := newEnv(t, Config{})
	crudJSON(t, e, "POST", "/v1/galleries", e.Write, map[string]any{"name": "staff", "meta": map[string]any{"site": "hq"}}, http.StatusCreated, "")
	var ids []string
	for i, name := range []string{"img1.jpg", "img13.jpg", "img8.jpg", "img20.jpg", "img2.jpg"} {
		// Two of the photos are one person's: enrolled as two on purpose.
		fields := map[string]any{"name": name, "allow_duplicate": true}
		if i%2 == 0 {
			fields["galleries"] = []string{"staff", "default"}
		}
		ids = append(ids, crudEnrol(t, e, fields, name).Person.ID)
	}
	pages := 0
	seen := map[string]bool{}
	cursor := ""
	for {
		var page pageJSON[PersonJSON]
		crudDecode(t, crudJSON(t, e, "GET", "/v1/persons?limit=2&cursor="+url.QueryEscape(cursor), e.Read, nil, http.StatusOK, ""), &page)
		pages++
		if len(page.Items) == 0 || len(page.Items) > 2 {
			t.Fatalf("page %d has %d items", pages, len(page.Items))
		}
		for _, p := range page.Items {
			if seen[p.ID] {
				t.Fatalf("%s listed twice", p.ID)
			}
			seen[p.ID] = true
		}
		if cursor = page.Next; cursor == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if pages != 3 || len(seen) != 5 {
		t.Fatalf("%d pages, %d persons", pages, len(seen))
	}
	for _, id := range ids {
		if !seen[id] {
			t.Fatalf("%s never listed", id)
		}
	}

	// The gallery filter.
	var page pageJSON[PersonJSON]
	crudDecode(t, crudJSON(t, e, "GET", "/v1/persons?gallery=staff", e.Read, nil, http.StatusOK, ""), &page)
	if len(page.Items) != 3 || page.Next != "" {
		t.Fatalf("staff persons: %+v", page)
	}

	// Faces: pages, person and gallery filters.
	var faces pageJSON[FaceJSON]
	crudDecode(t, crudJSON(t, e, "GET", "/v1/faces?limit=4", e.Read, nil, http.StatusOK, ""), &faces)
	if len(faces.Items) != 4 || faces.Next == "" || faces.Items[0].Embedding != nil {
		t.Fatalf("faces page 1: %+v", faces)
	}
	crudDecode(t, crudJSON(t, e, "GET", "/v1/faces?limit=4&cursor="+faces.Next, e.Read, nil, http.StatusOK, ""), &faces)
	if len(faces.Items) != 1 || faces.Next != "" {
		t.Fatalf("faces page 2: %+v", faces)
	}
	crudDecode(t, crudJSON(t, e, "GET", "/v1/faces?gallery=staff", e.Read, nil, http.StatusOK, ""), &faces)
	if len(faces.Items) != 3 {
		t.Fatalf("staff faces: %d", len(faces.Items))
	}
	crudDecode(t, crudJSON(t, e, "GET", "/v1/faces?person_id="+ids[1]+"&embedding=true", e.Read, nil, http.StatusOK, ""), &faces)
	if len(faces.Items) != 1 || faces.Items[0].PersonID != ids[1] || len(faces.Items[0].Embedding) < 128 {
		t.Fatalf("faces of %s: %+v", ids[1], faces)
	}
	crudDecode(t, crudJSON(t, e, "GET", "/v1/faces?person_id="+ids[1]+"&gallery=staff", e.Read, nil, http.StatusOK, ""), &faces)
	if len(faces.Items) != 0 {
		t.Fatalf("faces of %s in staff: %+v", ids[1], faces)
	}
	// A persons cursor is not a faces cursor.
	var first pageJSON[PersonJSON]
	crudDecode(t, crudJSON(t, e, "GET", "/v1/persons?limit=1", e.Read, nil, http.StatusOK, ""), &first)
	crudJSON(t, e, "GET", "/v1/faces?cursor="+first.Next, e.Read, nil, http.StatusBadRequest, "invalid")

	// Galleries list with face counts.
	var gals pageJSON[GalleryJSON]
	crudDecode(t, crudJSON(t, e, "GET", "/v1/galleries", e.Read, nil, http.StatusOK, ""), &gals)
	if len(gals.Items) != 2 || gals.Items[0].Name != "default" || gals.Items[0].Faces != 5 ||
		gals.Items[1].Name != "staff" || gals.Items[1].Faces != 3 || gals.Items[1].Meta["site"] != "hq" {
		t.Fatalf("galleries: %+v", gals)
	}
	crudDecode(t, crudJSON(t, e, "GET", "/v1/galleries?limit=1", e.Read, nil, http.StatusOK, ""), &gals)
	if len(gals.Items) != 1 || gals.Next == "" {
		t.Fatalf("galleries page: %+v", gals)
	}
}

func TestPersonsPatch(t *testing.T) {
	e := newEnv(t, Config{})
	a := crudEnrol(t, e, map[string]any{"id": "a", "name": "Ann", "email": "ann@example.com", "phone": "+100", "meta": map[string]any{"x": 1}}, "img1.jpg")
	crudEnrol(t, e, map[string]any{"id": "b", "external_id": "ext-b"}, "img13.jpg")

	var p PersonJSON
	crudDecode(t, crudJSON(t, e, "PATCH", "/v1/persons/a", e.Write, map[string]any{"name": "Anna", "external_id": "ext-a"}, http.StatusOK, ""), &p)
	if p.Name != "Anna" || p.ExternalID != "ext-a" || p.Email != "ann@example.com" || p.Phone != "+100" || p.Meta["x"] != 1.0 ||
		!p.CreatedAt.Equal(a.Person.CreatedAt) || p.UpdatedAt.Before(a.Person.UpdatedAt) {
		t.Fatalf("patched %+v", p)
	}
	// Meta is replaced as a whole; null clears a field.
	status, hdr, b := e.do(t, "PATCH", "/v1/persons/a", e.Write, "application/merge-patch+json", []byte(`{"meta":{"y":"z"},"phone":null,"id":"a"}`))
	crudWant(t, "merge patch", status, hdr, b, http.StatusOK, "")
	crudDecode(t, b, &p)
	if p.Phone != "" || p.Email != "ann@example.com" || len(p.Meta) != 1 || p.Meta["y"] != "z" {
		t.Fatalf("patched %+v", p)
	}
	crudDecode(t, crudJSON(t, e, "PATCH", "/v1/persons/a", e.Write, map[string]any{"meta": nil}, http.StatusOK, ""), &p)
	if p.Meta != nil {
		t.Fatalf("meta not cleared: %+v", p)
	}
	crudJSON(t, e, "PATCH", "/v1/persons/a", e.Write, map[string]any{"external_id": "ext-b"}, http.StatusConflict, "duplicate")
	crudJSON(t, e, "PATCH", "/v1/persons/a", e.Write, map[string]any{"email": strings.Repeat("x", 600)}, http.StatusBadRequest, "invalid")
	var got crudEnrolled
	crudDecode(t, crudJSON(t, e, "GET", "/v1/persons/a", e.Read, nil, http.StatusOK, ""), &got)
	if got.Person.Name != "Anna" || got.Person.ExternalID != "ext-a" {
		t.Fatalf("stored %+v", got.Person)
	}
	// The identify answer shows the new name.
	status, _, b = e.do(t, "POST", "/v1/identify", e.Read, "image/jpeg", photo(t, "img2.jpg"))
	if status != http.StatusOK || !bytes.Contains(b, []byte(`"name":"Anna"`)) {
		t.Fatalf("identify: %d %s", status, b)
	}

	// A face moves to another person, and its metadata changes.
	var f FaceJSON
	fid := crudID(a.Faces[0].ID)
	crudDecode(t, crudJSON(t, e, "PATCH", "/v1/faces/"+fid, e.Write, map[string]any{"person_id": "b", "meta": map[string]any{"note": "moved"}}, http.StatusOK, ""), &f)
	if f.PersonID != "b" || f.Meta["note"] != "moved" || !slices.Equal(f.Galleries, []string{"default"}) {
		t.Fatalf("moved face %+v", f)
	}
	// b now holds faces of two people, so its template (the mean of its
	// faces) scores below the default preset: ask without one.
	if got := crudTop(t, e, "?threshold=none", "img2.jpg"); got != "b" {
		t.Fatalf("after the move img2 is %q", got)
	}
	crudJSON(t, e, "PATCH", "/v1/faces/"+fid, e.Write, map[string]any{"person_id": "nobody"}, http.StatusNotFound, "not_found")
	crudJSON(t, e, "PATCH", "/v1/faces/"+fid, e.Write, map[string]any{"person_id": nil}, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "PATCH", "/v1/faces/"+fid, e.Write, map[string]any{"box": []int{1, 2, 3, 4}}, http.StatusBadRequest, "unknown_field")
	crudJSON(t, e, "PATCH", "/v1/faces/"+fid, e.Write, map[string]any{"galleries": map[string]any{"put": []string{"x"}}}, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "PATCH", "/v1/faces/"+fid, e.Write, map[string]any{"galleries": "default"}, http.StatusBadRequest, "invalid")
}

func TestPersonsGalleries(t *testing.T) {
	e := newEnv(t, Config{})
	for _, g := range []string{"staff", "visitors"} {
		var gal GalleryJSON
		crudDecode(t, crudJSON(t, e, "POST", "/v1/galleries", e.Write, map[string]any{"name": g}, http.StatusCreated, ""), &gal)
		if gal.Name != g || gal.CreatedAt.IsZero() || gal.Faces != 0 {
			t.Fatalf("created %+v", gal)
		}
	}
	ct, body := multipartBody(t, map[string][]byte{"photo": photo(t, "img1.jpg")}, map[string]string{"id": "angelina", "galleries": "staff"})
	status, hdr, b := e.do(t, "POST", "/v1/persons", e.Write, ct, body)
	crudWant(t, "enrol into staff", status, hdr, b, http.StatusCreated, "")
	var a crudEnrolled
	crudDecode(t, b, &a)
	if !slices.Equal(a.Faces[0].Galleries, []string{"staff"}) {
		t.Fatalf("galleries %v", a.Faces[0].Galleries)
	}
	p8 := crudEnrol(t, e, map[string]any{"id": "p8", "galleries": []string{"visitors"}}, "img8.jpg")
	fid := crudID(a.Faces[0].ID)
	find := func(gallery string) string {
		t.Helper()
		q := ""
		if gallery != "" {
			q = "?gallery=" + gallery
		}
		return crudTop(t, e, q, "img2.jpg")
	}
	if find("staff") != "angelina" || find("visitors") != "" || find("") != "angelina" || find("staff,visitors") != "angelina" {
		t.Fatal("gallery filter before the change")
	}
	status, hdr, b = e.do(t, "POST", "/v1/identify?gallery=nope", e.Read, "image/jpeg", photo(t, "img2.jpg"))
	crudWant(t, "identify in an unknown gallery", status, hdr, b, http.StatusNotFound, "not_found")

	var f FaceJSON
	patch := func(change any) {
		t.Helper()
		crudDecode(t, crudJSON(t, e, "PATCH", "/v1/faces/"+fid, e.Write, map[string]any{"galleries": change}, http.StatusOK, ""), &f)
	}
	patch(map[string]any{"add": []string{"visitors"}, "del": []string{"staff"}})
	if !slices.Equal(f.Galleries, []string{"visitors"}) || find("staff") != "" || find("visitors") != "angelina" {
		t.Fatalf("after add/del: %v", f.Galleries)
	}
	patch(map[string]any{"set": []string{"staff", "default"}})
	if !slices.Equal(f.Galleries, []string{"staff", "default"}) || find("staff") != "angelina" || find("default") != "angelina" || find("visitors") != "" {
		t.Fatalf("after set: %v", f.Galleries)
	}
	patch([]string{"staff", "visitors"})
	if !slices.Equal(f.Galleries, []string{"staff", "visitors"}) || find("default") != "" || find("visitors") != "angelina" {
		t.Fatalf("after array set: %v", f.Galleries)
	}
	crudJSON(t, e, "PATCH", "/v1/faces/"+fid, e.Write, map[string]any{"galleries": map[string]any{"set": []string{}}}, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "PATCH", "/v1/faces/"+fid, e.Write, map[string]any{"galleries": map[string]any{"add": []string{"nope"}}}, http.StatusNotFound, "not_found")

	// Deleting visitors without faces: angelina's face stays (it is in
	// staff too), p8's only face is refused.
	crudJSON(t, e, "DELETE", "/v1/galleries/visitors", e.Write, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "DELETE", "/v1/faces/"+crudID(p8.Faces[0].ID), e.Write, nil, http.StatusNoContent, "")
	crudJSON(t, e, "DELETE", "/v1/galleries/visitors?with_faces=maybe", e.Write, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "DELETE", "/v1/galleries/visitors?with_faces=false", e.Write, nil, http.StatusNoContent, "")
	crudDecode(t, crudJSON(t, e, "GET", "/v1/faces/"+fid, e.Read, nil, http.StatusOK, ""), &f)
	if !slices.Equal(f.Galleries, []string{"staff"}) || find("staff") != "angelina" {
		t.Fatalf("after deleting visitors: %v", f.Galleries)
	}
	status, hdr, b = e.do(t, "POST", "/v1/identify?gallery=visitors", e.Read, "image/jpeg", photo(t, "img2.jpg"))
	crudWant(t, "identify in a deleted gallery", status, hdr, b, http.StatusNotFound, "not_found")

	// staff holds the face alone: refused without with_faces, then the
	// face goes with it.
	crudJSON(t, e, "DELETE", "/v1/galleries/staff", e.Write, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "DELETE", "/v1/galleries/staff?with_faces=true", e.Write, nil, http.StatusNoContent, "")
	crudJSON(t, e, "GET", "/v1/faces/"+fid, e.Read, nil, http.StatusNotFound, "not_found")
	if find("") != "" {
		t.Fatal("a face of a deleted gallery is still found")
	}
	crudDecode(t, crudJSON(t, e, "GET", "/v1/persons/angelina", e.Read, nil, http.StatusOK, ""), &a)
	if len(a.Faces) != 0 {
		t.Fatalf("angelina keeps %d faces", len(a.Faces))
	}
	crudJSON(t, e, "DELETE", "/v1/galleries/default?with_faces=true", e.Write, nil, http.StatusBadRequest, "invalid")
	var gals pageJSON[GalleryJSON]
	crudDecode(t, crudJSON(t, e, "GET", "/v1/galleries", e.Read, nil, http.StatusOK, ""), &gals)
	if len(gals.Items) != 1 || gals.Items[0].Name != "default" {
		t.Fatalf("galleries left: %+v", gals)
	}
}

func TestPersonsEvents(t *testing.T) {
	e := newEnv(t, Config{})
	crudEnrol(t, e, map[string]any{"id": "angelina"}, "img1.jpg")
	start := time.Now().Add(-time.Second)
	for _, probe := range []struct{ photo, camera string }{
		{"img2.jpg", "door-1"}, {"img20.jpg", "door-2"}, {"img4.jpg", "door-1"},
	} {
		status, _, b := e.do(t, "POST", "/v1/identify?record=true&camera_id="+probe.camera, e.Read, "image/jpeg", photo(t, probe.photo))
		if status != http.StatusOK || !bytes.Contains(b, []byte(`"event_id"`)) {
			t.Fatalf("identify %s: %d %s", probe.photo, status, b)
		}
	}
	list := func(query string) []EventJSON {
		t.Helper()
		var page pageJSON[EventJSON]
		crudDecode(t, crudJSON(t, e, "GET", "/v1/events"+query, e.Read, nil, http.StatusOK, ""), &page)
		return page.Items
	}
	all := list("")
	if len(all) != 3 || all[0].CameraID != "door-1" || all[1].CameraID != "door-2" || !all[0].Time.After(all[2].Time) && !all[0].Time.Equal(all[2].Time) {
		t.Fatalf("events %+v", all)
	}
	if !all[0].Matched || all[0].PersonID == nil || *all[0].PersonID != "angelina" || all[0].FaceID == 0 || all[0].Confidence < 0.75 || all[0].CandidatePersonID != "" {
		t.Fatalf("events %+v", all)
	}
	// The unmatched event keeps its best candidate and that candidate's
	// confidence (below the default threshold), apart from person_id.
	if ev := all[1]; ev.Matched || ev.PersonID != nil || ev.FaceID != 0 || ev.CandidatePersonID != "angelina" || ev.CandidateFaceID == 0 ||
		ev.Confidence <= 0 || ev.Confidence >= 0.75 {
		t.Fatalf("unmatched event %+v: want candidate angelina with a confidence in (0, 0.75)", ev)
	}
	for query, want := range map[string]int{
		"?camera_id=door-1":                    2,
		"?camera_id=door-2":                    1,
		"?camera_id=door-1,door-2":             3,
		"?camera_id=door-1&camera_id=door-2":   3,
		"?camera_id=door-3":                    0,
		"?matched=true":                        2,
		"?matched=false":                       1,
		"?matched=false&camera_id=door-1":      0,
		"?person_id=angelina":                  2,
		"?person_id=angelina&camera_id=door-2": 0,
		"?from=" + url.QueryEscape(start.Format(time.RFC3339Nano)):                 3,
		"?from=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)): 0,
		"?to=" + url.QueryEscape(start.Format(time.RFC3339)):                       0,
		"?to=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)):   3,
	} {
		if got := list(query); len(got) != want {
			t.Errorf("%s: %d events, want %d", query, len(got), want)
		}
	}
	// Pages of one, newest first, no repeats.
	var ids []uint64
	cursor := ""
	for range 4 {
		var page pageJSON[EventJSON]
		crudDecode(t, crudJSON(t, e, "GET", "/v1/events?limit=1&cursor="+cursor, e.Read, nil, http.StatusOK, ""), &page)
		for _, ev := range page.Items {
			ids = append(ids, ev.ID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if len(ids) != 3 || ids[0] != all[0].ID || ids[2] != all[2].ID {
		t.Fatalf("paged ids %v", ids)
	}
	crudJSON(t, e, "GET", "/v1/events?from=yesterday", e.Read, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "GET", "/v1/events?matched=perhaps", e.Read, nil, http.StatusBadRequest, "invalid")
	crudJSON(t, e, "GET", "/v1/events?cursor=abc", e.Read, nil, http.StatusBadRequest, "invalid")

	// Events outlive the person they name.
	crudJSON(t, e, "DELETE", "/v1/persons/angelina", e.Write, nil, http.StatusNoContent, "")
	if got := list("?person_id=angelina"); len(got) != 2 {
		t.Fatalf("history after delete: %+v", got)
	}
}
