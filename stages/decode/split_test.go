package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// Small findings for Split's cases.
const (
	f1 = `{"accountId":"111122223333","region":"us-east-1","id":"a1","updatedAt":"2024-01-01T00:00:00Z"}`
	f2 = `{"accountId":"444455556666","region":"eu-west-1","id":"a2","updatedAt":"2024-01-02T00:00:00.5+01:00"}`
	f3 = `{"accountId":"111122223333","region":"us-east-1","id":"a3","updatedAt":"2024-01-03T00:00:00.123Z"}`
	// f1 as AWS CLI output.
	f1Pascal = `{"AccountId":"111122223333","Region":"us-east-1","Id":"a1","UpdatedAt":"2024-01-01T00:00:00Z"}`
)

func envelope(detailType, detail string) string {
	return `{"version":"0","id":"e","detail-type":"` + detailType + `","source":"aws.guardduty","account":"999999999999","region":"us-east-1","resources":[],"detail":` + detail + `}`
}

func pretty(s string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		panic(err)
	}
	return b.String() + "\n"
}

// splitAll runs Split and renders each item as "<pos> <raw>" or
// "<pos> ! <reason>".
func splitAll(t *testing.T, in string) []string {
	t.Helper()
	var got []string
	err := Split(strings.NewReader(in), func(it Item) error {
		if it.Err != nil {
			if it.Raw != nil {
				t.Errorf("%s: refused item has Raw", it.Pos)
			}
			if !errors.Is(it.Err, ErrInvalid) {
				t.Errorf("%s: refusal %v does not wrap ErrInvalid", it.Pos, it.Err)
			}
			got = append(got, it.Pos+" ! "+it.Err.Error())
			return nil
		}
		if it.AccountID == "" || it.Region == "" {
			t.Errorf("%s: accepted item without account or region: %+v", it.Pos, it)
		}
		got = append(got, it.Pos+" "+string(it.Raw))
		return nil
	})
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	return got
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		// A single finding on one line is a document, not JSON Lines.
		{name: "one-line finding", in: f1 + "\n", want: []string{"document " + f1}},
		// A pretty-printed finding is compacted.
		{name: "pretty finding", in: pretty(f1), want: []string{"document " + f1}},
		// Without a trailing newline.
		{name: "finding without newline", in: f1, want: []string{"document " + f1}},
		// A pretty-printed array is streamed element by element.
		{name: "pretty array", in: pretty("[" + f1 + "," + f2 + "," + f3 + "]"), want: []string{"item 1 " + f1, "item 2 " + f2, "item 3 " + f3}},
		// A one-line array.
		{name: "one-line array", in: "[" + f1 + "," + f2 + "]\n", want: []string{"item 1 " + f1, "item 2 " + f2}},
		// jq -c style: "[" alone, then compact elements, is an array, not JSON Lines.
		{name: "array with compact elements", in: "[\n" + f1 + ",\n" + f2 + "\n]\n", want: []string{"item 1 " + f1, "item 2 " + f2}},
		// An empty array holds nothing and refuses nothing.
		{name: "empty array", in: "[]", want: nil},
		// JSON Lines, blank lines skipped, positions are physical lines.
		{name: "JSON Lines", in: f1 + "\n\n" + f2 + "\n   \n" + f3 + "\n", want: []string{"line 1 " + f1, "line 3 " + f2, "line 5 " + f3}},
		// Windows line ends.
		{name: "JSON Lines CRLF", in: f1 + "\r\n" + f2 + "\r\n", want: []string{"line 1 " + f1, "line 2 " + f2}},
		// Leading blank lines count.
		{name: "JSON Lines leading blank lines", in: "\n\n" + f1 + "\n" + f2, want: []string{"line 3 " + f1, "line 4 " + f2}},
		// aws guardduty get-findings output: PascalCase, camelCased on the way.
		{name: "get-findings PascalCase", in: pretty(`{"Findings":[` + f1Pascal + `,` + f1Pascal + `]}`), want: []string{"Findings[0] " + f1, "Findings[1] " + f1}},
		// The REST API's camelCase response on one line.
		{name: "get-findings camelCase", in: `{"findings":[` + f1 + `,` + f2 + `]}`, want: []string{"findings[0] " + f1, "findings[1] " + f2}},
		// A response whose findings key is not first is read whole.
		{name: "get-findings key not first", in: pretty(`{"nextToken":"x","findings":[` + f1 + `]}`), want: []string{"findings[0] " + f1}},
		// Members after the streamed array are skipped.
		{name: "get-findings trailing member", in: pretty(`{"Findings":[` + f1Pascal + `],"NextToken":"t","Other":{"a":[1]}}`), want: []string{"Findings[0] " + f1}},
		// An empty response.
		{name: "get-findings empty", in: `{"Findings": []}`, want: nil},
		// EventBridge events are unwrapped, alone, in arrays and in JSON Lines.
		{name: "EventBridge event", in: pretty(envelope("GuardDuty Finding", f1)), want: []string{"document " + f1}},
		{name: "EventBridge array", in: pretty("[" + envelope("GuardDuty Finding", f1) + "," + envelope("GuardDuty Finding", f2) + "]"), want: []string{"item 1 " + f1, "item 2 " + f2}},
		{name: "EventBridge JSON Lines", in: envelope("GuardDuty Finding", f1) + "\n" + envelope("GuardDuty Finding", f2) + "\n", want: []string{"line 1 " + f1, "line 2 " + f2}},
		// Arrays on JSON Lines lines.
		{name: "JSON Lines of arrays", in: "[" + f1 + "," + f2 + "]\n[" + f3 + "]\n", want: []string{"line 1 item 1 " + f1, "line 1 item 2 " + f2, "line 2 item 1 " + f3}},
		// Concatenated pretty documents: later ones are named by their first line.
		{name: "concatenated documents", in: pretty(f1) + pretty(f2), want: []string{"document " + f1, "line 7 " + f2}},
		// A UTF-8 byte order mark is skipped.
		{name: "byte order mark", in: "\xef\xbb\xbf" + pretty(f1), want: []string{"document " + f1}},

		// Refusals: not JSON.
		{name: "empty input", in: "", want: []string{"document ! not JSON: empty input"}},
		{name: "blank input", in: "\n \n", want: []string{"document ! not JSON: empty input"}},
		// A file that is not JSON at all is one refusal.
		{name: "not JSON at all", in: "hello world\nthis is: text\n", want: []string{"document ! not JSON: …"}},
		{name: "YAML", in: "findings:\n  - id: a1\n", want: []string{"document ! not JSON: …"}},
		// In JSON Lines only the bad line is refused.
		{name: "JSON Lines bad middle line", in: f1 + "\n{\"accountId\":\n" + f2 + "\n", want: []string{"line 1 " + f1, "line 2 ! not JSON: …", "line 3 " + f2}},
		// A bad first line does not turn JSON Lines into one document.
		{name: "JSON Lines bad first line", in: "{\"id\":tru}\n" + f1 + "\n" + f2 + "\n", want: []string{"line 1 ! not JSON: …", "line 2 " + f1, "line 3 " + f2}},
		// A truncated pretty document.
		{name: "truncated document", in: pretty(f1)[:40], want: []string{"document ! not JSON: unexpected end of input"}},
		// A truncated array: what came before is kept.
		{name: "truncated array", in: "[\n" + f1 + ",\n" + f2[:30], want: []string{"item 1 " + f1, "item 2 ! not JSON: unexpected end of input"}},
		// A missing comma stops the array.
		{name: "array missing comma", in: "[\n" + f1 + "\n" + f2 + "\n]", want: []string{"item 1 " + f1, `item 2 ! not JSON: found '{' where ',' or ']' should follow item 1`}},
		// A malformed element with balanced brackets is refused alone.
		{name: "array bad element", in: "[\n{\"accountId\":tru},\n" + f1 + "\n]\n", want: []string{"item 1 ! not JSON: …", "item 2 " + f1}},
		// A trailing comma.
		{name: "array trailing comma", in: "[\n" + f1 + ",\n]", want: []string{"item 1 " + f1, "item 2 ! not JSON: found ']' where a value should start"}},

		// Refusals: what publish cannot route.
		{name: "missing accountId", in: `{"region":"us-east-1","id":"x"}`, want: []string{"document ! missing accountId"}},
		{name: "missing region", in: `{"accountId":"111122223333","id":"x"}`, want: []string{"document ! missing region"}},
		{name: "accountId number", in: `{"accountId":111122223333,"region":"us-east-1"}`, want: []string{"document ! accountId 111122223333 is not a string"}},
		// A dot would add a subject token; a wildcard cannot be published to.
		{name: "accountId with dot", in: `{"accountId":"1111.2222","region":"us-east-1"}`, want: []string{`document ! accountId "1111.2222" cannot name a NATS subject token`}},
		{name: "region wildcard", in: `{"accountId":"111122223333","region":">"}`, want: []string{`document ! region ">" cannot name a NATS subject token`}},
		// An element that is not an object.
		{name: "array of numbers", in: "[1,2]", want: []string{"item 1 ! not a finding: top-level value is a number", "item 2 ! not a finding: top-level value is a number"}},
		// Other EventBridge events, among findings.
		{name: "other detail-type", in: "[" + envelope("GuardDuty Finding", f1) + "," + envelope("GuardDuty Malware Protection Object Scan Result", `{}`) + "]",
			want: []string{"item 1 " + f1, `item 2 ! not a finding: an EventBridge event of detail-type "GuardDuty Malware Protection Object Scan Result", not "GuardDuty Finding"`}},
		// Filter documents say what they are.
		{name: "filter criteria", in: pretty(`{"Criterion":{"service.archived":{"Eq":["false"]}}}`), want: []string{"document ! a filter document, not a finding"}},

		// Not refused: the pipeline judges these.
		{name: "missing id passes", in: `{"accountId":"111122223333","region":"us-east-1"}`, want: []string{`document {"accountId":"111122223333","region":"us-east-1"}`}},
		{name: "bad account passes", in: `{"accountId":"12345678901","region":"moon-1"}`, want: []string{`document {"accountId":"12345678901","region":"moon-1"}`}},
		{name: "bad updatedAt passes", in: `{"accountId":"111122223333","region":"us-east-1","updatedAt":"yesterday"}`, want: []string{`document {"accountId":"111122223333","region":"us-east-1","updatedAt":"yesterday"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitAll(t, tt.in)
			if len(got) != len(tt.want) {
				t.Fatalf("Split gave %d items, want %d:\n got %q\nwant %q", len(got), len(tt.want), got, tt.want)
			}
			for i := range got {
				w := tt.want[i]
				if p, ok := strings.CutSuffix(w, "…"); ok {
					if !strings.HasPrefix(got[i], p) {
						t.Errorf("item %d = %q, want prefix %q", i, got[i], p)
					}
				} else if got[i] != w {
					t.Errorf("item %d\n got %q\nwant %q", i, got[i], w)
				}
			}
		})
	}
}

func TestSplitItemFields(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Item
	}{
		// updatedAt is normalised to pipeline.TimeLayout for Nats-Msg-Id.
		{name: "ISO with offset", in: f2, want: Item{AccountID: "444455556666", Region: "eu-west-1", ID: "a2", UpdatedAt: "2024-01-01T23:00:00.500Z"}},
		// Epoch updatedAt is normalised too (the pipeline refuses it later).
		{name: "epoch updatedAt", in: `{"accountId":"111122223333","region":"us-east-1","id":"b","updatedAt":1704067200000}`, want: Item{AccountID: "111122223333", Region: "us-east-1", ID: "b", UpdatedAt: "2024-01-01T00:00:00.000Z"}},
		// Unparsable text is passed as is.
		{name: "unparsable updatedAt", in: `{"accountId":"111122223333","region":"us-east-1","id":"b","updatedAt":"yesterday"}`, want: Item{AccountID: "111122223333", Region: "us-east-1", ID: "b", UpdatedAt: "yesterday"}},
		// Non-strings keep their JSON text.
		{name: "boolean updatedAt", in: `{"accountId":"111122223333","region":"us-east-1","updatedAt":true}`, want: Item{AccountID: "111122223333", Region: "us-east-1", UpdatedAt: "true"}},
		// No id, no updatedAt: empty fields.
		{name: "bare routing fields", in: `{"accountId":"111122223333","region":"us-east-1"}`, want: Item{AccountID: "111122223333", Region: "us-east-1"}},
		// Escapes in the routing fields are decoded.
		{name: "escaped fields", in: `{"accountId":"11112222333\u0033","region":"us-east-1","id":"a\u0031"}`, want: Item{AccountID: "111122223333", Region: "us-east-1", ID: "a1"}},
		// PascalCase input is read through camelCase names.
		{name: "PascalCase", in: f1Pascal, want: Item{AccountID: "111122223333", Region: "us-east-1", ID: "a1", UpdatedAt: "2024-01-01T00:00:00.000Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var items []Item
			if err := Split(strings.NewReader(tt.in), func(it Item) error { items = append(items, it); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(items) != 1 || items[0].Err != nil {
				t.Fatalf("items = %+v", items)
			}
			got := items[0]
			if got.AccountID != tt.want.AccountID || got.Region != tt.want.Region || got.ID != tt.want.ID || got.UpdatedAt != tt.want.UpdatedAt {
				t.Errorf("item = %q %q %q %q, want %q %q %q %q", got.AccountID, got.Region, got.ID, got.UpdatedAt,
					tt.want.AccountID, tt.want.Region, tt.want.ID, tt.want.UpdatedAt)
			}
			if got.Offset != int64(len(tt.in)) {
				t.Errorf("Offset = %d, want %d", got.Offset, len(tt.in))
			}
		})
	}
}

func TestSplitCallbackError(t *testing.T) {
	// fn's error stops Split and is returned, for findings and refusals alike.
	stop := errors.New("stop here")
	for _, in := range []string{f1 + "\n" + f2 + "\n", "x\n" + f1 + "\n"} {
		n := 0
		err := Split(strings.NewReader(in), func(Item) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("Split(%q) = %v after %d calls, want %v after 1", in, err, n, stop)
		}
	}
}

func TestSplitReadError(t *testing.T) {
	// A failing reader is an error of Split, not a refusal.
	broken := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader("[\n"+f1+",\n"), errReader{broken})
	var got []string
	err := Split(r, func(it Item) error { got = append(got, it.Pos); return nil })
	if !errors.Is(err, broken) {
		t.Errorf("Split = %v, want %v", err, broken)
	}
	if len(got) != 1 || got[0] != "item 1" {
		t.Errorf("items before the error = %q", got)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// endless produces head, then body forever: an input larger than any memory.
type endless struct {
	head, body []byte
	pos        int
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(e.head) > 0 {
			c := copy(p[n:], e.head)
			e.head = e.head[c:]
			n += c
			continue
		}
		c := copy(p[n:], e.body[e.pos:])
		e.pos = (e.pos + c) % len(e.body)
		n += c
	}
	return n, nil
}

func TestSplitStreams(t *testing.T) {
	// Split hands out findings before it has seen the end of the input: each
	// of these inputs never ends.
	finding := readTestdata(t, "finding_elastic_ec2_trojan_blackholetraffic_dns.input.json")
	finding = bytes.TrimSpace(finding)
	tests := []struct {
		name    string
		head    string
		body    string
		wantPos string // position of the 2000th item
	}{
		{name: "array", head: "[\n", body: string(finding) + ",\n", wantPos: "item 2000"},
		{name: "get-findings", head: `{"findings": [`, body: string(finding) + ",", wantPos: "findings[1999]"},
		{name: "JSON Lines", head: "", body: string(finding) + "\n", wantPos: "line 2000"},
	}
	enough := errors.New("enough")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			var last Item
			err := Split(&endless{head: []byte(tt.head), body: []byte(tt.body)}, func(it Item) error {
				if it.Err != nil {
					t.Fatalf("%s refused: %v", it.Pos, it.Err)
				}
				n++
				last = it
				if n == 2000 {
					return enough
				}
				return nil
			})
			if !errors.Is(err, enough) {
				t.Fatalf("Split = %v", err)
			}
			if last.Pos != tt.wantPos {
				t.Errorf("2000th item at %q, want %q", last.Pos, tt.wantPos)
			}
			// The reader is consumed a buffer ahead at most.
			if min := int64(2000 * len(tt.body)); last.Offset < min || last.Offset > min+int64(len(tt.head))+splitBufferSize {
				t.Errorf("Offset = %d, want about %d", last.Offset, min)
			}
		})
	}
}

// repeat is n copies of c.
type repeat struct {
	c byte
	n int
}

func (r *repeat) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = r.c
	}
	r.n -= n
	return n, nil
}

func TestSplitTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 130 MB")
	}
	big := func() io.Reader {
		return io.MultiReader(strings.NewReader(`{"accountId":"111122223333","region":"us-east-1","pad":"`),
			&repeat{c: 'x', n: MaxDocumentSize}, strings.NewReader(`"}`))
	}
	tests := []struct {
		name string
		in   io.Reader
		want []string
	}{
		// JSON Lines: the long line is refused, the next is read.
		{name: "JSON Lines", in: io.MultiReader(strings.NewReader(f1+"\n"), big(), strings.NewReader("\n"+f2+"\n")),
			want: []string{"line 1", "line 2 ! larger than 64 MiB", "line 3"}},
		// A document sequence: the large document is skipped.
		{name: "documents", in: io.MultiReader(big(), strings.NewReader("\n"+pretty(f2))),
			want: []string{"document ! larger than 64 MiB", "line 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := Split(tt.in, func(it Item) error {
				if it.Err != nil {
					got = append(got, it.Pos+" ! "+it.Err.Error())
				} else {
					got = append(got, it.Pos)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSplitSlowPipe(t *testing.T) {
	// A producer writing into a pipe gets its first findings published
	// before it finishes: Split does not wait for a full buffer or for EOF.
	tests := []struct {
		name    string
		first   string // written before the first item is awaited
		rest    string
		wantPos []string
	}{
		{name: "JSON Lines", first: f1 + "\n" + f2 + "\n", rest: f3 + "\n", wantPos: []string{"line 1", "line 2", "line 3"}},
		{name: "array", first: "[\n" + f1 + ",\n", rest: f2 + "\n]\n", wantPos: []string{"item 1", "item 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w := io.Pipe()
			items := make(chan string, 10)
			done := make(chan error, 1)
			go func() {
				done <- Split(r, func(it Item) error {
					if it.Err != nil {
						return it.Err
					}
					items <- it.Pos
					return nil
				})
			}()
			if _, err := io.WriteString(w, tt.first); err != nil {
				t.Fatal(err)
			}
			select {
			case pos := <-items:
				if pos != tt.wantPos[0] {
					t.Errorf("first item at %q, want %q", pos, tt.wantPos[0])
				}
			case err := <-done:
				t.Fatalf("Split ended early: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("no item before the writer finished")
			}
			if _, err := io.WriteString(w, tt.rest); err != nil {
				t.Fatal(err)
			}
			w.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			close(items)
			got := []string{tt.wantPos[0]}
			for pos := range items {
				got = append(got, pos)
			}
			if strings.Join(got, "|") != strings.Join(tt.wantPos, "|") {
				t.Errorf("positions %q, want %q", got, tt.wantPos)
			}
		})
	}
}
