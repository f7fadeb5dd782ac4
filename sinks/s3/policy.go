package s3

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/awsarn"
)

// ProbeFolder is the folder under a destination's prefix where Verify
// writes (and deletes) its write probe; it is outside AWSLogs/, so readers
// of the export layout never see a probe.
const ProbeFolder = "gdexport-write-probe"

// ErrPrincipal means a principal ARN for a policy is not an IAM role or
// user ARN (or an account root).
var ErrPrincipal = errors.New("invalid principal ARN")

// checkPrincipal accepts arn:<partition>:iam::<account>:role/…,
// …:user/… and …:root.
func checkPrincipal(arn string) error {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" && awsarn.ValidPartition(parts[1]) && parts[2] == "iam" && parts[3] == "" && pipeline.ValidAccount(parts[4]) {
		r := parts[5]
		if r == "root" || (strings.HasPrefix(r, "role/") || strings.HasPrefix(r, "user/")) && !strings.HasSuffix(r, "/") && len(r) > 5 {
			return nil
		}
	}
	return fmt.Errorf("%q: %w: expected gdexport's IAM role, arn:aws:iam::<account>:role/<name> (or user/<name>)", arn, ErrPrincipal)
}

type policyDoc struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal any                          `json:"Principal"`
	Action    any                          `json:"Action"`
	Resource  any                          `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// BucketPolicy renders the bucket policy that lets principalArn (gdexport's
// IAM role) export to dest, with the conditions of GuardDuty's sample
// policy: GetBucketLocation on the bucket; PutObject under the prefix; for
// SSE-KMS destinations, a deny of uploads without
// x-amz-server-side-encryption: aws:kms and of uploads naming another key;
// DeleteObject of Verify's write probes only; and a deny of every request
// that does not use TLS. Envelope destinations get no SSE conditions
// (their objects are encrypted before upload).
func BucketPolicy(dest *pipeline.Destination, principalArn string) (string, error) {
	b, err := awsarn.ParseS3Destination(dest.Arn)
	if err != nil {
		return "", err
	}
	if err := checkPrincipal(principalArn); err != nil {
		return "", err
	}
	who := map[string]string{"AWS": principalArn}
	probe := b.BucketARN() + "/" + ProbeFolder + "/*"
	if b.Prefix != "" {
		probe = b.BucketARN() + "/" + b.Prefix + "/" + ProbeFolder + "/*"
	}
	doc := policyDoc{Version: "2012-10-17", Statement: []statement{
		{Sid: "AllowGdexportGetBucketLocation", Effect: "Allow", Principal: who, Action: "s3:GetBucketLocation", Resource: b.BucketARN()},
		{Sid: "AllowGdexportPutObject", Effect: "Allow", Principal: who, Action: "s3:PutObject", Resource: b.ObjectsARN()},
		{Sid: "AllowGdexportDeleteWriteProbe", Effect: "Allow", Principal: who, Action: "s3:DeleteObject", Resource: probe},
	}}
	if dest.Encryption != pipeline.EncryptionEnvelope {
		if dest.KmsKeyArn == "" {
			return "", fmt.Errorf("destination %s: SSE-KMS without a KMS key", dest.ID)
		}
		doc.Statement = append(doc.Statement,
			statement{Sid: "DenyUnencryptedObjectUploads", Effect: "Deny", Principal: who, Action: "s3:PutObject", Resource: b.ObjectsARN(),
				Condition: map[string]map[string]string{"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
			statement{Sid: "DenyIncorrectEncryptionHeader", Effect: "Deny", Principal: who, Action: "s3:PutObject", Resource: b.ObjectsARN(),
				Condition: map[string]map[string]string{"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": dest.KmsKeyArn}}},
		)
	}
	doc.Statement = append(doc.Statement, statement{Sid: "DenyNonHTTPSAccess", Effect: "Deny", Principal: "*", Action: "s3:*",
		Resource: []string{b.BucketARN(), b.BucketARN() + "/*"}, Condition: map[string]map[string]string{"Bool": {"aws:SecureTransport": "false"}}})
	out, err := json.MarshalIndent(doc, "", "  ")
	return string(out), err
}

// KeyPolicyStatement renders the statement to add to the KMS key policy of
// dest's key so that principalArn can use it: kms:GenerateDataKey (SSE-KMS
// writes and envelope data keys) and kms:Decrypt (S3 needs it for
// multipart uploads of SSE-KMS objects; gdexport decrypt needs it to read
// envelope objects).
func KeyPolicyStatement(dest *pipeline.Destination, principalArn string) (string, error) {
	if err := checkPrincipal(principalArn); err != nil {
		return "", err
	}
	key, err := awsarn.ParseKMSKey(dest.KmsKeyArn, dest.Endpoint != "" || dest.KmsEndpoint != "")
	if err != nil {
		return "", err
	}
	resource := "*" // in a key policy "*" is the key itself
	if key.IsARN() && !key.Alias {
		resource = key.Raw
	}
	st := statement{Sid: "AllowGdexportToEncryptFindings", Effect: "Allow", Principal: map[string]string{"AWS": principalArn},
		Action: []string{"kms:GenerateDataKey", "kms:Decrypt"}, Resource: resource}
	out, err := json.MarshalIndent(st, "", "  ")
	return string(out), err
}
