package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
)

// DestinationType names where objects go, as GuardDuty's API does.
type DestinationType string

// Destination types. S3 is GuardDuty's only type; LOCAL writes the same key
// layout under a directory (the embedded default).
const (
	DestinationS3    DestinationType = "S3"
	DestinationLocal DestinationType = "LOCAL"
)

// Encryption modes of a destination.
const (
	// EncryptionSSEKMS asks S3 to encrypt with the destination's KMS key.
	EncryptionSSEKMS = "sse-kms"
	// EncryptionEnvelope encrypts client-side (AES-256-GCM, a data key per
	// object) and writes the self-contained .enc format.
	EncryptionEnvelope = "envelope"
)

// Key accounts: whose account id names the AWSLogs/<accountId>/ folder of a
// destination's objects (DESIGN.md B7).
const (
	// KeyAccountAdministrator names the destination owner (the default).
	KeyAccountAdministrator = "administrator"
	// KeyAccountOwner names each finding's own account; batches are then
	// formed per finding owner so that no object mixes accounts.
	KeyAccountOwner = "owner"
)

// PublishingStatus values, as GuardDuty's DescribePublishingDestination names them.
const (
	StatusPendingVerification = "PENDING_VERIFICATION"
	StatusPublishing          = "PUBLISHING"
	StatusUnableToPublish     = "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
	StatusStopped             = "STOPPED"
)

// Destination is where the findings of one (account, Region) go: an S3 bucket
// or a local directory, with its encryption. Account and Region are the
// destination owner's (the administrator's); they name the key folders and
// the event subject.
type Destination struct {
	ID         string          `json:"destinationId"`
	Account    string          `json:"account"`
	Region     string          `json:"region"`
	Type       DestinationType `json:"destinationType"`
	Arn        string          `json:"destinationArn,omitempty"`
	KmsKeyArn  string          `json:"kmsKeyArn,omitempty"`
	Root       string          `json:"root,omitempty"`
	Prefix     string          `json:"prefix,omitempty"`
	Encryption string          `json:"encryption"`
	KeyFile    string          `json:"keyFile,omitempty"`
	Endpoint   string          `json:"endpoint,omitempty"`
	// KmsEndpoint overrides the KMS endpoint (an emulator).
	KmsEndpoint string `json:"kmsEndpoint,omitempty"`
	// RoleArn is assumed, with ExternalID when set, to write a bucket in
	// another account.
	RoleArn    string `json:"roleArn,omitempty"`
	ExternalID string `json:"externalId,omitempty"`
	// KeyAccount is KeyAccountOwner or KeyAccountAdministrator ("" is
	// administrator).
	KeyAccount string `json:"keyAccount,omitempty"`
	// Default marks the instance of the default destination that serves one
	// (account, Region) acting as its own administrator.
	Default bool `json:"default,omitempty"`
}

// KeysByOwner reports whether the destination's object keys carry the
// finding owner's account rather than its own.
func (d *Destination) KeysByOwner() bool { return d.KeyAccount == KeyAccountOwner }

// DestinationID derives a stable destination id (32 hex digits, like
// GuardDuty's) from the parts that identify a destination, so that applying
// the same configuration twice names the same destination.
func DestinationID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
