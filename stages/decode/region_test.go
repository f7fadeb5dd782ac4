package decode

import "testing"

func TestIsRegion(t *testing.T) {
	tests := []struct {
		name   string
		region string
		want   bool
	}{
		// Commercial Regions of every shape.
		{name: "us-east-1", region: "us-east-1", want: true},
		{name: "eu-central-2", region: "eu-central-2", want: true},
		{name: "ap-southeast-5", region: "ap-southeast-5", want: true},
		{name: "ap-northeast-3", region: "ap-northeast-3", want: true},
		{name: "il-central-1", region: "il-central-1", want: true},
		{name: "me-south-1", region: "me-south-1", want: true},
		{name: "ca-west-1", region: "ca-west-1", want: true},
		{name: "mx-central-1", region: "mx-central-1", want: true},
		// Other partitions: China, GovCloud, ISO, European Sovereign Cloud.
		{name: "cn-north-1", region: "cn-north-1", want: true},
		{name: "us-gov-west-1", region: "us-gov-west-1", want: true},
		{name: "us-iso-east-1", region: "us-iso-east-1", want: true},
		{name: "us-isob-east-1", region: "us-isob-east-1", want: true},
		{name: "eusc-de-east-1", region: "eusc-de-east-1", want: true},
		// A two-digit number is still a Region shape.
		{name: "two-digit number", region: "ap-southeast-12", want: true},
		// The brief's refusals.
		{name: "moon-1", region: "moon-1"},
		// The shape of a Region, but no AWS area is called mars.
		{name: "unknown area", region: "mars-north-1"},
		{name: "uppercase", region: "US-EAST-1"},
		{name: "no number", region: "us-east"},
		// Shapes close to a Region.
		{name: "empty", region: ""},
		{name: "unknown direction", region: "us-up-1"},
		{name: "zero", region: "us-east-0"},
		{name: "leading zero", region: "us-east-01"},
		{name: "three-digit number", region: "us-east-100"},
		{name: "one-letter area", region: "u-east-1"},
		{name: "five-letter area", region: "useas-east-1"},
		{name: "trailing dash", region: "us-east-1-"},
		{name: "double dash", region: "us--east-1"},
		{name: "too many qualifiers", region: "us-a-b-c-east-1"},
		{name: "digit in area", region: "u1-east-1"},
		{name: "space", region: "us-east-1 "},
		{name: "subject separator", region: "us.east-1"},
		{name: "global", region: "aws-global"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsRegion(tt.region); got != tt.want {
				t.Errorf("IsRegion(%q) = %v, want %v", tt.region, got, tt.want)
			}
		})
	}
}
