package users

import "testing"

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
		if got := string(stripTrailingCommas([]byte(in))); got != want {
			t.Errorf("stripTrailingCommas(%q) = %q, want %q", in, got, want)
		}
	}
}
