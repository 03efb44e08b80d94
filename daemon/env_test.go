package daemon

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every setting of the file has its variable, named after its path.
func TestEnvNames(t *testing.T) {
	vars := map[string]string{}
	for _, v := range EnvVars() {
		vars[v[0]] = v[1]
	}
	for name, path := range map[string]string{
		"FACED_DATA_DIR":            "data_dir",
		"FACED_LISTEN":              "listen",
		"FACED_LOG_LEVEL":           "log_level",
		"FACED_TLS_CERT_FILE":       "tls.cert_file",
		"FACED_API_REQUEST_TIMEOUT": "api.request_timeout",
		"FACED_VISION_BACKEND":      "vision.backend",
		"FACED_VISION_MIN_SCORE":    "vision.min_score",
		"FACED_FETCH_ALLOW_HOSTS":   "fetch.allow_hosts",
		"FACED_SERVICE_THRESHOLD":   "service.threshold",
	} {
		if vars[name] != path {
			t.Errorf("%s sets %q, want %q", name, vars[name], path)
		}
	}
	if _, ok := vars["FACED_KEYS"]; ok {
		t.Error("keys listed as settable from the environment")
	}
	// Every leaf but the lists of structs (keys, vision.custom_models,
	// cameras, doors) is
	// settable: a new field of a type ApplyEnv cannot parse must be
	// decided on, not silently skipped.
	for _, s := range settings() {
		if !envSettable(s.Type) && s.Path != "keys" && s.Path != "vision.custom_models" && s.Path != "cameras" && s.Path != "doors" {
			t.Errorf("%s (%s) cannot be set from the environment", s.Path, s.Type)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	cfg := DefaultConfig()
	applied, err := ApplyEnv(&cfg, []string{
		"FACED_LISTEN=0.0.0.0:9000",
		"FACED_API_REQUEST_TIMEOUT=1m30s",
		"FACED_API_MAX_BODY_BYTES=1024",
		"FACED_VISION_ATTRIBUTES=false",
		"FACED_VISION_MIN_SCORE=0.5",
		"FACED_VISION_LIVENESS=", // set, empty: liveness off
		"FACED_FETCH_ALLOW_HOSTS=a.example, b.example:8080,",
		"FACED_SERVICE_THRESHOLD=strict",
		"FACED_DEPS_DIR=/opt/faced", // not a setting
		"FACED_TEST_DATA=/data",     // not a setting
		"FACED_INDEX_BENCH=100000",  // not a setting
		"FACED_SOMETHING_ELSE=x",    // does not look like one
		"PATH=/usr/bin", "NOT_FACED_LISTEN=x", "malformed",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Listen = "0.0.0.0:9000"
	want.API.RequestTimeout = 90 * time.Second
	want.API.MaxBodyBytes = 1024
	want.Vision.Attributes = false
	want.Vision.MinScore = 0.5
	want.Vision.Liveness = ""
	want.Fetch.AllowHosts = []string{"a.example", "b.example:8080"}
	want.Service.Threshold = "strict"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
	var got []string
	for _, a := range applied {
		got = append(got, a.Var+"="+a.Field)
	}
	slices.Sort(got)
	if wantApplied := []string{
		"FACED_API_MAX_BODY_BYTES=api.max_body_bytes", "FACED_API_REQUEST_TIMEOUT=api.request_timeout",
		"FACED_FETCH_ALLOW_HOSTS=fetch.allow_hosts", "FACED_LISTEN=listen", "FACED_SERVICE_THRESHOLD=service.threshold",
		"FACED_VISION_ATTRIBUTES=vision.attributes", "FACED_VISION_LIVENESS=vision.liveness", "FACED_VISION_MIN_SCORE=vision.min_score",
	}; !slices.Equal(got, wantApplied) {
		t.Errorf("applied %v\nwant    %v", got, wantApplied)
	}

	// An empty list variable empties the list.
	cfg.Fetch.AllowHosts = []string{"x"}
	if _, err := ApplyEnv(&cfg, []string{"FACED_FETCH_ALLOW_HOSTS="}); err != nil || len(cfg.Fetch.AllowHosts) != 0 {
		t.Errorf("empty list: %v, %v", cfg.Fetch.AllowHosts, err)
	}
}

// Every problem names its variable; all are reported at once.
func TestApplyEnvErrors(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"FACED_API_REQUEST_TIMEOUT=soon", `config: FACED_API_REQUEST_TIMEOUT (api.request_timeout): want a duration such as 30s or 1m30s, got "soon"`},
		{"FACED_API_MAX_QUEUE=many", `config: FACED_API_MAX_QUEUE (api.max_queue): want an integer, got "many"`},
		{"FACED_VISION_ATTRIBUTES=maybe", `config: FACED_VISION_ATTRIBUTES (vision.attributes): want true or false, got "maybe"`},
		{"FACED_VISION_MIN_SCORE=high", `config: FACED_VISION_MIN_SCORE (vision.min_score): want a number, got "high"`},
		{"FACED_KEYS=abc", `config: FACED_KEYS (keys): cannot be set from the environment: use the configuration file`},
		// Typos and misplaced settings.
		{"FACED_LISTN=:1", `config: FACED_LISTN: not a setting (did you mean FACED_LISTEN?)`},
		{"FACED_DATADIR=/x", `config: FACED_DATADIR: not a setting (did you mean FACED_DATA_DIR?)`},
		{"FACED_API_REQUEST_TIMOUT=5s", `config: FACED_API_REQUEST_TIMOUT: not a setting (did you mean FACED_API_REQUEST_TIMEOUT?)`},
		{"FACED_THRESHOLD=strict", `config: FACED_THRESHOLD: not a setting (did you mean FACED_SERVICE_THRESHOLD?)`},
		{"FACED_VISION_GPU=1", `config: FACED_VISION_GPU: not a setting of vision (faced config default lists them)`},
		{"FACED_TLS=on", `config: FACED_TLS: not a setting of tls (faced config default lists them)`},
	} {
		cfg := DefaultConfig()
		_, err := ApplyEnv(&cfg, []string{tc.env})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v\nwant %s", tc.env, err, tc.want)
		}
		var ee *EnvError
		name, _, _ := strings.Cut(tc.env, "=")
		if !errors.As(err, &ee) || ee.Var != name {
			t.Errorf("%s: %v is not an *EnvError naming the variable", tc.env, err)
		}
	}
	cfg := DefaultConfig()
	_, err := ApplyEnv(&cfg, []string{"FACED_LISTN=x", "FACED_API_MAX_QUEUE=x", "FACED_LISTEN=127.0.0.1:1"})
	if n := len(Problems(err)); n != 2 {
		t.Errorf("want both problems, got %d: %v", n, err)
	}
	if cfg.Listen != "127.0.0.1:1" {
		t.Errorf("a good variable beside bad ones was not applied: %q", cfg.Listen)
	}
}

// Loader layers default, file, environment, flags, and says which
// variable set a setting that does not validate.
func TestLoader(t *testing.T) {
	path := writeConfig(t, "listen: 127.0.0.1:1\nlog_level: warn\napi:\n  max_queue: 3\n")
	l := Loader{File: path, Environ: []string{"FACED_LOG_LEVEL=debug", "FACED_API_MAX_QUEUE=5"},
		Flags: func(c *Config) error { c.API.MaxQueue = 7; return nil }}
	cfg, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:1" || cfg.LogLevel != "debug" || cfg.API.MaxQueue != 7 {
		t.Errorf("layers: listen %q, log_level %q, max_queue %d", cfg.Listen, cfg.LogLevel, cfg.API.MaxQueue)
	}

	bad := writeConfig(t, "api:\n  tmeout: 5s\n")
	_, err = Loader{File: bad, Environ: []string{"FACED_LISTEN=nowhere", "FACED_VISION_THREDS=2"}}.Load()
	problems := Problems(err)
	var lines []string
	for _, p := range problems {
		lines = append(lines, p.Error())
	}
	want := []string{
		"config: " + bad + ": line 2: api.tmeout: unknown field",
		"config: FACED_VISION_THREDS: not a setting (did you mean FACED_VISION_THREADS?)",
		"config: listen: want host:port, e.g. 127.0.0.1:8080: address nowhere: missing port in address (set by FACED_LISTEN)",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
