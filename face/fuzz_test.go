package face

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"testing"

	"golang.org/x/image/bmp"

	"github.com/facedhq/faced/internal/testenv"
	"gocv.io/x/gocv"
)

// fuzzLimits keeps each input cheap (a mutated header can declare any
// size up to the limit, and OpenCV then decodes that many pixels) while
// letting extreme shapes through: with MinSide 1, a 4-megapixel budget
// still admits a 4,000,000×1 header, which is how OpenCV's per-side
// assertion (an abort) is reached.
var fuzzLimits = Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 22, MinSide: 1}

// FuzzDecode feeds arbitrary bytes to Decode: the process must never abort
// (an OpenCV assertion would kill the fuzzer and be reported as a
// crasher), every error must be one of the typed ones, and every image
// must be what the API promises.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"deepface/img12.jpg", "deepface/img51.jpg", "deepface/img25.jpg"} {
		f.Add(testenv.ReadPhoto(f, name))
	}
	img12 := testenv.ReadPhoto(f, "deepface/img12.jpg")
	f.Add(withExif(img12, binary.LittleEndian, 6))
	f.Add(withExif(img12, binary.BigEndian, 7))
	f.Add(img12[:len(img12)/2])
	f.Add(append(jpegThroughSOF(f, img12), 0xFF, 0xD9))
	f.Add(manyScans(300))
	// Tiny images: cheap to decode, so most mutations that keep the
	// structure reach OpenCV quickly.
	tiny := jpegCrop(f, img12, 32, 24, false)
	f.Add(tiny)
	f.Add(withExif(tiny, binary.LittleEndian, 8))
	f.Add(jpegCrop(f, img12, 24, 32, true))
	f.Add(encodedPNG(f, 16, 16))
	f.Add(encodedPNG(f, 1, 1))
	f.Add(pngHeader(20000, 20000))
	f.Add(quadrantWebP(48, 32))
	f.Add(solidWebP(16384, 16384))
	var small bytes.Buffer
	if err := bmp.Encode(&small, image.NewRGBA(image.Rect(0, 0, 16, 16))); err != nil {
		f.Fatal(err)
	}
	f.Add(small.Bytes())
	// Headers alone, with extreme shapes for the mutator to stretch.
	f.Add(bmpHeader(64, 2, 64*2*3))
	f.Add(vp8xHeader(1000, 2))
	f.Add(pngHeader(3000, 1))
	f.Add(encodedGIF(f))
	f.Add(randomBytes(1, 256))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		// The JPEG walker runs on every input, not only on those whose
		// header survives Go's parser.
		if info := scanJPEG(data); info.orientation < 1 || info.orientation > 8 || info.scans < 0 {
			t.Fatalf("scanJPEG: %+v", info)
		}

		im, err := Decode(data, fuzzLimits)
		if err != nil {
			if im != nil {
				t.Fatal("image and error both returned")
			}
			for _, e := range decodeErrors {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("untyped error: %v", err)
		}
		defer im.Close()
		checkImage(t, im)
		switch im.Format {
		case FormatJPEG, FormatPNG, FormatWebP, FormatBMP:
		default:
			t.Fatalf("format %q", im.Format)
		}
		if im.Width < fuzzLimits.MinSide || im.Height < fuzzLimits.MinSide ||
			int64(im.Width)*int64(im.Height) > fuzzLimits.MaxPixels {
			t.Fatalf("%dx%d is outside the limits", im.Width, im.Height)
		}
		if int64(len(data)) > fuzzLimits.MaxBytes {
			t.Fatalf("%d bytes accepted", len(data))
		}
	})
}

// jpegCrop encodes the top-left w×h of a JPEG with OpenCV, baseline or
// progressive.
func jpegCrop(t testing.TB, jpg []byte, w, h int, progressive bool) []byte {
	t.Helper()
	m, err := gocv.IMDecode(jpg, gocv.IMReadColor)
	if err != nil || m.Empty() {
		t.Fatalf("decode: %v", err)
	}
	defer m.Close()
	crop := m.Region(image.Rect(0, 0, w, h))
	defer crop.Close()
	params := []int{gocv.IMWriteJpegQuality, 75}
	if progressive {
		params = append(params, gocv.IMWriteJpegProgressive, 1)
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, crop, params)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return bytes.Clone(buf.GetBytes())
}

// exifPayload returns the TIFF structure of the first Exif APP1 segment of
// a well-formed JPEG.
func exifPayload(t testing.TB, jpg []byte) []byte {
	t.Helper()
	for i := 2; i+4 <= len(jpg) && jpg[i] == 0xFF; {
		n := int(binary.BigEndian.Uint16(jpg[i+2:]))
		seg := jpg[i+4 : i+2+n]
		if jpg[i+1] == 0xE1 && bytes.HasPrefix(seg, exifHeader) {
			return seg[len(exifHeader):]
		}
		i += 2 + n
	}
	t.Fatal("no Exif segment")
	return nil
}

// FuzzExifOrientation checks the Exif parser on arbitrary TIFF data, and
// that the JPEG walker finds the same value when the data is wrapped in
// an APP1 segment.
func FuzzExifOrientation(f *testing.F) {
	for o := uint16(0); o <= 9; o++ {
		f.Add(exifSegment(binary.LittleEndian, o)[4+len(exifHeader):])
		f.Add(exifSegment(binary.BigEndian, o)[4+len(exifHeader):])
	}
	f.Add(exifPayload(f, testenv.ReadPhoto(f, "antispoof/image_T1.jpg"))) // orientation 6, a real camera
	f.Add(exifPayload(f, testenv.ReadPhoto(f, "deepface/img21.jpg")))
	f.Add([]byte("II*\x00\xff\xff\xff\xff"))
	f.Add([]byte("MM\x00*\x00\x00\x00\x08\xff\xff"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, tiff []byte) {
		o := exifOrientation(tiff)
		if o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		payload := append(bytes.Clone(exifHeader), tiff...)
		if len(payload)+2 > 0xFFFF {
			return
		}
		jpg := []byte{0xFF, 0xD8, 0xFF, 0xE1}
		jpg = binary.BigEndian.AppendUint16(jpg, uint16(len(payload)+2))
		jpg = append(jpg, payload...)
		jpg = append(jpg, 0xFF, 0xD9)
		info := scanJPEG(jpg)
		if info.orientation != o || !info.complete {
			t.Fatalf("walker found %+v, parser %d", info, o)
		}
		// The walker on the raw bytes, as if they followed an SOI.
		if info := scanJPEG(append([]byte{0xFF, 0xD8}, tiff...)); info.orientation < 1 || info.orientation > 8 {
			t.Fatalf("scanJPEG: %+v", info)
		}
	})
}
