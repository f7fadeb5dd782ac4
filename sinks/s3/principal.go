package s3

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/gdexport/gdexport/pipeline"
)

// PrincipalFromCaller turns what STS GetCallerIdentity says about the
// caller into the principal a bucket or key policy names: an assumed-role
// session arn:<p>:sts::<account>:assumed-role/<role>/<session> becomes
// arn:<p>:iam::<account>:role/<role>; IAM users and roles are kept. A role
// with a path (role/path/name) cannot be recovered from a session ARN: name
// it explicitly then.
func PrincipalFromCaller(callerArn string) (string, error) {
	parts := strings.SplitN(callerArn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" {
		switch {
		case parts[2] == "iam":
			return callerArn, checkPrincipal(callerArn)
		case parts[2] == "sts" && strings.HasPrefix(parts[5], "assumed-role/"):
			role, _, ok := strings.Cut(strings.TrimPrefix(parts[5], "assumed-role/"), "/")
			if ok && role != "" {
				p := "arn:" + parts[1] + ":iam::" + parts[4] + ":role/" + role
				return p, checkPrincipal(p)
			}
		}
	}
	return "", fmt.Errorf("%q: %w: not an IAM user or assumed-role session", callerArn, ErrPrincipal)
}

// CallerPrincipal asks STS who gdexport is with the destination's
// credentials (its role, when it has one) and returns the principal for
// BucketPolicy and KeyPolicyStatement (PrincipalFromCaller). S3-compatible
// stores behind an endpoint override rarely answer GetCallerIdentity: give
// the principal explicitly there.
func (s *Sink) CallerPrincipal(ctx context.Context, dest *pipeline.Destination) (string, error) {
	region, err := s.regionOf(ctx, dest, target{endpoint: dest.Endpoint})
	if err != nil {
		return "", err
	}
	c, err := s.client(ctx, dest, region)
	if err != nil {
		return "", err
	}
	opts := c.Options()
	stsOpts := sts.Options{Region: region, Credentials: opts.Credentials, HTTPClient: opts.HTTPClient}
	if dest.Endpoint != "" {
		stsOpts.BaseEndpoint = aws.String(dest.Endpoint)
	}
	out, err := sts.New(stsOpts).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", Classify(fmt.Errorf("sts GetCallerIdentity: %w", err))
	}
	return PrincipalFromCaller(aws.ToString(out.Arn))
}
