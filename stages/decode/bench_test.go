package decode

import (
	"bytes"
	"testing"
)

// BenchmarkDecode measures the hot path on ~3 KB findings in the shapes the
// ingest subject carries.
func BenchmarkDecode(b *testing.B) {
	cases := []struct {
		name string
		data func(b *testing.B) []byte
	}{
		// What publish sends and most producers emit: compact camelCase.
		{name: "compact-3KB", data: func(b *testing.B) []byte {
			return bytes.TrimSpace(readTestdata(b, "finding_elastic_ec2_trojan_blackholetraffic_dns.input.json"))
		}},
		// A pretty-printed finding published raw.
		{name: "pretty-3KB", data: func(b *testing.B) []byte {
			return readTestdata(b, "finding_awssamples_autoresp_ec2_canary_stateless_integtest.input.json")
		}},
		// An EventBridge event around a finding.
		{name: "eventbridge-2KB", data: func(b *testing.B) []byte {
			return readTestdata(b, "eventbridge_counterthreat_2019_iam_networkpermissions_sample.input.json")
		}},
		// AWS CLI PascalCase, pretty-printed.
		{name: "pascal-pretty-2KB", data: func(b *testing.B) []byte {
			// The one finding inside {"Findings":[ … ]}.
			in := readTestdata(b, "getfindings_awscli_pascalcase_iam_userpermissions.input.json")
			start := bytes.IndexByte(in[1:], '[') + 2
			end := bytes.LastIndexByte(in, ']')
			return in[start:end]
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			data := c.data(b)
			if _, err := Decode(data); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNormalize measures the byte-level pass alone, into a reused buffer.
func BenchmarkNormalize(b *testing.B) {
	for _, name := range []string{
		"finding_elastic_ec2_trojan_blackholetraffic_dns.input.json",
		"finding_awssamples_autoresp_ec2_canary_stateless_integtest.input.json",
	} {
		b.Run(name[:24], func(b *testing.B) {
			data := readTestdata(b, name)
			dst := make([]byte, 0, len(data))
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = Normalize(dst[:0], data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSplit measures publish's reading side on JSON Lines.
func BenchmarkSplit(b *testing.B) {
	line := bytes.TrimSpace(readTestdata(b, "finding_elastic_ec2_trojan_blackholetraffic_dns.input.json"))
	input := bytes.Repeat(append(line, '\n'), 1000)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Split(bytes.NewReader(input), func(it Item) error { return it.Err }); err != nil {
			b.Fatal(err)
		}
	}
}
