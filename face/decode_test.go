package face

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp" // also registers webp with image.DecodeConfig

	"github.com/facedhq/faced/internal/testenv"
	"gocv.io/x/gocv"
)

// decodeErrors are the sentinels every Decode error must match one of.
var decodeErrors = []error{ErrEmpty, ErrTooLarge, ErrTooManyPixels, ErrTooSmall, ErrUnsupportedFormat, ErrCorrupt}

// mustDecode decodes with the default limits and checks the invariants
// every successful Decode must satisfy.
func mustDecode(t *testing.T, data []byte) *Image {
	t.Helper()
	im, err := Decode(data, DefaultLimits())
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	t.Cleanup(func() { im.Close() })
	checkImage(t, im)
	return im
}

func checkImage(t testing.TB, im *Image) {
	t.Helper()
	m := im.Mat
	if m.Empty() || m.Type() != gocv.MatTypeCV8UC3 || m.Channels() != 3 {
		t.Fatalf("Mat empty=%v type=%v, want 8UC3", m.Empty(), m.Type())
	}
	if m.Cols() != im.Width || m.Rows() != im.Height {
		t.Fatalf("Mat is %dx%d, Image says %dx%d", m.Cols(), m.Rows(), im.Width, im.Height)
	}
}

// matBGR returns the pixels of an 8UC3 Mat, row-major BGR.
func matBGR(t *testing.T, m gocv.Mat) []byte {
	t.Helper()
	if !m.IsContinuous() {
		m = m.Clone()
		defer m.Close()
	}
	return m.ToBytes()
}

// imageBGR returns img's pixels in the layout of matBGR.
func imageBGR(img image.Image) []byte {
	b := img.Bounds()
	out := make([]byte, 0, b.Dx()*b.Dy()*3)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			out = append(out, c.B, c.G, c.R)
		}
	}
	return out
}

func TestDecodeRealPhotos(t *testing.T) {
	var files []string
	for _, dir := range []string{"deepface", "antispoof"} {
		m, err := filepath.Glob(filepath.Join(testenv.DataDir(t), dir, "*.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 60 {
		t.Fatalf("found %d photos, want the shared set", len(files))
	}
	formats := map[Format]int{}
	for _, f := range files {
		rel := filepath.Join(filepath.Base(filepath.Dir(f)), filepath.Base(f))
		t.Run(rel, func(t *testing.T) {
			data := testenv.ReadPhoto(t, rel)
			// The independent expectation: Go's registry-based sniffing
			// and header parsing (one file, img47.jpg, is really a WebP).
			cfg, name, err := image.DecodeConfig(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			im := mustDecode(t, data)
			if string(im.Format) != name {
				t.Errorf("format %s, want %s", im.Format, name)
			}
			// OpenCV's own EXIF handling (the antispoof photos carry
			// orientation 6) gives the upright size and pixels.
			native, err := gocv.IMDecode(data, gocv.IMReadColor)
			if err != nil {
				t.Fatal(err)
			}
			defer native.Close()
			w, h := native.Cols(), native.Rows()
			if !(w == cfg.Width && h == cfg.Height) && !(w == cfg.Height && h == cfg.Width) {
				t.Fatalf("OpenCV decodes %dx%d, header says %dx%d", w, h, cfg.Width, cfg.Height)
			}
			if im.Width != w || im.Height != h {
				t.Fatalf("got %dx%d, want %dx%d (header %dx%d)", im.Width, im.Height, w, h, cfg.Width, cfg.Height)
			}
			if !bytes.Equal(matBGR(t, im.Mat), matBGR(t, native)) {
				t.Error("pixels differ from OpenCV's own decode")
			}
			formats[im.Format]++
		})
	}
	t.Logf("decoded: %v", formats)
}

// lossless re-encodes a small real photo losslessly.
func lossless(t testing.TB, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(testenv.ReadPhoto(t, "deepface/img12.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := enc(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodePNG(buf *bytes.Buffer, img image.Image) error { return png.Encode(buf, img) }
func encodeBMP(buf *bytes.Buffer, img image.Image) error { return bmp.Encode(buf, img) }

// TestDecodeLosslessFormats checks OpenCV's PNG, BMP and WebP (lossless)
// decoding pixel for pixel against Go's decoders of the same bytes.
func TestDecodeLosslessFormats(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		format Format
		goDec  func([]byte) (image.Image, error)
	}{
		{"png", lossless(t, encodePNG), FormatPNG, func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }},
		{"bmp", lossless(t, encodeBMP), FormatBMP, func(b []byte) (image.Image, error) { return bmp.Decode(bytes.NewReader(b)) }},
		{"webp-lossless", quadrantWebP(48, 32), FormatWebP, func(b []byte) (image.Image, error) { return webp.Decode(bytes.NewReader(b)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := tt.goDec(tt.data)
			if err != nil {
				t.Fatalf("Go decoder: %v", err)
			}
			im := mustDecode(t, tt.data)
			b := want.Bounds()
			if im.Format != tt.format || im.Width != b.Dx() || im.Height != b.Dy() {
				t.Fatalf("got %s %dx%d, want %s %dx%d", im.Format, im.Width, im.Height, tt.format, b.Dx(), b.Dy())
			}
			if !bytes.Equal(matBGR(t, im.Mat), imageBGR(want)) {
				t.Error("pixels differ from Go's decoder")
			}
		})
	}
}

// bitWriter packs bits least-significant first, as VP8L reads them.
type bitWriter struct {
	buf  []byte
	nbit uint
}

func (w *bitWriter) write(v uint32, n uint) {
	for i := uint(0); i < n; i++ {
		if w.nbit%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		w.buf[len(w.buf)-1] |= byte(v>>i&1) << (w.nbit % 8)
		w.nbit++
	}
}

// simpleCode writes a VP8L "simple" prefix code of one or two 8-bit
// symbols (in increasing order, so both decoders assign code 0 to the
// first).
func (w *bitWriter) simpleCode(symbols ...uint32) {
	w.write(1, 1)                      // simple code
	w.write(uint32(len(symbols)-1), 1) // num_symbols - 1
	w.write(1, 1)                      // is_first_8bits
	for _, s := range symbols {
		w.write(s, 8)
	}
}

// webpContainer wraps a VP8L bitstream in a RIFF/WEBP container.
func webpContainer(vp8l []byte) []byte {
	if len(vp8l)%2 == 1 {
		vp8l = append(vp8l, 0) // RIFF chunks are padded to even length
	}
	var b []byte
	b = append(b, "RIFF"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(4+8+len(vp8l)))
	b = append(b, "WEBPVP8L"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vp8l)))
	return append(b, vp8l...)
}

// vp8lStart writes the VP8L header of a w×h image without transforms,
// colour cache or meta prefix codes.
func vp8lStart(w, h int) *bitWriter {
	bw := &bitWriter{}
	bw.write(0x2f, 8) // signature
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	bw.write(0, 1) // alpha_is_used
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no color cache
	bw.write(0, 1) // no meta prefix codes
	return bw
}

// quadrantWebP builds, bit by bit, a lossless WebP (VP8L) whose top-left
// quadrant is (R,G,B)=(40,255,200) and the rest (40,0,200): green has a
// two-symbol prefix code (one bit per pixel), the other channels a single
// symbol (zero bits). x/image has no WebP encoder; the test checks these
// bytes with its decoder before trusting them.
func quadrantWebP(w, h int) []byte {
	bw := vp8lStart(w, h)
	bw.simpleCode(0, 255) // green
	bw.simpleCode(40)     // red
	bw.simpleCode(200)    // blue
	bw.simpleCode(255)    // alpha
	bw.simpleCode(0)      // distance, unused
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			bit := uint32(0)
			if x < w/2 && y < h/2 {
				bit = 1
			}
			bw.write(bit, 1)
		}
	}
	return webpContainer(bw.buf)
}

// solidWebP is a w×h single-colour lossless WebP: with single-symbol
// prefix codes every pixel takes zero bits, so a 16384×16384 image is a
// few dozen bytes — a real decompression bomb.
func solidWebP(w, h int) []byte {
	bw := vp8lStart(w, h)
	for _, s := range []uint32{128, 64, 32, 255, 0} {
		bw.simpleCode(s)
	}
	return webpContainer(bw.buf)
}

func TestQuadrantWebPIsValid(t *testing.T) {
	img, err := webp.Decode(bytes.NewReader(quadrantWebP(48, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got != image.Pt(48, 32) {
		t.Fatalf("size %v", got)
	}
	for _, p := range []struct {
		x, y int
		g    uint8
	}{{0, 0, 255}, {23, 15, 255}, {24, 0, 0}, {0, 16, 0}, {47, 31, 0}} {
		c := color.NRGBAModel.Convert(img.At(p.x, p.y)).(color.NRGBA)
		if c != (color.NRGBA{40, p.g, 200, 255}) {
			t.Errorf("pixel (%d,%d) = %v", p.x, p.y, c)
		}
	}
	cfg, err := webp.DecodeConfig(bytes.NewReader(solidWebP(16384, 16384)))
	if err != nil || cfg.Width != 16384 || cfg.Height != 16384 {
		t.Fatalf("bomb header: %+v %v", cfg, err)
	}
}

// exifSegment builds an APP1 Exif segment whose IFD0 holds only the
// Orientation tag.
func exifSegment(order binary.ByteOrder, orientation uint16) []byte {
	bo := order.(binary.AppendByteOrder)
	var tiff []byte
	if bo == binary.LittleEndian {
		tiff = append(tiff, "II*\x00"...)
	} else {
		tiff = append(tiff, "MM\x00*"...)
	}
	tiff = bo.AppendUint32(tiff, 8) // IFD0 right after the header
	tiff = bo.AppendUint16(tiff, 1) // one entry
	tiff = bo.AppendUint16(tiff, 0x0112)
	tiff = bo.AppendUint16(tiff, 3) // SHORT
	tiff = bo.AppendUint32(tiff, 1) // count
	tiff = bo.AppendUint16(tiff, orientation)
	tiff = bo.AppendUint16(tiff, 0) // value padding
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(2+len(payload)))
	return append(seg, payload...)
}

// withExif inserts an Exif APP1 segment right after SOI.
func withExif(jpg []byte, bo binary.ByteOrder, orientation uint16) []byte {
	out := append([]byte{}, jpg[:2]...)
	out = append(out, exifSegment(bo, orientation)...)
	return append(out, jpg[2:]...)
}

// orientSrc maps a pixel (x,y) of the upright image to the stored one, for
// a stored image of w×h: the EXIF definitions, written out independently
// of applyOrientation.
func orientSrc(o, x, y, w, h int) (int, int) {
	switch o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return y, h - 1 - x
	case 7:
		return w - 1 - y, h - 1 - x
	case 8:
		return w - 1 - y, x
	}
	return x, y
}

func TestDecodeExifOrientation(t *testing.T) {
	plain := testenv.ReadPhoto(t, "deepface/img12.jpg") // 560x415, no Exif
	if scanJPEG(plain).orientation != 1 {
		t.Fatal("img12.jpg unexpectedly has an orientation")
	}
	base := mustDecode(t, plain)
	w, h := base.Width, base.Height
	src := matBGR(t, base.Mat)

	for o := uint16(1); o <= 8; o++ {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			t.Run(fmt.Sprintf("%d-%v", o, bo), func(t *testing.T) {
				data := withExif(plain, bo, o)
				im := mustDecode(t, data)
				ww, wh := w, h
				if o >= 5 {
					ww, wh = h, w
				}
				if im.Width != ww || im.Height != wh {
					t.Fatalf("size %dx%d, want %dx%d", im.Width, im.Height, ww, wh)
				}
				got := matBGR(t, im.Mat)
				for y := 0; y < wh; y++ {
					for x := 0; x < ww; x++ {
						sx, sy := orientSrc(int(o), x, y, w, h)
						if !bytes.Equal(got[(y*ww+x)*3:][:3], src[(sy*w+sx)*3:][:3]) {
							t.Fatalf("pixel (%d,%d) is not stored pixel (%d,%d)", x, y, sx, sy)
						}
					}
				}
				// OpenCV's own EXIF handling must agree with ours.
				native, err := gocv.IMDecode(data, gocv.IMReadColor)
				if err != nil {
					t.Fatal(err)
				}
				defer native.Close()
				if !bytes.Equal(matBGR(t, native), got) {
					t.Error("differs from OpenCV's own orientation handling")
				}
				if o == 6 {
					rot := gocv.NewMat()
					defer rot.Close()
					gocv.Rotate(base.Mat, &rot, gocv.Rotate90Clockwise)
					if !bytes.Equal(matBGR(t, rot), got) {
						t.Error("orientation 6 differs from gocv.Rotate(90° clockwise)")
					}
				}
			})
		}
	}
}

// pngHeader is a PNG signature and an IHDR chunk (correct CRC) declaring
// w×h 8-bit RGB, with no pixel data at all.
func pngHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	chunk := []byte("IHDR")
	chunk = binary.BigEndian.AppendUint32(chunk, w)
	chunk = binary.BigEndian.AppendUint32(chunk, h)
	chunk = append(chunk, 8, 2, 0, 0, 0) // depth, RGB, deflate, filter, no interlace
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, chunk...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(chunk))
}

// bmpHeader is a 24-bit BMP declaring w×h, followed by n bytes of pixels.
func bmpHeader(w, h int32, n int) []byte {
	le := binary.LittleEndian
	b := []byte("BM")
	b = le.AppendUint32(b, uint32(54+n)) // file size
	b = le.AppendUint32(b, 0)            // reserved
	b = le.AppendUint32(b, 54)           // pixel data offset
	b = le.AppendUint32(b, 40)           // BITMAPINFOHEADER
	b = le.AppendUint32(b, uint32(w))
	b = le.AppendUint32(b, uint32(h))
	b = le.AppendUint16(b, 1)  // planes
	b = le.AppendUint16(b, 24) // bits per pixel
	b = le.AppendUint32(b, 0)  // BI_RGB
	b = le.AppendUint32(b, uint32(n))
	b = le.AppendUint32(b, 2835) // 72 dpi
	b = le.AppendUint32(b, 2835)
	b = le.AppendUint32(b, 0) // palette colours
	b = le.AppendUint32(b, 0)
	return append(b, make([]byte, n)...)
}

// vp8xHeader is a WebP whose extended header declares a w×h canvas,
// followed by an empty VP8L chunk: enough for both header parsers.
func vp8xHeader(w, h uint32) []byte {
	c := []byte("VP8X")
	c = binary.LittleEndian.AppendUint32(c, 10)
	c = append(c, 0, 0, 0, 0) // flags, reserved
	c = append(c, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
	c = append(c, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	c = append(c, "VP8L\x00\x00\x00\x00"...)
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(4+len(c)))
	b = append(b, "WEBP"...)
	return append(b, c...)
}

// smuggledWebP puts, before a valid 48x32 VP8L chunk, a chunk whose tag
// and size read as a raw VP8L header of 16384x16384: Go's parser skips it,
// libwebp would take its size from it.
func smuggledWebP() []byte {
	body := []byte("WEBP")
	body = append(body, 0x2f, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0) // tag, size 15
	body = append(body, make([]byte, 16)...)                   // 15 bytes + pad
	body = append(body, quadrantWebP(48, 32)[12:]...)          // the VP8L chunk
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// animatedWebP is a VP8X header with the animation flag set.
func animatedWebP() []byte {
	b := vp8xHeader(64, 64)
	b[20] |= 0x02
	return b
}

func encodedPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodedGIF(t testing.TB) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, 32, 32), color.Palette{color.Black, color.White})
	var buf bytes.Buffer
	if err := gif.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jpegThroughSOF returns the start of a JPEG up to the end of its frame
// header.
func jpegThroughSOF(t testing.TB, jpg []byte) []byte {
	t.Helper()
	for i := 2; i+4 <= len(jpg); {
		if jpg[i] != 0xFF {
			t.Fatal("unexpected byte between segments")
		}
		marker := jpg[i+1]
		n := int(binary.BigEndian.Uint16(jpg[i+2:]))
		i += 2 + n
		if isSOF(marker) {
			return bytes.Clone(jpg[:i]) // callers append to it
		}
	}
	t.Fatal("no SOF")
	return nil
}

func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// manyScans is a syntactically plausible 64x64 JPEG with n empty scans.
func manyScans(n int) []byte {
	b := []byte{0xFF, 0xD8}
	b = append(b, 0xFF, 0xC2, 0, 17, 8, 0, 64, 0, 64, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0)
	for i := 0; i < n; i++ {
		b = append(b, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0, 0)
	}
	return append(b, 0xFF, 0xD9)
}

func TestDecodeErrors(t *testing.T) {
	img1 := testenv.ReadPhoto(t, "deepface/img1.jpg")
	img12 := testenv.ReadPhoto(t, "deepface/img12.jpg")
	webpPhoto := testenv.ReadPhoto(t, "deepface/img47.jpg") // a real lossy WebP
	pngSmall := lossless(t, encodePNG)
	bmpSmall := lossless(t, encodeBMP)
	badCRC := pngHeader(64, 64)
	badCRC[len(badCRC)-1] ^= 0xFF

	tests := []struct {
		name    string
		data    []byte
		lim     Limits
		want    error
		wantMsg string // substring of the message, when it matters
	}{
		{name: "nil", data: nil, want: ErrEmpty},
		{name: "empty", data: []byte{}, want: ErrEmpty},
		{name: "over MaxBytes", data: img12, lim: Limits{MaxBytes: int64(len(img12)) - 1}, want: ErrTooLarge},
		{name: "over default MaxBytes", data: make([]byte, 10<<20+1), want: ErrTooLarge},
		{name: "1x1 png", data: encodedPNG(t, 1, 1), want: ErrTooSmall},
		{name: "15x200 png", data: encodedPNG(t, 15, 200), want: ErrTooSmall},
		{name: "png bomb 20000x20000", data: pngHeader(20000, 20000), want: ErrTooManyPixels, wantMsg: "20000x20000 is 400000000 pixels, limit 40000000"},
		{name: "png 100000x100000", data: pngHeader(100000, 100000), want: ErrTooManyPixels},
		// Go's PNG parser itself refuses sizes whose byte count overflows.
		{name: "png 2^31-1 square", data: pngHeader(1<<31-1, 1<<31-1), want: ErrUnsupportedFormat, wantMsg: "dimension overflow"},
		{name: "webp bomb 16384x16384", data: solidWebP(16384, 16384), want: ErrTooManyPixels, wantMsg: "16384x16384"},
		// Under the pixel limit but wider than OpenCV's 1<<20, where its
		// assertion would abort the process (found while writing this).
		{name: "bmp 2000000x16", data: bmpHeader(2000000, 16, 100), want: ErrTooManyPixels, wantMsg: "a side exceeds 65535"},
		{name: "bmp 16x2000000 top-down", data: bmpHeader(16, -2000000, 100), want: ErrTooManyPixels},
		{name: "webp canvas 1100000x16", data: vp8xHeader(1100000, 16), want: ErrTooManyPixels},
		{name: "png 2000000x16", data: pngHeader(2000000, 16), want: ErrTooManyPixels},
		{name: "bmp 16x16 header only", data: bmpHeader(16, 16, 0), want: ErrCorrupt},
		{name: "webp canvas 64x64 without image", data: vp8xHeader(64, 64), want: ErrCorrupt},
		{name: "webp with a leading unknown chunk", data: smuggledWebP(), want: ErrCorrupt, wantMsg: "first chunk"},
		{name: "animated webp", data: animatedWebP(), want: ErrUnsupportedFormat, wantMsg: "animated"},
		{name: "under caller MaxPixels", data: img12, lim: Limits{MaxPixels: 560*415 - 1}, want: ErrTooManyPixels},
		{name: "random bytes", data: randomBytes(1, 4096), want: ErrUnsupportedFormat},
		{name: "gif", data: encodedGIF(t), want: ErrUnsupportedFormat, wantMsg: "gif"},
		{name: "tiff magic", data: append([]byte("II*\x00"), randomBytes(2, 64)...), want: ErrUnsupportedFormat, wantMsg: "tiff"},
		{name: "text", data: []byte("<html>not an image</html>"), want: ErrUnsupportedFormat},
		{name: "jpeg magic only", data: []byte{0xFF, 0xD8, 0xFF}, want: ErrCorrupt},
		{name: "truncated jpeg (first half of img1)", data: img1[:len(img1)/2], want: ErrCorrupt, wantMsg: "truncated"},
		{name: "jpeg without EOI", data: img12[:len(img12)-2], want: ErrCorrupt},
		{name: "jpeg header then garbage", data: append(jpegThroughSOF(t, img12), randomBytes(3, 5000)...), want: ErrCorrupt},
		{name: "jpeg with 300 scans", data: manyScans(300), want: ErrCorrupt, wantMsg: "scans"},
		{name: "png bad IHDR crc", data: badCRC, want: ErrCorrupt},
		{name: "png header without data", data: pngHeader(64, 64), want: ErrCorrupt},
		{name: "truncated png", data: pngSmall[:len(pngSmall)/2], want: ErrCorrupt},
		{name: "truncated bmp", data: bmpSmall[:len(bmpSmall)/2], want: ErrCorrupt},
		{name: "truncated webp", data: webpPhoto[:len(webpPhoto)/2], want: ErrCorrupt},
		{name: "webp header only", data: webpPhoto[:40], want: ErrCorrupt},
		{name: "bmp magic only", data: []byte("BM"), want: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, err := Decode(tt.data, tt.lim)
			if err == nil {
				im.Close()
				t.Fatalf("decoded %s %dx%d, want %v", im.Format, im.Width, im.Height, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %q, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "face: decode: ") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q lacks %q", err, tt.wantMsg)
			}
		})
	}
}

// TestDecodeDamagedJPEG: damage that keeps the structure intact reaches
// libjpeg, which may decode it with artefacts. Either outcome is fine; a
// crash (which would kill the test binary) is not.
func TestDecodeDamagedJPEG(t *testing.T) {
	img12 := testenv.ReadPhoto(t, "deepface/img12.jpg")
	head := jpegThroughSOF(t, img12)
	garbage := func(seed int64) []byte { // no 0xFF, so no fake markers
		b := randomBytes(seed, 5000)
		for i := range b {
			if b[i] == 0xFF {
				b[i] = 0xFE
			}
		}
		return b
	}
	scrambled := bytes.Clone(img12)
	copy(scrambled[len(scrambled)/2:], garbage(4)[:2000])

	tests := map[string][]byte{
		"header, garbage, EOI":   append(append(bytes.Clone(head), garbage(5)...), 0xFF, 0xD9),
		"header, SOS, garbage":   append(append(append(bytes.Clone(head), 0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0), garbage(6)...), 0xFF, 0xD9),
		"scrambled entropy data": scrambled,
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			im, err := Decode(data, DefaultLimits())
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %q, want ErrCorrupt or an image", err)
				}
				t.Logf("rejected: %v", err)
				return
			}
			defer im.Close()
			checkImage(t, im)
			if im.Width != 560 || im.Height != 415 {
				t.Errorf("size %dx%d", im.Width, im.Height)
			}
			t.Logf("decoded with artefacts")
		})
	}
}

func TestDecodeMinSideBoundary(t *testing.T) {
	mustDecode(t, encodedPNG(t, 16, 16))
	if _, err := Decode(encodedPNG(t, 16, 16), Limits{MinSide: 17}); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("MinSide 17: %v", err)
	}
}

func TestLimitsDefaults(t *testing.T) {
	if got := (Limits{}).withDefaults(); got != DefaultLimits() {
		t.Errorf("zero Limits = %+v, want %+v", got, DefaultLimits())
	}
	if got := (Limits{MaxBytes: -1, MaxPixels: -1, MinSide: -1}).withDefaults(); got != DefaultLimits() {
		t.Errorf("negative Limits = %+v", got)
	}
	if got := (Limits{MaxPixels: 1 << 40}).withDefaults().MaxPixels; got != hardMaxPixels {
		t.Errorf("MaxPixels not clamped: %d", got)
	}
	d := DefaultLimits()
	if d.MaxBytes != 10<<20 || d.MaxPixels != 40_000_000 || d.MinSide != 16 {
		t.Errorf("DefaultLimits = %+v", d)
	}
}

func TestImageClose(t *testing.T) {
	im, err := Decode(encodedPNG(t, 16, 16), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	var nilImage *Image
	if err := nilImage.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestScanJPEG(t *testing.T) {
	img1 := testenv.ReadPhoto(t, "deepface/img1.jpg")
	half := img1[:len(img1)/2]
	// Why a structural walk and not a search for FF D9: this photo's Exif
	// thumbnail puts an EOI marker in its first half. Without one the case
	// below would not tell a walk from a search, so it is a precondition.
	if !bytes.Contains(half, []byte{0xFF, 0xD9}) {
		t.Fatal("fixture: img1.jpg's first half holds no FF D9, so this test cannot tell a structural walk from a marker search")
	}
	if scanJPEG(half).complete {
		t.Error("first half of img1.jpg reported complete")
	}
	full := scanJPEG(img1)
	if !full.complete || full.scans != 1 || full.sofW != 1382 || full.sofH != 1868 {
		t.Errorf("img1.jpg: %+v", full)
	}
	prog := scanJPEG(testenv.ReadPhoto(t, "deepface/img12.jpg"))
	if !prog.complete || prog.scans < 2 {
		t.Errorf("progressive img12.jpg: %+v", prog)
	}

	seg := exifSegment(binary.BigEndian, 8)
	tests := []struct {
		name string
		data []byte
		want jpegInfo
	}{
		{"not jpeg", []byte("hello"), jpegInfo{orientation: 1}},
		{"soi eoi", []byte{0xFF, 0xD8, 0xFF, 0xD9}, jpegInfo{orientation: 1, complete: true}},
		{"fill bytes and stray data", []byte{0xFF, 0xD8, 0x12, 0xFF, 0xFF, 0xFF, 0xD9}, jpegInfo{orientation: 1, complete: true}},
		{"segment past end", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x10, 0x00, 0xFF, 0xD9}, jpegInfo{orientation: 1}},
		{"segment length 1", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0xFF, 0xD9}, jpegInfo{orientation: 1}},
		{"eoi inside app segment", []byte{0xFF, 0xD8, 0xFF, 0xE2, 0x00, 0x04, 0xFF, 0xD9}, jpegInfo{orientation: 1}},
		{"exif", append(append([]byte{0xFF, 0xD8}, seg...), 0xFF, 0xD9), jpegInfo{orientation: 8, complete: true}},
		{"exif after first scan ignored", append(append([]byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x01, 0xFF, 0x00, 0xFF, 0xD0}, seg...), 0xFF, 0xD9),
			jpegInfo{orientation: 1, scans: 1, complete: true}},
		{"second exif ignored", append(append(append([]byte{0xFF, 0xD8}, seg...), exifSegment(binary.LittleEndian, 3)...), 0xFF, 0xD9),
			jpegInfo{orientation: 8, complete: true}},
		{"entropy data ends the stream", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x01, 0x02, 0xFF}, jpegInfo{orientation: 1, scans: 1}},
	}
	for _, tt := range tests {
		if got := scanJPEG(tt.data); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestExifOrientation(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	payload := func(bo binary.ByteOrder, o uint16) []byte {
		return exifSegment(bo, o)[4+len(exifHeader):]
	}
	patched := func(bo binary.ByteOrder, at int, v []byte) []byte {
		p := payload(bo, 6)
		copy(p[at:], v)
		return p
	}
	twoEntries := func() []byte {
		t := []byte("MM\x00*\x00\x00\x00\x08\x00\x02")
		t = append(t, 0x01, 0x0F, 0, 2, 0, 0, 0, 4, 'a', 'b', 'c', 0) // Make
		t = append(t, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 3, 0, 0)       // Orientation 3
		return t
	}
	long := payload(le, 0)
	copy(long[10:], []byte{0x12, 0x01, 4, 0, 1, 0, 0, 0, 7, 0, 0, 0}) // LONG 7

	tests := []struct {
		name string
		tiff []byte
		want int
	}{
		{"little endian 6", payload(le, 6), 6},
		{"big endian 8", payload(be, 8), 8},
		{"every value", payload(le, 5), 5},
		{"LONG type", long, 7},
		{"second entry", twoEntries(), 3},
		{"zero", payload(le, 0), 1},
		{"nine", payload(be, 9), 1},
		{"ASCII type", patched(le, 12, []byte{2, 0}), 1},
		{"count 2", patched(le, 14, []byte{2, 0, 0, 0}), 1},
		{"bad magic", patched(le, 0, []byte("IX")), 1},
		{"ifd offset past end", patched(le, 4, []byte{0xFF, 0xFF, 0xFF, 0xFF}), 1},
		{"ifd offset at end", patched(le, 4, []byte{26, 0, 0, 0}), 1},
		{"entry count past end, entry readable", patched(le, 8, []byte{0xFF, 0xFF}), 6},
		{"entry count past end, no orientation", patched(le, 8, []byte{0xFF, 0xFF, 0x13, 0x01}), 1},
		{"entry cut short", payload(le, 6)[:20], 1},
		{"header only", []byte("II*\x00"), 1},
		{"empty", nil, 1},
	}
	for _, tt := range tests {
		if got := exifOrientation(tt.tiff); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestEncodeJPEG(t *testing.T) {
	im := mustDecode(t, testenv.ReadPhoto(t, "deepface/img12.jpg"))
	out, err := EncodeJPEG(im.Mat, 90)
	if err != nil {
		t.Fatal(err)
	}
	back := mustDecode(t, out)
	if back.Format != FormatJPEG || back.Width != im.Width || back.Height != im.Height {
		t.Fatalf("round trip: %s %dx%d", back.Format, back.Width, back.Height)
	}
	low, err := EncodeJPEG(im.Mat, 10)
	if err != nil || len(low) >= len(out) {
		t.Errorf("quality 10: %d bytes (quality 90: %d), err %v", len(low), len(out), err)
	}

	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(im.Mat, &grey, gocv.ColorBGRToGray)
	if _, err := EncodeJPEG(grey, 80); err != nil {
		t.Errorf("grey: %v", err)
	}

	empty := gocv.NewMat()
	defer empty.Close()
	float := gocv.NewMatWithSize(16, 16, gocv.MatTypeCV32FC3)
	defer float.Close()
	bgra := gocv.NewMatWithSize(16, 16, gocv.MatTypeCV8UC4)
	defer bgra.Close()
	closed := gocv.NewMatWithSize(16, 16, gocv.MatTypeCV8UC3)
	closed.Close()
	for name, tc := range map[string]struct {
		m gocv.Mat
		q int
	}{
		"quality 0":   {im.Mat, 0},
		"quality 101": {im.Mat, 101},
		"empty":       {empty, 80},
		"zero Mat":    {gocv.Mat{}, 80},
		"closed":      {closed, 80},
		"float":       {float, 80},
		"bgra":        {bgra, 80},
	} {
		if _, err := EncodeJPEG(tc.m, tc.q); err == nil || !strings.HasPrefix(err.Error(), "face: encode jpeg: ") {
			t.Errorf("%s: err %v", name, err)
		}
	}
}
