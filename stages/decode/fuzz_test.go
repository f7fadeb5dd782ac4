package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// addSeeds seeds a fuzz target with every testdata input and the golden
// lines, plus edge cases of the byte-level scanner.
func addSeeds(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*.input.json"))
	goldens, _ := filepath.Glob(filepath.Join("testdata", "*.golden.jsonl"))
	for _, p := range append(inputs, goldens...) {
		f.Add(readTestdata(f, filepath.Base(p)))
	}
	for _, s := range []string{
		baseFinding, f1Pascal, envelope("GuardDuty Finding", f1Pascal), envelope("Other", "{}"),
		`{"Id":"x","\u0041":{"\ud801\udc00":1,"\u0130":2},"É":"É"}`,
		`{"Id":"x","a\"b":"c\\","\\":"\"","k" : [ "v" , { "K" :1} ]}`,
		`{"Findings":[{"AccountId":"1"}]}`, `{"Criterion":{}}`, "[1,2", `"\`, "{\"a\":\"\x00\"}",
		strings.Repeat("[", 301) + strings.Repeat("]", 301),
	} {
		f.Add([]byte(s))
	}
}

// FuzzNormalize: Normalize never panics; what it accepts comes out valid,
// compact JSON with the same values as the input (unwrapped from an
// EventBridge envelope, camelCased when PascalCase), in the same order.
func FuzzNormalize(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Normalize(nil, data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("bad error %q", err)
			}
			return
		}
		var compacted bytes.Buffer
		if err := json.Compact(&compacted, out); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		if !bytes.Equal(compacted.Bytes(), out) {
			t.Fatalf("output is not compact: %s", out)
		}
		in, err := orderedJSON(data)
		if err != nil {
			t.Fatalf("Normalize accepted what encoding/json refuses (%v): %q", err, data)
		}
		want := in.(object)
		if _, ok := want.get("detail-type"); ok {
			d, _ := want.get("detail")
			want = d.(object)
		}
		_, p1 := want.get("AccountId")
		_, p2 := want.get("Id")
		_, p3 := want.get("SchemaVersion")
		var wantTree any = want
		if p1 || p2 || p3 {
			wantTree = camelTree(want)
		}
		got, err := orderedJSON(out)
		if err != nil {
			t.Fatalf("output unreadable: %v", err)
		}
		if !reflect.DeepEqual(got, wantTree) {
			t.Fatalf("values changed:\n in %q\nout %q", data, out)
		}
	})
}

// FuzzDecode: Decode never panics, refuses with ErrInvalid and a one-line
// reason, and what it accepts meets every rule it promises.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fd, err := Decode(data)
		if err != nil {
			if fd != nil || !errors.Is(err, ErrInvalid) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("bad error %q (finding %v)", err, fd)
			}
			return
		}
		norm, err := Normalize(nil, data)
		if err != nil || !bytes.Equal(norm, fd.Raw) {
			t.Fatalf("Raw %q is not Normalize's %q (%v)", fd.Raw, norm, err)
		}
		if !isFindingID([]byte(fd.ID)) || fd.Type == "" || !isAccountID([]byte(fd.AccountID)) || !IsRegion(fd.Region) || fd.Count < 0 {
			t.Fatalf("accepted finding breaks a rule: %+v", fd)
		}
		if ms, ok := ParseTimestampString(fd.UpdatedAtText()); !ok || ms != fd.UpdatedAt {
			t.Fatalf("updatedAt %d does not round-trip through %q", fd.UpdatedAt, fd.UpdatedAtText())
		}
	})
}

// FuzzSplit: Split never panics or fails on bad bytes, and every item it
// accepts is a normalised object with its routing fields.
func FuzzSplit(f *testing.F) {
	addSeeds(f)
	f.Add([]byte(f1 + "\n" + f2 + "\n[" + f3 + "]\n"))
	f.Add([]byte("[\n" + f1 + ",\n" + f2 + "\n]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Split(bytes.NewReader(data), func(it Item) error {
			if it.Pos == "" {
				t.Fatal("empty position")
			}
			if it.Err != nil {
				if !errors.Is(it.Err, ErrInvalid) {
					t.Fatalf("%s: refusal %v does not wrap ErrInvalid", it.Pos, it.Err)
				}
				return nil
			}
			if len(it.Raw) == 0 || it.Raw[0] != '{' || !json.Valid(it.Raw) || it.AccountID == "" || it.Region == "" {
				t.Fatalf("%s: bad item %+v", it.Pos, it)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Split: %v", err)
		}
	})
}
