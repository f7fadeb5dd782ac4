package filter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// perFindingBound is how long judging one finding may take at most, even
// for adversarial JSON near the fuzzer's size limit; real findings take
// microseconds.
const perFindingBound = 2 * time.Second

// FuzzParseCriteria feeds arbitrary documents to the criteria parser: it
// must refuse or compile without panicking, a compiled document must print a
// document that compiles to the same thing, and matching it must not panic.
func FuzzParseCriteria(f *testing.F) {
	for _, s := range []string{
		`{"Criterion":{"type":{"Eq":["Recon:EC2/Portscan"]}}}`,
		`{"criterion":{"severity":{"gte":4},"updatedAt":{"lt":"2024-01-01T00:00:00Z"}}}`,
		`{"Criterion":{"resource.instanceDetails.tags.key":{"NotEquals":["a","b"]}}}`,
		`{"Criterion":{"service.archived":{"Eq":[false]}}}`,
		`{"Criterion":{"foo":{"Bar":1}}}`,
		`{"Criterion":{}}`,
		`[]`, `null`, `{"Criterion":{"updatedAt":{"Gte":1e400}}}`,
	} {
		f.Add([]byte(s))
	}
	for _, name := range []string{"filter_criteria_awsdocs_suppress_dns_domain.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	v := fastjson.MustParse(base)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCriteria(data)
		if err != nil {
			return
		}
		c.Match(v)
		doc, err := json.Marshal(c.Document(false))
		if err != nil {
			t.Fatalf("compiled criteria do not print: %v", err)
		}
		c2, err := ParseCriteria(doc)
		if err != nil {
			t.Fatalf("printed document %s refused: %v", doc, err)
		}
		doc2, _ := json.Marshal(c2.Document(false))
		if string(doc) != string(doc2) {
			t.Fatalf("document changed on a round trip:\n%s\n%s", doc, doc2)
		}
	})
}

// FuzzMatch evaluates rules covering every operator, list descent and
// timestamp forms over arbitrary JSON: no panic, and bounded time per
// finding.
func FuzzMatch(f *testing.F) {
	f.Add([]byte(base))
	for _, name := range []string{
		"finding_elastic_ec2_trojan_blackholetraffic_dns.json",
		"finding_elastic_s3_impact_maliciousipcaller_s3bucketdetails.json",
		"finding_awssamples_autoresp_ec2_canary_stateless_integtest.json",
	} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"type":[[[["Recon:EC2/Portscan"]]]],"severity":"5","updatedAt":1705320000}`))
	f.Add([]byte(`{"resource":{"instanceDetails":{"tags":[{"key":null},{"key":[1,true,{"x":1}]},"key"]}}}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`"just a string"`))

	var filters []*Filter
	for i, doc := range []string{
		`{"Criterion":{"type":{"Equals":["Recon:EC2/Portscan"]},"severity":{"Gte":4}}}`,
		`{"Criterion":{"type":{"NotEquals":["x"]},"severity":{"Lt":9,"Gt":1}}}`,
		`{"Criterion":{"updatedAt":{"GreaterThanOrEqual":"2020-01-01T00:00:00Z","LessThanOrEqual":4102444800000}}}`,
		`{"Criterion":{"resource.instanceDetails.tags.key":{"Eq":["env"]},"resource.instanceDetails.tags.value":{"Neq":["x"]}}}`,
		`{"Criterion":{"resource.instanceDetails.networkInterfaces.privateIpAddresses.privateIpAddress":{"Eq":["10.0.0.1"]}}}`,
		`{"Criterion":{"service.archived":{"Eq":["false"]},"service.count":{"Gte":1}}}`,
		`{"Criterion":{"resource.s3BucketDetails.createdAt":{"Gt":0},"service.eventLastSeen":{"Lte":4102444800000}}}`,
		`{"Criterion":{"resource.instanceDetails.launchTime":{"Equals":["2017-04-21T00:47:55Z","1492735675000"]}}}`,
		`{"Criterion":{"accountId":{"Equals":["111122223333"]},"id":{"NotEquals":["a"]}}}`,
		`{"Criterion":{}}`,
	} {
		filters = append(filters, mustFilter(f, "fuzz-"+string(rune('a'+i))+"xx", ActionArchive, i+1, doc))
	}
	set := NewSet(filters)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p fastjson.Parser
		v, err := p.ParseBytes(data)
		if err != nil {
			return
		}
		start := time.Now()
		set.Judge(v)
		for _, flt := range set.Filters() {
			flt.Criteria.Match(v)
		}
		if d := time.Since(start); d > perFindingBound {
			t.Fatalf("judging %d bytes took %s, over %s", len(data), d, perFindingBound)
		}
	})
}
