package camera

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/facedhq/faced/face"
)

// A Source hands out decoded frames one at a time. Read blocks until the
// next frame; io.EOF means the source ended for good (a file clip), any
// other error that it failed and may be reopened.
type Source interface {
	Read(ctx context.Context) (*face.Image, error)
	Close() error
}

// ErrEnded is returned by Read when a file clip has played to its end.
var ErrEnded = io.EOF

// Open connects to a camera URL:
//   - rtsp:// and rtsps:// through OpenCV's FFmpeg backend, over TCP;
//   - http(s):// serving multipart/x-mixed-replace (MJPEG) or single JPEG
//     snapshots, read in Go and decoded by face.Decode;
//   - /dev/videoN through V4L2;
//   - file:// clips, played at their own frame rate.
//
// Every frame is checked against lim before it reaches the pipeline; a
// video stream that declares a frame size over lim is refused at Open.
func Open(ctx context.Context, rawURL string, lim face.Limits, client *http.Client) (Source, error) {
	kind, target, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch kind {
	case kindHTTP:
		return openHTTP(ctx, target, lim, client)
	default:
		return openVideo(ctx, kind, target, lim)
	}
}

type sourceKind int

const (
	kindRTSP sourceKind = iota
	kindHTTP
	kindDevice
	kindFile
)

// parseURL checks a camera URL and says how to open it.
func parseURL(raw string) (sourceKind, string, error) {
	if strings.HasPrefix(raw, "/dev/video") {
		return kindDevice, raw, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return 0, "", fmt.Errorf("camera: url: %w", err)
	}
	switch u.Scheme {
	case "rtsp", "rtsps":
		if u.Host == "" {
			return 0, "", fmt.Errorf("camera: url %s has no host", Redact(raw))
		}
		return kindRTSP, raw, nil
	case "http", "https":
		if u.Host == "" {
			return 0, "", fmt.Errorf("camera: url %s has no host", Redact(raw))
		}
		return kindHTTP, raw, nil
	case "file":
		if u.Path == "" {
			return 0, "", fmt.Errorf("camera: url %s has no path", raw)
		}
		return kindFile, u.Path, nil
	}
	return 0, "", fmt.Errorf("camera: url %s: scheme must be rtsp, rtsps, http, https or file, or a /dev/videoN device", Redact(raw))
}

// Redact hides the password of a URL, for logs and the API.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// ffmpegOptions is what OpenCV's FFmpeg backend is told for every capture
// it opens: RTSP over TCP (interleaved, so no UDP ports to open in a
// firewall and no loss-smeared frames), and a 5 s socket timeout so that a
// camera that accepts the connection and then says nothing fails the open
// instead of hanging it. OpenCV reads this variable at each open; it is the
// only way to pass options through gocv, and it is set once for the
// process unless the operator already set it.
const ffmpegOptions = "rtsp_transport;tcp|timeout;5000000"

var setFFmpegOptions sync.Once

// videoSource reads through face.Video (OpenCV's video I/O).
type videoSource struct {
	video *face.Video
	file  bool
	// Files are paced to their frame rate, as a camera would deliver them.
	start    time.Time
	interval time.Duration
	n        int
}

func openVideo(ctx context.Context, kind sourceKind, target string, lim face.Limits) (Source, error) {
	setFFmpegOptions.Do(func() {
		if _, ok := os.LookupEnv("OPENCV_FFMPEG_CAPTURE_OPTIONS"); !ok {
			os.Setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", ffmpegOptions)
		}
	})
	if kind == kindFile {
		if _, err := os.Stat(target); err != nil {
			return nil, fmt.Errorf("camera: clip: %w", err)
		}
	}
	device := -1
	if kind == kindDevice {
		if _, err := fmt.Sscanf(target, "/dev/video%d", &device); err != nil || device < 0 {
			return nil, fmt.Errorf("camera: device %s: want /dev/videoN", target)
		}
	}
	// Opening blocks (up to the socket timeout); the context cannot
	// interrupt OpenCV, so it is checked before and after.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, err := face.OpenVideo(target, device, lim)
	if err != nil {
		return nil, fmt.Errorf("camera: open %s: %w", Redact(target), err)
	}
	s := &videoSource{video: v, file: kind == kindFile, start: time.Now()}
	if s.file {
		fps := v.FPS()
		if fps <= 0 || fps > 240 {
			fps = 25
		}
		s.interval = time.Duration(float64(time.Second) / fps)
	}
	return s, ctx.Err()
}

func (s *videoSource) Read(ctx context.Context) (*face.Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.file {
		due := s.start.Add(time.Duration(s.n) * s.interval)
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		s.n++
	}
	img, err := s.video.Read()
	switch {
	case errors.Is(err, face.ErrVideoEnded) && s.file:
		return nil, ErrEnded
	case errors.Is(err, face.ErrVideoEnded):
		return nil, errors.New("camera: the stream stopped")
	case err != nil:
		return nil, fmt.Errorf("camera: frame: %w", err)
	}
	return img, nil
}

func (s *videoSource) Close() error { return s.video.Close() }

// httpSource reads MJPEG (multipart/x-mixed-replace) or polls a JPEG
// snapshot URL.
type httpSource struct {
	url    string
	client *http.Client
	lim    face.Limits
	body   io.ReadCloser
	parts  *multipart.Reader  // nil: snapshot polling
	cancel context.CancelFunc // ends the stream's request
	first  []byte             // a snapshot fetched by open, not yet handed out
}

// stallTimeout is how long an MJPEG stream may send nothing before it is
// treated as stopped (and reopened).
const stallTimeout = 10 * time.Second

func openHTTP(ctx context.Context, target string, lim face.Limits, client *http.Client) (Source, error) {
	if client == nil {
		client = defaultClient()
	}
	s := &httpSource{url: target, client: client, lim: lim}
	ctx, s.cancel = context.WithCancel(ctx)
	resp, err := s.get(ctx)
	if err != nil {
		s.cancel()
		return nil, err
	}
	mediaType, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		resp.Body.Close()
		s.cancel()
		return nil, fmt.Errorf("camera: %s: content type: %w", Redact(target), err)
	}
	switch {
	case strings.HasPrefix(mediaType, "multipart/"):
		if params["boundary"] == "" {
			resp.Body.Close()
			s.cancel()
			return nil, fmt.Errorf("camera: %s: multipart stream without a boundary", Redact(target))
		}
		s.body = resp.Body
		s.parts = multipart.NewReader(bufio.NewReader(resp.Body), params["boundary"])
	case strings.HasPrefix(mediaType, "image/"):
		s.first, err = s.readBody(resp)
		s.cancel()
		if err != nil {
			return nil, err
		}
	default:
		resp.Body.Close()
		s.cancel()
		return nil, fmt.Errorf("camera: %s: content type %q is neither multipart (MJPEG) nor an image", Redact(target), mediaType)
	}
	return s, nil
}

// snapshotTimeout bounds one snapshot request; a stream's read has no
// deadline of its own but is closed by the camera's stall watchdog.
const snapshotTimeout = 5 * time.Second

// defaultClient has no overall timeout, since a stream is read for hours
// (snapshot requests and stalled streams have their own, see Read), but
// bounds the connection and the wait for response headers: a camera that
// accepts a connection and never answers fails the open.
func defaultClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil, // a camera on the local network is never reached through a proxy
		DialContext:           (&net.Dialer{Timeout: snapshotTimeout}).DialContext,
		TLSHandshakeTimeout:   snapshotTimeout,
		ResponseHeaderTimeout: snapshotTimeout,
		MaxIdleConnsPerHost:   1,
	}}
}

func (s *httpSource) get(ctx context.Context) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("camera: %s: %w", Redact(s.url), err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("camera: %s: %w", Redact(s.url), redactErr(err))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("camera: %s: HTTP %s", Redact(s.url), resp.Status)
	}
	return resp, nil
}

// redactErr keeps a URL's password out of net/http's error text.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func (s *httpSource) readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return readLimited(resp.Body, s.lim)
}

// readLimited reads one encoded frame, refusing one over the byte limit
// before it is all in memory.
func readLimited(r io.Reader, lim face.Limits) ([]byte, error) {
	max := lim.MaxBytes
	if max <= 0 {
		max = face.DefaultLimits().MaxBytes
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("camera: read frame: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("camera: frame: %w: over %d bytes", face.ErrTooLarge, max)
	}
	return b, nil
}

func (s *httpSource) Read(ctx context.Context) (*face.Image, error) {
	var data []byte
	switch {
	case s.first != nil:
		data, s.first = s.first, nil
	case s.parts != nil:
		stall := time.AfterFunc(stallTimeout, s.cancel)
		defer stall.Stop()
		part, err := s.parts.NextPart()
		if err != nil {
			return nil, fmt.Errorf("camera: mjpeg stream: %w", err)
		}
		data, err = readLimited(part, s.lim)
		part.Close()
		if err != nil {
			return nil, err
		}
	default:
		ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
		defer cancel()
		resp, err := s.get(ctx)
		if err != nil {
			return nil, err
		}
		if data, err = s.readBody(resp); err != nil {
			return nil, err
		}
	}
	img, err := face.Decode(data, s.lim)
	if err != nil {
		return nil, fmt.Errorf("camera: frame: %w", err)
	}
	return img, nil
}

func (s *httpSource) Close() error {
	s.cancel()
	if s.body != nil {
		return s.body.Close()
	}
	return nil
}
