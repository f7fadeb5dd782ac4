package pipeline

import "testing"

func TestValidRegion(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want bool
	}{
		{"commercial", "us-east-1", true},
		{"gov cloud has three words", "us-gov-west-1", true},
		{"china", "cn-north-1", true},
		{"sovereign four-letter partition", "eusc-de-east-1", true},
		{"iso partition", "us-isob-east-1", true},
		{"two-digit number", "ap-southeast-10", true},
		{"no number", "us-east", false},
		{"one word and a number", "moon-1", false},
		{"upper case", "US-EAST-1", false},
		{"empty word", "us--east-1", false},
		{"trailing dash", "us-east-1-", false},
		{"empty", "", false},
		{"letters in number", "us-east-1a", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ValidRegion(c.in); got != c.want {
				t.Fatalf("ValidRegion(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestValidAccount(t *testing.T) {
	for in, want := range map[string]bool{"111122223333": true, "11112222333": false, "1111222233334": false, "11112222333a": false} {
		if got := ValidAccount(in); got != want {
			t.Errorf("ValidAccount(%q) = %v, want %v", in, got, want)
		}
	}
}
