package store

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/bbolt"
)

// This file holds how a face is stored and the transaction-level helpers
// every face-touching operation shares (enrol, delete, move, gallery
// deletion, retention), so each keeps all of a face's indexes in step.
//
// Face record layout (after the format byte):
//
//	person id, galleries (count + strings), box (4 × f32), photo hash
//	(length byte 0 or 32 + raw digest), quality f32, camera id, created
//	varint ns, flags byte (bit 0: has image), metadata JSON (length-prefixed).
//
// The vector lives in the embeddings bucket under the same key:
//
//	format byte, embedder id (length-prefixed), dim × little-endian f32.
//
// Splitting them keeps face records ~100 bytes, so listing faces never
// pages in vectors, and keeps the vectors one raw block each.

const flagHasImage = 1 << 0

func encodeFace(f *Face) ([]byte, error) {
	meta, err := encodeMeta(f.Meta)
	if err != nil {
		return nil, err
	}
	var hash []byte
	if f.PhotoHash != "" {
		if hash, err = hex.DecodeString(f.PhotoHash); err != nil || len(hash) != 32 {
			return nil, fmt.Errorf("%w: photo hash %q", ErrInvalid, f.PhotoHash)
		}
	}
	e := encoder{b: make([]byte, 0, 80+len(f.PersonID)+len(f.CameraID)+len(meta))}
	e.byte1(recordFormat)
	e.str(f.PersonID)
	e.strs(f.Galleries)
	e.box(f.Box)
	e.bytes(hash)
	e.f32(f.Quality)
	e.str(f.CameraID)
	e.time(f.CreatedAt)
	var flags byte
	if f.HasImage {
		flags |= flagHasImage
	}
	e.byte1(flags)
	e.bytes(meta)
	return e.b, nil
}

func decodeFace(key, v []byte) (Face, error) { return decodeFaceIn(key, v, nil) }

// decodeFaceIn decodes with strings interned in in (nil: plain copies).
func decodeFaceIn(key, v []byte, in interner) (Face, error) {
	f := Face{ID: getU64(key)}
	d := decoder{b: v, in: in}
	d.format()
	f.PersonID = d.str()
	f.Galleries = d.strs()
	f.Box = d.box()
	if h := d.fixed(d.length()); len(h) > 0 {
		f.PhotoHash = hex.EncodeToString(h)
	}
	f.Quality = d.f32()
	f.CameraID = d.str()
	f.CreatedAt = d.time()
	f.HasImage = d.byte1()&flagHasImage != 0
	meta := d.fixed(d.length())
	if d.err != nil {
		return Face{}, fmt.Errorf("%w: face %d: %v", ErrCorrupt, f.ID, d.err)
	}
	var err error
	if f.Meta, err = decodeMeta(meta); err != nil {
		return Face{}, fmt.Errorf("face %d: %w", f.ID, err)
	}
	return f, nil
}

func encodeEmbedding(embedder string, vec []float32) []byte {
	e := encoder{b: make([]byte, 0, 2+len(embedder)+4*len(vec))}
	e.byte1(recordFormat)
	e.str(embedder)
	for _, x := range vec {
		e.f32(x)
	}
	return e.b
}

// decodeEmbedding returns the embedder id and the vector's raw bytes; the
// caller copies them out with floatsInto only if it wants the vector.
func decodeEmbedding(v []byte) (embedder string, raw []byte, err error) {
	return decodeEmbeddingIn(v, nil)
}

func decodeEmbeddingIn(v []byte, in interner) (embedder string, raw []byte, err error) {
	d := decoder{b: v, in: in}
	d.format()
	embedder = d.str()
	if d.err != nil || len(d.b)%4 != 0 || len(d.b) == 0 {
		return "", nil, fmt.Errorf("%w: embedding of %d bytes", ErrCorrupt, len(v))
	}
	return embedder, d.b, nil
}

func floatsInto(dst []float32, raw []byte) []float32 {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return dst
}

// loadFace reads a face and, if withVector, its embedding; the embedder id
// always comes along since callers need it to know what the face is for.
func loadFace(tx *bbolt.Tx, id uint64, withVector bool) (Face, error) {
	key := u64(id)
	v := tx.Bucket(bucketFaces).Get(key)
	if v == nil {
		return Face{}, fmt.Errorf("face %d: %w", id, ErrNotFound)
	}
	f, err := decodeFace(key, v)
	if err != nil {
		return Face{}, err
	}
	return f, attachEmbedding(tx, &f, withVector)
}

func attachEmbedding(tx *bbolt.Tx, f *Face, withVector bool) error {
	ev := tx.Bucket(bucketEmbeddings).Get(u64(f.ID))
	if ev == nil {
		return fmt.Errorf("%w: face %d has no embedding", ErrCorrupt, f.ID)
	}
	embedder, raw, err := decodeEmbedding(ev)
	if err != nil {
		return fmt.Errorf("face %d: %w", f.ID, err)
	}
	f.EmbedderID = embedder
	if withVector {
		f.Embedding = floatsInto(make([]float32, len(raw)/4), raw)
	}
	return nil
}

// normGalleries validates names and drops repeats, keeping the caller's
// order.
func normGalleries(gs []string) ([]string, error) {
	if len(gs) == 0 {
		return nil, fmt.Errorf("%w: a face must belong to at least one gallery", ErrInvalid)
	}
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		if err := checkGalleryName(g); err != nil {
			return nil, err
		}
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out, nil
}

// prepareFaces validates new faces before the transaction starts, so the
// single writer is never held while we check floats, and returns private
// copies in their stored shape.
func (db *DB) prepareFaces(in []NewFace) ([]NewFace, error) {
	out := make([]NewFace, len(in))
	now := db.now()
	for i, nf := range in {
		f := nf.Face
		if err := func() (err error) {
			if n := len(f.Embedding); n == 0 || n > maxEmbeddingDim {
				return fmt.Errorf("%w: embedding has %d values, want 1..%d", ErrInvalid, n, maxEmbeddingDim)
			}
			if !finite(f.Embedding...) {
				return fmt.Errorf("%w: embedding has NaN or Inf", ErrInvalid)
			}
			if f.EmbedderID == "" {
				return fmt.Errorf("%w: embedder id is empty", ErrInvalid)
			}
			if err := checkIDText("embedder id", f.EmbedderID, maxEmbedderLen); err != nil {
				return err
			}
			if !finite(f.Box[:]...) || !finite(f.Quality) {
				return fmt.Errorf("%w: box or quality has NaN or Inf", ErrInvalid)
			}
			if err := checkIDText("camera id", f.CameraID, maxIDLen); err != nil {
				return err
			}
			if len(nf.Image) > MaxImageBytes {
				return fmt.Errorf("%w: image is %d bytes, limit %d", ErrInvalid, len(nf.Image), MaxImageBytes)
			}
			if f.Galleries, err = normGalleries(f.Galleries); err != nil {
				return err
			}
			if f.PhotoHash, err = normPhotoHash(f.PhotoHash); err != nil {
				return err
			}
			f.Meta, err = normMeta(f.Meta)
			return err
		}(); err != nil {
			return nil, fmt.Errorf("face %d of %d: %w", i+1, len(in), err)
		}
		f.Embedding = slices.Clone(f.Embedding)
		f.CreatedAt = normTime(f.CreatedAt)
		if f.CreatedAt.IsZero() {
			f.CreatedAt = now
		}
		f.ID, f.PersonID, f.HasImage = 0, "", len(nf.Image) > 0
		out[i] = NewFace{Face: f, Image: nf.Image}
	}
	return out, nil
}

func galleryExists(tx *bbolt.Tx, name string) error {
	if tx.Bucket(bucketGalleries).Get([]byte(name)) == nil {
		return fmt.Errorf("gallery %q: %w", name, ErrNotFound)
	}
	return nil
}

// insertFaces writes prepared faces for personID, which the caller has
// checked exists. Ids come from the faces bucket's sequence, which bbolt
// persists with the commit: they only grow, and a rolled-back transaction
// gives its ids back rather than leaving holes that look like deletes.
func insertFaces(tx *bbolt.Tx, personID string, prepared []NewFace) ([]Face, error) {
	faces := tx.Bucket(bucketFaces)
	embs := tx.Bucket(bucketEmbeddings)
	images := tx.Bucket(bucketFaceImages)
	faces.FillPercent, embs.FillPercent, images.FillPercent = appendFill, appendFill, appendFill
	created := make([]Face, 0, len(prepared))
	for _, nf := range prepared {
		f := nf.Face
		for _, g := range f.Galleries {
			if err := galleryExists(tx, g); err != nil {
				return nil, err
			}
		}
		id, err := faces.NextSequence()
		if err != nil {
			return nil, err
		}
		f.ID, f.PersonID = id, personID
		rec, err := encodeFace(&f)
		if err != nil {
			return nil, err
		}
		key := u64(id)
		if err := faces.Put(key, rec); err != nil {
			return nil, err
		}
		if err := embs.Put(key, encodeEmbedding(f.EmbedderID, f.Embedding)); err != nil {
			return nil, err
		}
		if f.HasImage {
			if err := images.Put(key, nf.Image); err != nil {
				return nil, err
			}
		}
		if err := addFaceIndexes(tx, &f); err != nil {
			return nil, err
		}
		created = append(created, f)
	}
	return created, nil
}

// addFaceIndexes and dropFaceIndexes maintain every index that names a
// face: person → faces, gallery → faces, gallery → persons (with a count of
// the person's faces in the gallery, so the entry goes when the last face
// does) and photo hash → faces.
func addFaceIndexes(tx *bbolt.Tx, f *Face) error {
	key := u64(f.ID)
	if err := tx.Bucket(bucketFacesByPerson).Put(indexKey(f.PersonID, key), nil); err != nil {
		return err
	}
	for _, g := range f.Galleries {
		if err := tx.Bucket(bucketFacesByGallery).Put(indexKey(g, key), nil); err != nil {
			return err
		}
		if err := addGalleryPerson(tx, g, f.PersonID, 1); err != nil {
			return err
		}
	}
	if f.PhotoHash != "" {
		h, _ := hex.DecodeString(f.PhotoHash)
		if err := tx.Bucket(bucketFacesByPhoto).Put(append(h, key...), nil); err != nil {
			return err
		}
	}
	return nil
}

func dropFaceIndexes(tx *bbolt.Tx, f *Face) error {
	key := u64(f.ID)
	if err := tx.Bucket(bucketFacesByPerson).Delete(indexKey(f.PersonID, key)); err != nil {
		return err
	}
	for _, g := range f.Galleries {
		if err := tx.Bucket(bucketFacesByGallery).Delete(indexKey(g, key)); err != nil {
			return err
		}
		if err := addGalleryPerson(tx, g, f.PersonID, -1); err != nil {
			return err
		}
	}
	if f.PhotoHash != "" {
		h, _ := hex.DecodeString(f.PhotoHash)
		if err := tx.Bucket(bucketFacesByPhoto).Delete(append(h, key...)); err != nil {
			return err
		}
	}
	return nil
}

// addGalleryPerson adjusts how many of person's faces are in gallery.
func addGalleryPerson(tx *bbolt.Tx, gallery, person string, delta int) error {
	b := tx.Bucket(bucketPersonsByGallery)
	k := indexKey(gallery, []byte(person))
	var n int
	if v := b.Get(k); len(v) == 4 {
		n = int(binary.BigEndian.Uint32(v))
	}
	n += delta
	switch {
	case n < 0:
		return fmt.Errorf("%w: gallery %q person %q face count below zero", ErrCorrupt, gallery, person)
	case n == 0:
		return b.Delete(k)
	}
	return b.Put(k, binary.BigEndian.AppendUint32(nil, uint32(n)))
}

// deleteFace removes a face with its vector, image and index entries.
func deleteFace(tx *bbolt.Tx, id uint64) error {
	key := u64(id)
	v := tx.Bucket(bucketFaces).Get(key)
	if v == nil {
		return fmt.Errorf("face %d: %w", id, ErrNotFound)
	}
	f, err := decodeFace(key, v)
	if err != nil {
		return err
	}
	if err := dropFaceIndexes(tx, &f); err != nil {
		return err
	}
	for _, b := range [][]byte{bucketFaces, bucketEmbeddings, bucketFaceImages} {
		if err := tx.Bucket(b).Delete(key); err != nil {
			return err
		}
	}
	return nil
}

// replaceFace rewrites a face record and moves its index entries.
func replaceFace(tx *bbolt.Tx, old, f *Face) error {
	rec, err := encodeFace(f)
	if err != nil {
		return err
	}
	if err := dropFaceIndexes(tx, old); err != nil {
		return err
	}
	if err := addFaceIndexes(tx, f); err != nil {
		return err
	}
	return tx.Bucket(bucketFaces).Put(u64(f.ID), rec)
}
