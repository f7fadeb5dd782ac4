package decode

import "strings"

// IsRegion reports whether s has the shape of an AWS Region name:
// <area>[-<qualifier>…]-<direction>-<number>, all lowercase, where area is 2–4
// letters (us, eu, ap, il, eusc), qualifiers are up to two words of letters
// (gov, iso, isob, de), direction is one of north, south, east, west, central
// and their combinations (northeast …), and number is 1–99 without a leading
// zero. It accepts us-east-1, eu-central-2, us-gov-west-1, cn-north-1,
// ap-southeast-5, il-central-1, me-south-1, us-iso-east-1, us-isob-east-1 and
// eusc-de-east-1, Regions AWS has not opened yet in the same shape, and
// refuses moon-1, US-EAST-1 and us-east. It does not allocate.
func IsRegion(s string) bool {
	if len(s) > 32 {
		return false
	}
	// number
	i := strings.LastIndexByte(s, '-')
	if i < 0 || !isRegionNumber(s[i+1:]) {
		return false
	}
	rest := s[:i]
	// direction
	i = strings.LastIndexByte(rest, '-')
	if i < 0 || !isDirection(rest[i+1:]) {
		return false
	}
	rest = rest[:i]
	// area and qualifiers
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
			if len(word) < 2 || len(word) > 4 || !isLower(word) {
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
