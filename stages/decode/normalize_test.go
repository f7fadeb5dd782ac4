package decode

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		// The common case: compact camelCase input is copied as is.
		{name: "compact camelCase unchanged", in: `{"accountId":"111122223333","id":"a","n":1.50,"s":"x y"}`, want: `{"accountId":"111122223333","id":"a","n":1.50,"s":"x y"}`},
		// Whitespace outside strings goes, whitespace inside strings stays.
		{name: "pretty printed", in: "{\n  \"accountId\" : \"1\",\r\n\t\"title\": \"a  b\\n c\" ,\n  \"l\": [ 1 , 2 ]\n}\n", want: `{"accountId":"1","title":"a  b\n c","l":[1,2]}`},
		// Number text is kept: no float round trip, no exponent rewriting.
		{name: "number text kept", in: `{"a":1513612691.551,"b":1E+2,"c":-0.0,"d":12345678901234567890123}`, want: `{"a":1513612691.551,"b":1E+2,"c":-0.0,"d":12345678901234567890123}`},
		// String escapes are kept as written, including \/ and \u escapes.
		{name: "string escapes kept", in: `{"a":"\u00e9\/\"\\","b":"é"}`, want: `{"a":"\u00e9\/\"\\","b":"é"}`},
		// Unknown members and their order survive.
		{name: "key order and unknown fields", in: `{"z":1,"accountId":"1","a":{"y":null,"b":true}}`, want: `{"z":1,"accountId":"1","a":{"y":null,"b":true}}`},
		// AWS CLI output: member names camelCased, values untouched.
		{name: "PascalCase member names", in: `{"AccountId":"1","Resource":{"InstanceDetails":{"Tags":[{"Key":"Name","Value":"WebServer"}]}},"Title":"Title Case"}`, want: `{"accountId":"1","resource":{"instanceDetails":{"tags":[{"key":"Name","value":"WebServer"}]}},"title":"Title Case"}`},
		// Keys of map-valued members are user data, kept as the CLI prints them.
		{name: "PascalCase map keys kept", in: `{"Id":"x","Service":{"Action":{"AwsApiCallAction":{"AffectedResources":{"AWS::S3::Bucket":"B"},"Api":"PutObject"}}}}`, want: `{"id":"x","service":{"action":{"awsApiCallAction":{"affectedResources":{"AWS::S3::Bucket":"B"},"api":"PutObject"}}}}`},
		// Two levels of map keys, then structures again (Anomaly.Profiles).
		{name: "PascalCase nested map then structures", in: `{"Id":"x","Anomaly":{"Profiles":{"Frequent":{"UserAgent":[{"ProfileType":"FREQUENCY","Observations":{"Text":["a"]}}]}},"Unusual":{"Behavior":{"Unusual":{"AsnOrg":{"ProfileSubtype":"RARE"}}}}}}`, want: `{"id":"x","anomaly":{"profiles":{"Frequent":{"UserAgent":[{"profileType":"FREQUENCY","observations":{"text":["a"]}}]}},"unusual":{"behavior":{"Unusual":{"AsnOrg":{"profileSubtype":"RARE"}}}}}}`},
		// A map member holding a scalar does not make the next object a map.
		{name: "PascalCase map member with scalar value", in: `{"Id":"x","AffectedResources":null,"Other":{"Key":1}}`, want: `{"id":"x","affectedResources":null,"other":{"key":1}}`},
		// Detection also works on Id or SchemaVersion alone.
		{name: "PascalCase detected by Id", in: `{"Id":"x","Type":"T"}`, want: `{"id":"x","type":"T"}`},
		{name: "PascalCase detected by SchemaVersion", in: `{"SchemaVersion":"2.0","Region":"us-east-1"}`, want: `{"schemaVersion":"2.0","region":"us-east-1"}`},
		// Only the first letter changes, as compare_samples.py does.
		{name: "PascalCase acronyms", in: `{"Id":"x","IpAddressV4":"1","S3BucketDetails":[],"EKSCluster":{}}`, want: `{"id":"x","ipAddressV4":"1","s3BucketDetails":[],"eKSCluster":{}}`},
		// String values that look like keys are not keys.
		{name: "PascalCase string values untouched", in: `{"Id":"Value","List":["Key","Other"],"Obj":{"K":"V:W"}}`, want: `{"id":"Value","list":["Key","Other"],"obj":{"k":"V:W"}}`},
		// A camelCase finding keeps PascalCase keys of unknown members.
		{name: "camelCase finding keeps odd keys", in: `{"accountId":"1","Custom":{"Key":1}}`, want: `{"accountId":"1","Custom":{"Key":1}}`},
		// Non-ASCII first letters are lowercased like Python's str.lower.
		{name: "PascalCase non-ASCII first letter", in: "{\"Id\":\"x\",\"Énergie\":1,\"\u0130x\":2,\"ßa\":3}", want: "{\"id\":\"x\",\"énergie\":1,\"i\u0307x\":2,\"ßa\":3}"},
		// An escaped first letter is lowercased and stays escaped.
		{name: "PascalCase escaped first letter", in: `{"Id":"x","\u0041b":1,"\u00C9t":2,"\ud801\udc00z":3,"\n":4}`, want: `{"id":"x","\u0061b":1,"\u00e9t":2,"\ud801\udc28z":3,"\n":4}`},
		// An empty key stays empty.
		{name: "PascalCase empty key", in: `{"Id":"x","":1}`, want: `{"id":"x","":1}`},
		// EventBridge envelope: the detail is the finding.
		{name: "EventBridge envelope unwrapped", in: `{"version":"0","detail-type":"GuardDuty Finding","source":"aws.guardduty","detail":{ "accountId":"1", "id":"x" }}`, want: `{"accountId":"1","id":"x"}`},
		// gdexport's own EventBridge source is unwrapped too: the detail-type decides.
		{name: "EventBridge custom source", in: `{"detail":{"accountId":"1"},"source":"gdexport.guardduty","detail-type":"GuardDuty Finding"}`, want: `{"accountId":"1"}`},
		// An escaped detail-type is compared decoded.
		{name: "EventBridge escaped detail-type", in: `{"detail-type":"GuardDuty\u0020Finding","detail":{"accountId":"1"}}`, want: `{"accountId":"1"}`},
		// An envelope around a PascalCase finding.
		{name: "EventBridge PascalCase detail", in: `{"detail-type":"GuardDuty Finding","detail":{"AccountId":"1","Service":{"Archived":false}}}`, want: `{"accountId":"1","service":{"archived":false}}`},
		// A finding that has accountId is not a get-findings response even with a findings member.
		{name: "finding with findings member", in: `{"accountId":"1","findings":[]}`, want: `{"accountId":"1","findings":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize([]byte("prefix:"), []byte(tt.in))
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if string(got) != "prefix:"+tt.want {
				t.Errorf("Normalize\n got %s\nwant prefix:%s", got, tt.want)
			}
		})
	}
}

func TestNormalizeInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the reason, or its prefix when it ends in "…"
	}{
		// Empty messages are not JSON.
		{name: "empty", in: "  \n", want: "not JSON: empty input"},
		// Truncated JSON names the validator's complaint.
		{name: "truncated", in: `{"accountId":"1"`, want: "not JSON: …"},
		// Trailing garbage is not JSON either.
		{name: "trailing garbage", in: `{"a":1} x`, want: "not JSON: …"},
		// fastjson's parser accepts NaN; the validator must not.
		{name: "NaN", in: `{"a":NaN}`, want: "not JSON: …"},
		// Control characters in strings are invalid JSON.
		{name: "control char", in: "{\"a\":\"x\x01\"}", want: "not JSON: …"},
		// fastjson quotes the offending byte raw; the reason must stay one line.
		{name: "newline in validator message", in: "{\"a\":10.\n0}", want: `not JSON: cannot parse JSON: cannot parse object: cannot parse object value: cannot parse number: expecting 0..9 digit in fractional part, got \x0a; unparsed tail: "\n0}"`},
		// Deep nesting is refused before the recursive validator runs.
		{name: "too deep", in: strings.Repeat("[", 100000), want: "not JSON: nested deeper than 300 levels"},
		// Top-level values other than objects are not findings.
		{name: "array", in: `[{"accountId":"1"}]`, want: "not a finding: top-level value is an array"},
		{name: "string", in: `"x"`, want: "not a finding: top-level value is a string"},
		{name: "number", in: `12`, want: "not a finding: top-level value is a number"},
		{name: "null", in: `null`, want: "not a finding: top-level value is null"},
		// Other EventBridge events are refused with their detail-type.
		{name: "other detail-type", in: `{"detail-type":"GuardDuty Malware Protection Object Scan Result","detail":{}}`, want: `not a finding: an EventBridge event of detail-type "GuardDuty Malware Protection Object Scan Result", not "GuardDuty Finding"`},
		{name: "detail-type not a string", in: `{"detail-type":1,"detail":{}}`, want: "not a finding: an EventBridge event whose detail-type is a number, not a string"},
		{name: "envelope without detail", in: `{"detail-type":"GuardDuty Finding"}`, want: `not a finding: an EventBridge "GuardDuty Finding" event without detail`},
		{name: "envelope detail not object", in: `{"detail-type":"GuardDuty Finding","detail":"x"}`, want: "not a finding: an EventBridge event whose detail is a string, not an object"},
		{name: "envelope in envelope", in: `{"detail-type":"GuardDuty Finding","detail":{"detail-type":"GuardDuty Finding","detail":{}}}`, want: "not a finding: an EventBridge event inside an EventBridge event"},
		// Duplicate envelope members: readers disagree on which wins.
		{name: "duplicate detail", in: `{"detail-type":"GuardDuty Finding","detail":{},"detail":{}}`, want: `not a finding: duplicate key "detail"`},
		// get-findings responses are split by Split, not normalised whole.
		{name: "get-findings PascalCase", in: `{"Findings":[{"AccountId":"1"}]}`, want: `not a finding: a get-findings response ({"Findings":[…]}) holding findings`},
		{name: "get-findings camelCase", in: `{"findings":[]}`, want: `not a finding: a get-findings response ({"findings":[…]}) holding findings`},
		// Filter documents, in both shapes the samples hold.
		{name: "filter criteria", in: `{"Criterion":{"type":{"Eq":["x"]}}}`, want: "a filter document, not a finding"},
		{name: "create-filter request", in: `{"Name":"f","Action":"ARCHIVE","FindingCriteria":{"Criterion":{}}}`, want: "a filter document, not a finding"},
		{name: "get-filter output", in: `{"name":"f","action":"ARCHIVE","findingCriteria":{"criterion":{}}}`, want: "a filter document, not a finding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := Normalize(dst, []byte(tt.in))
			if err == nil {
				t.Fatalf("Normalize = %s, want error %q", got, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if string(got) != "keep" {
				t.Errorf("dst = %q, want it unchanged", got)
			}
			checkReason(t, err.Error(), tt.want)
		})
	}
}

// checkReason compares a reason with want, a prefix when want ends in "…".
func checkReason(t *testing.T, got, want string) {
	t.Helper()
	if p, ok := strings.CutSuffix(want, "…"); ok {
		if !strings.HasPrefix(got, p) {
			t.Errorf("reason %q, want prefix %q", got, p)
		}
	} else if got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	if strings.ContainsAny(got, "\r\n") {
		t.Errorf("reason %q spans lines: it must fit in a header", got)
	}
	if len(got) > 400 {
		t.Errorf("reason is %d bytes long", len(got))
	}
}

func TestNormalizeLongValidatorMessage(t *testing.T) {
	// 250 levels of nesting make fastjson chain 250 clauses; the reason keeps
	// the end of it.
	in := strings.Repeat(`{"a":`, 250) + "x" + strings.Repeat("}", 250)
	_, err := Normalize(nil, []byte(in))
	if err == nil {
		t.Fatal("Normalize accepted invalid JSON")
	}
	checkReason(t, err.Error(), "not JSON: …")
}

func TestNormalizeAllocations(t *testing.T) {
	data := readTestdata(t, "finding_awssamples_autoresp_ec2_canary_stateless_integtest.input.json")
	dst := make([]byte, 0, len(data))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Normalize(dst[:0], data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Normalize into a large enough dst allocates %.0f times, want 0", allocs)
	}
}
