package eval

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// DefaultFolds is the number of folds given to pair files that carry none
// (CSV, and LFW's single-fold development files): LFW's own k.
const DefaultFolds = 10

// Pair is one verification trial.
type Pair struct {
	// A and B are image paths relative to the images folder, slash-separated
	// as written in (or, for LFW, derived from) the pairs file; join them
	// with filepath.Join(dir, filepath.FromSlash(p.A)).
	A, B string
	// Same is true when both images show the same person.
	Same bool
	// Fold is the pair's cross-validation fold, 0-based.
	Fold int
	// Centred is true when each photo is cut around the person it is of,
	// as LFW's are: the face nearest the centre is theirs, while the
	// biggest can be a bystander cut by the frame.
	Centred bool
}

// ParsePairs reads a pairs file in LFW pairs.txt or CSV form (see the
// package documentation), telling them apart by the first non-blank line: a
// line of one or two whole numbers is an LFW header, a line with a comma a
// CSV header. It returns the pairs in file order and the number of folds
// they are split into: the header's for LFW, DefaultFolds for CSV.
//
// Errors start with "eval:" and name the offending line.
func ParsePairs(r io.Reader) (pairs []Pair, folds int, err error) {
	// Pair lists are small (LFW's is 6,000 lines), and holding the whole
	// file lets the format be sniffed before choosing a parser.
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, fmt.Errorf("eval: reading pairs: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // editors on Windows add a BOM
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if f := strings.Fields(l); len(f) <= 2 && allDigits(f) {
			return parseLFW(lines, i)
		}
		if strings.Contains(l, ",") {
			return parseCSV(data)
		}
		return nil, 0, fmt.Errorf("eval: line %d: %q is neither an LFW header (\"folds n\") nor a CSV header (\"file_x,file_y,Decision\")", i+1, clip(l))
	}
	return nil, 0, errors.New("eval: pairs file is empty")
}

// parseLFW reads LFW pairs.txt; lines[hdr] is the header line.
func parseLFW(lines []string, hdr int) ([]Pair, int, error) {
	f := strings.Fields(lines[hdr])
	folds, n := 1, 0
	var err error
	if len(f) == 2 {
		if folds, err = parseCount(f[0]); err != nil {
			return nil, 0, fmt.Errorf("eval: line %d: fold count: %v", hdr+1, err)
		}
	}
	if n, err = parseCount(f[len(f)-1]); err != nil {
		return nil, 0, fmt.Errorf("eval: line %d: pairs per fold: %v", hdr+1, err)
	}
	// parseCount caps both at 9 digits, so this cannot overflow an int64.
	perFold := 2 * n
	total := folds * perFold
	pairs := make([]Pair, 0, min(total, len(lines)))
	last := hdr
	for i := hdr + 1; i < len(lines); i++ {
		fields := strings.Fields(lines[i])
		if len(fields) == 0 {
			continue // blank lines carry nothing; the counts below still catch missing pairs
		}
		lineNo := i + 1
		last = i
		k := len(pairs)
		if k >= total {
			return nil, 0, fmt.Errorf("eval: line %d: extra pair: the header on line %d declares %d fold(s) of %d same + %d different pairs", lineNo, hdr+1, folds, n, n)
		}
		p := Pair{Fold: k / perFold, Same: k%perFold < n, Centred: true}
		switch {
		case p.Same && len(fields) != 3:
			return nil, 0, fmt.Errorf("eval: line %d: fold %d expects a same-person pair \"name i j\", got %d fields", lineNo, p.Fold+1, len(fields))
		case !p.Same && len(fields) != 4:
			return nil, 0, fmt.Errorf("eval: line %d: fold %d expects a different-person pair \"name1 i name2 j\", got %d fields", lineNo, p.Fold+1, len(fields))
		}
		nameA, idxA, nameB, idxB := fields[0], fields[1], fields[0], fields[2]
		if !p.Same {
			idxA, nameB, idxB = fields[1], fields[2], fields[3]
		}
		if p.A, err = lfwPath(nameA, idxA); err != nil {
			return nil, 0, fmt.Errorf("eval: line %d: %v", lineNo, err)
		}
		if p.B, err = lfwPath(nameB, idxB); err != nil {
			return nil, 0, fmt.Errorf("eval: line %d: %v", lineNo, err)
		}
		pairs = append(pairs, p)
	}
	if len(pairs) < total {
		return nil, 0, fmt.Errorf("eval: line %d: pairs file ends after %d pairs, but the header on line %d declares %d (%d fold(s) of %d same + %d different)", last+1, len(pairs), hdr+1, total, folds, n, n)
	}
	return pairs, folds, nil
}

// lfwPath maps an LFW name and image number to Name/Name_0001.jpg.
func lfwPath(name, idx string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("person name %q contains a path separator", clip(name))
	}
	i, err := parseCount(idx)
	if err != nil {
		return "", fmt.Errorf("image number for %q: %v", clip(name), err)
	}
	return fmt.Sprintf("%s/%s_%04d.jpg", name, name, i), nil
}

// parseCount parses a positive decimal count. strconv.Atoi alone would take
// signs and leading "+", which no pairs file writes; the 9-digit cap keeps
// products of counts within int64.
func parseCount(s string) (int, error) {
	if !allDigits([]string{s}) {
		return 0, fmt.Errorf("%q is not a whole number", clip(s))
	}
	if len(s) > 9 {
		return 0, fmt.Errorf("%q is too large", clip(s))
	}
	v, _ := strconv.Atoi(s) // cannot fail: at most 9 ASCII digits
	if v == 0 {
		return 0, errors.New("must be at least 1")
	}
	return v, nil
}

func allDigits(fs []string) bool {
	for _, s := range fs {
		if s == "" {
			return false
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
	}
	return true
}

// parseCSV reads the file_x,file_y,Decision form.
func parseCSV(data []byte) ([]Pair, int, error) {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1 // extra columns are allowed and rows may differ in width
	cr.TrimLeadingSpace = true
	header, err := readRecord(cr)
	if err != nil {
		return nil, 0, fmt.Errorf("eval: CSV header: %w", err)
	}
	hdrLine, _ := cr.FieldPos(0)
	col := map[string]int{"file_x": -1, "file_y": -1, "decision": -1}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if c, ok := col[h]; ok {
			if c >= 0 {
				return nil, 0, fmt.Errorf("eval: line %d: CSV header has column %q twice", hdrLine, h)
			}
			col[h] = i
		}
	}
	need := 0
	for _, name := range []string{"file_x", "file_y", "decision"} {
		if col[name] < 0 {
			return nil, 0, fmt.Errorf("eval: line %d: CSV header lacks column %q (want file_x, file_y, Decision)", hdrLine, name)
		}
		need = max(need, col[name]+1)
	}

	var pairs []Pair
	for {
		rec, err := readRecord(cr)
		if err == io.EOF {
			break
		}
		if err != nil {
			// csv.ParseError already says "parse error on line N".
			return nil, 0, fmt.Errorf("eval: CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < need {
			return nil, 0, fmt.Errorf("eval: line %d: %d field(s), need at least %d", line, len(rec), need)
		}
		p := Pair{A: strings.TrimSpace(rec[col["file_x"]]), B: strings.TrimSpace(rec[col["file_y"]])}
		for _, name := range []string{p.A, p.B} {
			if err := checkName(name); err != nil {
				return nil, 0, fmt.Errorf("eval: line %d: %v", line, err)
			}
		}
		switch d := strings.TrimSpace(rec[col["decision"]]); strings.ToLower(d) {
		case "yes":
			p.Same = true
		case "no":
		default:
			return nil, 0, fmt.Errorf("eval: line %d: Decision %q, want Yes or No", line, clip(d))
		}
		pairs = append(pairs, p)
	}
	if len(pairs) == 0 {
		return nil, 0, fmt.Errorf("eval: line %d: CSV has a header but no pairs", hdrLine)
	}
	same := make([]bool, len(pairs))
	for i, p := range pairs {
		same[i] = p.Same
	}
	for i, f := range StratifiedFolds(same, DefaultFolds) {
		pairs[i].Fold = f
	}
	return pairs, DefaultFolds, nil
}

// readRecord returns the next CSV record that is not blank: encoding/csv
// skips empty lines but returns a line of spaces as one empty field, which
// is just as empty.
func readRecord(cr *csv.Reader) ([]string, error) {
	for {
		rec, err := cr.Read()
		if err != nil {
			return nil, err
		}
		for _, f := range rec {
			if strings.TrimSpace(f) != "" {
				return rec, nil
			}
		}
	}
}

// checkName rejects image names that cannot be a file inside the images
// folder: absolute paths and ".." escapes would let a pairs file read
// anywhere, and control characters are never in real names but would garble
// error messages and terminals.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty image name")
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fmt.Errorf("image name %q contains a control character", clip(name))
	}
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return fmt.Errorf("image name %q is not a path inside the images folder", clip(name))
	}
	return nil
}

// StratifiedFolds assigns k cross-validation folds to pairs that carry none.
// The rule is deterministic and depends only on the labels' order: list the
// same-person pairs in their given order, then the different-person pairs
// in theirs, and give the i-th pair of that list fold i mod k. Every fold
// therefore gets at least one pair of each kind when there are k of each,
// fold sizes differ by at most one, and so does each fold's count of either
// kind (deepface's 38 + 262 pairs make ten folds of 30). It returns nil when
// k < 1.
func StratifiedFolds(same []bool, k int) []int {
	if k < 1 {
		return nil
	}
	fold := make([]int, len(same))
	i := 0
	for _, want := range []bool{true, false} {
		for j, s := range same {
			if s == want {
				fold[j] = i % k
				i++
			}
		}
	}
	return fold
}

// clip shortens user text quoted in errors, so a corrupt file with one huge
// line does not produce a huge message.
func clip(s string) string {
	const n = 60
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
