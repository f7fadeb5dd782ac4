package pipeline

import "strings"

// ValidAccount reports whether s is an AWS account id: exactly 12 digits.
func ValidAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// regionAreas are the area codes that begin AWS Region names. A Region
// whose area is not here is refused: a new area code needs this list
// updated (the README says so).
var regionAreas = map[string]bool{
	"af": true, "ap": true, "ca": true, "cn": true, "eu": true, "eusc": true,
	"il": true, "me": true, "mx": true, "sa": true, "us": true,
}

// ValidRegion reports whether s is an AWS Region name:
// <area>[-<qualifier>…]-<direction>-<number>, all lowercase, where area is
// one of AWS's area codes (us, eu, ap, cn, il, eusc …), qualifiers are up to
// two words (gov, iso, isob, de), direction is north, south, east, west,
// central or a combination (northeast …), and number is 1–99 without a
// leading zero. It accepts us-east-1, us-gov-west-1, cn-north-1,
// ap-southeast-5, us-isob-east-1 and eusc-de-east-1, Regions AWS has not
// opened yet in that shape, and refuses mars-north-1, moon-1, US-EAST-1 and
// us-east. It does not allocate.
func ValidRegion(s string) bool {
	if len(s) > 32 {
		return false
	}
	i := strings.LastIndexByte(s, '-')
	if i < 0 || !isRegionNumber(s[i+1:]) {
		return false
	}
	rest := s[:i]
	i = strings.LastIndexByte(rest, '-')
	if i < 0 || !isDirection(rest[i+1:]) {
		return false
	}
	rest = rest[:i]
	parts := 0
	for rest != "" {
		word := rest
		if j := strings.IndexByte(rest, '-'); j >= 0 {
			word, rest = rest[:j], rest[j+1:]
			if rest == "" {
				return false // trailing '-'
			}
		} else {
			rest = ""
		}
		if parts == 0 {
			if !regionAreas[word] {
				return false
			}
		} else if len(word) < 1 || len(word) > 8 || !isLower(word) {
			return false
		}
		parts++
	}
	return parts >= 1 && parts <= 3
}

func isRegionNumber(s string) bool {
	switch len(s) {
	case 1:
		return '1' <= s[0] && s[0] <= '9'
	case 2:
		return '1' <= s[0] && s[0] <= '9' && '0' <= s[1] && s[1] <= '9'
	}
	return false
}

func isDirection(s string) bool {
	switch s {
	case "north", "south", "east", "west", "central",
		"northeast", "northwest", "southeast", "southwest":
		return true
	}
	return false
}

func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}
