package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/testenv"
)

// faced runs the command in-process, as main does, and returns what it
// printed. The runtimes and models must be present (`make deps`): the
// subcommands find them as the binary would.
func faced(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	testenv.DepsDir(t)
	var out, errOut bytes.Buffer
	err = run(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustFaced is faced for commands that must succeed.
func mustFaced(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := faced(t, args...)
	if err != nil {
		t.Fatalf("faced %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// decodeJSON decodes a --json output, which must be exactly one JSON
// object holding every one of keys, into v. The tests decode into their own
// structs, not the command's, so a renamed JSON field breaks them as it
// would break a script.
func decodeJSON(t *testing.T, out string, v any, keys ...string) {
	t.Helper()
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&obj); err != nil {
		t.Fatalf("decoding JSON output: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value in output:\n%s", out)
	}
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("JSON output lacks %q:\n%s", k, out)
		}
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decoding JSON output: %v\n%s", err, out)
	}
}

func TestNoArgs(t *testing.T) {
	out, errOut, err := faced(t)
	if !errors.Is(err, errNoCommand) || exitCode(err) != 2 {
		t.Fatalf("no arguments: err = %v (exit %d), want errNoCommand and exit 2", err, exitCode(err))
	}
	if out != "" || !strings.Contains(errOut, "usage: faced") {
		t.Errorf("no arguments: stdout %q, stderr %q; want the usage on stderr only", out, errOut)
	}
}

func TestUnknownCommand(t *testing.T) {
	_, errOut, err := faced(t, "frobnicate")
	if err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("err = %v, want unknown command", err)
	}
	if errors.Is(err, flag.ErrHelp) {
		t.Error("an unknown command must not look like a help request (exit quietly)")
	}
	if !strings.Contains(errOut, "usage: faced") {
		t.Errorf("stderr lacks the usage: %q", errOut)
	}
}

// TestSubcommandVerbs covers the verb dispatch of every command with
// verbs: none is a usage error (exit 2), -h a help request (exit 0), an
// unknown one an error.
func TestSubcommandVerbs(t *testing.T) {
	for _, cmd := range []string{"eval", "bench", "models", "keys", "config"} {
		if _, errOut, err := faced(t, cmd); !errors.Is(err, errNoCommand) || !strings.Contains(errOut, "usage: faced "+cmd) {
			t.Errorf("faced %s: err = %v, stderr %q; want errNoCommand and the usage", cmd, err, errOut)
		}
		if out, _, err := faced(t, cmd, "-h"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "usage: faced "+cmd) {
			t.Errorf("faced %s -h: err = %v, stdout %q; want flag.ErrHelp and the usage", cmd, err, out)
		}
		_, _, err := faced(t, cmd, "bogus")
		if err == nil || !strings.Contains(err.Error(), `unknown verb "bogus"`) {
			t.Errorf("faced %s bogus: err = %v, want unknown verb", cmd, err)
		}
	}
}

func TestUnknownFlag(t *testing.T) {
	_, errOut, err := faced(t, "eval", "verify", "--no-such-flag")
	if err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("err = %v, want an unknown-flag error", err)
	}
	if !strings.Contains(errOut, "-pairs") {
		t.Errorf("stderr lacks the flag list: %q", errOut)
	}
}
