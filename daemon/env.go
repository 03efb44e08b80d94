package daemon

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/facedhq/faced/internal/spell"
)

// EnvPrefix starts every environment variable that overrides a setting.
const EnvPrefix = "FACED_"

// Environment variables (from os.Environ) override the file and are
// overridden by explicit flags. Each setting's variable is its dotted
// path in the file, upper-cased, with dots as underscores, after FACED_:
//
//	data_dir             FACED_DATA_DIR
//	api.request_timeout  FACED_API_REQUEST_TIMEOUT
//	vision.backend       FACED_VISION_BACKEND
//
// Values are written as on the command line: numbers, true/false, Go
// durations ("30s"), lists comma-separated ("a.example,b.example:8080";
// empty: an empty list). A variable that is set counts, even empty.
// Lists of structs (keys, cameras, doors) are not settable from the environment: use the
// file. Every nested section added to Config gets its variables the same
// way, with no change here.
//
// A FACED_ variable that is not a setting but looks like one (close to a
// setting's name, inside a section such as FACED_API_..., or a setting's
// name without its section) is an error naming it, so a typo is never
// silently ignored. The variables faced uses for other things
// (NonConfigEnv) are never settings.

// NonConfigEnv are FACED_ variables the code reads that are not settings
// (runtimes, caches, tests, benchmarks); ApplyEnv ignores them. A name
// ending in "_" is a prefix.
var NonConfigEnv = []string{
	"FACED_DEPS_DIR",     // runtimes and models (models.FindDir)
	"FACED_CACHE_DIR",    // make deps' download cache
	"FACED_TEST_",        // test data and helpers (FACED_TEST_DATA)
	"FACED_STUB_",        // accel/tflite test stubs
	"FACED_CRASH_",       // service crash-test children
	"FACED_STORE_CRASH_", // store crash-test children (FACED_STORE_RETENTION_* are settings)
	"FACED_INDEX_",       // index benchmarks (FACED_INDEX_BENCH, FACED_INDEX_SWEEP)
}

func isNonConfigEnv(name string) bool {
	for _, n := range NonConfigEnv {
		if name == n || strings.HasSuffix(n, "_") && strings.HasPrefix(name, n) {
			return true
		}
	}
	return false
}

// setting is one leaf of Config as the file names it.
type setting struct {
	Path  string // dotted yaml path: "api.request_timeout"
	Env   string // FACED_API_REQUEST_TIMEOUT
	Index []int  // reflect field index path from Config
	Type  reflect.Type
}

// envSettable reports whether a value of type t can be written in one
// environment variable.
func envSettable(t reflect.Type) bool {
	if t == reflect.TypeFor[time.Duration]() {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// settings lists every leaf of Config: each field with a yaml name that is
// not a struct (time.Duration and lists are leaves; a list of structs,
// such as keys, is one leaf), in declaration order.
func settings() []setting {
	var out []setting
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name) // yaml.v3's default
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			idx := append(slices.Clone(index), i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(f.Type, path, idx)
				continue
			}
			if f.Type.Kind() == reflect.Func || f.Type.Kind() == reflect.Chan {
				continue // wiring, not configuration
			}
			out = append(out, setting{Path: path, Env: EnvName(path), Index: idx, Type: f.Type})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// sections are the env-name prefixes of Config's nested sections
// (FACED_API_, FACED_KEYS...), for spotting misspelt settings.
func sections() []string {
	var out []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		k := f.Type.Kind()
		if k == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() || k == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			out = append(out, EnvName(name))
		}
	}
	return out
}

// EnvName is the environment variable of a setting's dotted path.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// EnvVars lists every setting's variable with its dotted path, in
// Config's order; settings that cannot be set from the environment
// (lists of structs) are left out.
func EnvVars() [][2]string {
	var out [][2]string
	for _, s := range settings() {
		if envSettable(s.Type) {
			out = append(out, [2]string{s.Env, s.Path})
		}
	}
	return out
}

// EnvError is a FACED_ variable that could not be applied; Field is the
// setting's dotted path ("" for a variable that is no setting).
type EnvError struct {
	Var   string
	Field string
	Msg   string
}

func (e *EnvError) Error() string {
	if e.Field == "" {
		return "config: " + e.Var + ": " + e.Msg
	}
	return "config: " + e.Var + " (" + e.Field + "): " + e.Msg
}

// EnvSetting is a setting an environment variable overrode.
type EnvSetting struct {
	Var, Field string
}

// ApplyEnv overrides cfg with the FACED_ variables in environ ("NAME=value"
// entries, as os.Environ returns them) and reports which settings it set.
// Every problem is an *EnvError naming the variable; all are returned.
func ApplyEnv(cfg *Config, environ []string) ([]EnvSetting, error) {
	all := settings()
	byEnv := map[string]setting{}
	for _, s := range all {
		byEnv[s.Env] = s
	}
	var applied []EnvSetting
	var errs []error
	names := slices.Clone(environ)
	slices.Sort(names) // stable, reproducible error order
	for _, kv := range names {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || isNonConfigEnv(name) {
			continue
		}
		s, known := byEnv[name]
		if !known {
			if msg, looks := unknownEnv(name, all); looks {
				errs = append(errs, &EnvError{Var: name, Msg: msg})
			}
			continue
		}
		if !envSettable(s.Type) {
			errs = append(errs, &EnvError{Var: name, Field: s.Path, Msg: "cannot be set from the environment: use the configuration file"})
			continue
		}
		if err := setFromString(reflect.ValueOf(cfg).Elem().FieldByIndex(s.Index), value); err != nil {
			errs = append(errs, &EnvError{Var: name, Field: s.Path, Msg: err.Error()})
			continue
		}
		applied = append(applied, EnvSetting{Var: name, Field: s.Path})
	}
	return applied, errors.Join(errs...)
}

// unknownEnv decides whether an unknown FACED_ variable looks like a
// setting, and says what it may have meant.
func unknownEnv(name string, all []setting) (msg string, looks bool) {
	rest := strings.TrimPrefix(name, EnvPrefix)
	// Close to a setting's name: at most one edit per six letters, three
	// at most.
	best, bestD := "", min(1+len(rest)/6, 3)+1
	for _, s := range all {
		if !envSettable(s.Type) {
			continue
		}
		if d := spell.Distance(name, s.Env); d < bestD {
			best, bestD = s.Env, d
		}
	}
	if best == "" {
		// A setting's name without its section: FACED_THRESHOLD.
		for _, s := range all {
			if strings.HasSuffix(s.Env, "_"+rest) && envSettable(s.Type) {
				best = s.Env
				break
			}
		}
	}
	if best != "" {
		return fmt.Sprintf("not a setting (did you mean %s?)", best), true
	}
	for _, sec := range sections() {
		if name == sec || strings.HasPrefix(name, sec+"_") {
			return "not a setting of " + strings.ToLower(strings.TrimPrefix(sec, EnvPrefix)) + " (faced config default lists them)", true
		}
	}
	return "", false
}

// setFromString parses s into v as its type demands.
func setFromString(v reflect.Value, s string) error {
	if v.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want a duration such as 30s or 1m30s, got %q", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("want a non-negative integer, got %q", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment")
		}
		list := reflect.MakeSlice(v.Type(), 0, 0)
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = reflect.Append(list, reflect.ValueOf(item).Convert(v.Type().Elem()))
			}
		}
		v.Set(list)
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
