package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "faced.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultConfigValidates(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig does not validate: %v", err)
	}
	if cfg.DataDir != "./data" || cfg.Listen != "127.0.0.1:8080" || !reflect.DeepEqual(cfg.Vision, DefaultVision()) {
		t.Errorf("DefaultConfig = %+v", cfg)
	}
	if cfg.TLS.Enabled() {
		t.Error("TLS on by default")
	}
}

// An empty file, or one with only comments, is the defaults.
func TestLoadConfigEmpty(t *testing.T) {
	for _, text := range []string{"", "# nothing\n", "---\n"} {
		cfg, err := LoadConfig(writeConfig(t, text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if !reflect.DeepEqual(cfg, DefaultConfig()) {
			t.Errorf("%q: got %+v, want the defaults", text, cfg)
		}
	}
}

const fullYAML = `
data_dir: /var/lib/faced
listen: 0.0.0.0:8443
log_level: debug
tls:
  cert_file: /etc/faced/tls.crt
  key_file: /etc/faced/tls.key
vision:
  backend: tflite
  device: edgetpu
  threads: 4
  sessions: 3
  detector: blazeface-front-onnx
  landmarks: ""
  align: keypoints
  embedder: arcface-r512
  liveness: ""
  attributes: false
  min_score: 0.5
  deps_dir: /opt/faced
  edgetpu_library: /usr/lib/libedgetpu.so.1
  max_image_bytes: 5000000
  max_image_pixels: 20000000
api:
  max_body_bytes: 1048576
  request_timeout: 1m30s
  max_in_flight: 2
  max_queue: 16
  max_connections: 64
  idle_timeout: 15s
fetch:
  allow_hosts: [cams.example.internal, "10.0.0.5:8080"]
  max_bytes: 2097152
  timeout: 2s
service:
  default_gallery: staff
  keep_images: true
  threshold: "0.9"
keys:
  - id: 0123456789ab
    name: door-1
    secret_sha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
    scopes: [read, write]
  - id: ba9876543210
    name: admin console
    secret_sha256: 486EA46224D1BB4FB680F34F7C9AD96A8F24EC88BE73EA8E5A6C65260E9CB8A7
    scopes: [admin]
mqtt:
  url: ssl://fleet.example.internal:8883
  device_id: door-1
  topic_prefix: acme/faced
  username: door-1
  password: s3cret
  ca_file: /etc/faced/fleet-ca.pem
  cert_file: /etc/faced/door-1.pem
  key_file: /etc/faced/door-1.key
  keepalive: 20s
  connect_timeout: 5s
  max_reconnect_interval: 30s
  status_interval: 2m
  outbox_max_messages: 5000
  outbox_max_bytes: 1000000
  shutdown_flush: 3s
store:
  retention:
    events_max_age: 720h
    events_max_count: 50000
    images_max_age: 8760h
    images_max_count: 2000
    interval: 10m
cameras:
  - id: door-cam
    url: rtsp://admin:pw@10.0.0.7/stream1
    fps: 8
    roi: {x: 0.1, y: 0, w: 0.8, h: 1}
    min_face_px: 60
    galleries: [staff]
    threshold: strict
    require_liveness: false
    keep_crops: true
    repeat_after: 1m
doors:
  - id: front
    cameras: [door-cam]
    galleries: [staff]
    schedule:
      timezone: Europe/Berlin
      weekly:
        - {days: [mon-fri], from: "07:00", to: "19:00"}
      holidays: ["2026-12-25"]
    require_liveness: true
    threshold: strict
    cooldown: 10s
    outputs:
      - {type: gpio, chip: gpiochip0, line: 17, pulse: 2s}
      - {type: wiegand, chip: gpiochip0, d0: 22, d1: 23, format: 26, facility: 18, pulse_width: 80us, interval: 2ms}
      - {type: webhook, url: "https://panel.example.internal/faced", secret: "a-long-enough-shared-secret"}
      - {type: mqtt}
`

func TestLoadConfigFull(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, fullYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		DataDir:  "/var/lib/faced",
		Listen:   "0.0.0.0:8443",
		LogLevel: "debug",
		TLS:      TLSConfig{CertFile: "/etc/faced/tls.crt", KeyFile: "/etc/faced/tls.key"},
		Vision: VisionConfig{
			Backend: "tflite", Device: "edgetpu", Threads: 4, Sessions: 3,
			Detector: "blazeface-front-onnx", Align: "keypoints", Embedder: "arcface-r512",
			MinScore: 0.5, DepsDir: "/opt/faced", EdgeTPULibrary: "/usr/lib/libedgetpu.so.1",
			MaxImageBytes: 5000000, MaxImagePixels: 20000000,
		},
		API:     APIConfig{MaxBodyBytes: 1 << 20, RequestTimeout: 90 * time.Second, MaxInFlight: 2, MaxQueue: 16, MaxConnections: 64, IdleTimeout: 15 * time.Second},
		Fetch:   FetchConfig{AllowHosts: []string{"cams.example.internal", "10.0.0.5:8080"}, MaxBytes: 2 << 20, Timeout: 2 * time.Second},
		Service: ServiceConfig{DefaultGallery: "staff", KeepImages: true, Threshold: "0.9"},
		Keys: []KeyConfig{
			{ID: "0123456789ab", Name: "door-1", SecretSHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", Scopes: []string{"read", "write"}},
			{ID: "ba9876543210", Name: "admin console", SecretSHA256: "486EA46224D1BB4FB680F34F7C9AD96A8F24EC88BE73EA8E5A6C65260E9CB8A7", Scopes: []string{"admin"}},
		},
		MQTT: MQTTConfig{
			URL: "ssl://fleet.example.internal:8883", DeviceID: "door-1", TopicPrefix: "acme/faced",
			Username: "door-1", Password: "s3cret", CAFile: "/etc/faced/fleet-ca.pem",
			CertFile: "/etc/faced/door-1.pem", KeyFile: "/etc/faced/door-1.key",
			KeepAlive: 20 * time.Second, ConnectTimeout: 5 * time.Second, MaxReconnectInterval: 30 * time.Second,
			StatusInterval: 2 * time.Minute, OutboxMaxMessages: 5000, OutboxMaxBytes: 1000000, ShutdownFlush: 3 * time.Second,
		},
		Store: StoreConfig{Retention: RetentionConfig{EventsMaxAge: 30 * 24 * time.Hour, EventsMaxCount: 50000,
			ImagesMaxAge: 365 * 24 * time.Hour, ImagesMaxCount: 2000, Interval: 10 * time.Minute}},
		Cameras: []CameraConfig{{
			ID: "door-cam", URL: "rtsp://admin:pw@10.0.0.7/stream1", FPS: 8, ROI: &ROIConfig{X: 0.1, W: 0.8, H: 1},
			MinFacePx: 60, Galleries: []string{"staff"}, Threshold: "strict", RequireLiveness: new(false),
			KeepCrops: true, RepeatAfter: time.Minute,
		}},
		Doors: []DoorConfig{{
			ID: "front", Cameras: []string{"door-cam"}, Galleries: []string{"staff"},
			Schedule: &ScheduleConfig{TimeZone: "Europe/Berlin", Weekly: []WindowConfig{{Days: []string{"mon-fri"}, From: "07:00", To: "19:00"}},
				Holidays: []string{"2026-12-25"}},
			RequireLiveness: new(true), Threshold: "strict", Cooldown: 10 * time.Second,
			Outputs: []OutputConfig{
				{Type: "gpio", Chip: "gpiochip0", Line: new(17), Pulse: 2 * time.Second},
				{Type: "wiegand", Chip: "gpiochip0", D0: new(22), D1: new(23), Format: 26, Facility: 18, PulseWidth: 80 * time.Microsecond, Interval: 2 * time.Millisecond},
				{Type: "webhook", URL: "https://panel.example.internal/faced", Secret: "a-long-enough-shared-secret"},
				{Type: "mqtt"},
			},
		}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("LoadConfig:\n got %+v\nwant %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("full config does not validate: %v", err)
	}
	// Written back out and read again, nothing changes (durations are
	// written as "1m30s").
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "request_timeout: 1m30s") {
		t.Errorf("marshalled config lacks the duration as a string:\n%s", out)
	}
	again, err := LoadConfig(writeConfig(t, string(out)))
	if err != nil {
		t.Fatalf("reloading the marshalled config: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", again, want)
	}
}

// Settings absent from the file keep their defaults.
func TestLoadConfigPartial(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "api:\n  max_in_flight: 3\nvision:\n  threads: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.API.MaxInFlight = 3
	want.Vision.Threads = 2
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // substrings of the error
	}{
		{"unknown top-level field", "listen: 127.0.0.1:1\nlisten_addr: x\n", []string{"line 2", "listen_addr: unknown field"}},
		{"unknown nested field", "api:\n  request_timeout: 5s\n  tmeout: 5s\n", []string{"line 3", "api.tmeout: unknown field"}},
		{"unknown key field", "keys:\n  - id: 0123456789ab\n    secret: hunter2\n", []string{"line 3", "keys[0].secret: unknown field"}},
		{"unknown vision field", "vision:\n  backnd: tflite\n", []string{"vision.backnd: unknown field"}},
		{"bad duration", "api:\n  request_timeout: soon\n", []string{"line 2", "api.request_timeout:", "time.Duration"}},
		{"duration without unit", "fetch:\n  timeout: 30\n", []string{"fetch.timeout:"}},
		{"not a number", "api:\n  max_queue: many\n", []string{"api.max_queue:"}},
		{"flow style keeps yaml's message", "api: {tmeout: 5s}\n", []string{"field tmeout not found"}},
		{"syntax", "listen: [\n", []string{"yaml:"}},
		{"two documents", "listen: a:1\n---\nlisten: b:2\n", []string{"one YAML document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.text)
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(tc.want, "config: "+path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// Several problems: one line each, each saying where.
	path := writeConfig(t, "api:\n  tmeout: 5s\n  max_queue: x\n")
	_, err := LoadConfig(path)
	lines := strings.Split(fmt.Sprint(err), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two lines, got %q", err)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "config: "+path+": line ") {
			t.Errorf("line %q does not say where", l)
		}
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	key := func(mod func(*KeyConfig)) func(*Config) {
		return func(c *Config) {
			k := KeyConfig{ID: "0123456789ab", Name: "door", SecretSHA256: strings.Repeat("ab", 32), Scopes: []string{"read"}}
			mod(&k)
			c.Keys = append(c.Keys, k)
		}
	}
	for _, tc := range []struct {
		field string
		mod   func(*Config)
		want  string
	}{
		{"data_dir", func(c *Config) { c.DataDir = " " }, "config: data_dir: required"},
		{"listen", func(c *Config) { c.Listen = "" }, "config: listen: required"},
		{"listen", func(c *Config) { c.Listen = "localhost" }, "config: listen: want host:port"},
		{"listen", func(c *Config) { c.Listen = "127.0.0.1:http" }, `config: listen: port "http"`},
		{"listen", func(c *Config) { c.Listen = "127.0.0.1:70000" }, `config: listen: port "70000"`},
		{"log_level", func(c *Config) { c.LogLevel = "loud" }, `config: log_level: want debug, info, warn or error, got "loud"`},
		{"tls", func(c *Config) { c.TLS.CertFile = "c.pem" }, "config: tls: cert_file and key_file go together"},
		{"tls", func(c *Config) { c.TLS.KeyFile = "k.pem" }, "config: tls: cert_file and key_file go together"},
		{"vision.backend", func(c *Config) { c.Vision.Backend = "tensorflow" }, `config: vision.backend: unknown backend "tensorflow"`},
		{"vision.device", func(c *Config) { c.Vision.Device = "gpu" }, `config: vision.device: unknown device "gpu"`},
		{"vision.threads", func(c *Config) { c.Vision.Threads = -1 }, "config: vision.threads: must not be negative"},
		{"vision.sessions", func(c *Config) { c.Vision.Sessions = -1 }, "config: vision.sessions: must not be negative"},
		{"vision.min_score", func(c *Config) { c.Vision.MinScore = 1.5 }, "config: vision.min_score: want 0..1"},
		{"vision.align", func(c *Config) { c.Vision.Align = "eyes" }, `config: vision.align: want keypoints, landmarks or empty, got "eyes"`},
		{"vision.detector", func(c *Config) { c.Vision.Detector = "" }, "config: vision.detector: required"},
		{"vision.detector", func(c *Config) { c.Vision.Detector = "yolo9000" }, `config: vision.detector: unknown model "yolo9000"`},
		{"vision.detector", func(c *Config) { c.Vision.Detector = "arcface-r512" }, `config: vision.detector: model "arcface-r512" is for task embed, want detect`},
		{"vision.embedder", func(c *Config) { c.Vision.Embedder = "blazeface-front-onnx" }, `config: vision.embedder: model "blazeface-front-onnx" is for task detect, want embed`},
		{"vision.embedder", func(c *Config) { c.Vision.Embedder = "arcface-r512+landmark68" }, `config: vision.embedder: model "landmark68" is for task landmarks, want embed`},
		{"vision.embedder", func(c *Config) { c.Vision.Embedder = "arcface-r512+arcface-r512" }, `config: vision.embedder: "arcface-r512+arcface-r512" fuses embedder arcface-r512 with itself: name each embedder once`},
		{"vision.embedder", func(c *Config) { c.Vision.Embedder = "arcface-r512+mobilefacenet-192+arcface-r512" }, `config: vision.embedder: "arcface-r512+mobilefacenet-192+arcface-r512" fuses embedder arcface-r512 with itself`},
		{"vision.embedder", func(c *Config) { c.Vision.Embedder = "mobilefacenet-192-onnx+arcface-r512" }, `config: vision.embedder: no calibration for the fused embedders "mobilefacenet-192-onnx+arcface-r512" (calibrated: arcface-r512+mobilefacenet-192, arcface-r512+mobilefacenet-192-onnx, arcface-r512+mobilefacenet-192-onnx+dlib-resnet-128; measure others with faced eval verify --embedder mobilefacenet-192-onnx+arcface-r512)`},
		// Three catalogue embedders are a valid setting, refused only for
		// want of a calibration (the integrator measures combinations).
		{"vision.embedder", func(c *Config) { c.Vision.Embedder = "arcface-r512+mobilefacenet-192-onnx+mobilefacenet-192" }, `config: vision.embedder: no calibration for the fused embedders "arcface-r512+mobilefacenet-192-onnx+mobilefacenet-192"`},
		{"vision.embedder", func(c *Config) { c.Vision.Embedder = "arcface-r512+mobilefacenet-192-onnx+ghost" }, `config: vision.embedder: unknown model "ghost"`},
		{"vision.flip", func(c *Config) { c.Vision.Embedder, c.Vision.Flip = "mobilefacenet-192-onnx", true }, `config: vision.flip: no calibration for "mobilefacenet-192-onnx" with flip: turn flip off, or measure it with faced eval verify --flip`},
		{"vision.embedder", func(c *Config) { c.Vision.Embedder = "a+b+c+d" }, `config: vision.embedder: "a+b+c+d" fuses 4 embedders: at most 3 can be fused`},
		{"vision.embedder", func(c *Config) { c.Vision.Embedder = "arcface-r512+" }, `config: vision.embedder: "arcface-r512+": want one embedder, or up to 3 joined by '+'`},
		{"vision.embedder", func(c *Config) { c.Vision.Embedder = "+arcface-r512" }, `config: vision.embedder: "+arcface-r512": want one embedder, or up to 3 joined by '+'`},
		{"vision.max_image_bytes", func(c *Config) { c.Vision.MaxImageBytes = -1 }, "config: vision.max_image_bytes: must not be negative"},
		{"vision.max_image_pixels", func(c *Config) { c.Vision.MaxImagePixels = -1 }, "config: vision.max_image_pixels: must not be negative"},
		{"api.max_body_bytes", func(c *Config) { c.API.MaxBodyBytes = 0 }, "config: api.max_body_bytes: must be positive"},
		{"api.request_timeout", func(c *Config) { c.API.RequestTimeout = 0 }, "config: api.request_timeout: must be positive"},
		{"api.request_timeout", func(c *Config) { c.API.RequestTimeout = -time.Second }, "config: api.request_timeout: must be positive"},
		{"api.max_in_flight", func(c *Config) { c.API.MaxInFlight = -1 }, "config: api.max_in_flight: must not be negative"},
		{"api.max_queue", func(c *Config) { c.API.MaxQueue = -1 }, "config: api.max_queue: must not be negative"},
		{"api.max_connections", func(c *Config) { c.API.MaxConnections = 0 }, "config: api.max_connections: must be positive"},
		{"api.idle_timeout", func(c *Config) { c.API.IdleTimeout = 0 }, "config: api.idle_timeout: must be positive"},
		{"fetch.allow_hosts[1]", func(c *Config) { c.Fetch.AllowHosts = []string{"ok.example", "https://cams.example/"} }, `config: fetch.allow_hosts[1]: "https://cams.example/": want a host name`},
		{"fetch.allow_hosts[0]", func(c *Config) { c.Fetch.AllowHosts = []string{"*.example"} }, `config: fetch.allow_hosts[0]: "*.example"`},
		{"fetch.allow_hosts[0]", func(c *Config) { c.Fetch.AllowHosts = []string{""} }, `config: fetch.allow_hosts[0]: ""`},
		{"fetch.allow_hosts[0]", func(c *Config) { c.Fetch.AllowHosts = []string{"cams.example:0"} }, `config: fetch.allow_hosts[0]: "cams.example:0": port "0"`},
		{"fetch.max_bytes", func(c *Config) { c.Fetch.MaxBytes = 0 }, "config: fetch.max_bytes: must be positive"},
		{"fetch.timeout", func(c *Config) { c.Fetch.Timeout = 0 }, "config: fetch.timeout: must be positive"},
		{"service.default_gallery", func(c *Config) { c.Service.DefaultGallery = "my gallery" }, `config: service.default_gallery: "my gallery" is not a gallery name`},
		{"service.threshold", func(c *Config) { c.Service.Threshold = "lax" }, `config: service.threshold: want low, medium, strict, none or a confidence from 0 to 1, got "lax"`},
		{"service.threshold", func(c *Config) { c.Service.Threshold = "1.5" }, `config: service.threshold: want low, medium`},
		{"mqtt.url", func(c *Config) { c.MQTT.URL = "http://broker:1883" }, `config: mqtt.url: broker url "http://broker:1883": want tcp://host:port`},
		{"mqtt.url", func(c *Config) { c.MQTT.URL = "tcp://broker" }, `config: mqtt.url: broker url "tcp://broker": want host and port`},
		{"mqtt.device_id", func(c *Config) { c.MQTT.DeviceID = "door/1" }, `config: mqtt.device_id: "door/1": want 1-64 of`},
		{"mqtt.topic_prefix", func(c *Config) { c.MQTT.TopicPrefix = "faced/#" }, `config: mqtt.topic_prefix: topic prefix level "#"`},
		{"mqtt.cert_file", func(c *Config) { c.MQTT.URL, c.MQTT.CertFile = "ssl://b:8883", "c.pem" }, "config: mqtt.cert_file: cert_file and key_file go together"},
		{"mqtt.keepalive", func(c *Config) { c.MQTT.KeepAlive = 0 }, "config: mqtt.keepalive: must be positive"},
		{"mqtt.outbox_max_messages", func(c *Config) { c.MQTT.OutboxMaxMessages = 0 }, "config: mqtt.outbox_max_messages: must be positive"},
		{"mqtt.outbox_max_bytes", func(c *Config) { c.MQTT.OutboxMaxBytes = -1 }, "config: mqtt.outbox_max_bytes: must be positive"},
		{"mqtt.shutdown_flush", func(c *Config) { c.MQTT.ShutdownFlush = -time.Second }, "config: mqtt.shutdown_flush: must not be negative"},
		{"dialects.findface.listen", func(c *Config) { c.Dialects.FindFace.Listen = "8081" }, "config: dialects.findface.listen: want host:port"},
		{"dialects.trueface.listen", func(c *Config) { c.Dialects.Trueface.Listen = "127.0.0.1:8080" }, "config: dialects.trueface.listen: 127.0.0.1:8080 is already listen's address"},
		{"dialects.findface.listen", func(c *Config) { c.Dialects.MiiCloud.Listen, c.Dialects.FindFace.Listen = ":8081", ":8081" }, "config: dialects.findface.listen: :8081 is already dialects.miicloud.listen's address"},
		{"mqtt.url", func(c *Config) { c.MQTT.URL, c.MQTT.Password = "tcp://u:p@b:1883", "q" }, "config: mqtt.url: carries a user name or password and mqtt.username or mqtt.password is set too"},
		{"store.retention.events_max_age", func(c *Config) { c.Store.Retention.EventsMaxAge = -time.Hour }, "config: store.retention.events_max_age: must not be negative"},
		{"store.retention.events_max_count", func(c *Config) { c.Store.Retention.EventsMaxCount = -1 }, "config: store.retention.events_max_count: must not be negative"},
		{"store.retention.images_max_age", func(c *Config) { c.Store.Retention.ImagesMaxAge = -time.Hour }, "config: store.retention.images_max_age: must not be negative"},
		{"store.retention.images_max_count", func(c *Config) { c.Store.Retention.ImagesMaxCount = -1 }, "config: store.retention.images_max_count: must not be negative"},
		{"store.retention.interval", func(c *Config) { c.Store.Retention.Interval = time.Second }, "config: store.retention.interval: must be at least 1m0s"},
		{"keys[0].id", key(func(k *KeyConfig) { k.ID = "door-1" }), `config: keys[0].id: want 12 lowercase hex digits`},
		{"keys[0].id", key(func(k *KeyConfig) { k.ID = "0123456789AB" }), `config: keys[0].id: want 12 lowercase hex digits`},
		{"keys[0].name", key(func(k *KeyConfig) { k.Name = "" }), "config: keys[0].name: required"},
		{"keys[0].name", key(func(k *KeyConfig) { k.Name = "a\nb" }), "config: keys[0].name: contains a control character"},
		{"keys[0].secret_sha256", key(func(k *KeyConfig) { k.SecretSHA256 = "hunter2" }), "config: keys[0].secret_sha256: want 64 hex digits"},
		{"keys[0].secret_sha256", key(func(k *KeyConfig) { k.SecretSHA256 = strings.Repeat("zz", 32) }), "config: keys[0].secret_sha256: want 64 hex digits"},
		{"keys[0].secret_sha256", key(func(k *KeyConfig) { k.SecretSHA256 = strings.Repeat("ab", 31) }), "config: keys[0].secret_sha256: want 64 hex digits"},
		{"keys[0].scopes", key(func(k *KeyConfig) { k.Scopes = nil }), "config: keys[0].scopes: required"},
		{"keys[0].scopes", key(func(k *KeyConfig) { k.Scopes = []string{"read", "root"} }), `config: keys[0].scopes: unknown scope "root"`},
		{"keys[1].scopes", func(c *Config) {
			key(func(k *KeyConfig) {})(c)
			key(func(k *KeyConfig) {
				k.ID = "ba9876543210"
				k.SecretSHA256 = strings.Repeat("cd", 32)
				k.Scopes = []string{"root"}
			})(c)
		}, `config: keys[1].scopes: unknown scope "root"`},
		{"keys[1].id", func(c *Config) {
			key(func(k *KeyConfig) {})(c)
			key(func(k *KeyConfig) { k.SecretSHA256 = strings.Repeat("cd", 32) })(c)
		}, "config: keys[1].id: 0123456789ab is also keys[0]'s id"},
		{"keys[1].secret_sha256", func(c *Config) {
			key(func(k *KeyConfig) {})(c)
			key(func(k *KeyConfig) { k.ID = "ba9876543210"; k.SecretSHA256 = strings.Repeat("AB", 32) })(c)
		}, "config: keys[1].secret_sha256: same as keys[0]'s"},
		{"cameras[0].url", func(c *Config) { c.Cameras = []CameraConfig{{ID: "door-cam", URL: "ftp://cam/1"}} }, "config: cameras[0].url: url ftp://cam/1: scheme must be"},
		{"cameras[0].id", func(c *Config) { c.Cameras = []CameraConfig{{ID: "door cam", URL: "rtsp://cam/1"}} }, `config: cameras[0].id: "door cam": want 1-64 letters`},
		{"cameras[1].id", func(c *Config) {
			c.Cameras = []CameraConfig{{ID: "a", URL: "rtsp://cam/1"}, {ID: "a", URL: "rtsp://cam/2"}}
		}, `config: cameras[1].id: "a" is used by another camera`},
		{"cameras[0].fps", func(c *Config) { c.Cameras = []CameraConfig{{ID: "a", URL: "rtsp://cam/1", FPS: 120}} }, "config: cameras[0].fps: 120: want 0 < fps <= 60"},
		{"cameras[0].roi", func(c *Config) {
			c.Cameras = []CameraConfig{{ID: "a", URL: "rtsp://cam/1", ROI: &ROIConfig{X: 0.5, W: 0.8, H: 1}}}
		}, "config: cameras[0].roi:"},
		{"cameras[0].threshold", func(c *Config) { c.Cameras = []CameraConfig{{ID: "a", URL: "rtsp://cam/1", Threshold: "loose"}} }, "config: cameras[0].threshold:"},
		{"doors[0].cameras[0]", func(c *Config) {
			c.Doors = []DoorConfig{{ID: "front", Cameras: []string{"nope"}, Outputs: []OutputConfig{{Type: "gpio", Chip: "gpiochip0", Line: new(1)}}}}
		}, `config: doors[0].cameras[0]: unknown camera "nope"`},
		{"doors[0].outputs[1].d0", func(c *Config) {
			c.Doors = []DoorConfig{{ID: "front", Outputs: []OutputConfig{
				{Type: "gpio", Chip: "gpiochip0", Line: new(17)},
				{Type: "wiegand", Chip: "gpiochip0", D0: new(17), D1: new(18), Format: 26},
			}}}
		}, "config: doors[0].outputs[1].d0: line 17 of gpiochip0 is already used by doors[0].outputs[0].line"},
		{"doors[0]", func(c *Config) {
			c.Doors = []DoorConfig{{ID: "front", Schedule: &ScheduleConfig{Weekly: []WindowConfig{{Days: []string{"mon"}, From: "19:00", To: "07:00"}}},
				Outputs: []OutputConfig{{Type: "gpio", Chip: "gpiochip0", Line: new(1)}}}}
		}, "config: doors[0]: schedule.weekly[0]: to 07:00 is not after from 19:00"},
		{"doors[0].outputs[0].secret", func(c *Config) {
			c.Doors = []DoorConfig{{ID: "front", Outputs: []OutputConfig{{Type: "webhook", URL: "https://x.example/h", Secret: "short"}}}}
		}, "config: doors[0].outputs[0].secret: required, at least 16 characters"},
		{"doors[0].outputs[0]", func(c *Config) {
			c.Doors = []DoorConfig{{ID: "front", Outputs: []OutputConfig{{Type: "mqtt"}}}}
		}, "config: doors[0].outputs[0]: an mqtt output needs fleet sync: set mqtt.url"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want exactly one starting %q", err, tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("error %q: FieldError.Field = %v, want %q", err, fe, tc.field)
			}
		})
	}
}

// Validate reports every problem at once, one line each.
func TestValidateAll(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "nowhere"
	cfg.API.RequestTimeout = 0
	cfg.Keys = []KeyConfig{{ID: "x", Name: "n", SecretSHA256: "y", Scopes: []string{"root"}}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, f := range []string{"listen", "api.request_timeout", "keys[0].id", "keys[0].secret_sha256", "keys[0].scopes"} {
		if !strings.Contains(err.Error(), "config: "+f+": ") {
			t.Errorf("error lacks %s:\n%v", f, err)
		}
	}
}

// TestDialectListen: a dialect's own listener is a setting like any other
// (file and environment), and port 0 may repeat.
func TestDialectListen(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "dialects:\n  findface: {listen: \"127.0.0.1:8081\"}\n  trueface: {listen: \"127.0.0.1:0\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyEnv(&cfg, []string{"FACED_DIALECTS_USERS_LISTEN=127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range cfg.Dialects.ByName() {
		got[d.Name] = d.Listen
	}
	if got["findface"] != "127.0.0.1:8081" || got["trueface"] != "127.0.0.1:0" || got["users"] != "127.0.0.1:0" || got["miicloud"] != "" || len(got) != 5 {
		t.Fatalf("dialects: %v", got)
	}
}
