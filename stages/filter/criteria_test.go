package filter

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// base is a realistic finding in the wire's camelCase with every shape the
// engine must handle: lists of objects (tags), lists of lists
// (networkInterfaces → privateIpAddresses), numbers, booleans, null, and
// timestamps as ISO strings, epoch milliseconds, epoch seconds with a
// fraction and epoch seconds written as a string.
const base = `{
  "schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1", "partition": "aws",
  "id": "f0000000000000000000000000000001", "type": "Recon:EC2/Portscan",
  "resource": {
    "resourceType": "Instance",
    "instanceDetails": {
      "instanceId": "i-0123456789abcdef0", "imageId": "ami-0a7a207083example",
      "launchTime": 1492735675000, "platform": null,
      "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "sec"}],
      "networkInterfaces": [
        {"privateIpAddresses": [{"privateIpAddress": "10.0.0.1"}, {"privateIpAddress": "10.0.0.2"}], "ipv6Addresses": []},
        {"privateIpAddresses": [{"privateIpAddress": "10.1.0.1"}], "ipv6Addresses": ["fe80::1"]}
      ]
    },
    "s3BucketDetails": [{"name": "bucket-one", "createdAt": 1513612691.551}]
  },
  "service": {
    "serviceName": "guardduty", "archived": false, "count": 3,
    "eventFirstSeen": "2024-01-10T00:00:00Z", "eventLastSeen": "1705320000",
    "action": {
      "actionType": "PORT_PROBE",
      "portProbeAction": {"blocked": false, "portProbeDetails": [
        {"localPortDetails": {"port": 22, "portName": "SSH"}},
        {"localPortDetails": {"port": 3389, "portName": "RDP"}}
      ]},
      "dnsRequestAction": {"domain": "escaped\u002eexample.com"}
    }
  },
  "severity": 5,
  "createdAt": "2024-01-10T00:00:00.000Z",
  "updatedAt": "2024-01-15T12:00:00.000Z",
  "title": "Port scan", "description": "EC2 instance is probing ports"
}`

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// modified returns the finding with one member replaced (a JSON path of
// object keys) by a JSON value.
func modified(t testing.TB, finding string, path []string, val string) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(finding), &doc); err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal([]byte(val), &v); err != nil {
		t.Fatal(err)
	}
	m := doc
	for _, k := range path[:len(path)-1] {
		m = m[k].(map[string]any)
	}
	m[path[len(path)-1]] = v
	out, _ := json.Marshal(doc)
	return string(out)
}

func ms(t testing.TB, iso string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, iso)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMilli()
}

func mustMatch(t *testing.T, criteria, finding string) bool {
	t.Helper()
	c, err := ParseCriteria([]byte(criteria))
	if err != nil {
		t.Fatalf("criteria refused: %v", err)
	}
	v, err := fastjson.Parse(finding)
	if err != nil {
		t.Fatalf("finding is not JSON: %v", err)
	}
	return c.Match(v)
}

func TestMatch(t *testing.T) {
	dns := readTestdata(t, "finding_elastic_ec2_trojan_blackholetraffic_dns.json")
	s3 := readTestdata(t, "finding_elastic_s3_impact_maliciousipcaller_s3bucketdetails.json")
	canary := readTestdata(t, "finding_awssamples_autoresp_ec2_canary_stateless_integtest.json")
	dnsRule := readTestdata(t, "filter_criteria_awsdocs_suppress_dns_domain.json")
	var portscan struct{ FindingCriteria json.RawMessage }
	if err := json.Unmarshal([]byte(readTestdata(t, "filter_createfilter_awscli_example_archive_portscan.json")), &portscan); err != nil {
		t.Fatal(err)
	}
	rangeRule := `{"Criterion": {"updatedAt": {"GreaterThanOrEqual": ` + itoa(ms(t, "2022-11-01T00:00:00Z")) +
		`, "LessThan": ` + itoa(ms(t, "2022-12-01T00:00:00Z")) + `}, "severity": {"GreaterThanOrEqual": 4}}}`

	tests := []struct {
		name     string
		criteria string
		finding  string
		want     bool
	}{
		// The simplest rule: one attribute, one value.
		{"Equals string", `{"Criterion":{"type":{"Equals":["Recon:EC2/Portscan"]}}}`, base, true},
		// A different value does not match.
		{"Equals other string", `{"Criterion":{"type":{"Equals":["Backdoor:EC2/Spambot"]}}}`, base, false},
		// Text comparison is exact: case matters, as in GuardDuty.
		{"Equals is case-sensitive", `{"Criterion":{"type":{"Equals":["recon:ec2/portscan"]}}}`, base, false},
		// Equals is any-of over the listed values.
		{"Equals any of the values", `{"Criterion":{"type":{"Equals":["A:B/C","Recon:EC2/Portscan"]}}}`, base, true},
		// The deprecated Eq is Equals.
		{"Eq deprecated", `{"Criterion":{"type":{"Eq":["Recon:EC2/Portscan"]}}}`, base, true},
		// The wire's camelCase: criterion and equals.
		{"camelCase spellings", `{"criterion":{"type":{"equals":["Recon:EC2/Portscan"]}}}`, base, true},
		// NotEquals is none-of: no listed value equals.
		{"NotEquals none of", `{"Criterion":{"type":{"NotEquals":["A:B/C","D:E/F"]}}}`, base, true},
		// NotEquals fails when one listed value equals.
		{"NotEquals one equal", `{"Criterion":{"type":{"NotEquals":["A:B/C","Recon:EC2/Portscan"]}}}`, base, false},
		// The deprecated Neq, in camelCase.
		{"neq deprecated camel", `{"criterion":{"type":{"neq":["Recon:EC2/Portscan"]}}}`, base, false},
		// A missing attribute meets NotEquals (§5).
		{"NotEquals missing attribute", `{"Criterion":{"resource.eksClusterDetails.name":{"NotEquals":["prod"]}}}`, base, true},
		// A missing attribute never meets Equals.
		{"Equals missing attribute", `{"Criterion":{"resource.eksClusterDetails.name":{"Equals":["prod"]}}}`, base, false},
		// A missing attribute never meets a range operator.
		{"range missing attribute", `{"Criterion":{"service.action.networkConnectionAction.remotePortDetails.port":{"Gte":0}}}`, base, false},
		// Paths descend through lists: the set of all tag keys, any of which may equal.
		{"list attribute Equals any element", `{"Criterion":{"resource.instanceDetails.tags.key":{"Equals":["team"]}}}`, base, true},
		// NotEquals on a list fails when any element equals.
		{"list attribute NotEquals some element", `{"Criterion":{"resource.instanceDetails.tags.key":{"NotEquals":["team"]}}}`, base, false},
		// NotEquals on a list holds when no element equals.
		{"list attribute NotEquals no element", `{"Criterion":{"resource.instanceDetails.tags.key":{"NotEquals":["owner","cost-center"]}}}`, base, true},
		// Tag values are reached like keys.
		{"list attribute values", `{"Criterion":{"resource.instanceDetails.tags.value":{"Eq":["prod"]}}}`, base, true},
		// Lists of lists: every private address of every interface.
		{"nested lists", `{"Criterion":{"resource.instanceDetails.networkInterfaces.privateIpAddresses.privateIpAddress":{"Equals":["10.1.0.1"]}}}`, base, true},
		// A list of strings at the end of the path is the set of its elements.
		{"list of scalars", `{"Criterion":{"resource.instanceDetails.networkInterfaces.ipv6Addresses":{"Equals":["fe80::1"]}}}`, base, true},
		// A range operator over a list holds when any element compares true (3389 > 3000).
		{"range over a list any element", `{"Criterion":{"service.action.portProbeAction.portProbeDetails.localPortDetails.port":{"GreaterThan":3000}}}`, base, true},
		// No element is below 22.
		{"range over a list no element", `{"Criterion":{"service.action.portProbeAction.portProbeDetails.localPortDetails.port":{"LessThan":22}}}`, base, false},
		// A number compares with a listed string by its JSON text (§5).
		{"number Equals its text", `{"Criterion":{"service.action.portProbeAction.portProbeDetails.localPortDetails.port":{"Equals":["22"]}}}`, base, true},
		// ... and by value, so "22.0" equals 22 too.
		{"number Equals by value", `{"Criterion":{"service.action.portProbeAction.portProbeDetails.localPortDetails.port":{"Equals":["22.0"]}}}`, base, true},
		// A string that merely looks like the number elsewhere does not equal a different number.
		{"number not Equals other", `{"Criterion":{"severity":{"Equals":["8"]}}}`, base, false},
		// Severity is a number: Gte 4 holds for 5.
		{"severity GreaterThanOrEqual", `{"Criterion":{"severity":{"GreaterThanOrEqual":4}}}`, base, true},
		// Gt is strict.
		{"severity Gt equal bound", `{"Criterion":{"severity":{"Gt":5}}}`, base, false},
		// Lte includes the bound.
		{"severity Lte equal bound", `{"Criterion":{"severity":{"Lte":5}}}`, base, true},
		// Lt is strict.
		{"severity Lt equal bound", `{"Criterion":{"severity":{"lt":5}}}`, base, false},
		// A fractional bound is a number too (GuardDuty severities are fractional).
		{"severity fractional bound", `{"Criterion":{"severity":{"LessThan":5.5}}}`, base, true},
		// Severity compares with text by its value.
		{"severity Equals text", `{"Criterion":{"severity":{"Equals":["5"]}}}`, base, true},
		// Booleans compare by their JSON text.
		{"boolean Eq false", `{"Criterion":{"service.archived":{"Eq":["false"]}}}`, base, true},
		// ... and "true" does not equal false.
		{"boolean Eq true", `{"Criterion":{"service.archived":{"Eq":["true"]}}}`, base, false},
		// service.count is a plain number.
		{"count Gte", `{"Criterion":{"service.count":{"Gte":3}}}`, base, true},
		// updatedAt between two dates, as epoch milliseconds (ISO in the finding).
		{"updatedAt between", `{"Criterion":{"updatedAt":{"Gte":` + itoa(ms(t, "2024-01-15T00:00:00Z")) + `,"Lt":` + itoa(ms(t, "2024-01-16T00:00:00Z")) + `}}}`, base, true},
		// The same window a day later misses.
		{"updatedAt outside", `{"Criterion":{"updatedAt":{"Gte":` + itoa(ms(t, "2024-01-16T00:00:00Z")) + `,"Lt":` + itoa(ms(t, "2024-01-17T00:00:00Z")) + `}}}`, base, false},
		// A bound may be written as an ISO-8601 string for a timestamp attribute.
		{"updatedAt ISO bound", `{"Criterion":{"updatedAt":{"GreaterThan":"2024-01-15T11:59:59.999Z"}}}`, base, true},
		// A bound in epoch seconds (below 10^11) reads as seconds, like findings' timestamps.
		{"updatedAt seconds bound", `{"Criterion":{"updatedAt":{"LessThanOrEqual":1705320000}}}`, base, true},
		// Epoch milliseconds in the finding (launchTime) against an ISO bound.
		{"epoch ms in finding", `{"Criterion":{"resource.instanceDetails.launchTime":{"Gte":"2017-04-21T00:47:55Z","Lte":"2017-04-21T00:47:55Z"}}}`, base, true},
		// Epoch seconds with a fraction in the finding (s3BucketDetails.createdAt) equal their milliseconds.
		{"epoch seconds in finding", `{"Criterion":{"resource.s3BucketDetails.createdAt":{"Gte":1513612691551,"Lte":1513612691551}}}`, base, true},
		// ... and are not later than themselves.
		{"epoch seconds strict", `{"Criterion":{"resource.s3BucketDetails.createdAt":{"Gt":1513612691551}}}`, base, false},
		// Epoch seconds written as a string in the finding.
		{"epoch seconds string in finding", `{"Criterion":{"service.eventLastSeen":{"Gte":1705320000000}}}`, base, true},
		// Equals on a timestamp compares instants: ms text against an ISO finding.
		{"timestamp Equals ms text", `{"Criterion":{"updatedAt":{"Equals":["` + itoa(ms(t, "2024-01-15T12:00:00Z")) + `"]}}}`, base, true},
		// ... and ISO text against an epoch-ms finding.
		{"timestamp Equals ISO text", `{"Criterion":{"resource.instanceDetails.launchTime":{"Equals":["2017-04-21T00:47:55Z"]}}}`, base, true},
		// A range operator on text that is not a number never holds.
		{"range on text", `{"Criterion":{"resource.instanceDetails.instanceId":{"Gt":0}}}`, base, false},
		// null is no value: Equals "null" does not match it ...
		{"null Equals", `{"Criterion":{"resource.instanceDetails.platform":{"Equals":["null"]}}}`, base, false},
		// ... and NotEquals holds, as for a missing attribute.
		{"null NotEquals", `{"Criterion":{"resource.instanceDetails.platform":{"NotEquals":["windows"]}}}`, base, true},
		// Escaped JSON strings compare by their value.
		{"escaped string", `{"Criterion":{"service.action.dnsRequestAction.domain":{"Equals":["escaped.example.com"]}}}`, base, true},
		// A path that meets a scalar before its end reaches nothing.
		{"scalar mid-path", `{"Criterion":{"resource.instanceDetails.tags.key":{"Equals":["x"]}}}`, modified(t, base, []string{"resource", "instanceDetails", "tags"}, `"notalist"`), false},
		// A path that ends on an object reaches nothing comparable.
		{"object at end", `{"Criterion":{"resource.instanceDetails.iamInstanceProfile.arn":{"NotEquals":["x"]}}}`, modified(t, base, []string{"resource", "instanceDetails", "iamInstanceProfile"}, `{"arn":{"nested":true}}`), true},
		// Attributes AND together: both hold.
		{"AND both hold", `{"Criterion":{"type":{"Eq":["Recon:EC2/Portscan"]},"severity":{"Gte":4}}}`, base, true},
		// Attributes AND together: one fails.
		{"AND one fails", `{"Criterion":{"type":{"Eq":["Recon:EC2/Portscan"]},"severity":{"Gte":7}}}`, base, false},
		// Operators on one attribute AND together too.
		{"Equals and NotEquals on one attribute", `{"Criterion":{"resource.instanceDetails.tags.key":{"Equals":["env"],"NotEquals":["secret"]}}}`, base, true},
		// An empty Criterion matches every finding (AND over nothing).
		{"empty criterion", `{"Criterion":{}}`, base, true},
		// A negative number (the canary's asn -1).
		{"negative number", `{"Criterion":{"service.action.networkConnectionAction.remoteIpDetails.organization.asn":{"Lt":0}}}`, canary, true},
		// AWS documentation's DNS-domain suppression rule: the domain matches.
		{"sample DNS rule matches", dnsRule, modified(t, dns, []string{"service", "action", "dnsRequestAction", "domain"}, `"test.example.com"`), true},
		// ... the sample's own domain does not.
		{"sample DNS rule other domain", dnsRule, dns, false},
		// ... nor an archived finding of that domain (service.archived Eq "false").
		{"sample DNS rule archived", dnsRule, modified(t, modified(t, dns, []string{"service", "action", "dnsRequestAction", "domain"}, `"test.example.com"`), []string{"service", "archived"}, `true`), false},
		// The AWS CLI's ARCHIVE port-scan filter: type and image both match.
		{"sample portscan filter matches", string(portscan.FindingCriteria), base, true},
		// ... another image does not.
		{"sample portscan filter other image", string(portscan.FindingCriteria), canary, false},
		// The range filter (updatedAt in November 2022, severity ≥ 4) on the DNS sample.
		{"range filter matches sample", rangeRule, dns, true},
		// ... the S3 sample (updatedAt in another month) misses.
		{"range filter misses sample", rangeRule, s3, false},
		// ... the DNS sample with a low severity misses.
		{"range filter low severity", rangeRule, modified(t, dns, []string{"severity"}, `2`), false},
		// The S3 sample's list of buckets with an epoch-seconds createdAt.
		{"sample s3 bucket list", `{"Criterion":{"resource.s3BucketDetails.createdAt":{"Lt":"2018-01-01T00:00:00Z"},"resource.s3BucketDetails.name":{"Eq":["bucketName"]}}}`, s3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustMatch(t, tt.criteria, tt.finding); got != tt.want {
				t.Fatalf("Match = %v, want %v\ncriteria: %s", got, tt.want, tt.criteria)
			}
		})
	}
	if len(tests) < 40 {
		t.Fatalf("only %d cases; the acceptance asks for at least 40", len(tests))
	}
}

func itoa(n int64) string { return json.Number(formatNumber(float64(n))).String() }

func TestCompileRefuses(t *testing.T) {
	fifty := make([]string, 51)
	for i := range fifty {
		fifty[i] = `"v"`
	}
	tests := []struct {
		name     string
		criteria string
		// want is every "path: message" fragment the error must hold.
		want []string
	}{
		// An attribute GuardDuty does not filter on is named.
		{"unknown attribute", `{"Criterion":{"foo":{"Eq":["x"]}}}`, []string{`Criterion.foo: unknown attribute "foo"`}},
		// A case slip gets a suggestion.
		{"attribute case", `{"Criterion":{"Service.Archived":{"Eq":["false"]}}}`, []string{`did you mean "service.archived"`}},
		// An operator that does not exist is named, with the accepted ones.
		{"unknown operator", `{"Criterion":{"type":{"Equal":["x"]}}}`, []string{`Criterion.type.Equal: unknown operator "Equal"`, "GreaterThanOrEqual"}},
		// Operators are PascalCase or camelCase, nothing else.
		{"operator lower case", `{"Criterion":{"type":{"notequals":["x"]}}}`, []string{`unknown operator "notequals"`}},
		// Equals takes a list.
		{"Equals not a list", `{"Criterion":{"type":{"Equals":"Recon:EC2/Portscan"}}}`, []string{`Criterion.type.Equals: "Recon:EC2/Portscan" is not a list`}},
		// Equals takes strings: a number is refused with the string to write instead.
		{"Equals number element", `{"Criterion":{"severity":{"Eq":[8]}}}`, []string{`Criterion.severity.Eq[0]: 8 is not a string`, `"8"`}},
		// A boolean likewise.
		{"Equals boolean element", `{"criterion":{"service.archived":{"eq":[false]}}}`, []string{`criterion.service.archived.eq[0]: false is not a string`}},
		// More than 50 values.
		{"51 values", `{"Criterion":{"type":{"Equals":[` + strings.Join(fifty, ",") + `]}}}`, []string{"51 values", "at most 50"}},
		// No values.
		{"empty list", `{"Criterion":{"type":{"NotEquals":[]}}}`, []string{"empty list"}},
		// A range operator on a non-timestamp attribute takes a number.
		{"range string", `{"Criterion":{"severity":{"Gte":"4"}}}`, []string{`Criterion.severity.Gte: "4" is not a number`}},
		// A range operator on a timestamp takes a timestamp.
		{"range bad timestamp", `{"Criterion":{"updatedAt":{"Gte":"last tuesday"}}}`, []string{`Criterion.updatedAt.Gte: "last tuesday" is not a timestamp`}},
		// A list is not a bound.
		{"range list", `{"Criterion":{"severity":{"Gte":[4]}}}`, []string{"a list is not a number"}},
		// A boolean is not a bound.
		{"range boolean", `{"Criterion":{"severity":{"Lt":true}}}`, []string{"true is not a number"}},
		// The attribute's value holds operators.
		{"attribute not an object", `{"Criterion":{"type":["x"]}}`, []string{"Criterion.type: a list is not an object of operators"}},
		// An attribute with no operator.
		{"no operator", `{"Criterion":{"type":{}}}`, []string{"Criterion.type: no operator"}},
		// Criterion is required.
		{"missing Criterion", `{}`, []string{"missing Criterion"}},
		// Members other than Criterion are refused.
		{"unknown top member", `{"Criterion":{},"Extra":1}`, []string{`Extra: unknown member "Extra"`}},
		// Both spellings at once are ambiguous.
		{"both spellings", `{"Criterion":{},"criterion":{}}`, []string{"given twice"}},
		// Criterion must be an object.
		{"criterion not object", `{"Criterion":[1]}`, []string{"Criterion: a list is not an object of attributes"}},
		// The document must be an object.
		{"not an object", `["x"]`, []string{"a list is not a FindingCriteria"}},
		// Not JSON at all.
		{"not JSON", `{"Criterion":`, []string{"not JSON"}},
		// Every problem is reported, not only the first.
		{"several problems", `{"Criterion":{"foo":{"Eq":["x"]},"type":{"Bogus":["x"]}}}`, []string{`Criterion.foo: unknown attribute`, `Criterion.type.Bogus: unknown operator`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCriteria([]byte(tt.criteria))
			if err == nil {
				t.Fatalf("accepted (%d conditions); want refusal", c.Len())
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	fifty := make([]string, 50)
	for i := range fifty {
		fifty[i] = `"v` + itoa(int64(i)) + `"`
	}
	tests := []struct {
		name string
		doc  any
	}{
		// Exactly 50 values is the limit, not beyond it.
		{"50 values", mustDecode(t, `{"Criterion":{"type":{"Equals":[`+strings.Join(fifty, ",")+`]}}}`)},
		// YAML decodes integers as uint64 and int64.
		{"YAML integers", map[string]any{"criterion": map[string]any{"severity": map[string]any{"gte": uint64(4), "lt": int64(9)}}}},
		// YAML floats.
		{"YAML float", map[string]any{"criterion": map[string]any{"severity": map[string]any{"gte": 4.5}}}},
		// Every operator name in both spellings.
		{"every operator", func() any {
			ops := map[string]any{}
			for _, op := range operators {
				v := any(json.Number("4"))
				if op.isList() {
					v = []any{"4"}
				}
				ops[op.pascal], ops[op.camel] = v, v
			}
			return map[string]any{"Criterion": map[string]any{"severity": ops}}
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := CompileCriteria(tt.doc); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func mustDecode(t testing.TB, s string) any {
	t.Helper()
	v, err := decodeJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDocumentRoundTrip checks that a compiled criteria prints a document
// that compiles to the same criteria, in both casings.
func TestDocumentRoundTrip(t *testing.T) {
	src := `{"Criterion":{"type":{"Eq":["a","b"]},"updatedAt":{"GreaterThanOrEqual":"2024-01-15T00:00:00Z","Lt":1705363200},"severity":{"Gte":4.5}}}`
	c, err := ParseCriteria([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, pascal := range []bool{true, false} {
		b, err := json.Marshal(c.Document(pascal))
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseCriteria(b)
		if err != nil {
			t.Fatalf("printed document %s refused: %v", b, err)
		}
		b2, _ := json.Marshal(c2.Document(pascal))
		if string(b) != string(b2) {
			t.Errorf("round trip changed the document:\n%s\n%s", b, b2)
		}
	}
	b, _ := json.Marshal(c.Document(true))
	want := `{"Criterion":{"severity":{"Gte":4.5},"type":{"Eq":["a","b"]},"updatedAt":{"GreaterThanOrEqual":1705276800000,"Lt":1705363200000}}}`
	if string(b) != want {
		t.Errorf("Document(true) = %s\nwant %s", b, want)
	}
}

func TestAttributes(t *testing.T) {
	if n := len(Attributes()); n != 632 {
		t.Errorf("%d attributes embedded, want the reference's 632", n)
	}
	for _, a := range []string{"type", "severity", "accountId", "updatedAt", "service.archived",
		"resource.instanceDetails.tags.key", "service.action.dnsRequestAction.domain"} {
		if !IsAttribute(a) {
			t.Errorf("%s is not accepted", a)
		}
	}
	tests := []struct {
		attr string
		want bool
	}{
		{"updatedAt", true},
		{"service.eventFirstSeen", true},
		{"resource.instanceDetails.launchTime", true},
		{"resource.s3BucketDetails.createdAt", true},
		{"resource.containerDetails.containerRuntime", false},
		{"service.action.awsApiCallAction.remoteIpDetails.geoLocation.lat", false},
		{"severity", false},
	}
	for _, tt := range tests {
		if got := isTimestampAttribute(attributes[tt.attr]); got != tt.want {
			t.Errorf("isTimestampAttribute(%s) = %v, want %v", tt.attr, got, tt.want)
		}
	}
}
