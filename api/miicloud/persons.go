package miicloud

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/facedhq/faced/api/dialect"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// BoundingBox is a face rectangle.
type BoundingBox struct {
	LeftX  int `json:"left_x"`
	LeftY  int `json:"left_y"`
	RightX int `json:"right_x"`
	RightY int `json:"right_y"`
}

func boxOf(x1, y1, x2, y2 float32) *BoundingBox {
	r := func(v float32) int { return int(math.Round(float64(v))) }
	return &BoundingBox{LeftX: r(x1), LeftY: r(y1), RightX: r(x2), RightY: r(y2)}
}

// Image is one enrolled image of a person.
type Image struct {
	Image   string `json:"image"`
	Created string `json:"created"`
}

// Person is the person part of the responses; Status, Images, BoundingBox
// and Image are set depending on the endpoint.
type Person struct {
	Status           string       `json:"status,omitempty"`
	MiicloudPersonID string       `json:"miicloud_person_id"`
	CustomerPersonID string       `json:"customer_person_id"`
	FirstName        string       `json:"first_name"`
	LastName         string       `json:"last_name"`
	Email            string       `json:"email"`
	Phone            string       `json:"phone"`
	Images           []Image      `json:"images,omitempty"`
	BoundingBox      *BoundingBox `json:"bounding_box,omitempty"`
	Image            string       `json:"image,omitempty"`
}

const (
	metaFirst = "first_name"
	metaLast  = "last_name"
	metaImage = "image"
)

func personOf(p store.Person) Person {
	out := Person{MiicloudPersonID: p.ID, CustomerPersonID: p.ExternalID, Email: p.Email, Phone: p.Phone}
	first, okF := p.Meta[metaFirst].(string)
	last, okL := p.Meta[metaLast].(string)
	if okF || okL {
		out.FirstName, out.LastName = first, last
	} else {
		out.FirstName = p.Name
	}
	return out
}

// setFields applies the non-empty text fields to p.
func setFields(p *store.Person, req *request) {
	meta := store.Metadata{}
	for k, v := range p.Meta {
		meta[k] = v
	}
	if _, ok := meta[metaFirst]; !ok && p.Name != "" {
		if _, ok := meta[metaLast]; !ok {
			meta[metaFirst] = p.Name
		}
	}
	for _, k := range []string{metaFirst, metaLast} {
		if v := req.field(k); v != "" {
			meta[k] = v
		}
	}
	first, _ := meta[metaFirst].(string)
	last, _ := meta[metaLast].(string)
	if first != "" || last != "" {
		p.Name = strings.TrimSpace(first + " " + last)
		p.Meta = meta
	}
	if v := req.field("email"); v != "" {
		p.Email = v
	}
	if v := req.field("phone"); v != "" {
		p.Phone = v
	}
}

// imageName is "enroll/<stem>_<7 random characters><ext>".
func imageName(upload string) string {
	base := path.Base(strings.ReplaceAll(upload, "\\", "/"))
	if base == "." || base == "/" || base == "" {
		base = "image.jpg"
	}
	ext := path.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	if stem == "" {
		stem = "image"
	}
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [7]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	name := "enroll/" + stem + "_" + string(b[:]) + ext
	if len(name) > 256 {
		name = "enroll/image_" + string(b[:]) + ".jpg"
	}
	return name
}

// enroll serves POST /miicloud/person.
func (h *handler) enroll(req *request) (any, error) {
	id := req.field("customer_person_id")
	if id == "" {
		return nil, badRequest(msgIDRequired)
	}
	if !req.hasImage {
		return nil, badRequest(msgImageNeeded)
	}
	p := store.Person{ExternalID: id}
	setFields(&p, req)
	name := imageName(req.imageName)
	in := service.FaceInput{Selector: face.SelectBiggest, Meta: store.Metadata{metaImage: name}}
	stored, faces, err := h.addImage(req, id, in)
	if errors.Is(err, store.ErrNotFound) {
		stored, faces, err = h.svc.Enroll(req.Context(), service.EnrollRequest{Person: p, Photos: [][]byte{req.image}, FaceInput: in})
		if errors.Is(err, store.ErrDuplicate) { // enrolled meanwhile by another request
			stored, faces, err = h.addImage(req, id, in)
		}
	}
	if err != nil {
		return nil, withID(err, id)
	}
	out := personOf(stored)
	out.Status = "success"
	if len(faces) > 0 {
		b := faces[0].Box
		out.BoundingBox = boxOf(b[0], b[1], b[2], b[3])
	}
	out.Image = name
	return out, nil
}

// addImage adds the request's image to the existing person id, as the
// vendor's sample does when it enrols a second photo of someone (the
// document: customer_person_id "allows you to link multiple images of an
// individual"); non-empty fields replace the stored ones, as in update.
// The very photo the person already has is store.ErrDuplicate (a retried
// upload must not add the same face twice); no such person is
// store.ErrNotFound.
func (h *handler) addImage(req *request, id string, in service.FaceInput) (store.Person, []store.Face, error) {
	ctx := req.Context()
	p, err := h.svc.GetPersonByExternalID(ctx, id)
	if err != nil {
		return store.Person{}, nil, err
	}
	had, err := dialect.All(ctx, h.svc.ListFaces, store.ListOptions{PersonID: p.ID})
	if err != nil {
		return store.Person{}, nil, err
	}
	hash := models.SHA256Hex(req.image)
	if slices.ContainsFunc(had, func(f store.Face) bool { return f.PhotoHash == hash }) {
		return store.Person{}, nil, fmt.Errorf("miicloud: photo already enrolled: %w", store.ErrDuplicate)
	}
	faces, err := h.svc.AddFaces(ctx, p.ID, [][]byte{req.image}, in)
	if err != nil {
		return store.Person{}, nil, err
	}
	p, err = h.svc.UpdatePerson(ctx, p.ID, func(p *store.Person) error {
		setFields(p, req)
		return nil
	})
	return p, faces, err
}

// idOf reads customer_person_id from the path or, failing that, the body
// or query; both must agree.
func idOf(req *request) (string, error) {
	path, body := strings.TrimSpace(req.PathValue("id")), req.field("customer_person_id")
	switch {
	case path != "" && body != "" && path != body:
		return "", badRequest(msgIDMismatch)
	case path != "":
		return path, nil
	case body != "":
		return body, nil
	}
	return "", badRequest(msgIDRequired)
}

func (h *handler) lookup(req *request, id string) (store.Person, error) {
	p, err := h.svc.GetPersonByExternalID(req.Context(), id)
	if err != nil {
		return store.Person{}, withID(err, id)
	}
	return p, nil
}

// named is the person the request names (idOf).
func (h *handler) named(req *request) (string, store.Person, error) {
	id, err := idOf(req)
	if err != nil {
		return "", store.Person{}, err
	}
	p, err := h.lookup(req, id)
	return id, p, err
}

// update serves PUT /miicloud/person and PUT /miicloud/person/{id}.
func (h *handler) update(req *request) (any, error) {
	id, p, err := h.named(req)
	if err != nil {
		return nil, err
	}
	var box *BoundingBox
	if req.hasImage {
		release, err := h.front.Acquire(req.Context())
		if err != nil {
			return nil, err
		}
		faces, err := h.svc.AddFaces(req.Context(), p.ID, [][]byte{req.image}, service.FaceInput{
			Selector: face.SelectBiggest, Meta: store.Metadata{metaImage: imageName(req.imageName)},
		})
		release()
		if err != nil {
			return nil, withID(err, id)
		}
		if len(faces) > 0 {
			b := faces[0].Box
			box = boxOf(b[0], b[1], b[2], b[3])
		}
	}
	p, err = h.svc.UpdatePerson(req.Context(), p.ID, func(p *store.Person) error {
		setFields(p, req)
		return nil
	})
	if err != nil {
		return nil, withID(err, id)
	}
	out, err := h.full(req, p)
	if err != nil {
		return nil, err
	}
	out.Status = "success"
	out.BoundingBox = box
	return out, nil
}

// full is the person with its images.
func (h *handler) full(req *request, p store.Person) (Person, error) {
	out := personOf(p)
	out.Images = []Image{}
	faces, err := dialect.All(req.Context(), h.svc.ListFaces, store.ListOptions{PersonID: p.ID})
	if err != nil {
		return Person{}, withID(err, p.ExternalID)
	}
	slices.SortStableFunc(faces, func(a, b store.Face) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	for _, f := range faces {
		name, _ := f.Meta[metaImage].(string)
		if name == "" {
			name = "enroll/face_" + strconv.FormatUint(f.ID, 10) + ".jpg"
		}
		out.Images = append(out.Images, Image{Image: name, Created: f.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z")})
	}
	return out, nil
}

// get serves GET /miicloud/person/{id}.
func (h *handler) get(req *request) (any, error) {
	_, p, err := h.named(req)
	if err != nil {
		return nil, err
	}
	return h.full(req, p)
}

// Deleted is the delete response.
type Deleted struct {
	Status           string `json:"status"`
	CustomerPersonID string `json:"customer_person_id"`
	MiicloudPersonID string `json:"miicloud_person_id"`
}

// delete serves DELETE /miicloud/person/{id}.
func (h *handler) delete(req *request) (any, error) {
	id, p, err := h.named(req)
	if err != nil {
		return nil, err
	}
	if err := h.svc.DeletePerson(req.Context(), p.ID); err != nil {
		return nil, withID(err, id)
	}
	return Deleted{Status: "success", CustomerPersonID: id, MiicloudPersonID: p.ID}, nil
}
