package filter

import (
	"fmt"
	"testing"

	"github.com/valyala/fastjson"
)

// hundredRules is 100 ARCHIVE filters of the kinds users write, none of
// which matches the DNS sample, so every rule is evaluated: the worst case
// of a finding that is exported.
func hundredRules(t testing.TB) *Set {
	t.Helper()
	kinds := []string{
		`{"Criterion":{"type":{"Eq":["Recon:EC2/Portscan%d","UnauthorizedAccess:EC2/SSHBruteForce"]}}}`,
		`{"Criterion":{"severity":{"Gte":9},"resource.instanceDetails.instanceId":{"Eq":["i-%d"]}}}`,
		`{"Criterion":{"resource.instanceDetails.tags.key":{"Equals":["owner-%d"]}}}`,
		`{"Criterion":{"service.action.dnsRequestAction.domain":{"Equals":["test%d.example.com","other.example.com"]},"service.archived":{"Eq":["false"]}}}`,
		`{"Criterion":{"updatedAt":{"Gte":1700000000000,"Lt":17000000%02d000},"accountId":{"Eq":["123412341234"]}}}`,
		`{"Criterion":{"resource.instanceDetails.networkInterfaces.privateIpAddresses.privateIpAddress":{"Eq":["10.9.9.%d"]}}}`,
		`{"Criterion":{"resource.instanceDetails.imageId":{"NotEquals":["ami-99999999"]},"type":{"Eq":["x%d"]}}}`,
		`{"Criterion":{"service.count":{"Gt":1000},"region":{"Eq":["us-east-%d"]}}}`,
		`{"Criterion":{"resource.instanceDetails.tags.value":{"Eq":["GeneratedFindingInstaceTagValue%d0"]}}}`,
		`{"Criterion":{"service.resourceRole":{"Eq":["ACTOR"]},"service.eventFirstSeen":{"Lt":%d}}}`,
	}
	var fs []*Filter
	for i := 0; i < 100; i++ {
		fs = append(fs, mustFilter(t, fmt.Sprintf("rule-%03d", i), ActionArchive, i%100+1, fmt.Sprintf(kinds[i%len(kinds)], i)))
	}
	return NewSet(fs)
}

// TestArchiveAllocatesNothing holds the engine to its promise: once a
// finding is parsed, judging it by 100 rules allocates nothing.
func TestArchiveAllocatesNothing(t *testing.T) {
	set := hundredRules(t)
	v := fastjson.MustParse(readTestdata(t, "finding_elastic_ec2_trojan_blackholetraffic_dns.json"))
	if f := set.Archive(v); f != nil {
		t.Fatalf("%s matched; the benchmark wants every rule evaluated", f.Name)
	}
	if n := testing.AllocsPerRun(100, func() { set.Archive(v) }); n != 0 {
		t.Errorf("Archive allocates %v times per finding, want 0", n)
	}
}

// BenchmarkArchive100Rules judges a realistic finding, already parsed, by
// 100 rules (the limit per account and Region).
func BenchmarkArchive100Rules(b *testing.B) {
	set := hundredRules(b)
	v := fastjson.MustParse(readTestdata(b, "finding_elastic_ec2_trojan_blackholetraffic_dns.json"))
	b.ReportAllocs()
	for b.Loop() {
		if set.Archive(v) != nil {
			b.Fatal("matched")
		}
	}
}

// BenchmarkParseAndArchive100Rules adds the one parse per finding (with a
// pooled parser, as the filter stage does without decode's parsed form).
func BenchmarkParseAndArchive100Rules(b *testing.B) {
	set := hundredRules(b)
	raw := []byte(readTestdata(b, "finding_elastic_ec2_trojan_blackholetraffic_dns.json"))
	var pool fastjson.ParserPool
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		p := pool.Get()
		v, err := p.ParseBytes(raw)
		if err != nil {
			b.Fatal(err)
		}
		set.Archive(v)
		pool.Put(p)
	}
}
