package toonnx

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// flatbuf reads the FlatBuffers tables of a TensorFlow Lite file: just
// enough of the format (tables with vtables, vectors, strings, scalars) for
// FromTFLite, so that no generated schema code is needed. Offsets are
// checked; a read outside the buffer panics with a message FromTFLite
// turns into an error.
type flatbuf []byte

// fbTable is the position of a table in the buffer.
type fbTable uint32

func (b flatbuf) u32(o uint32) uint32 {
	if uint64(o)+4 > uint64(len(b)) {
		panic(fmt.Sprintf("offset %d beyond %d bytes", o, len(b)))
	}
	return binary.LittleEndian.Uint32(b[o:])
}

func (b flatbuf) u16(o uint32) uint16 {
	if uint64(o)+2 > uint64(len(b)) {
		panic(fmt.Sprintf("offset %d beyond %d bytes", o, len(b)))
	}
	return binary.LittleEndian.Uint16(b[o:])
}

func (b flatbuf) root() (fbTable, error) {
	if len(b) < 8 {
		return 0, errors.New("toonnx: tflite: file too short")
	}
	if string(b[4:8]) != "TFL3" {
		return 0, errors.New("toonnx: tflite: not a TensorFlow Lite file (no TFL3 identifier)")
	}
	return fbTable(b.u32(0)), nil
}

// field returns the position of a table's field, or 0 when it is absent.
func (b flatbuf) field(t fbTable, i int) uint32 {
	vt := uint32(int64(t) - int64(int32(b.u32(uint32(t)))))
	if n := b.u16(vt); uint32(4+2*i) >= uint32(n) {
		return 0
	}
	off := b.u16(vt + 4 + 2*uint32(i))
	if off == 0 {
		return 0
	}
	return uint32(t) + uint32(off)
}

func (b flatbuf) int8(t fbTable, i int, def int8) int8 {
	f := b.field(t, i)
	if f == 0 {
		return def
	}
	if int(f) >= len(b) {
		panic(fmt.Sprintf("offset %d beyond %d bytes", f, len(b)))
	}
	return int8(b[f])
}

func (b flatbuf) int32(t fbTable, i int, def int32) int32 {
	if f := b.field(t, i); f != 0 {
		return int32(b.u32(f))
	}
	return def
}

func (b flatbuf) uint32(t fbTable, i int, def uint32) uint32 {
	if f := b.field(t, i); f != 0 {
		return b.u32(f)
	}
	return def
}

// vector returns the position of a vector field's first element and its
// length.
func (b flatbuf) vector(t fbTable, i int, elem uint32) (uint32, uint32) {
	f := b.field(t, i)
	if f == 0 {
		return 0, 0
	}
	v := f + b.u32(f)
	n := b.u32(v)
	if uint64(v)+4+uint64(n)*uint64(elem) > uint64(len(b)) {
		panic(fmt.Sprintf("vector of %d at %d beyond %d bytes", n, v, len(b)))
	}
	return v + 4, n
}

func (b flatbuf) tables(t fbTable, i int) []fbTable {
	start, n := b.vector(t, i, 4)
	out := make([]fbTable, n)
	for k := range out {
		p := start + 4*uint32(k)
		out[k] = fbTable(p + b.u32(p))
	}
	return out
}

// table reads a table field (a union's value).
func (b flatbuf) table(t fbTable, i int) (fbTable, bool) {
	f := b.field(t, i)
	if f == 0 {
		return 0, false
	}
	return fbTable(f + b.u32(f)), true
}

func (b flatbuf) int32s(t fbTable, i int) []int32 {
	start, n := b.vector(t, i, 4)
	out := make([]int32, n)
	for k := range out {
		out[k] = int32(b.u32(start + 4*uint32(k)))
	}
	return out
}

func (b flatbuf) bytes(t fbTable, i int) []byte {
	start, n := b.vector(t, i, 1)
	return b[start : start+n]
}

func (b flatbuf) string(t fbTable, i int) string { return string(b.bytes(t, i)) }
