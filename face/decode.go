package face

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	// golang.org/x/image is the Go team's own codec library (same authors,
	// review and security process as the standard library). We only use its
	// header parsers here, so that WebP and BMP dimensions are known — and
	// bombs refused — before OpenCV allocates anything.
	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"

	"gocv.io/x/gocv"
)

// Errors returned by Decode, wrapped with detail: branch on them with
// errors.Is. Their text is safe to show to an API client.
var (
	// ErrEmpty: no bytes at all.
	ErrEmpty = errors.New("face: decode: empty image")
	// ErrTooLarge: the encoded body is bigger than Limits.MaxBytes.
	ErrTooLarge = errors.New("face: decode: image too large")
	// ErrTooManyPixels: the header declares more than Limits.MaxPixels
	// pixels (a decompression bomb, or just a huge photo), or a side
	// longer than 65535.
	ErrTooManyPixels = errors.New("face: decode: image has too many pixels")
	// ErrTooSmall: a side is shorter than Limits.MinSide.
	ErrTooSmall = errors.New("face: decode: image too small")
	// ErrUnsupportedFormat: not JPEG, PNG, WebP or BMP, or a variant of
	// them that the header parser does not handle (arithmetic-coded JPEG,
	// RLE BMP, animated WebP).
	ErrUnsupportedFormat = errors.New("face: decode: unsupported image format")
	// ErrCorrupt: the magic bytes name a supported format but the data
	// cannot be decoded: truncated, damaged or inconsistent.
	ErrCorrupt = errors.New("face: decode: corrupt image")
)

// Format is the container format of an encoded image, sniffed from its
// magic bytes (never from a file name or Content-Type).
type Format string

// The formats Decode accepts.
const (
	FormatJPEG Format = "jpeg"
	FormatPNG  Format = "png"
	FormatWebP Format = "webp"
	FormatBMP  Format = "bmp"
)

// Limits bounds what Decode accepts. A field that is zero or negative takes
// its default, so the zero Limits is as safe as DefaultLimits(): there is
// deliberately no "unlimited", because an unbounded image makes OpenCV
// either allocate without bound or abort on its own size assertion.
type Limits struct {
	// MaxBytes bounds the encoded size. Callers reading a request body
	// should also cap the read itself (http.MaxBytesReader).
	MaxBytes int64
	// MaxPixels bounds width×height as declared by the header; values
	// above 1<<28 are lowered to it (see hardMaxPixels). Each side is
	// also capped at 65535 (see hardMaxSide).
	MaxPixels int64
	// MinSide is the shortest acceptable side: smaller images cannot hold
	// a detectable face.
	MinSide int
}

const (
	defaultMaxBytes  = 10 << 20
	defaultMaxPixels = 40_000_000
	defaultMinSide   = 16

	// hardMaxPixels stays well below OpenCV's own CV_IO_MAX_IMAGE_PIXELS
	// (1<<30), whose check in imdecode sits outside its try block and so
	// would abort the process, and keeps a 4-channel intermediate buffer
	// under 2 GiB, the int range OpenCV's codecs compute sizes in.
	hardMaxPixels = 1 << 28

	// hardMaxSide bounds each side, whatever the pixel count: OpenCV
	// asserts (aborting the process) on a side over CV_IO_MAX_IMAGE_WIDTH
	// (1<<20) outside its try block, and a 154-byte BMP or a 40-byte WebP
	// header can declare 2,000,000×16, only 32 megapixels. 65535 is the
	// JPEG format's own maximum; no photo we accept needs more.
	hardMaxSide = 65535

	// maxJPEGScans bounds the scans of a progressive JPEG. Real encoders
	// write about ten; thousands of tiny scans make libjpeg redo the whole
	// image each time, a CPU bomb in a few kilobytes.
	maxJPEGScans = 256
)

// DefaultLimits is 10 MiB, 40 megapixels and 16 px per side.
func DefaultLimits() Limits {
	return Limits{MaxBytes: defaultMaxBytes, MaxPixels: defaultMaxPixels, MinSide: defaultMinSide}
}

// withDefaults fills unset fields and applies the hard ceiling.
func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = defaultMaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = defaultMaxPixels
	}
	if l.MaxPixels > hardMaxPixels {
		l.MaxPixels = hardMaxPixels
	}
	if l.MinSide <= 0 {
		l.MinSide = defaultMinSide
	}
	return l
}

// Image is a decoded photo in BGR, 8-bit, 3 channels, orientation already
// applied: Width and Height are the upright size, equal to Mat's columns
// and rows.
type Image struct {
	Mat           gocv.Mat
	Format        Format
	Width, Height int
}

// Close releases the Mat's native memory. It is safe to call twice.
func (im *Image) Close() error {
	if im == nil || im.Mat.Ptr() == nil {
		return nil
	}
	return im.Mat.Close()
}

// Decode turns encoded image bytes into an upright BGR image. It is the
// only way untrusted bytes reach OpenCV, so it checks, in Go and in this
// order, everything OpenCV would otherwise assert on or be hurt by: size,
// format (from magic bytes), the dimensions declared by the header (before
// any pixel is decoded), for JPEG the structure and EXIF orientation, and
// finally that OpenCV produced what the header promised.
//
// JPEGs must be complete: a stream that ends before its EOI marker is
// ErrCorrupt, although libjpeg would return it with the missing part
// painted grey; such a photo would enrol or match a half-grey face.
// Damaged entropy data inside a complete stream is decoded as libjpeg
// decodes it (with a warning on stderr). Truncated PNG, WebP and BMP fail
// inside their decoders, which OpenCV reports as an empty Mat: ErrCorrupt.
//
// OpenCV 4.6 as built by Debian decodes all four formats itself (imgcodecs
// links libjpeg-turbo, libpng and libwebp; BMP is built in), so there is
// no Go fallback decoder.
//
// EXIF orientation is honoured for JPEG only, where cameras put it.
func Decode(data []byte, lim Limits) (*Image, error) {
	lim = lim.withDefaults()
	if len(data) == 0 {
		return nil, ErrEmpty
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	format, err := sniff(data)
	if err != nil {
		return nil, err
	}
	cfg, err := decodeConfig(format, data)
	if err != nil {
		return nil, err
	}
	w, h := cfg.Width, cfg.Height
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: %s header declares %dx%d", ErrCorrupt, format, w, h)
	}
	if w > hardMaxSide || h > hardMaxSide {
		return nil, fmt.Errorf("%w: %dx%d, a side exceeds %d", ErrTooManyPixels, w, h, hardMaxSide)
	}
	if px := int64(w) * int64(h); px > lim.MaxPixels {
		return nil, fmt.Errorf("%w: %dx%d is %d pixels, limit %d", ErrTooManyPixels, w, h, px, lim.MaxPixels)
	}
	if w < lim.MinSide || h < lim.MinSide {
		return nil, fmt.Errorf("%w: %dx%d, each side must be at least %d", ErrTooSmall, w, h, lim.MinSide)
	}

	orientation := 1
	switch format {
	case FormatJPEG:
		info := scanJPEG(data)
		switch {
		case info.sofW != w || info.sofH != h:
			// Two parsers disagreeing on the frame size is the one case
			// where libjpeg could allocate something we did not check.
			return nil, fmt.Errorf("%w: jpeg: frame header %dx%d does not match %dx%d", ErrCorrupt, info.sofW, info.sofH, w, h)
		case info.scans > maxJPEGScans:
			return nil, fmt.Errorf("%w: jpeg: %d scans, limit %d", ErrCorrupt, info.scans, maxJPEGScans)
		case !info.complete:
			return nil, fmt.Errorf("%w: jpeg: truncated, no end-of-image marker", ErrCorrupt)
		}
		orientation = info.orientation
	case FormatWebP:
		// The spec wants the image chunk (or VP8X) first. Go's parser skips
		// unknown chunks, libwebp reads them as a raw bitstream header: a
		// leading chunk could show each parser a different size.
		if len(data) < 16 {
			return nil, fmt.Errorf("%w: webp: no chunk", ErrCorrupt)
		}
		if first := string(data[12:16]); first != "VP8 " && first != "VP8L" && first != "VP8X" {
			return nil, fmt.Errorf("%w: webp: first chunk %q is not VP8, VP8L or VP8X", ErrCorrupt, first)
		}
		// OpenCV 4.6 refuses animations inside its header parser, but as an
		// empty result, which would read as "corrupt".
		if isAnimatedWebP(data) {
			return nil, fmt.Errorf("%w: animated webp", ErrUnsupportedFormat)
		}
	}

	// IMReadColor yields 8-bit BGR whatever the source (grey, 16-bit,
	// palette, alpha, CMYK). IMReadIgnoreOrientation because we apply the
	// orientation ourselves and need to know the final size in advance.
	m, err := gocv.IMDecode(data, gocv.IMReadColor|gocv.IMReadIgnoreOrientation)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, format, err)
	}
	if m.Empty() {
		m.Close()
		return nil, fmt.Errorf("%w: %s: decoder failed", ErrCorrupt, format)
	}
	if m.Type() != gocv.MatTypeCV8UC3 || m.Cols() != w || m.Rows() != h {
		err := fmt.Errorf("%w: %s: decoded %dx%d type %v, header says %dx%d", ErrCorrupt, format, m.Cols(), m.Rows(), m.Type(), w, h)
		m.Close()
		return nil, err
	}
	m = applyOrientation(m, orientation)
	if orientation >= 5 {
		w, h = h, w
	}
	if m.Cols() != w || m.Rows() != h {
		// Cannot happen with a correct applyOrientation; checked because
		// callers index the Mat by Width and Height.
		m.Close()
		return nil, fmt.Errorf("face: decode: orientation %d produced %dx%d, want %dx%d", orientation, m.Cols(), m.Rows(), w, h)
	}
	return &Image{Mat: m, Format: format, Width: w, Height: h}, nil
}

// sniff names the format from its magic bytes. Each signature is one that
// OpenCV's own format detection maps to the same decoder, so what we
// validate is what OpenCV decodes.
func sniff(b []byte) (Format, error) {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return FormatJPEG, nil
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return FormatPNG, nil
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return FormatWebP, nil
	case bytes.HasPrefix(b, []byte("BM")):
		return FormatBMP, nil
	}
	// Name the common formats we refuse, for a helpful message.
	what := "unrecognised data"
	switch {
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		what = "gif"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		what = "tiff"
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		what = "iso media (heic/avif)"
	}
	return "", fmt.Errorf("%w: %s (accepted: jpeg, png, webp, bmp)", ErrUnsupportedFormat, what)
}

// decodeConfig reads the dimensions from the header without decoding
// pixels, using Go's parsers, which are memory-safe on hostile input.
func decodeConfig(f Format, data []byte) (image.Config, error) {
	r := bytes.NewReader(data)
	var (
		cfg image.Config
		err error
	)
	switch f {
	case FormatJPEG:
		cfg, err = jpeg.DecodeConfig(r)
	case FormatPNG:
		cfg, err = png.DecodeConfig(r)
	case FormatWebP:
		cfg, err = webp.DecodeConfig(r)
	case FormatBMP:
		cfg, err = bmp.DecodeConfig(r)
	}
	if err == nil {
		return cfg, nil
	}
	var (
		jpegUnsupported jpeg.UnsupportedError
		pngUnsupported  png.UnsupportedError
	)
	if errors.As(err, &jpegUnsupported) || errors.As(err, &pngUnsupported) || errors.Is(err, bmp.ErrUnsupported) {
		return image.Config{}, fmt.Errorf("%w: %s variant: %v", ErrUnsupportedFormat, f, err)
	}
	return image.Config{}, fmt.Errorf("%w: %s header: %v", ErrCorrupt, f, err)
}

// isAnimatedWebP reports the animation flag of a VP8X header.
func isAnimatedWebP(b []byte) bool {
	const animationFlag = 0x02
	return len(b) >= 21 && string(b[12:16]) == "VP8X" && b[20]&animationFlag != 0
}

// applyOrientation turns a Mat stored with EXIF orientation o upright,
// consuming m. The transforms are those of OpenCV's own ExifTransform, so
// the result matches what IMDecode without IMReadIgnoreOrientation gives.
func applyOrientation(m gocv.Mat, o int) gocv.Mat {
	if o < 2 || o > 8 {
		return m
	}
	dst := gocv.NewMat()
	switch o {
	case 2: // mirrored left-right
		gocv.Flip(m, &dst, 1)
	case 3: // upside down
		gocv.Rotate(m, &dst, gocv.Rotate180Clockwise)
	case 4: // mirrored top-bottom
		gocv.Flip(m, &dst, 0)
	case 5: // mirrored along the main diagonal
		gocv.Transpose(m, &dst)
	case 6: // camera turned clockwise: rotate back
		gocv.Rotate(m, &dst, gocv.Rotate90Clockwise)
	case 7: // mirrored along the anti-diagonal
		gocv.Transpose(m, &dst)
		gocv.Flip(dst, &dst, -1)
	case 8:
		gocv.Rotate(m, &dst, gocv.Rotate90CounterClockwise)
	}
	m.Close()
	return dst
}

// jpegInfo is what a structural pass over a JPEG stream finds.
type jpegInfo struct {
	orientation int  // EXIF orientation 1..8; 1 when absent or invalid
	sofW, sofH  int  // size in the first frame header; 0 when none
	scans       int  // SOS markers seen
	complete    bool // the stream reaches an EOI marker
}

// scanJPEG walks the marker segments of a JPEG without decoding it: it
// skips segments by their lengths and entropy-coded data by its byte
// stuffing, so it is linear in len(b) and never reads out of bounds. Like
// libjpeg it tolerates stray bytes between segments; anything it cannot
// follow leaves complete false.
func scanJPEG(b []byte) jpegInfo {
	info := jpegInfo{orientation: 1}
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return info
	}
	sawExif := false
	for i := 2; i < len(b); {
		if b[i] != 0xFF {
			i++ // stray byte; libjpeg warns and skips too
			continue
		}
		for i < len(b) && b[i] == 0xFF {
			i++ // fill bytes may precede any marker
		}
		if i >= len(b) {
			break
		}
		marker := b[i]
		i++
		switch {
		case marker == 0xD9: // EOI
			info.complete = true
			return info
		case marker == 0x00, marker == 0x01, marker == 0xD8, marker >= 0xD0 && marker <= 0xD7:
			continue // no length field: stuffed zero, TEM, SOI, RSTn
		}
		if i+2 > len(b) {
			break
		}
		n := int(b[i])<<8 | int(b[i+1])
		if n < 2 || n > len(b)-i {
			break // truncated (or lying) segment
		}
		seg := b[i+2 : i+n]
		i += n
		switch {
		case marker == 0xE1 && info.scans == 0 && !sawExif && bytes.HasPrefix(seg, exifHeader):
			// Only the first Exif APP1, and only before the first scan,
			// which is where libjpeg stops reading markers.
			sawExif = true
			info.orientation = exifOrientation(seg[len(exifHeader):])
		case isSOF(marker) && info.scans == 0 && info.sofW == 0 && len(seg) >= 5:
			info.sofH = int(seg[1])<<8 | int(seg[2])
			info.sofW = int(seg[3])<<8 | int(seg[4])
		case marker == 0xDA: // SOS: the entropy-coded data follows
			info.scans++
			i = skipEntropyData(b, i)
		}
	}
	return info
}

// isSOF reports the start-of-frame markers C0..CF, less DHT (C4), JPG (C8)
// and DAC (CC), which share the range.
func isSOF(m byte) bool {
	return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC
}

// skipEntropyData returns the index of the 0xFF starting the first marker
// at or after i, or len(b). Inside entropy-coded data 0xFF is followed by a
// stuffed 0x00, a restart marker, or more 0xFF fill.
func skipEntropyData(b []byte, i int) int {
	for ; i+1 < len(b); i++ {
		if b[i] != 0xFF {
			continue
		}
		next := b[i+1]
		if next == 0x00 || next == 0xFF || (next >= 0xD0 && next <= 0xD7) {
			continue
		}
		return i
	}
	return len(b)
}

var exifHeader = []byte("Exif\x00\x00")

// exifOrientation returns the Orientation tag (0x0112) of IFD0 in a TIFF
// structure (an Exif APP1 payload after "Exif\0\0"), or 1 when it is
// missing or malformed. Offsets are attacker-controlled 32-bit values:
// every read is checked against len(t) in 64-bit arithmetic.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	size := uint64(len(t))
	ifd := uint64(bo.Uint32(t[4:8]))
	if ifd+2 > size {
		return 1
	}
	count := uint64(bo.Uint16(t[ifd:]))
	for k := uint64(0); k < count; k++ {
		e := ifd + 2 + 12*k
		if e+12 > size {
			return 1
		}
		entry := t[e : e+12]
		if bo.Uint16(entry[0:2]) != 0x0112 {
			continue
		}
		if bo.Uint32(entry[4:8]) != 1 {
			return 1
		}
		var v uint32
		switch bo.Uint16(entry[2:4]) {
		case 3: // SHORT, the type the standard prescribes
			v = uint32(bo.Uint16(entry[8:10]))
		case 4: // LONG, written by a few tools
			v = bo.Uint32(entry[8:12])
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return int(v)
	}
	return 1
}

// EncodeJPEG compresses an 8-bit BGR or grey Mat, e.g. for snapshots and
// face crops. quality is 1..100. The Mat is checked first: imencode
// asserts (and so aborts the process) when encoding fails.
func EncodeJPEG(m gocv.Mat, quality int) ([]byte, error) {
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("face: encode jpeg: quality %d outside 1..100", quality)
	}
	if m.Ptr() == nil || m.Empty() {
		return nil, errors.New("face: encode jpeg: empty mat")
	}
	if t := m.Type(); t != gocv.MatTypeCV8UC3 && t != gocv.MatTypeCV8UC1 {
		return nil, fmt.Errorf("face: encode jpeg: mat type %v, want 8-bit BGR or grey", t)
	}
	// libjpeg's limit; beyond it the encoder fails and imencode asserts.
	const maxSide = 65500
	if len(m.Size()) != 2 || m.Cols() > maxSide || m.Rows() > maxSide {
		return nil, fmt.Errorf("face: encode jpeg: %dx%d exceeds %d per side", m.Cols(), m.Rows(), maxSide)
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, quality})
	if err != nil {
		return nil, fmt.Errorf("face: encode jpeg: %w", err)
	}
	defer buf.Close()
	// GetBytes aliases native memory freed by Close: copy it out.
	return bytes.Clone(buf.GetBytes()), nil
}
