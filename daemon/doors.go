package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/facedhq/faced/camera"
	"github.com/facedhq/faced/door"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
	fleetsync "github.com/facedhq/faced/sync"
)

// DoorConfig is one entry of `doors:` (package door; README "Doors").
type DoorConfig struct {
	ID string `yaml:"id"`
	// Cameras whose decisions the door acts on.
	Cameras []string `yaml:"cameras"`
	// Galleries admitted; empty admits every gallery.
	Galleries []string `yaml:"galleries"`
	// Schedule; absent: open at all times.
	Schedule *ScheduleConfig `yaml:"schedule"`
	// RequireLiveness denies faces that are not live (default true).
	RequireLiveness *bool `yaml:"require_liveness"`
	// Threshold a match must reach at this door: a preset or a confidence
	// (default service.threshold).
	Threshold string `yaml:"threshold"`
	// Cooldown: one passage, one opening (default 5s).
	Cooldown time.Duration  `yaml:"cooldown"`
	Outputs  []OutputConfig `yaml:"outputs"`
}

// ScheduleConfig is a weekly schedule in the device's time zone (or
// TimeZone), minus holidays.
type ScheduleConfig struct {
	TimeZone string         `yaml:"timezone"`
	Weekly   []WindowConfig `yaml:"weekly"`
	Holidays []string       `yaml:"holidays"` // YYYY-MM-DD
}

// WindowConfig is a span of the day on some days: days [mon-fri], from
// "07:00", to "19:00" (24:00 for midnight).
type WindowConfig struct {
	Days []string `yaml:"days"`
	From string   `yaml:"from"`
	To   string   `yaml:"to"`
}

// OutputConfig is one output of a door; Type says which fields apply.
type OutputConfig struct {
	// Type is gpio (a relay), wiegand, webhook or mqtt.
	Type string `yaml:"type"`
	// gpio and wiegand: the GPIO character device, e.g. gpiochip0.
	Chip string `yaml:"chip"`
	// gpio: the relay's line, its active level and pulse (default 1s).
	Line      *int          `yaml:"line"`
	ActiveLow bool          `yaml:"active_low"`
	Pulse     time.Duration `yaml:"pulse"`
	// wiegand: data lines, frame format (26 or 34), facility code, pulse
	// width (default 80µs) and interval between bits (default 2ms).
	D0         *int          `yaml:"d0"`
	D1         *int          `yaml:"d1"`
	Format     int           `yaml:"format"`
	Facility   uint32        `yaml:"facility"`
	PulseWidth time.Duration `yaml:"pulse_width"`
	Interval   time.Duration `yaml:"interval"`
	// webhook: where, and the shared secret of its signature.
	URL     string        `yaml:"url"`
	Secret  string        `yaml:"secret"`
	Timeout time.Duration `yaml:"timeout"`
}

// schedule converts the schedule; nil when absent.
func (s *ScheduleConfig) schedule() (*door.Schedule, error) {
	if s == nil {
		return nil, nil
	}
	out := &door.Schedule{Location: time.Local}
	if s.TimeZone != "" {
		loc, err := time.LoadLocation(s.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("timezone %q: %v", s.TimeZone, err)
		}
		out.Location = loc
	}
	if len(s.Weekly) == 0 {
		return nil, fmt.Errorf("weekly: no window (a door without schedule is open at all times: leave schedule out)")
	}
	for i, w := range s.Weekly {
		days, err := door.ParseDays(w.Days)
		if err != nil {
			return nil, fmt.Errorf("weekly[%d].days: %v", i, err)
		}
		from, err := door.ParseClock(w.From)
		if err != nil {
			return nil, fmt.Errorf("weekly[%d].from: %v", i, err)
		}
		to, err := door.ParseClock(w.To)
		if err != nil {
			return nil, fmt.Errorf("weekly[%d].to: %v", i, err)
		}
		if to <= from {
			return nil, fmt.Errorf("weekly[%d]: to %s is not after from %s (a window does not cross midnight: write two)", i, w.To, w.From)
		}
		out.Windows = append(out.Windows, door.Window{Days: days, From: from, To: to})
	}
	for i, h := range s.Holidays {
		d, err := door.ParseDate(h)
		if err != nil {
			return nil, fmt.Errorf("holidays[%d]: %v", i, err)
		}
		out.Holidays = append(out.Holidays, d)
	}
	return out, nil
}

// doorConfig converts the entry's rules.
func (d DoorConfig) doorConfig(def service.Threshold) (door.Config, error) {
	sched, err := d.Schedule.schedule()
	if err != nil {
		return door.Config{}, fmt.Errorf("schedule.%w", err)
	}
	t, err := service.ParseThreshold(d.Threshold, def)
	if err != nil {
		return door.Config{}, fmt.Errorf("threshold: %w", err)
	}
	return door.Config{
		ID: d.ID, Cameras: d.Cameras, Threshold: t, Cooldown: d.Cooldown,
		Rules: door.Rules{Galleries: d.Galleries, Schedule: sched, RequireLiveness: d.RequireLiveness == nil || *d.RequireLiveness},
	}, nil
}

func validateDoors(cfg Config, bad func(field, format string, args ...any)) {
	cams := map[string]bool{}
	for _, c := range cfg.Cameras {
		cams[c.ID] = true
	}
	seen := map[string]bool{}
	lines := map[string]string{} // "chip/line" → the output using it
	for i, d := range cfg.Doors {
		field := fmt.Sprintf("doors[%d]", i)
		checkEntryID(field, "door", d.ID, seen, bad)
		for j, c := range d.Cameras {
			if !cams[c] {
				bad(fmt.Sprintf("%s.cameras[%d]", field, j), "unknown camera %q (cameras: lists %s)", c, quotedList(cfg.Cameras))
			}
		}
		if _, err := d.doorConfig(service.DefaultThreshold); err != nil {
			bad(field, "%v", err)
		}
		if d.Cooldown < 0 {
			bad(field+".cooldown", "must not be negative")
		}
		if len(d.Outputs) == 0 {
			bad(field+".outputs", "none: a door needs at least one output (gpio, wiegand, webhook or mqtt)")
		}
		for j, o := range d.Outputs {
			validateOutput(cfg, fmt.Sprintf("%s.outputs[%d]", field, j), o, lines, bad)
		}
	}
}

func quotedList(cams []CameraConfig) string {
	if len(cams) == 0 {
		return "none"
	}
	var ids []string
	for _, c := range cams {
		ids = append(ids, fmt.Sprintf("%q", c.ID))
	}
	return fmt.Sprint(ids)
}

func validateOutput(cfg Config, field string, o OutputConfig, lines map[string]string, bad func(field, format string, args ...any)) {
	claim := func(name string, line *int) {
		if line == nil {
			bad(field+"."+name, "required")
			return
		}
		if *line < 0 {
			bad(field+"."+name, "line %d is negative", *line)
			return
		}
		key := fmt.Sprintf("%s/%d", o.Chip, *line)
		if other, ok := lines[key]; ok {
			bad(field+"."+name, "line %d of %s is already used by %s", *line, o.Chip, other)
			return
		}
		lines[key] = field + "." + name
	}
	switch o.Type {
	case "gpio":
		if o.Chip == "" {
			bad(field+".chip", "required (e.g. gpiochip0)")
		}
		claim("line", o.Line)
		if o.Pulse != 0 && (o.Pulse < 10*time.Millisecond || o.Pulse > time.Minute) {
			bad(field+".pulse", "%v: want 10ms to 1m", o.Pulse)
		}
	case "wiegand":
		if o.Chip == "" {
			bad(field+".chip", "required (e.g. gpiochip0)")
		}
		claim("d0", o.D0)
		claim("d1", o.D1)
		if o.Format != 26 && o.Format != 34 {
			bad(field+".format", "%d: want 26 or 34", o.Format)
		} else if (o.Format == 26 && o.Facility > 255) || o.Facility > 65535 {
			bad(field+".facility", "%d does not fit a %d-bit frame", o.Facility, o.Format)
		}
		if o.PulseWidth != 0 && (o.PulseWidth < 20*time.Microsecond || o.PulseWidth > 500*time.Microsecond) {
			bad(field+".pulse_width", "%v: want 20µs to 500µs", o.PulseWidth)
		}
		if o.Interval != 0 && (o.Interval < 200*time.Microsecond || o.Interval > 20*time.Millisecond) {
			bad(field+".interval", "%v: want 200µs to 20ms", o.Interval)
		}
	case "webhook":
		if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(field+".url", "want an http(s) URL")
		}
		if len(o.Secret) < 16 {
			bad(field+".secret", "required, at least 16 characters (the receiver checks X-Faced-Signature with it)")
		}
		if o.Timeout < 0 {
			bad(field+".timeout", "must not be negative")
		}
	case "mqtt":
		if !cfg.MQTT.Enabled() {
			bad(field, "an mqtt output needs fleet sync: set mqtt.url")
		}
	default:
		bad(field+".type", "%q: want gpio, wiegand, webhook or mqtt", o.Type)
	}
}

// openDoors builds the doors and their outputs, starts the webhook
// workers and hooks the doors to the cameras' decisions.
func (d *Daemon) openDoors(ctx context.Context, opts Options, syncCfg fleetsync.Config, logger *slog.Logger) error {
	chip := opts.GPIO
	if chip == nil {
		chip = door.GPIOCDev{}
	}
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var doors []*door.Door
	var built []door.Output
	fail := func(err error) error {
		stop()
		wg.Wait()
		for _, o := range built {
			o.Close()
		}
		return err
	}
	for i, dc := range opts.Doors {
		cfg, err := dc.doorConfig(opts.DefaultThreshold)
		if err != nil {
			return fail(fmt.Errorf("doors[%d]: %w", i, err))
		}
		var outputs []door.Output
		for j, oc := range dc.Outputs {
			o, err := d.output(dc.ID, j, oc, chip, syncCfg, logger)
			if err != nil {
				return fail(fmt.Errorf("doors[%d].outputs[%d]: %w", i, j, err))
			}
			if w, ok := o.(*door.Webhook); ok {
				wg.Add(1)
				go func() { defer wg.Done(); w.Run(wctx) }()
			}
			if err := o.Health(); err != nil {
				logger.Warn("door output unhealthy", "door", dc.ID, "output", oc.Type, "err", err)
			}
			outputs = append(outputs, o)
			built = append(built, o)
		}
		doors = append(doors, door.NewDoor(cfg, outputs))
	}
	c, err := door.NewController(d.Service, doors, logger)
	if err != nil {
		return fail(err)
	}
	if err := d.auditRules(ctx, opts.Doors); err != nil {
		return fail(err)
	}
	d.Doors = c
	d.stopDoors = func() { stop(); wg.Wait(); c.Close() }
	if d.Sync != nil {
		d.Sync.SetDoorStatus(func() []fleetsync.DoorInfo {
			var out []fleetsync.DoorInfo
			for _, dr := range c.Doors() {
				s := dr.Status(time.Now())
				info := fleetsync.DoorInfo{ID: s.ID, Healthy: s.Healthy}
				for _, o := range s.Outputs {
					if o.Error != "" {
						info.Error = strings.TrimPrefix(info.Error+"; ", "; ") + o.Kind + ": " + o.Error
					}
				}
				out = append(out, info)
			}
			return out
		})
	}
	if d.Cameras != nil {
		d.Cameras.OnDecision(func(ctx context.Context, cameraID string, cd camera.Decision) {
			b := cd.Best.Box
			c.FromCamera(ctx, door.CameraDecision{
				CameraID: cameraID, TrackID: cd.TrackID, Matched: cd.Matched, PersonID: cd.Person.PersonID,
				FaceID: cd.Person.FaceID, Confidence: cd.Person.Confidence, Liveness: cd.Liveness, Live: cd.Live,
				Box: [4]float32{b.X1, b.Y1, b.X2, b.Y2},
			})
		})
	}
	logger.Info("doors on", "count", len(doors))
	return nil
}

// output builds one output of a door.
func (d *Daemon) output(doorID string, index int, oc OutputConfig, chip door.Chip, syncCfg fleetsync.Config, logger *slog.Logger) (door.Output, error) {
	switch oc.Type {
	case "webhook":
		return door.NewWebhook(door.WebhookConfig{DoorID: doorID, Index: index, URL: oc.URL, Secret: oc.Secret, Timeout: oc.Timeout}, d.Store, logger)
	case "mqtt":
		return door.NewMQTT(doorID, fleetsync.DoorTopic(syncCfg, doorID)), nil
	case "gpio":
		return door.NewRelay(chip, door.RelayConfig{DoorID: doorID, Chip: oc.Chip, Line: *oc.Line, ActiveLow: oc.ActiveLow, Pulse: oc.Pulse})
	case "wiegand":
		return door.NewWiegand(chip, door.WiegandConfig{DoorID: doorID, Chip: oc.Chip, D0: *oc.D0, D1: *oc.D1,
			Format: door.Format(oc.Format), Facility: oc.Facility, PulseWidth: oc.PulseWidth, Interval: oc.Interval})
	}
	return nil, fmt.Errorf("unknown output type %q", oc.Type)
}

// RulesChanged is the decision of the event that audits a change of a
// door's configuration.
const RulesChanged = "rules_changed"

// auditRules records an event for each door whose configuration differs
// from the one last recorded (or was never recorded): rules change only
// through the configuration file, so each start compares. The event's
// meta holds the configuration, webhook secrets masked, and its hash.
func (d *Daemon) auditRules(ctx context.Context, doors []DoorConfig) error {
	for _, dc := range doors {
		masked := dc
		masked.Outputs = append([]OutputConfig(nil), dc.Outputs...)
		for i := range masked.Outputs {
			if masked.Outputs[i].Secret != "" {
				masked.Outputs[i].Secret = "***"
			}
		}
		raw, err := json.Marshal(masked)
		if err != nil {
			return fmt.Errorf("door %s: audit: %w", dc.ID, err)
		}
		sum := sha256.Sum256(raw)
		hash := hex.EncodeToString(sum[:])
		page, err := d.Store.ListEvents(ctx, store.EventQuery{DoorIDs: []string{dc.ID}, Decision: RulesChanged, Limit: 1})
		if err != nil {
			return fmt.Errorf("door %s: audit: %w", dc.ID, err)
		}
		if len(page.Items) > 0 && page.Items[0].Meta["rules_sha256"] == hash {
			continue
		}
		var rules map[string]any
		if err := json.Unmarshal(raw, &rules); err != nil {
			return fmt.Errorf("door %s: audit: %w", dc.ID, err)
		}
		reason := "the door's configuration changed"
		if len(page.Items) == 0 {
			reason = "the door's configuration was recorded for the first time"
		}
		_, err = d.Service.RecordEvent(ctx, store.Event{
			Door: &store.DoorDecision{DoorID: dc.ID, Decision: RulesChanged, Reason: reason},
			Meta: store.Metadata{"rules_sha256": hash, "rules": rules},
		}, nil)
		if err != nil {
			return fmt.Errorf("door %s: audit: %w", dc.ID, err)
		}
	}
	return nil
}
