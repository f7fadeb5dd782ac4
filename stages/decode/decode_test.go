package decode

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gdexport/gdexport/pipeline"
)

// baseFinding is a small valid finding the table cases edit.
const baseFinding = `{"schemaVersion":"2.0","accountId":"111122223333","region":"us-east-1","partition":"aws",` +
	`"id":"0123456789abcdef0123456789abcdef","type":"Recon:EC2/Portscan",` +
	`"service":{"serviceName":"guardduty","archived":false,"count":3},"severity":5.5,` +
	`"createdAt":"2024-01-02T03:04:05.678Z","updatedAt":"2024-01-03T03:04:05.678Z"}`

// edit replaces old with new in baseFinding; it fails loudly when old is not
// there, so a case cannot silently test the base finding.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := baseFinding
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("edit: %q not in base finding", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecode(t *testing.T) {
	want := pipeline.Finding{
		ID: "0123456789abcdef0123456789abcdef", Type: "Recon:EC2/Portscan",
		AccountID: "111122223333", Region: "us-east-1",
		UpdatedAt: 1704251045678, CreatedAt: 1704164645678, Count: 3, Severity: 5.5,
	}
	tests := []struct {
		name   string
		in     string
		change func(f *pipeline.Finding)
	}{
		// Every member Decode reads.
		{name: "base finding", in: baseFinding},
		// Optional members may be absent.
		{name: "no createdAt, service or severity", in: edit(t, `"service":{"serviceName":"guardduty","archived":false,"count":3},"severity":5.5,"createdAt":"2024-01-02T03:04:05.678Z",`, ``),
			change: func(f *pipeline.Finding) { f.CreatedAt, f.Count, f.Severity = 0, 0, 0 }},
		// null counts as absent for optional members.
		{name: "null optional members", in: edit(t, `"createdAt":"2024-01-02T03:04:05.678Z"`, `"createdAt":null`, `"severity":5.5`, `"severity":null`, `"archived":false,"count":3`, `"archived":null,"count":null`),
			change: func(f *pipeline.Finding) { f.CreatedAt, f.Count, f.Severity = 0, 0, 0 }},
		// An archived finding is decoded; the filter stage drops it.
		{name: "archived", in: edit(t, `"archived":false`, `"archived":true`), change: func(f *pipeline.Finding) { f.Archived = true }},
		// Severity may be an integer.
		{name: "integer severity", in: edit(t, `"severity":5.5`, `"severity":8`), change: func(f *pipeline.Finding) { f.Severity = 8 }},
		// Offsets are normalised to UTC milliseconds.
		{name: "updatedAt with offset", in: edit(t, `"updatedAt":"2024-01-03T03:04:05.678Z"`, `"updatedAt":"2024-01-03T05:04:05.678+02:00"`)},
		// Escaped text in the read members is decoded.
		{name: "escaped type", in: edit(t, `"type":"Recon:EC2/Portscan"`, `"type":"Recon:EC2\/Portscan"`)},
		// AWS CLI output is read through its camelCased names.
		{name: "PascalCase", in: `{"AccountId":"111122223333","Region":"us-east-1","Id":"0123456789abcdef0123456789abcdef","Type":"Recon:EC2/Portscan",` +
			`"Service":{"Archived":false,"Count":3},"Severity":5.5,"CreatedAt":"2024-01-02T03:04:05.678Z","UpdatedAt":"2024-01-03T03:04:05.678Z"}`},
		// An EventBridge event is its detail.
		{name: "EventBridge event", in: `{"version":"0","id":"e","detail-type":"GuardDuty Finding","source":"aws.guardduty","account":"999999999999","region":"eu-west-1","detail":` + baseFinding + `}`},
		// A nested timestamp in another form is carried, not judged.
		{name: "nested epoch timestamps", in: edit(t, `"partition":"aws",`, `"partition":"aws","resource":{"s3BucketDetails":[{"createdAt":1513612691.551}],"instanceDetails":{"launchTime":"bad"}},`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			w := want
			if tt.change != nil {
				tt.change(&w)
			}
			got := *f
			got.Raw = nil
			if !reflect.DeepEqual(got, w) {
				t.Errorf("Decode\n got %+v\nwant %+v", got, w)
			}
			norm, _ := Normalize(nil, []byte(tt.in))
			if string(f.Raw) != string(norm) {
				t.Errorf("Raw = %s, want Normalize's %s", f.Raw, norm)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the dead-letter reason, or its prefix when it ends in "…"
	}{
		// Not JSON at all.
		{name: "not JSON", in: `id: 1`, want: "not JSON: …"},
		// JSON text is UTF-8; strict readers of the export reject anything else.
		{name: "invalid UTF-8", in: edit(t, `"id":"0123456789abcdef0123456789abcdef",`, `"id":"0123456789abcdef0123456789abcdef","t":"`+"\xff\xfe"+`",`), want: "not valid UTF-8 at byte …"},
		// JSON, but not an object.
		{name: "array", in: `[` + baseFinding + `]`, want: "not a finding: top-level value is an array"},
		// Filter documents published to the ingest subject.
		{name: "filter document", in: `{"Criterion":{"type":{"Eq":["x"]}}}`, want: "a filter document, not a finding"},
		// EventBridge events of other detail-types.
		{name: "other detail-type", in: `{"detail-type":"GuardDuty Runtime Protection Unhealthy","detail":{}}`, want: `not a finding: an EventBridge event of detail-type "GuardDuty Runtime Protection Unhealthy", not "GuardDuty Finding"`},
		// id.
		{name: "missing id", in: edit(t, `"id":"0123456789abcdef0123456789abcdef",`, ``), want: "missing id"},
		{name: "id number", in: edit(t, `"id":"0123456789abcdef0123456789abcdef"`, `"id":12`), want: "id 12 is not a string"},
		{name: "id null", in: edit(t, `"id":"0123456789abcdef0123456789abcdef"`, `"id":null`), want: "id null is not a string"},
		{name: "id empty", in: edit(t, `"id":"0123456789abcdef0123456789abcdef"`, `"id":""`), want: "id is empty"},
		// An id must be able to name KV keys and Nats-Msg-Id parts.
		{name: "id with colon", in: edit(t, `"id":"0123456789abcdef0123456789abcdef"`, `"id":"a:b"`), want: `id "a:b" is not a finding id (1–128 letters, digits, '-' or '_')`},
		{name: "id with dot", in: edit(t, `"id":"0123456789abcdef0123456789abcdef"`, `"id":"a.b"`), want: `id "a.b" is not a finding id (1–128 letters, digits, '-' or '_')`},
		{name: "id too long", in: edit(t, `"id":"0123456789abcdef0123456789abcdef"`, `"id":"`+strings.Repeat("a", 129)+`"`), want: `id "` + strings.Repeat("a", 64) + `…" is not a finding id …`},
		// type.
		{name: "missing type", in: edit(t, `"type":"Recon:EC2/Portscan",`, ``), want: "missing type"},
		{name: "type object", in: edit(t, `"type":"Recon:EC2/Portscan"`, `"type":{"a":1}`), want: `type {"a":1} is not a string`},
		// accountId.
		{name: "missing accountId", in: edit(t, `"accountId":"111122223333",`, ``), want: "missing accountId"},
		{name: "accountId 11 digits", in: edit(t, `"accountId":"111122223333"`, `"accountId":"12345678901"`), want: `accountId "12345678901" is not 12 digits`},
		{name: "accountId 13 digits", in: edit(t, `"accountId":"111122223333"`, `"accountId":"1234567890123"`), want: `accountId "1234567890123" is not 12 digits`},
		{name: "accountId letters", in: edit(t, `"accountId":"111122223333"`, `"accountId":"11112222333a"`), want: `accountId "11112222333a" is not 12 digits`},
		// A number loses leading zeros: account ids are strings.
		{name: "accountId number", in: edit(t, `"accountId":"111122223333"`, `"accountId":111122223333`), want: `accountId 111122223333 is not a string`},
		// Non-ASCII digits are not digits here.
		{name: "accountId fullwidth digits", in: edit(t, `"accountId":"111122223333"`, `"accountId":"１１１１２２２２３３３３"`), want: `accountId "１１１１２２２２３３３３" is not 12 digits`},
		// region.
		{name: "missing region", in: edit(t, `"region":"us-east-1",`, ``), want: "missing region"},
		{name: "region moon-1", in: edit(t, `"region":"us-east-1"`, `"region":"moon-1"`), want: `region "moon-1" is not an AWS Region name`},
		{name: "region uppercase", in: edit(t, `"region":"us-east-1"`, `"region":"US-EAST-1"`), want: `region "US-EAST-1" is not an AWS Region name`},
		{name: "region without number", in: edit(t, `"region":"us-east-1"`, `"region":"us-east"`), want: `region "us-east" is not an AWS Region name`},
		// updatedAt.
		{name: "missing updatedAt", in: edit(t, `,"updatedAt":"2024-01-03T03:04:05.678Z"`, ``), want: "missing updatedAt"},
		{name: "updatedAt word", in: edit(t, `"updatedAt":"2024-01-03T03:04:05.678Z"`, `"updatedAt":"yesterday"`), want: `updatedAt "yesterday" is not a timestamp`},
		{name: "updatedAt null", in: edit(t, `"updatedAt":"2024-01-03T03:04:05.678Z"`, `"updatedAt":null`), want: `updatedAt null is not a timestamp`},
		// updatedAt must be ISO-8601 (DESIGN.md §4), not epoch time.
		{name: "updatedAt epoch number", in: edit(t, `"updatedAt":"2024-01-03T03:04:05.678Z"`, `"updatedAt":1704251045678`), want: `updatedAt 1704251045678 is not an ISO-8601 timestamp`},
		{name: "updatedAt epoch string", in: edit(t, `"updatedAt":"2024-01-03T03:04:05.678Z"`, `"updatedAt":"1704251045.678"`), want: `updatedAt "1704251045.678" is not an ISO-8601 timestamp`},
		{name: "updatedAt impossible date", in: edit(t, `"updatedAt":"2024-01-03T03:04:05.678Z"`, `"updatedAt":"2023-02-29T03:04:05.678Z"`), want: `updatedAt "2023-02-29T03:04:05.678Z" is not a timestamp`},
		{name: "updatedAt without zone", in: edit(t, `"updatedAt":"2024-01-03T03:04:05.678Z"`, `"updatedAt":"2024-01-03T03:04:05.678"`), want: `updatedAt "2024-01-03T03:04:05.678" is not a timestamp`},
		// createdAt, when present.
		{name: "createdAt word", in: edit(t, `"createdAt":"2024-01-02T03:04:05.678Z"`, `"createdAt":"soon"`), want: `createdAt "soon" is not a timestamp`},
		{name: "createdAt epoch", in: edit(t, `"createdAt":"2024-01-02T03:04:05.678Z"`, `"createdAt":1513612691.551`), want: `createdAt 1513612691.551 is not an ISO-8601 timestamp`},
		// service.
		{name: "service string", in: edit(t, `"service":{"serviceName":"guardduty","archived":false,"count":3}`, `"service":"guardduty"`), want: `service "guardduty" is not an object`},
		// A string "true" must not pass as active.
		{name: "archived string", in: edit(t, `"archived":false`, `"archived":"true"`), want: `service.archived "true" is not a boolean`},
		{name: "count negative", in: edit(t, `"count":3`, `"count":-1`), want: `service.count -1 is not a whole number`},
		{name: "count fraction", in: edit(t, `"count":3`, `"count":1.5`), want: `service.count 1.5 is not a whole number`},
		{name: "count string", in: edit(t, `"count":3`, `"count":"3"`), want: `service.count "3" is not a whole number`},
		// severity.
		{name: "severity word", in: edit(t, `"severity":5.5`, `"severity":"HIGH"`), want: `severity "HIGH" is not a number`},
		// Duplicate judged members: Go and Python readers keep the last copy,
		// fastjson the first, so they are refused rather than guessed.
		{name: "duplicate accountId", in: edit(t, `"region":"us-east-1"`, `"region":"us-east-1","accountId":"444455556666"`), want: `duplicate key "accountId"`},
		{name: "duplicate archived", in: edit(t, `"count":3`, `"count":3,"archived":true`), want: `duplicate key "service.archived"`},
		// Reasons quote values safely on one line.
		{name: "region with newline", in: edit(t, `"region":"us-east-1"`, `"region":"us-east-1\nX"`), want: `region "us-east-1\nX" is not an AWS Region name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode = %+v, want error %q", f, tt.want)
			}
			if f != nil {
				t.Errorf("Decode returned a finding with error %v", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			checkReason(t, err.Error(), tt.want)
		})
	}
}

func TestStage(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		wantDrop   string
		wantDetail string
	}{
		// A valid finding goes on with its stream sequence.
		{name: "valid", data: baseFinding},
		// Bad input is a drop with the reason, never an error.
		{name: "invalid", data: edit(t, `"region":"us-east-1"`, `"region":"moon-1"`), wantDrop: pipeline.DropInvalid, wantDetail: `region "moon-1" is not an AWS Region name`},
		// Empty message bodies (a bare header message) are judged too.
		{name: "empty body", data: "", wantDrop: pipeline.DropInvalid, wantDetail: "not JSON: empty input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &pipeline.Envelope{Subject: "findings.us-east-1.111122223333", Data: []byte(tt.data), Seq: 42}
			if err := (Stage{}).Process(context.Background(), e); err != nil {
				t.Fatalf("Process: %v", err)
			}
			if e.Drop != tt.wantDrop || e.DropDetail != tt.wantDetail {
				t.Errorf("drop = %q %q, want %q %q", e.Drop, e.DropDetail, tt.wantDrop, tt.wantDetail)
			}
			if tt.wantDrop != "" {
				if e.Finding != nil {
					t.Error("dropped message has a Finding")
				}
				return
			}
			if e.Finding == nil || e.Finding.Seq != 42 || e.Finding.ID != "0123456789abcdef0123456789abcdef" {
				t.Errorf("Finding = %+v, want the decoded finding with Seq 42", e.Finding)
			}
		})
	}
}

func TestStageInSequence(t *testing.T) {
	// A dropped message stops a Sequence before the next stage.
	called := false
	seq := pipeline.Sequence{Stage{}, pipeline.StageFunc(func(context.Context, *pipeline.Envelope) error {
		called = true
		return nil
	})}
	e := &pipeline.Envelope{Data: []byte(`[]`)}
	if err := seq.Process(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if called || e.Drop != pipeline.DropInvalid {
		t.Errorf("next stage called = %v, drop = %q", called, e.Drop)
	}
}

func TestDecodeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop parsers")
	}
	data := readTestdata(t, "finding_elastic_ec2_trojan_blackholetraffic_dns.input.json")
	if _, err := Decode(data); err != nil { // warm the parser pool
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := Decode(data); err != nil {
			t.Fatal(err)
		}
	})
	// The Finding, its Raw and the one string behind ID, Type, AccountID and
	// Region; a parser dropped by the pool under GC pressure may add a few.
	if allocs > 4 {
		t.Errorf("Decode allocates %.1f times per call, want at most 4", allocs)
	}
}

func TestDecodeConcurrent(t *testing.T) {
	// The parser pool must not let goroutines share a parser's values.
	inputs := [][]byte{
		[]byte(baseFinding),
		readTestdata(t, "finding_elastic_rds_anomalous_login.input.json"),
		readTestdata(t, "eventbridge_counterthreat_2019_iam_networkpermissions_sample.input.json"),
	}
	want := make([]string, len(inputs))
	for i, in := range inputs {
		f, err := Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = f.ID + f.Type + f.AccountID + f.Region
	}
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for n := 0; n < 500; n++ {
				i := (n + g) % len(inputs)
				f, err := Decode(inputs[i])
				if err != nil {
					errs <- err
					return
				}
				if got := f.ID + f.Type + f.AccountID + f.Region; got != want[i] {
					errs <- errors.New("got " + got + ", want " + want[i])
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
