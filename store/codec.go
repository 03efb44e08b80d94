package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// The hot records (faces, embeddings, events, outbox messages) are encoded
// by hand: a face record is read for every face at start-up, and a compact
// fixed layout decodes an order of magnitude faster than JSON and takes a
// fraction of the space. Every binary record starts with a format byte so a
// later schema can tell its own records from ours. Free-form metadata stays
// JSON inside the record: it is opaque to the store and usually empty.

// recordFormat is the first byte of every binary record written by this
// schema.
const recordFormat = 1

// encoder appends to a byte slice; it cannot fail.
type encoder struct{ b []byte }

func (e *encoder) byte1(c byte)     { e.b = append(e.b, c) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) f32(f float32)    { e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(f)) }
func (e *encoder) raw(p []byte)     { e.b = append(e.b, p...) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) box(b [4]float32) { e.f32(b[0]); e.f32(b[1]); e.f32(b[2]); e.f32(b[3]) }
func (e *encoder) time(t time.Time) { e.varint(unixNano(t)) }
func (e *encoder) strs(ss []string) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

var errShort = errors.New("record truncated")

// decoder reads what encoder wrote. The first failure sticks and every later
// read returns a zero value, so a decode function checks err once at the end,
// the way bufio.Scanner reports errors.
type decoder struct {
	b   []byte
	err error
	// in, when set, interns strings (see interner).
	in interner
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) fixed(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.fail(errShort)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) byte1() byte {
	p := d.fixed(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) length() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return 0
	}
	return int(n)
}

func (d *decoder) f32() float32 {
	p := d.fixed(4)
	if p == nil {
		return 0
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(p))
}

// str copies: bbolt values point into the mmap and die with the
// transaction.
func (d *decoder) str() string {
	p := d.fixed(d.length())
	if d.in != nil {
		return d.in.str(p)
	}
	return string(p)
}

// interner hands out one string per distinct value. Bulk reads see the same
// person ids, gallery names, camera and embedder ids over and over; sharing
// them turns most of a face's allocations into map lookups (which do not
// allocate for a []byte key converted in the index expression).
type interner map[string]string

func (in interner) str(p []byte) string {
	if s, ok := in[string(p)]; ok {
		return s
	}
	s := string(p)
	in[s] = s
	return s
}

func (d *decoder) box() (b [4]float32) {
	for i := range b {
		b[i] = d.f32()
	}
	return b
}

func (d *decoder) time() time.Time { return fromUnixNano(d.varint()) }

func (d *decoder) strs() []string {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each string takes at least one byte
		d.fail(errShort)
		return nil
	}
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

func (d *decoder) format() {
	if f := d.byte1(); d.err == nil && f != recordFormat {
		d.fail(fmt.Errorf("record format %d, want %d", f, recordFormat))
	}
}

// Times are stored as Unix nanoseconds, which covers 1678-2262 and keeps
// them sortable as keys; the zero time is stored as 0 and comes back zero.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// normTime is what a time looks like after a round trip through the store,
// so what a write returns equals what a later read returns.
func normTime(t time.Time) time.Time { return fromUnixNano(unixNano(t)) }

// u64 is the 8-byte big-endian key of a face, event or outbox sequence:
// big-endian so bbolt's byte order is numeric order.
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

func getU64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// indexKey is prefix NUL suffix. Every string used as a prefix (ids,
// gallery names, external ids) is validated to contain no control
// characters, so NUL cannot occur inside it and "ab" never shares a prefix
// with "ab\x00...".
func indexKey(prefix string, suffix []byte) []byte {
	k := make([]byte, 0, len(prefix)+1+len(suffix))
	k = append(k, prefix...)
	k = append(k, 0)
	return append(k, suffix...)
}

func indexPrefix(prefix string) []byte { return indexKey(prefix, nil) }

// maxMetaBytes bounds free-form metadata, which is stored inline with the
// record it belongs to and decoded with it.
const maxMetaBytes = 64 << 10

// MaxMetaDepth bounds how deeply metadata objects and arrays nest (the
// top-level object is depth 1). 64 KB of "[[[[..." is 32 000 levels, which
// every reader of the record (vendor dialects, the fleet backend, a
// browser) would have to recurse through; real metadata is a few levels.
const MaxMetaDepth = 16

func encodeMeta(m Metadata) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrInvalid, err)
	}
	if len(b) > maxMetaBytes {
		return nil, fmt.Errorf("%w: metadata is %d bytes encoded, limit %d", ErrInvalid, len(b), maxMetaBytes)
	}
	if d := jsonDepth(b); d > MaxMetaDepth {
		return nil, fmt.Errorf("%w: metadata nests objects and arrays %d deep, limit %d", ErrInvalid, d, MaxMetaDepth)
	}
	return b, nil
}

// jsonDepth is the deepest nesting of objects and arrays in the JSON
// text b (valid, as json.Marshal wrote it). It reads the encoding rather
// than the Go value, so typed values ([]string, structs) count the same.
func jsonDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			if c == '\\' {
				i++ // skip the escaped character
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

func decodeMeta(b []byte) (Metadata, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	return m, nil
}

// normMeta is metadata after a round trip: JSON turns every number into
// float64 and an empty map into nil.
func normMeta(m Metadata) (Metadata, error) {
	b, err := encodeMeta(m)
	if err != nil {
		return nil, err
	}
	return decodeMeta(b)
}
