package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
)

// Loader builds the configuration from its layers: DefaultConfig, the
// file, the FACED_* environment, the explicit flags. `faced serve` keeps
// its Loader to build the configuration again on SIGHUP; `faced config
// check` runs the same one.
type Loader struct {
	// File is the YAML file ("": none, the defaults).
	File string
	// Environ is the process environment ("NAME=value", os.Environ()):
	// its FACED_* variables override the file.
	Environ []string
	// Flags, when set, applies the flags given explicitly on the command
	// line, which override everything else.
	Flags func(*Config) error
}

// Load returns the layered configuration, validated. The error lists
// every problem found (in the file, the environment, the flags, then
// validation), one per line, each naming its setting or variable;
// settings set by a variable say so.
func (l Loader) Load() (Config, error) {
	cfg, _, err := l.load()
	return cfg, err
}

// EnvSettings reports which settings the environment overrides (for `faced
// config check`); Load reports the errors.
func (l Loader) EnvSettings() []EnvSetting {
	_, env, _ := l.load()
	return env
}

func (l Loader) load() (Config, []EnvSetting, error) {
	var errs []error
	cfg := DefaultConfig()
	if l.File != "" {
		var err error
		if cfg, err = LoadConfig(l.File); err != nil {
			errs = append(errs, err)
		}
	}
	env, err := ApplyEnv(&cfg, l.Environ)
	if err != nil {
		errs = append(errs, err)
	}
	if l.Flags != nil {
		if err := l.Flags(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		// Say which variable set a bad setting, as the file's line would.
		from := map[string]string{}
		for _, e := range env {
			from[e.Field] = e.Var
		}
		for _, e := range unjoin(err) {
			var fe *FieldError
			if errors.As(e, &fe) {
				field, _, _ := strings.Cut(fe.Field, "[")
				if v, ok := from[field]; ok {
					fe.Source = v
				}
			}
			errs = append(errs, e)
		}
	}
	return cfg, env, joinFlat(errs)
}

// unjoin splits an errors.Join result into its errors.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// joinFlat joins errors, flattening joined ones, so callers can print
// one problem a line (Problems).
func joinFlat(errs []error) error {
	var flat []error
	for _, e := range errs {
		flat = append(flat, unjoin(e)...)
	}
	return errors.Join(flat...)
}

// Problems splits a Load error into its problems, one per setting.
func Problems(err error) []error { return unjoin(err) }

// LoadCertificate loads the TLS certificate (chain) and key named by t,
// as a problem naming tls when they do not load.
func LoadCertificate(t TLSConfig) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, &FieldError{Field: "tls", Msg: fmt.Sprintf("certificate: %v", err)}
	}
	return &cert, nil
}
