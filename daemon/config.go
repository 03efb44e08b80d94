package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	// gopkg.in/yaml.v3 is the de-facto standard YAML library for Go (the
	// standard library has none). Needed for typo-proof config files:
	// Decoder.KnownFields rejects unknown keys, and it decodes durations
	// such as "30s" into time.Duration. It has no dependencies of its own.
	"gopkg.in/yaml.v3"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/accel/backends"
	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Config is everything `faced serve` can be told, as read from its YAML
// file (`faced serve --config FILE`; the package installs
// /etc/faced/faced.yaml, and `faced config default` prints every setting
// with its default, daemon/default.yaml). The settings are layered, each
// overriding the one before: DefaultConfig, the file (LoadConfig), the
// FACED_* environment variables (ApplyEnv: api.request_timeout is
// FACED_API_REQUEST_TIMEOUT), the flags given explicitly on the command
// line. Validate checks the result once every layer is applied; Loader
// does all of it, again at every reload (SIGHUP).
//
// Relative paths (data_dir, tls.*) are relative to the daemon's working
// directory, as on the command line, not to the file.
//
// Example:
//
//	data_dir: /var/lib/faced
//	listen: 0.0.0.0:8443
//	log_level: info
//	tls:
//	  cert_file: /etc/faced/tls.crt
//	  key_file: /etc/faced/tls.key
//	vision:
//	  backend: onnxrt
//	  threads: 2
//	api:
//	  request_timeout: 30s
//	  max_in_flight: 4
//	fetch:
//	  allow_hosts: [cams.example.internal]
//	service:
//	  default_gallery: staff
//	keys:
//	  - id: 0123456789ab
//	    name: door-1
//	    secret_sha256: 7bec02573d6b65c765a361dfb07ffd1356e984a69162b7e52f4ffd97d3e32903
//	    scopes: [read, write]
type Config struct {
	// DataDir holds the store and the control socket (flag --data-dir).
	DataDir string `yaml:"data_dir"`
	// Listen is the HTTP(S) address, host:port (flag --listen); port 0
	// picks a free one (logged).
	Listen string `yaml:"listen"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// TLS serves HTTPS when both files are set.
	TLS TLSConfig `yaml:"tls"`
	// Vision chooses the models and runtime (the model flags of serve).
	Vision VisionConfig `yaml:"vision"`
	// API bounds requests.
	API APIConfig `yaml:"api"`
	// Fetch allows photos given as URLs (off unless allow_hosts is set).
	Fetch FetchConfig `yaml:"fetch"`
	// Service tunes enrolment.
	Service ServiceConfig `yaml:"service"`
	// Dialects can each also be served at the root of a listener of their
	// own (see DialectsConfig).
	Dialects DialectsConfig `yaml:"dialects"`
	// Keys are API keys the daemon upserts into the store at start (see
	// KeyConfig).
	Keys []KeyConfig `yaml:"keys"`
	// MQTT syncs with the fleet backend (off unless mqtt.url is set).
	MQTT MQTTConfig `yaml:"mqtt"`
	// Store bounds what the store keeps.
	Store StoreConfig `yaml:"store"`
	// Cameras are the video sources the daemon watches (CameraConfig).
	Cameras []CameraConfig `yaml:"cameras"`
	// Doors turn decisions into openings (DoorConfig).
	Doors []DoorConfig `yaml:"doors"`
}

// StoreConfig is the store's part of the configuration.
type StoreConfig struct {
	Retention RetentionConfig `yaml:"retention"`
}

// RetentionConfig bounds history: recorded events (with their snapshots)
// and the face crops kept by service.keep_images. The daemon prunes once
// at start and then every Interval (Pruner); 0 in a bound means no limit.
type RetentionConfig struct {
	// EventsMaxAge and EventsMaxCount expire events older than the age or
	// beyond the newest count, whichever removes more.
	EventsMaxAge   time.Duration `yaml:"events_max_age"`
	EventsMaxCount int           `yaml:"events_max_count"`
	// ImagesMaxAge and ImagesMaxCount expire kept face crops by the face's
	// enrolment time, or beyond the newest count; the face itself stays
	// (it still matches), only its crop goes.
	ImagesMaxAge   time.Duration `yaml:"images_max_age"`
	ImagesMaxCount int           `yaml:"images_max_count"`
	// Interval is the time between two prunes.
	Interval time.Duration `yaml:"interval"`
}

// Policy is the store's form of the bounds.
func (r RetentionConfig) Policy() store.RetentionPolicy {
	return store.RetentionPolicy{EventsMaxAge: r.EventsMaxAge, EventsMaxCount: r.EventsMaxCount,
		ImagesMaxAge: r.ImagesMaxAge, ImagesMaxCount: r.ImagesMaxCount}
}

// DefaultRetention keeps 90 days of events, at most a million (about
// 310 bytes each on disk without snapshots, measured: some 300 MB; a busy
// door recording 5 000 events a day stays under the count for 90 days),
// and at most 100 000 kept crops, the gallery size the daemon is measured
// for, with no age limit: a crop is the enrolment's record, there to
// re-embed the gallery when the embedder changes. Pruned hourly.
func DefaultRetention() RetentionConfig {
	return RetentionConfig{
		EventsMaxAge:   90 * 24 * time.Hour,
		EventsMaxCount: 1_000_000,
		ImagesMaxCount: 100_000,
		Interval:       time.Hour,
	}
}

// minPruneInterval keeps the pruner from spinning: each run walks the
// oldest events and takes the store's writer.
const minPruneInterval = time.Minute

func (r RetentionConfig) validate(bad func(field, format string, args ...any)) {
	if r.EventsMaxAge < 0 {
		bad("store.retention.events_max_age", "must not be negative (0: no age limit)")
	}
	if r.EventsMaxCount < 0 {
		bad("store.retention.events_max_count", "must not be negative (0: no count limit)")
	}
	if r.ImagesMaxAge < 0 {
		bad("store.retention.images_max_age", "must not be negative (0: no age limit)")
	}
	if r.ImagesMaxCount < 0 {
		bad("store.retention.images_max_count", "must not be negative (0: no count limit)")
	}
	if r.Interval < minPruneInterval {
		bad("store.retention.interval", "must be at least %v, got %v", minPruneInterval, r.Interval)
	}
}

// TLSConfig names a PEM certificate (chain) and its private key; the
// daemon then speaks HTTPS only (TLS 1.2 or later). Both or neither.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether HTTPS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// APIConfig bounds the HTTP API.
type APIConfig struct {
	// MaxBodyBytes caps a request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// RequestTimeout bounds one request, as a Go duration ("30s", "1m"),
	// and is the deadline for its body to arrive.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxInFlight requests may run the models at once (0: one per core);
	// MaxQueue more may wait (0: four per in-flight slot), beyond that
	// requests get 429.
	MaxInFlight int `yaml:"max_in_flight"`
	MaxQueue    int `yaml:"max_queue"`
	// MaxConnections caps the client connections open at once; one more
	// waits in the listen backlog until one closes. Each open connection
	// costs a goroutine and buffers, and an authenticated one up to
	// MaxBodyBytes while its body is read.
	MaxConnections int `yaml:"max_connections"`
	// IdleTimeout closes a keep-alive connection that has sent no new
	// request for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// FetchConfig allows photos given as http(s) URLs from the listed hosts
// (exact host names or host:port; none: fetching is off). MaxBytes and
// Timeout are one request's budget, shared by all its URLs.
type FetchConfig struct {
	AllowHosts []string      `yaml:"allow_hosts"`
	MaxBytes   int64         `yaml:"max_bytes"`
	Timeout    time.Duration `yaml:"timeout"`
}

// ServiceConfig tunes the service (see service.Config).
type ServiceConfig struct {
	// DefaultGallery receives faces enrolled without a gallery.
	DefaultGallery string `yaml:"default_gallery"`
	// KeepImages stores each enrolled face's aligned crop.
	KeepImages bool `yaml:"keep_images"`
	// Threshold is the match threshold of requests that give none: low,
	// medium, strict, none, or a confidence from 0 to 1 (README.md,
	// "Similarity and confidence"). Reloaded on SIGHUP.
	Threshold string `yaml:"threshold"`
}

// DialectsConfig lists the vendor dialects. Each is always served below
// /compat/<name> on the main listener; with listen set it is served at the
// root of that address too, so a legacy client that hard-codes absolute
// paths (a Go FindFace client's "/faces", an Android SDK's "/v1/...")
// only changes its host. The listener uses the main one's TLS setting and
// is bound by faced itself, also when systemd passes the main socket.
type DialectsConfig struct {
	Users      DialectConfig `yaml:"users"`
	FaceSearch DialectConfig `yaml:"facesearch"`
	MiiCloud   DialectConfig `yaml:"miicloud"`
	Trueface   DialectConfig `yaml:"trueface"`
	FindFace   DialectConfig `yaml:"findface"`
}

// DialectConfig is one dialect's settings.
type DialectConfig struct {
	// Listen is host:port for the dialect alone, at its root ("": none;
	// port 0 picks a free one, logged).
	Listen string `yaml:"listen"`
}

// ByName returns the dialects by their config names, in a fixed order.
func (d DialectsConfig) ByName() []NamedDialect {
	return []NamedDialect{{"users", d.Users}, {"facesearch", d.FaceSearch}, {"miicloud", d.MiiCloud}, {"trueface", d.Trueface}, {"findface", d.FindFace}}
}

// NamedDialect is a dialect's config name and settings.
type NamedDialect struct {
	Name string
	DialectConfig
}

// KeyConfig is an API key provisioned from the file. Its token is
// "<id>.<secret>"; the file holds only the secret's SHA-256, never the
// secret. To make one:
//
//	ID=$(openssl rand -hex 6)                                # 12 hex digits
//	SECRET=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')
//	printf %s "$SECRET" | faced keys hash                    # secret_sha256
//	# or: printf %s "$SECRET" | sha256sum                    (no newline!)
//	echo "token: $ID.$SECRET"                                # give this to the client
//
// The hash is unsalted and fast (see package auth), so the secret must be
// random (as above), not a password, and the file should stay private.
//
// At each start the daemon creates the key, or updates its name, hash and
// scopes. A key revoked with `faced keys revoke` stays revoked (re-issue it
// under a new id); removing a key from the file does not revoke it.
type KeyConfig struct {
	// ID is 12 lowercase hex digits: the token's part before the dot.
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// SecretSHA256 is the hex SHA-256 of the secret (the token's part
	// after the dot): hex(auth.HashSecret(secret)).
	SecretSHA256 string `yaml:"secret_sha256"`
	// Scopes: read, write, admin.
	Scopes []string `yaml:"scopes"`
}

// DefaultConfig works on a laptop: state in ./data, plain HTTP on the
// loopback port 8080, the measured default models (DefaultVision) and the
// API's default limits.
func DefaultConfig() Config {
	return Config{
		DataDir:  "./data",
		Listen:   "127.0.0.1:8080",
		LogLevel: "info",
		Vision:   DefaultVision(),
		API: APIConfig{
			MaxBodyBytes:   10 << 20,
			RequestTimeout: 30 * time.Second,
			MaxConnections: 256,
			IdleTimeout:    60 * time.Second,
		},
		Fetch: FetchConfig{
			MaxBytes: 10 << 20,
			Timeout:  5 * time.Second,
		},
		Service: ServiceConfig{DefaultGallery: "default", Threshold: "medium"},
		MQTT:    DefaultMQTT(),
		Store:   StoreConfig{Retention: DefaultRetention()},
	}
}

// LoadConfig returns DefaultConfig overridden by the YAML file at path.
// Unknown keys are errors, so a misspelt setting does not silently keep
// its default. It does not validate: apply any further overrides, then
// call Validate.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := cfg.decodeYAML(data); err != nil {
		// One line per problem, each saying where.
		var errs []error
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			errs = joined.Unwrap()
		} else {
			errs = []error{err}
		}
		for i, e := range errs {
			errs[i] = fmt.Errorf("config: %s: %w", path, e)
		}
		return cfg, errors.Join(errs...)
	}
	return cfg, nil
}

// decodeYAML overrides cfg with the settings present in data (one YAML
// document; an empty one changes nothing).
func (cfg *Config) decodeYAML(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(cfg)
	if errors.Is(err, io.EOF) {
		return nil
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return namedTypeErrors(data, te)
	}
	if err != nil {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("want one YAML document, found more")
	}
	return nil
}

// namedTypeErrors rewrites yaml.v3's errors ("line 7: field tmeout not
// found in type daemon.APIConfig") to name the setting by its dotted path
// ("line 7: api.tmeout: unknown field"). yaml.v3 reports only lines, so a
// line holding several keys (flow style) keeps the original message.
func namedTypeErrors(data []byte, te *yaml.TypeError) error {
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // it parsed once already
	paths := map[int][]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				paths[k.Line] = append(paths[k.Line], p)
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Kind == yaml.ScalarNode {
					paths[c.Line] = append(paths[c.Line], p)
				}
				walk(c, p)
			}
		}
	}
	walk(&root, "")
	var errs []error
	for _, msg := range te.Errors {
		var line int
		if _, err := fmt.Sscanf(msg, "line %d:", &line); err != nil || len(paths[line]) != 1 {
			errs = append(errs, errors.New(msg))
			continue
		}
		_, rest, _ := strings.Cut(msg, ": ")
		if strings.HasPrefix(rest, "field ") && strings.Contains(rest, " not found in type ") {
			rest = "unknown field"
		}
		errs = append(errs, fmt.Errorf("line %d: %s: %s", line, paths[line][0], rest))
	}
	return errors.Join(errs...)
}

// FieldError is a setting that is not valid; Field is its dotted path in
// the file, e.g. "api.request_timeout" or "keys[1].scopes".
type FieldError struct {
	Field string
	Msg   string
	// Source, when set, names where the value came from when not from
	// the file, e.g. the environment variable "FACED_LISTEN".
	Source string
}

func (e *FieldError) Error() string {
	if e.Source != "" {
		return "config: " + e.Field + ": " + e.Msg + " (set by " + e.Source + ")"
	}
	return "config: " + e.Field + ": " + e.Msg
}

// Validate checks every setting and returns all the problems found, each a
// *FieldError naming its setting. It does not touch the file system or
// the network: files are opened, and the address bound, when serving.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}

	if strings.TrimSpace(cfg.DataDir) == "" {
		bad("data_dir", "required")
	}
	if err := checkListen(cfg.Listen); err != nil {
		bad("listen", "%v", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		bad("log_level", "want debug, info, warn or error, got %q", cfg.LogLevel)
	}
	if (cfg.TLS.CertFile == "") != (cfg.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}

	cfg.Vision.validate(bad)
	cfg.MQTT.validate(bad)
	cfg.Dialects.validate(cfg.Listen, bad)
	cfg.Store.Retention.validate(bad)
	validateCameras(cfg.Cameras, bad)
	validateDoors(cfg, bad)

	if cfg.API.MaxBodyBytes <= 0 {
		bad("api.max_body_bytes", "must be positive")
	}
	if cfg.API.RequestTimeout <= 0 {
		bad("api.request_timeout", "must be positive")
	}
	if cfg.API.MaxInFlight < 0 {
		bad("api.max_in_flight", "must not be negative (0: one per core)")
	}
	if cfg.API.MaxQueue < 0 {
		bad("api.max_queue", "must not be negative (0: four per in-flight slot)")
	}
	if cfg.API.MaxConnections <= 0 {
		bad("api.max_connections", "must be positive")
	}
	if cfg.API.IdleTimeout <= 0 {
		bad("api.idle_timeout", "must be positive")
	}

	for i, h := range cfg.Fetch.AllowHosts {
		if err := checkFetchHost(h); err != nil {
			bad(fmt.Sprintf("fetch.allow_hosts[%d]", i), "%v", err)
		}
	}
	if cfg.Fetch.MaxBytes <= 0 {
		bad("fetch.max_bytes", "must be positive")
	}
	if cfg.Fetch.Timeout <= 0 {
		bad("fetch.timeout", "must be positive")
	}

	if !store.ValidGalleryName(cfg.Service.DefaultGallery) {
		bad("service.default_gallery", "%q is not a gallery name ([a-zA-Z0-9_-]{1,48})", cfg.Service.DefaultGallery)
	}
	if _, err := cfg.threshold(); err != nil {
		bad("service.threshold", "want low, medium, strict, none or a confidence from 0 to 1, got %q", cfg.Service.Threshold)
	}

	ids, hashes := map[string]int{}, map[string]int{}
	for i, k := range cfg.Keys {
		field := func(name string) string { return fmt.Sprintf("keys[%d].%s", i, name) }
		if !keyID.MatchString(k.ID) {
			bad(field("id"), "want 12 lowercase hex digits (the token's part before the dot), got %q", k.ID)
		} else if j, dup := ids[k.ID]; dup {
			bad(field("id"), "%s is also keys[%d]'s id", k.ID, j)
		} else {
			ids[k.ID] = i
		}
		if strings.TrimSpace(k.Name) == "" {
			bad(field("name"), "required")
		} else if strings.ContainsFunc(k.Name, unicode.IsControl) {
			bad(field("name"), "contains a control character")
		}
		sum := strings.ToLower(k.SecretSHA256)
		if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
			bad(field("secret_sha256"), "want 64 hex digits, the SHA-256 of the secret (printf %%s \"$SECRET\" | faced keys hash)")
		} else if j, dup := hashes[sum]; dup {
			bad(field("secret_sha256"), "same as keys[%d]'s: two keys cannot share a secret", j)
		} else {
			hashes[sum] = i
		}
		if len(k.Scopes) == 0 {
			bad(field("scopes"), "required (read, write, admin)")
		}
		for _, s := range k.Scopes {
			if _, err := auth.ParseScopes(s); err != nil {
				bad(field("scopes"), "unknown scope %q (want read, write, admin, or door:<id> / door:*)", s)
			}
		}
	}
	return errors.Join(errs...)
}

var keyID = regexp.MustCompile(`^[0-9a-f]{12}$`)

// validate checks each dialect's listen address, and that no two
// listeners (main included) share a fixed port on the same host.
func (d DialectsConfig) validate(main string, bad func(field, format string, args ...any)) {
	seen := map[string]string{}
	if _, port, err := net.SplitHostPort(main); err == nil && port != "0" {
		seen[main] = "listen"
	}
	for _, n := range d.ByName() {
		if n.Listen == "" {
			continue
		}
		field := "dialects." + n.Name + ".listen"
		if err := checkListen(n.Listen); err != nil {
			bad(field, "%v", err)
			continue
		}
		if _, port, _ := net.SplitHostPort(n.Listen); port == "0" {
			continue
		}
		if other, ok := seen[n.Listen]; ok {
			bad(field, "%s is already %s's address", n.Listen, other)
			continue
		}
		seen[n.Listen] = field
	}
}

// checkListen accepts host:port with a numeric port; the host may be empty
// (every interface) or a name or IP address.
func checkListen(addr string) error {
	if addr == "" {
		return errors.New("required (host:port, e.g. 127.0.0.1:8080)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, e.g. 127.0.0.1:8080: %v", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number 0-65535", port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q is not a host name or IP address", host)
	}
	return nil
}

// checkFetchHost accepts what the fetcher compares URLs against: a host
// name or IP, optionally with :port; no scheme, path or wildcard.
func checkFetchHost(h string) error {
	if h == "" || strings.ContainsAny(h, "/*@ \t?#") {
		return fmt.Errorf("%q: want a host name or host:port (no scheme, path or wildcard)", h)
	}
	if _, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("%q: port %q is not a number 1-65535", h, port)
		}
	}
	return nil
}

// validate checks what can be checked without the runtimes: known
// backend and device, catalogue models of the right task, sane numbers.
func (v VisionConfig) validate(bad func(field, format string, args ...any)) {
	if !slices.Contains(backends.Names, v.Backend) {
		bad("vision.backend", "unknown backend %q (want one of %s)", v.Backend, strings.Join(backends.Names, ", "))
	}
	devices := []accel.Device{accel.CPU, accel.CUDA, accel.TensorRT, accel.EdgeTPU, accel.OpenCL}
	if !slices.Contains(devices, accel.Device(v.Device)) {
		bad("vision.device", "unknown device %q (want cpu, cuda, tensorrt, edgetpu or opencl)", v.Device)
	}
	if v.Threads < 0 {
		bad("vision.threads", "must not be negative (0: the runtime's default)")
	}
	if v.Sessions < 0 {
		bad("vision.sessions", "must not be negative")
	}
	if v.MinFacePx < 0 || v.MinFacePx > 65535 {
		bad("vision.min_face_px", "want 0..65535 pixels, got %d", v.MinFacePx)
	}
	if v.MinScore < 0 || v.MinScore > 1 {
		bad("vision.min_score", "want 0..1, got %v", v.MinScore)
	}
	if v.MaxImageBytes < 0 {
		bad("vision.max_image_bytes", "must not be negative (0: the default)")
	}
	if v.MaxImagePixels < 0 {
		bad("vision.max_image_pixels", "must not be negative (0: the default)")
	}
	if v.Align != "" && v.Align != "keypoints" && v.Align != "landmarks" {
		bad("vision.align", "want keypoints, landmarks or empty, got %q", v.Align)
	}
	m, err := models.LoadManifest()
	if err != nil {
		bad("vision", "%v", err)
		return
	}
	custom := v.validateCustom(m, bad)
	modelsOK := true
	// "a+b" or "a+b+c" fuses embedders b (and c) to a
	// (face.Config.FuseEmbedder).
	var embedders []string
	if v.Embedder != "" {
		var err error
		if embedders, err = face.SplitFused(v.Embedder); err != nil {
			bad("vision.embedder", "%v", err)
			return
		}
	}
	type modelRef struct {
		field, name string
		task        models.Task
		required    bool
	}
	refs := []modelRef{
		{"vision.detector", v.Detector, models.TaskDetect, true},
		{"vision.landmarks", v.Landmarks, models.TaskLandmarks, false},
		{"vision.liveness", v.Liveness, models.TaskLiveness, false},
	}
	if len(embedders) == 0 {
		refs = append(refs, modelRef{"vision.embedder", "", models.TaskEmbed, true})
	}
	for _, n := range embedders {
		refs = append(refs, modelRef{"vision.embedder", n, models.TaskEmbed, true})
	}
	for _, c := range refs {
		if c.name == "" {
			if c.required {
				bad(c.field, "required")
			}
			continue
		}
		task, declared := custom[c.name]
		if spec, err := m.Model(c.name); err == nil {
			task, declared = spec.Task, true
		}
		if !declared {
			bad(c.field, "unknown model %q (faced models list, or declare it in vision.custom_models)", c.name)
			modelsOK = false
		} else if task != c.task {
			bad(c.field, "model %q is for task %s, want %s", c.name, task, c.task)
			modelsOK = false
		}
	}
	if !modelsOK {
		return
	}
	if _, ok := service.LookupCalibration(v.Embedder, v.CustomCalibrations()); len(embedders) > 1 && !ok {
		// A fused space needs its own presets, measured with faced eval
		// verify; only the catalogue's measured combinations have them.
		bad("vision.embedder", "no calibration for the fused embedders %q (calibrated: %s; measure others with faced eval verify --embedder %s)",
			v.Embedder, strings.Join(fusedCombinations(), ", "), v.Embedder)
	} else if _, ok := service.LookupCalibration(v.Embedder+face.FlipSuffix, v.CustomCalibrations()); v.Flip && !ok {
		// Flipped embeddings are their own space too (the service would
		// refuse to start without presets for it).
		bad("vision.flip", "no calibration for %q with flip: turn flip off, or measure it with faced eval verify --flip", v.Embedder)
	}
}

// fusedCombinations lists the fused embedder combinations that have a
// calibration.
func fusedCombinations() []string {
	var out []string
	for name := range service.Calibrations {
		if n, _, ok := strings.Cut(name, "+"); ok && !strings.HasSuffix(name, "+flip") && n != "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// SlogLevel is LogLevel parsed (info if it does not parse; Validate
// reports that).
func (cfg Config) SlogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// threshold parses service.threshold (empty: medium).
func (cfg Config) threshold() (service.Threshold, error) {
	return service.ParseThreshold(strings.TrimSpace(cfg.Service.Threshold), service.DefaultThreshold)
}

// ServiceConfig is the service's part of the configuration (call it after
// Validate: a threshold that does not parse is the default).
func (cfg Config) ServiceConfig() service.Config {
	t, err := cfg.threshold()
	if err != nil {
		t = service.DefaultThreshold
	}
	return service.Config{DefaultGallery: cfg.Service.DefaultGallery, KeepImages: cfg.Service.KeepImages, Threshold: t,
		Calibrations: cfg.Vision.CustomCalibrations()}
}

// ProvisionKeys upserts keys into the store (service.ProvisionAPIKey) and
// logs what it did with each. Call it after Validate, before serving.
func ProvisionKeys(ctx context.Context, db *store.DB, keys []KeyConfig, logger *slog.Logger) error {
	for i, k := range keys {
		hash, err := hex.DecodeString(k.SecretSHA256)
		if err != nil {
			return &FieldError{Field: fmt.Sprintf("keys[%d].secret_sha256", i), Msg: err.Error()}
		}
		what, err := service.ProvisionAPIKey(ctx, db, k.ID, k.Name, hash, k.Scopes, time.Now())
		if err != nil {
			return fmt.Errorf("config: keys[%d]: %w", i, err)
		}
		if what == service.KeyRevoked {
			logger.Warn("configured API key is revoked in the store; left revoked (re-issue it under a new id)", "id", k.ID, "name", k.Name)
			continue
		}
		logger.Info("API key provisioned", "id", k.ID, "name", k.Name, "scopes", strings.Join(k.Scopes, ","), "result", what.String())
	}
	return nil
}
