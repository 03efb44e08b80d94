package daemon

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/facedhq/faced/camera"
	"github.com/facedhq/faced/service"
)

// CameraConfig is one entry of `cameras:`, a video source the daemon
// watches (package camera).
type CameraConfig struct {
	// ID names the camera in events (camera_id) and the API.
	ID string `yaml:"id"`
	// URL: rtsp://[user:pass@]host/path, http(s):// MJPEG or JPEG
	// snapshots, /dev/videoN, or file:///path/clip.mp4 (replay).
	URL string `yaml:"url"`
	// FPS caps the frames processed per second (default 10).
	FPS float64 `yaml:"fps"`
	// ROI keeps faces whose centre lies inside it, as fractions of the
	// frame (default: the whole frame).
	ROI *ROIConfig `yaml:"roi"`
	// MinFacePx ignores smaller faces (default 40).
	MinFacePx int `yaml:"min_face_px"`
	// Galleries to search (default: all).
	Galleries []string `yaml:"galleries"`
	// Threshold is a preset (low, medium, strict) or a confidence
	// (default: service.threshold).
	Threshold string `yaml:"threshold"`
	// RequireLiveness refuses matches that look like a spoof (default
	// true: a door camera is what a printed photo is held up to).
	RequireLiveness *bool `yaml:"require_liveness"`
	// KeepCrops stores the best shot's aligned face crop with each event
	// (default false: it is biometric data; store.retention expires it
	// with the event).
	KeepCrops bool `yaml:"keep_crops"`
	// RepeatAfter: a face decided on this camera is not decided again
	// within it (default 30s).
	RepeatAfter time.Duration `yaml:"repeat_after"`
}

// ROIConfig is a region of the frame as fractions of its size.
type ROIConfig struct {
	X float64 `yaml:"x"`
	Y float64 `yaml:"y"`
	W float64 `yaml:"w"`
	H float64 `yaml:"h"`
}

var entryIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// checkEntryID checks the id of a list entry (a camera, a door): its
// form, and that no earlier entry of the list has it.
func checkEntryID(field, kind, id string, seen map[string]bool, bad func(field, format string, args ...any)) {
	if !entryIDRe.MatchString(id) {
		bad(field+".id", "%q: want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	} else if seen[id] {
		bad(field+".id", "%q is used by another %s", id, kind)
	}
	seen[id] = true
}

// camera converts the entry, with the service's default threshold.
func (c CameraConfig) camera(def service.Threshold) (camera.Config, error) {
	cc := camera.Config{
		ID: c.ID, URL: c.URL, FPS: c.FPS, MinFacePx: c.MinFacePx, Galleries: c.Galleries,
		RequireLiveness: c.RequireLiveness == nil || *c.RequireLiveness,
		KeepCrops:       c.KeepCrops, RepeatAfter: c.RepeatAfter,
	}
	if c.ROI != nil {
		cc.ROI = &camera.ROI{X: c.ROI.X, Y: c.ROI.Y, W: c.ROI.W, H: c.ROI.H}
	}
	t, err := service.ParseThreshold(c.Threshold, def)
	if err != nil {
		return camera.Config{}, fmt.Errorf("threshold: %w", err)
	}
	cc.Threshold = t
	return cc, nil
}

func validateCameras(cams []CameraConfig, bad func(field, format string, args ...any)) {
	seen := map[string]bool{}
	for i, c := range cams {
		field := fmt.Sprintf("cameras[%d]", i)
		checkEntryID(field, "camera", c.ID, seen, bad)
		cc, err := c.camera(service.DefaultThreshold)
		if err != nil {
			bad(field+".threshold", "%v", err)
			continue
		}
		if cc.ID == "" {
			continue // reported above
		}
		var se *camera.SettingError
		if err := cc.Check(); errors.As(err, &se) {
			bad(field+"."+se.Setting, "%s", se.Msg)
		} else if err != nil {
			bad(field, "%v", err)
		}
	}
}

// CameraConfigs converts the configured cameras for camera.NewManager.
func (cfg Config) CameraConfigs() ([]camera.Config, error) {
	def := cfg.ServiceConfig().Threshold
	out := make([]camera.Config, 0, len(cfg.Cameras))
	for i, c := range cfg.Cameras {
		cc, err := c.camera(def)
		if err != nil {
			return nil, fmt.Errorf("config: cameras[%d]: %w", i, err)
		}
		cc.Limits = cfg.Vision.Limits()
		out = append(out, cc)
	}
	return out, nil
}
