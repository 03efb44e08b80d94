package eval

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// masterCSV is deepface's verification list, in the shared evaluation data
// beside the checkout, with its images in the same folder.
const masterCSV = "../../shared/data/deepface/master.csv"

// lfwTwoFolds is a small LFW pairs.txt: 2 folds of 2 same + 2 different,
// with tabs, CRLF endings, multi-part names and a trailing blank line.
const lfwTwoFolds = "2\t2\r\n" +
	"Abel_Pacheco\t1\t4\r\n" +
	"Akhmed_Zakayev\t1\t3\r\n" +
	"Abdel_Madi_Shabneh\t1\tDean_Barker\t1\r\n" +
	"Abdel_Madi_Shabneh\t1\tGiancarlo_Fisichella\t1\r\n" +
	"George_W_Bush\t12\t530\r\n" +
	"Zico\t1\t2\r\n" +
	"Ana_Palacio\t2\tZico\t3\r\n" +
	"Zico\t3\tAbel_Pacheco\t2\r\n" +
	"\r\n"

func TestParseLFW(t *testing.T) {
	pairs, folds, err := ParsePairs(strings.NewReader(lfwTwoFolds))
	if err != nil {
		t.Fatal(err)
	}
	want := []Pair{
		{"Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg", true, 0, true},
		{"Akhmed_Zakayev/Akhmed_Zakayev_0001.jpg", "Akhmed_Zakayev/Akhmed_Zakayev_0003.jpg", true, 0, true},
		{"Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg", "Dean_Barker/Dean_Barker_0001.jpg", false, 0, true},
		{"Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg", "Giancarlo_Fisichella/Giancarlo_Fisichella_0001.jpg", false, 0, true},
		{"George_W_Bush/George_W_Bush_0012.jpg", "George_W_Bush/George_W_Bush_0530.jpg", true, 1, true},
		{"Zico/Zico_0001.jpg", "Zico/Zico_0002.jpg", true, 1, true},
		{"Ana_Palacio/Ana_Palacio_0002.jpg", "Zico/Zico_0003.jpg", false, 1, true},
		{"Zico/Zico_0003.jpg", "Abel_Pacheco/Abel_Pacheco_0002.jpg", false, 1, true},
	}
	if folds != 2 {
		t.Errorf("folds = %d, want 2", folds)
	}
	if len(pairs) != len(want) {
		t.Fatalf("got %d pairs, want %d: %+v", len(pairs), len(want), pairs)
	}
	for i := range want {
		if pairs[i] != want[i] {
			t.Errorf("pair %d = %+v, want %+v", i, pairs[i], want[i])
		}
	}
	checkFoldsHaveBoth(t, pairs, folds)
}

// LFW's pairsDevTrain.txt and pairsDevTest.txt have a one-number header.
func TestParseLFWSingleNumberHeader(t *testing.T) {
	in := "1\nAbel_Pacheco 1 4\nAbdel_Madi_Shabneh 1 Dean_Barker 1\n"
	pairs, folds, err := ParsePairs(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if folds != 1 || len(pairs) != 2 || !pairs[0].Same || pairs[1].Same || pairs[0].Fold != 0 || pairs[1].Fold != 0 {
		t.Errorf("got folds %d, pairs %+v", folds, pairs)
	}
}

func TestParseMasterCSV(t *testing.T) {
	f, err := os.Open(masterCSV)
	if err != nil {
		t.Fatalf("shared evaluation data: %v", err)
	}
	defer f.Close()
	pairs, folds, err := ParsePairs(f)
	if err != nil {
		t.Fatal(err)
	}
	if folds != DefaultFolds {
		t.Errorf("folds = %d, want %d", folds, DefaultFolds)
	}
	yes := 0
	for _, p := range pairs {
		if p.Same {
			yes++
		}
	}
	if len(pairs) != 300 || yes != 38 {
		t.Errorf("got %d pairs, %d Yes; want 300, 38", len(pairs), yes)
	}
	// The first row of the file is img20.jpg,img21.jpg,Yes.
	if p := pairs[0]; p.A != "img20.jpg" || p.B != "img21.jpg" || !p.Same {
		t.Errorf("first pair = %+v", p)
	}
	checkFoldsHaveBoth(t, pairs, folds)
	size := make([]int, folds)
	for _, p := range pairs {
		size[p.Fold]++
	}
	for f, s := range size {
		if s != 30 {
			t.Errorf("fold %d has %d pairs, want 30 (sizes %v)", f, s, size)
		}
	}
	// Images are directly in the CSV's folder.
	dir := filepath.Dir(masterCSV)
	for _, p := range pairs {
		for _, name := range []string{p.A, p.B} {
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name))); err != nil {
				t.Errorf("image of pair %+v: %v", p, err)
			}
		}
	}
}

func checkFoldsHaveBoth(t *testing.T, pairs []Pair, folds int) {
	t.Helper()
	pos, neg := make([]int, folds), make([]int, folds)
	for _, p := range pairs {
		if p.Fold < 0 || p.Fold >= folds {
			t.Fatalf("pair %+v: fold outside 0..%d", p, folds-1)
		}
		if p.Same {
			pos[p.Fold]++
		} else {
			neg[p.Fold]++
		}
	}
	for f := range folds {
		if pos[f] == 0 || neg[f] == 0 {
			t.Errorf("fold %d has %d same and %d different pairs, want both", f, pos[f], neg[f])
		}
	}
}

func TestParseCSVVariants(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Pair // folds by StratifiedFolds
	}{
		{
			name: "plain",
			in:   "file_x,file_y,Decision\na.jpg,b.jpg,Yes\nc.jpg,d.jpg,No\n",
			want: []Pair{{"a.jpg", "b.jpg", true, 0, false}, {"c.jpg", "d.jpg", false, 1, false}},
		},
		{
			name: "case, order, extra columns, spaces, BOM, CRLF, blank lines",
			in:   "\ufeff\r\nID, DECISION ,File_Y,file_X,note\r\n1, no ,b b.jpg,a.jpg,x\r\n   \r\n2,YES, \"d,1.jpg\",sub/c.jpg,\r\n",
			want: []Pair{{"a.jpg", "b b.jpg", false, 1, false}, {"sub/c.jpg", "d,1.jpg", true, 0, false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pairs, folds, err := ParsePairs(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if folds != DefaultFolds {
				t.Errorf("folds = %d", folds)
			}
			if fmt.Sprint(pairs) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v, want %+v", pairs, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string // want: regexp the error must match
	}{
		{"empty", "", `^eval: pairs file is empty$`},
		{"blank", "\n \n\t\n", `^eval: pairs file is empty$`},
		{"unknown header", "\nhello world\n", `^eval: line 2: .*neither an LFW header`},
		{"three numbers", "1 2 3\n", `^eval: line 1: .*neither`},
		{"zero folds", "0 3\n", `^eval: line 1: fold count: must be at least 1`},
		{"zero n", "2 0\n", `^eval: line 1: pairs per fold: must be at least 1`},
		{"huge n", "1 1234567890\n", `^eval: line 1: pairs per fold: .*too large`},
		{"negative looks like text", "-1 2\n", `^eval: line 1: .*neither`},
		{"positive has 4 fields", "1 1\nA 1 B 2\nC 1 D 2\n", `^eval: line 2: fold 1 expects a same-person pair`},
		{"negative has 3 fields", "1 1\nA 1 2\nC 1 2\n", `^eval: line 3: fold 1 expects a different-person pair`},
		{"second fold", "2 1\nA 1 2\nC 1 D 2\nA 1 2 3 4\n", `^eval: line 4: fold 2 expects a same-person`},
		{"bad index", "1 1\nA 1 x\nC 1 D 2\n", `^eval: line 2: image number for "A": "x" is not a whole number`},
		{"index zero", "1 1\nA 1 2\nC 0 D 2\n", `^eval: line 3: image number for "C": must be at least 1`},
		{"signed index", "1 1\nA +1 2\nC 1 D 2\n", `^eval: line 2: image number .*not a whole number`},
		{"name with slash", "1 1\nA/B 1 2\nC 1 D 2\n", `^eval: line 2: person name "A/B" contains a path separator`},
		{"name dotdot", "1 1\n.. 1 2\nC 1 D 2\n", `^eval: line 2: image name ".." is not a path inside`},
		{"too few", "2 1\nA 1 2\nC 1 D 2\n\nA 1 2\n", `^eval: line 5: pairs file ends after 3 pairs, but the header on line 1 declares 4`},
		{"too many", "1 1\nA 1 2\nC 1 D 2\nE 1 2\n", `^eval: line 4: extra pair`},
		{"csv missing column", "file_x,file_y\na,b\n", `^eval: line 1: CSV header lacks column "decision"`},
		{"csv duplicate column", "file_x,FILE_X,file_y,decision\n", `^eval: line 1: CSV header has column "file_x" twice`},
		{"csv no rows", "\nfile_x,file_y,decision\n\n", `^eval: line 2: CSV has a header but no pairs`},
		{"csv bad decision", "file_x,file_y,decision\na,b,Yes\na,b,maybe\n", `^eval: line 3: Decision "maybe", want Yes or No`},
		{"csv short row", "file_x,file_y,decision\na,b,Yes\n\na,b\n", `^eval: line 4: 2 field\(s\), need at least 3`},
		{"csv empty name", "file_x,file_y,decision\na, ,No\n", `^eval: line 2: empty image name`},
		{"csv absolute path", "file_x,file_y,decision\n/etc/passwd,b,No\n", `^eval: line 2: image name "/etc/passwd" is not a path inside`},
		{"csv escape", "file_x,file_y,decision\na,../b.jpg,No\n", `^eval: line 2: image name "../b.jpg" is not a path inside`},
		{"csv control char", "file_x,file_y,decision\n\"a\x01\",b,No\n", `^eval: line 2: image name .* control character`},
		{"csv quote error", "file_x,file_y,decision\na,b,No\na,b\"c,No\n", `^eval: CSV: .*line 3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pairs, folds, err := ParsePairs(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("no error; got %d folds, pairs %+v", folds, pairs)
			}
			if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Errorf("error %q does not match %q", err, tt.want)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, fmt.Errorf("disk on fire") }

func TestParseReadError(t *testing.T) {
	_, _, err := ParsePairs(failingReader{})
	if err == nil || !strings.Contains(err.Error(), "eval: reading pairs: disk on fire") {
		t.Errorf("err = %v", err)
	}
}

func TestStratifiedFolds(t *testing.T) {
	tests := []struct {
		same []bool
		k    int
		want []int
	}{
		{nil, 3, []int{}},
		{[]bool{true}, 0, nil},
		// Positives in order take folds 0,1,..., then negatives continue.
		{[]bool{false, true, false, true, true}, 2, []int{1, 0, 0, 1, 0}},
		{[]bool{true, true, true, false, false, false}, 3, []int{0, 1, 2, 0, 1, 2}},
	}
	for _, tt := range tests {
		got := StratifiedFolds(tt.same, tt.k)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("StratifiedFolds(%v, %d) = %v, want %v", tt.same, tt.k, got, tt.want)
		}
	}
}

// FuzzParsePairs checks that no input panics, every error is an "eval:"
// error, and every accepted file yields pairs that are usable as given and
// survive a round trip through the CSV form.
func FuzzParsePairs(f *testing.F) {
	f.Add([]byte(lfwTwoFolds))
	f.Add([]byte("1\nAbel_Pacheco 1 4\nAbdel_Madi_Shabneh 1 Dean_Barker 1\n"))
	f.Add([]byte("file_x,file_y,Decision\na.jpg,b.jpg,Yes\nc.jpg,d.jpg,No\n"))
	f.Add([]byte("\ufeffid,decision,file_y,file_x\n1,no,\"b,b.jpg\",a.jpg\n"))
	f.Add([]byte("2 1\nA 1 2\nC 1 D 2\n"))
	f.Add([]byte("file_x,file_y,decision\na,b\"c,No\n"))
	if b, err := os.ReadFile(masterCSV); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pairs, folds, err := ParsePairs(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "eval: ") {
				t.Fatalf("error without eval: prefix: %v", err)
			}
			return
		}
		if len(pairs) == 0 || folds < 1 {
			t.Fatalf("no error but %d pairs, %d folds", len(pairs), folds)
		}
		for _, p := range pairs {
			if p.Fold < 0 || p.Fold >= folds {
				t.Fatalf("pair %+v: fold outside 0..%d", p, folds-1)
			}
			for _, name := range []string{p.A, p.B} {
				if checkName(name) != nil || name != strings.TrimSpace(name) {
					t.Fatalf("pair %+v: unusable image name %q", p, name)
				}
			}
		}

		var b bytes.Buffer
		w := csv.NewWriter(&b)
		w.Write([]string{"file_x", "file_y", "Decision"})
		for _, p := range pairs {
			d := "No"
			if p.Same {
				d = "Yes"
			}
			w.Write([]string{p.A, p.B, d})
		}
		w.Flush()
		again, _, err := ParsePairs(&b)
		if err != nil {
			t.Fatalf("CSV form of accepted pairs rejected: %v", err)
		}
		if len(again) != len(pairs) {
			t.Fatalf("round trip: %d pairs, want %d", len(again), len(pairs))
		}
		for i := range pairs {
			if again[i].A != pairs[i].A || again[i].B != pairs[i].B || again[i].Same != pairs[i].Same {
				t.Fatalf("round trip: pair %d = %+v, want %+v", i, again[i], pairs[i])
			}
		}
	})
}
