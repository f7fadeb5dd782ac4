package pipeline

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

// ValidRegion reports whether s has the shape of an AWS Region name:
// lowercase partition and area words joined by '-' and ending in a number,
// such as us-east-1, us-gov-west-1, cn-north-1, eusc-de-east-1 or
// us-isob-east-1.
func ValidRegion(s string) bool {
	// words: 2-4 lowercase letters first, then one or more lowercase words,
	// then a decimal number.
	words := 0
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '-' {
			continue
		}
		w := s[start:i]
		start = i + 1
		if len(w) == 0 {
			return false
		}
		if i == len(s) { // last part: a number
			for j := 0; j < len(w); j++ {
				if w[j] < '0' || w[j] > '9' {
					return false
				}
			}
			return words >= 2 && len(w) <= 2
		}
		for j := 0; j < len(w); j++ {
			if w[j] < 'a' || w[j] > 'z' {
				return false
			}
		}
		if words == 0 && (len(w) < 2 || len(w) > 4) {
			return false
		}
		words++
	}
	return false
}
