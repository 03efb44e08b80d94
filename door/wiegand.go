package door

import (
	"errors"
	"fmt"
)

// Wiegand frames: what a reader sends a panel for a card. faced acts as
// the reader, sending the matched person's card number.
//
//   - 26-bit (H10301): even parity over bits 1-12, 8-bit facility code,
//     16-bit card number, odd parity over bits 13-24.
//   - 34-bit: even parity over bits 1-16, 16-bit facility code, 16-bit
//     card number, odd parity over bits 17-32.
//
// Bits are sent most significant first: a 0 as a pulse on D0, a 1 on D1.

// Frame is a Wiegand message, one bool per bit, first bit first.
type Frame []bool

// Format is a Wiegand frame length: 26 or 34.
type Format int

// The supported formats.
const (
	Wiegand26 Format = 26
	Wiegand34 Format = 34
)

// fieldBits is the facility code's width; the card number always takes 16.
func (f Format) fieldBits() (facility int, err error) {
	switch f {
	case Wiegand26:
		return 8, nil
	case Wiegand34:
		return 16, nil
	}
	return 0, fmt.Errorf("wiegand: format %d: want 26 or 34", int(f))
}

// Encode builds the frame for a facility code and card number, refusing
// values the format cannot hold.
func Encode(f Format, facility, card uint32) (Frame, error) {
	fb, err := f.fieldBits()
	if err != nil {
		return nil, err
	}
	if facility >= 1<<fb {
		return nil, fmt.Errorf("wiegand %d: facility code %d exceeds %d", f, facility, 1<<fb-1)
	}
	if card >= 1<<16 {
		return nil, fmt.Errorf("wiegand %d: card number %d exceeds 65535", f, card)
	}
	data := uint64(facility)<<16 | uint64(card)
	n := fb + 16 // data bits
	frame := make(Frame, n+2)
	for i := range n {
		frame[1+i] = data>>(n-1-i)&1 == 1
	}
	half := n / 2
	frame[0] = ones(frame[1:1+half])%2 == 1     // even parity: total of the first half even
	frame[n+1] = ones(frame[1+half:1+n])%2 == 0 // odd parity: total of the second half odd
	return frame, nil
}

// ErrParity is returned by Decode for a frame whose parity bits are wrong.
var ErrParity = errors.New("wiegand: parity error")

// Decode checks a frame's parity and returns its facility code and card
// number: what a panel does with it.
func Decode(frame Frame) (Format, uint32, uint32, error) {
	f := Format(len(frame))
	fb, err := f.fieldBits()
	if err != nil {
		return 0, 0, 0, err
	}
	n := fb + 16
	half := n / 2
	if (ones(frame[0:1+half])%2 != 0) || (ones(frame[1+half:n+2])%2 != 1) {
		return 0, 0, 0, ErrParity
	}
	var data uint64
	for _, b := range frame[1 : 1+n] {
		data <<= 1
		if b {
			data |= 1
		}
	}
	return f, uint32(data >> 16), uint32(data & 0xffff), nil
}

func ones(bits []bool) int {
	n := 0
	for _, b := range bits {
		if b {
			n++
		}
	}
	return n
}
