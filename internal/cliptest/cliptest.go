// Package cliptest makes video clips for camera tests with Debian's ffmpeg
// (installed by make deps): H.264 in MP4, like a camera's recording.
package cliptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FFmpeg returns the ffmpeg binary, failing the test (not skipping it)
// when it is missing: camera tests are part of the suite.
func FFmpeg(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg not found: run make deps (it installs Debian's ffmpeg)")
	}
	return p
}

// Approach is a clip of a person walking up to the camera: the photo,
// centred on a grey 1920x1080 (or w x h) background, grows from Start to
// End of the frame height over Seconds while drifting right. 25 fps, one
// key frame a second, no B-frames (as IP cameras stream).
type Approach struct {
	Photo      string
	W, H       int
	Seconds    float64
	Start, End float64 // photo height as a fraction of the frame height
	FPS        int
}

// Make writes the clip to dir and returns its path.
func (a Approach) Make(t testing.TB, dir string) string {
	t.Helper()
	if a.W == 0 {
		a.W, a.H = 1920, 1080
	}
	if a.FPS == 0 {
		a.FPS = 25
	}
	if a.Seconds == 0 {
		a.Seconds = 4
	}
	if a.End == 0 {
		a.Start, a.End = 0.15, 0.9
	}
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(a.Photo), filepath.Ext(a.Photo))+fmt.Sprintf("-%dx%d.mp4", a.W, a.H))
	grow := (a.End - a.Start) / a.Seconds
	filter := fmt.Sprintf("color=c=0x606060:s=%dx%d:r=%d:d=%g[bg];"+
		"[0:v]scale=w=-2:h='trunc(%d*(%g+%g*t)/2)*2':eval=frame[fg];"+
		"[bg][fg]overlay=x='(W-w)/2+20*t':y='(H-h)/2':shortest=1,format=yuv420p",
		a.W, a.H, a.FPS, a.Seconds, a.H, a.Start, grow)
	run(t, "-loop", "1", "-framerate", fmt.Sprint(a.FPS), "-i", a.Photo,
		"-filter_complex", filter, "-t", fmt.Sprint(a.Seconds),
		"-c:v", "libx264", "-preset", "veryfast", "-g", fmt.Sprint(a.FPS), "-bf", "0", out)
	return out
}

// Slideshow is a clip showing each photo in turn for PerPhoto seconds, at
// the photos' own scale padded to w x h: for photos taken by a webcam
// (NUAA), which are already door-camera framing.
func Slideshow(t testing.TB, dir, name string, photos []string, perPhoto float64, w, h int) string {
	t.Helper()
	list := filepath.Join(dir, name+".txt")
	var b strings.Builder
	for _, p := range photos {
		fmt.Fprintf(&b, "file '%s'\nduration %g\n", p, perPhoto)
	}
	// The concat demuxer needs the last file twice for its duration.
	fmt.Fprintf(&b, "file '%s'\n", photos[len(photos)-1])
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+".mp4")
	vf := fmt.Sprintf("scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,fps=25,format=yuv420p", w, h, w, h)
	run(t, "-f", "concat", "-safe", "0", "-i", list, "-vf", vf,
		"-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "0", out)
	return out
}

func run(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command(FFmpeg(t), append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
