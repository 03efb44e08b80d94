package api

import (
	"encoding/base64"
	"errors"
	"testing"
)

func TestStripTrailingCommas(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1}`:                      `{"a":1}`,
		"{\n\"a\": 1,\n}":              "{\n\"a\": 1\n}",
		`{"a":[1,2,],"b":"x,}",}`:      `{"a":[1,2],"b":"x,}"}`,
		`{"a":"q\",}",}`:               `{"a":"q\",}"}`,
		`[,]`:                          `[,]`,
		`{"a":,}`:                      `{"a":,}`,
		`{"a":{},}`:                    `{"a":{}}`,
		`{"a":true ,  ]`:               `{"a":true   ]`,
		`{"face": "AAAA", "n": null,}`: `{"face": "AAAA", "n": null}`,
	} {
		if got := string(StripTrailingCommas([]byte(in))); got != want {
			t.Errorf("StripTrailingCommas(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeBase64Photo(t *testing.T) {
	raw := []byte("\xff\xd8\xff\xe0 a photo?>>")
	std := base64.StdEncoding.EncodeToString(raw)
	url := base64.RawURLEncoding.EncodeToString(raw)
	for _, in := range []string{std, url, "data:image/jpeg;base64," + std, std[:8] + "\n" + std[8:], "  " + std + " "} {
		if got, err := DecodeBase64Photo(in, 0); err != nil || string(got) != string(raw) {
			t.Errorf("DecodeBase64Photo(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "   ", "not base64!", "data:image/jpeg;base64", "===="} {
		if _, err := DecodeBase64Photo(in, 0); !errors.Is(err, ErrBadBase64) {
			t.Errorf("DecodeBase64Photo(%q): err = %v, want ErrBadBase64", in, err)
		}
	}
	if _, err := DecodeBase64Photo(std, len(raw)-1); !errors.Is(err, ErrPhotoTooLarge) {
		t.Errorf("over the limit: err = %v, want ErrPhotoTooLarge", err)
	}
	if _, err := DecodeBase64Photo(std, len(raw)); err != nil {
		t.Errorf("at the limit: %v", err)
	}
}
