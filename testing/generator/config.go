package generator

import (
	"errors"
	"fmt"
	"time"
)

// ErrConfig is wrapped by Config.Validate's errors.
var ErrConfig = errors.New("invalid generator config")

// DefaultAdministrators are the administrator accounts of the default
// account set; DefaultMembers maps each to its member accounts. Tests that
// exercise fan-in (B3) can declare the same relationships.
var (
	DefaultAdministrators = []string{"111122223333", "777788889999"}
	DefaultMembers        = map[string][]string{
		"111122223333": {"444455556666", "222233334444", "333344445555"},
		"777788889999": {"555566667777", "888899990000"},
	}
)

// DefaultRegions are the Regions findings are spread over by default.
var DefaultRegions = []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"}

// DefaultStart is the default createdAt of the first finding: fixed, so that
// output does not depend on when it is made.
var DefaultStart = time.Date(2024, time.March, 1, 0, 0, 0, 0, time.UTC)

// Defaults of the numeric settings.
const (
	DefaultVersions         = 1000
	DefaultMaxVersionsPerID = 5
	DefaultArchivedShare    = 0.05
	DefaultSpacing          = time.Second
)

// Config says what Generate makes. The zero value is valid: every zero field
// takes its default.
type Config struct {
	// Seed makes the output reproducible: the same Config yields the same
	// bytes.
	Seed int64
	// Versions is the number of finding versions to emit (default 1000).
	Versions int
	// MaxVersionsPerID bounds the versions of one finding id (default 5).
	// Each id has 1 to MaxVersionsPerID versions, fewer more often.
	MaxVersionsPerID int
	// ArchivedShare is roughly the share of versions with service.archived
	// true (default 0.05; a negative value means none). Some archived ids are
	// unarchived in their last version, some are active before they are
	// archived.
	ArchivedShare float64
	// Accounts are the 12-digit accounts findings belong to (default: the
	// DefaultAdministrators and their DefaultMembers).
	Accounts []string
	// Regions are the Regions findings are spread over (default
	// DefaultRegions).
	Regions []string
	// Start is the createdAt of the first finding (default DefaultStart).
	Start time.Time
	// Spacing is the mean time between the updatedAt of consecutive versions
	// in emission order (default 1 s).
	Spacing time.Duration
	// Shuffle emits versions in random order instead of updatedAt order, so
	// that older versions of an id may come after newer ones (B6's stale
	// versions). It plans every version in memory first (about 100 bytes per
	// version, not the findings themselves).
	Shuffle bool
}

// Validate reports a setting out of range, wrapping ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.Versions < 0:
		return fmt.Errorf("%w: versions %d is negative", ErrConfig, c.Versions)
	case c.MaxVersionsPerID < 0:
		return fmt.Errorf("%w: maxVersionsPerID %d is negative", ErrConfig, c.MaxVersionsPerID)
	case c.ArchivedShare > 1:
		return fmt.Errorf("%w: archivedShare %g is more than 1", ErrConfig, c.ArchivedShare)
	case c.Spacing < 0:
		return fmt.Errorf("%w: spacing %s is negative", ErrConfig, c.Spacing)
	}
	for _, a := range c.Accounts {
		if !isAccount(a) {
			return fmt.Errorf("%w: account %q is not 12 digits", ErrConfig, a)
		}
	}
	for _, r := range c.Regions {
		if partition(r) == "" {
			return fmt.Errorf("%w: region %q is not an AWS Region name", ErrConfig, r)
		}
	}
	return nil
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Versions == 0 {
		c.Versions = DefaultVersions
	}
	if c.MaxVersionsPerID == 0 {
		c.MaxVersionsPerID = DefaultMaxVersionsPerID
	}
	switch {
	case c.ArchivedShare == 0:
		c.ArchivedShare = DefaultArchivedShare
	case c.ArchivedShare < 0:
		c.ArchivedShare = 0
	}
	if len(c.Accounts) == 0 {
		c.Accounts = DefaultAccounts()
	}
	if len(c.Regions) == 0 {
		c.Regions = DefaultRegions
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Spacing == 0 {
		c.Spacing = DefaultSpacing
	}
	return c
}

// DefaultAccounts returns the default account set: each administrator
// followed by its members.
func DefaultAccounts() []string {
	var out []string
	for _, a := range DefaultAdministrators {
		out = append(out, a)
		out = append(out, DefaultMembers[a]...)
	}
	return out
}

func isAccount(s string) bool {
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

// partition names the AWS partition of a Region ("" for what does not look
// like a Region).
func partition(region string) string {
	n := 0
	for i := 0; i < len(region); i++ {
		c := region[i]
		switch {
		case c == '-':
			n++
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		default:
			return ""
		}
	}
	if n < 2 || region[len(region)-1] < '0' || region[len(region)-1] > '9' {
		return ""
	}
	switch {
	case len(region) > 3 && region[:3] == "cn-":
		return "aws-cn"
	case len(region) > 7 && region[:7] == "us-gov-":
		return "aws-us-gov"
	case len(region) > 7 && region[:7] == "us-iso-":
		return "aws-iso"
	case len(region) > 8 && region[:8] == "us-isob-":
		return "aws-iso-b"
	case len(region) > 5 && region[:5] == "eusc-":
		return "aws-eusc"
	}
	return "aws"
}
