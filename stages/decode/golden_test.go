package decode

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The golden files: for every testdata/<name>.input.json, <name>.golden.jsonl
// holds the lines Split hands to publish, and <name>.refused.golden (present
// only when there are some) one "<pos>: <reason>" per refusal.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.input.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in testdata: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var lines, refused bytes.Buffer
			err = Split(bytes.NewReader(data), func(it Item) error {
				if it.Err != nil {
					fmt.Fprintf(&refused, "%s: %v\n", it.Pos, it.Err)
					return nil
				}
				lines.Write(it.Raw)
				lines.WriteByte('\n')
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(in, ".input.json")
			checkGolden(t, base+".golden.jsonl", lines.Bytes())
			checkGolden(t, base+".refused.golden", refused.Bytes())

			// Independently of the golden files: what compare_samples.py
			// expects, computed through encoding/json with member order kept.
			want := referenceFindings(t, data)
			got := splitLines(lines.Bytes())
			if len(got) != len(want) {
				t.Fatalf("Split gave %d findings, the reference %d", len(got), len(want))
			}
			for i := range got {
				g, err := orderedJSON(got[i])
				if err != nil {
					t.Fatalf("line %d is not JSON: %v", i+1, err)
				}
				if !reflect.DeepEqual(g, want[i]) {
					t.Errorf("line %d differs from the reference:\n got %s", i+1, got[i])
				}
				var compacted bytes.Buffer
				if err := json.Compact(&compacted, got[i]); err != nil || !bytes.Equal(compacted.Bytes(), got[i]) {
					t.Errorf("line %d is not compact", i+1)
				}
			}
		})
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if len(got) == 0 {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		want, err = nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to rewrite it):\n got %s\nwant %s", path, got, want)
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// member and object keep JSON objects in order, with duplicates, as
// compare_samples.py's object_pairs_hook does.
type member struct {
	Key string
	Val any
}

type object []member

func (o object) get(key string) (any, bool) {
	for _, m := range o {
		if m.Key == key {
			return m.Val, true
		}
	}
	return nil, false
}

// orderedJSON decodes one JSON document keeping member order and number text.
func orderedJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := readOrdered(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("more than one value")
	}
	return v, nil
}

func readOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		o := object{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := readOrdered(dec)
			if err != nil {
				return nil, err
			}
			o = append(o, member{k.(string), v})
		}
		_, err := dec.Token()
		return o, err
	default:
		a := []any{}
		for dec.More() {
			v, err := readOrdered(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	}
}

// camelTree lowercases the first character of every member name, like
// compare_samples.py's camel().
func camelTree(v any) any {
	switch x := v.(type) {
	case object:
		out := make(object, len(x))
		for i, m := range x {
			out[i] = member{pyLowerFirst(m.Key), camelTree(m.Val)}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = camelTree(e)
		}
		return out
	default:
		return v
	}
}

// pyLowerFirst is Python's k[:1].lower() + k[1:].
func pyLowerFirst(k string) string {
	r, size := utf8.DecodeRuneInString(k)
	if size == 0 {
		return k
	}
	if r == 'İ' {
		return "i\u0307" + k[size:]
	}
	return string(unicode.ToLower(r)) + k[size:]
}

// referenceFindings is compare_samples.py's findings(): the findings a
// sample holds, camelCased when they are AWS CLI output.
func referenceFindings(t *testing.T, data []byte) []any {
	t.Helper()
	var docs []any
	if doc, err := orderedJSON(data); err == nil {
		docs = []any{doc}
	} else {
		for _, l := range splitLines(data) {
			doc, err := orderedJSON(l)
			if err != nil {
				t.Fatalf("reference cannot read %q: %v", l, err)
			}
			docs = append(docs, doc)
		}
	}
	var out []any
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case object:
			detail, hasDetail := x.get("detail")
			source, _ := x.get("source")
			_, detailObject := detail.(object)
			fs, okF := x.get("Findings")
			if !okF {
				fs, okF = x.get("findings")
			}
			_, c1 := x.get("Criterion")
			_, c2 := x.get("FindingCriteria")
			_, c3 := x.get("findingCriteria")
			switch {
			case hasDetail && detailObject && source == "aws.guardduty":
				walk(detail)
			case okF:
				walk(fs)
			case c1 || c2 || c3:
			default:
				if _, pascal := x.get("AccountId"); pascal {
					out = append(out, camelTree(x))
				} else {
					out = append(out, x)
				}
			}
		}
	}
	for _, d := range docs {
		walk(d)
	}
	return out
}

// TestGoldenCompareSamples runs the project's own checker,
// testdata/compare_samples.py (a copy of ../shared/tools/compare_samples.py),
// on the samples and the active findings Split and Decode accept, when
// python3 is installed.
func TestGoldenCompareSamples(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*.input.json"))
	dir := t.TempDir()
	var exported bytes.Buffer
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(in)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		err = Split(bytes.NewReader(data), func(it Item) error {
			if it.Err != nil {
				return nil
			}
			f, err := Decode(it.Raw)
			if err != nil {
				return fmt.Errorf("%s %s: %w", in, it.Pos, err)
			}
			if !f.Archived {
				exported.Write(f.Raw)
				exported.WriteByte('\n')
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "exported.jsonl")
	if err := os.WriteFile(out, exported.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(python, filepath.Join("testdata", "compare_samples.py"), dir, out).CombinedOutput()
	t.Logf("compare_samples.py: %s", bytes.TrimSpace(res))
	if err != nil {
		t.Errorf("compare_samples.py failed: %v", err)
	}
}
