package decode

import "github.com/gdexport/gdexport/pipeline"

// IsRegion is the AWS Region name rule, pipeline.ValidRegion: a Region
// that is not an AWS Region name is dead-lettered.
func IsRegion(s string) bool { return pipeline.ValidRegion(s) }
