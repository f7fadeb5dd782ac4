package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/gdexport/gdexport/pipeline"
)

func TestClassify(t *testing.T) {
	respErr := func(status int) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}}}, Err: errors.New("x")}
	}
	cases := []struct {
		name   string
		err    error
		access bool
	}{
		// DESIGN.md §2: these move the destination to UNABLE_TO_PUBLISH at once.
		{"access denied", &smithy.GenericAPIError{Code: "AccessDenied"}, true},
		{"bucket deleted", &smithy.GenericAPIError{Code: "NoSuchBucket"}, true},
		{"kms key disabled", &smithy.GenericAPIError{Code: "KMS.DisabledException"}, true},
		{"kms key missing", &smithy.GenericAPIError{Code: "KMS.NotFoundException"}, true},
		{"kms key pending deletion", &smithy.GenericAPIError{Code: "KMS.KMSInvalidStateException"}, true},
		{"kms direct disabled", &smithy.GenericAPIError{Code: "DisabledException"}, true},
		{"bad credentials", &smithy.GenericAPIError{Code: "InvalidAccessKeyId"}, true},
		// A 403 without a code (HEAD requests have no body) is still denied.
		{"bare 403", respErr(http.StatusForbidden), true},
		// Transient: retried with backoff, status changes only after failureThreshold.
		{"slow down", &smithy.GenericAPIError{Code: "SlowDown"}, false},
		{"internal error", &smithy.GenericAPIError{Code: "InternalError"}, false},
		{"503", respErr(http.StatusServiceUnavailable), false},
		{"timeout", context.DeadlineExceeded, false},
		{"connection refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Classify(fmt.Errorf("s3 put: %w", tc.err))
			if pipeline.IsAccess(err) != tc.access {
				t.Fatalf("Classify(%v): access %v, want %v", tc.err, pipeline.IsAccess(err), tc.access)
			}
			if !errors.Is(err, tc.err) {
				t.Fatal("classified error lost its cause")
			}
		})
	}
	if Classify(nil) != nil {
		t.Fatal("Classify(nil) != nil")
	}
}

func TestPartBounds(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name       string
		size, part int
		want       []int // part lengths
	}{
		{"exact", 32 * mib, 16 * mib, []int{16 * mib, 16 * mib}},
		// A tail below S3's 5 MiB minimum joins the last part.
		{"short tail folded", 33 * mib, 16 * mib, []int{16 * mib, 17 * mib}},
		{"long tail kept", 38 * mib, 16 * mib, []int{16 * mib, 16 * mib, 6 * mib}},
		{"one part", 6 * mib, 16 * mib, []int{6 * mib}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			next := 0
			for _, b := range partBounds(tc.size, tc.part) {
				if b[0] != next {
					t.Fatalf("gap at %d", b[0])
				}
				got = append(got, b[1]-b[0])
				next = b[1]
			}
			if next != tc.size || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("parts %v (to %d), want %v", got, next, tc.want)
			}
		})
	}
}

func TestBucketPolicy(t *testing.T) {
	const role = "arn:aws:iam::111122223333:role/gdexport"
	const key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	dest := &pipeline.Destination{ID: "d", Arn: "arn:aws:s3:::my-findings-bucket/guardduty", KmsKeyArn: key, Encryption: pipeline.EncryptionSSEKMS}
	out, err := BucketPolicy(dest, role)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Sid       string
			Effect    string
			Principal any
			Action    any
			Resource  any
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	bySid := map[string]int{}
	for i, st := range doc.Statement {
		bySid[st.Sid] = i
	}
	// The seed's conditions: SSE-KMS with this key, TLS only.
	enc := doc.Statement[bySid["DenyUnencryptedObjectUploads"]]
	if enc.Effect != "Deny" || enc.Condition["StringNotEquals"]["s3:x-amz-server-side-encryption"] != "aws:kms" || enc.Resource != "arn:aws:s3:::my-findings-bucket/guardduty/*" {
		t.Fatalf("unencrypted deny: %+v", enc)
	}
	if c := doc.Statement[bySid["DenyIncorrectEncryptionHeader"]].Condition["StringNotEquals"]["s3:x-amz-server-side-encryption-aws-kms-key-id"]; c != key {
		t.Fatalf("key condition %q", c)
	}
	if c := doc.Statement[bySid["DenyNonHTTPSAccess"]].Condition["Bool"]["aws:SecureTransport"]; c != "false" {
		t.Fatalf("TLS condition %q", c)
	}
	put := doc.Statement[bySid["AllowGdexportPutObject"]]
	if fmt.Sprint(put.Principal) != "map[AWS:"+role+"]" || put.Action != "s3:PutObject" {
		t.Fatalf("put statement %+v", put)
	}
	if r := doc.Statement[bySid["AllowGdexportDeleteWriteProbe"]].Resource; r != "arn:aws:s3:::my-findings-bucket/guardduty/gdexport-write-probe/*" {
		t.Fatalf("probe delete resource %v", r)
	}
	// Envelope objects carry no SSE headers: no SSE conditions.
	env := *dest
	env.Encryption = pipeline.EncryptionEnvelope
	out, _ = BucketPolicy(&env, role)
	if strings.Contains(out, "x-amz-server-side-encryption") {
		t.Fatal("envelope policy demands SSE headers")
	}
	// Refusals name the bad value.
	for _, bad := range []string{"gdexport", "arn:aws:iam::1111:role/x", "arn:aws:sts::111122223333:assumed-role/x/y"} {
		if _, err := BucketPolicy(dest, bad); !errors.Is(err, ErrPrincipal) || !strings.Contains(err.Error(), bad) {
			t.Fatalf("principal %q: err = %v", bad, err)
		}
	}
	st, err := KeyPolicyStatement(dest, role)
	if err != nil || !strings.Contains(st, `"kms:GenerateDataKey"`) || !strings.Contains(st, `"Resource": "`+key+`"`) {
		t.Fatalf("key statement %s, %v", st, err)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Option{WithMultipartThreshold(1), WithPartSize(1 << 20), WithRegion("x"), WithCredentials(nil), WithKeyChecker(nil)} {
		if _, err := New(o); !errors.Is(err, ErrOption) {
			t.Fatalf("err = %v, want ErrOption", err)
		}
	}
}

func TestPrincipalFromCaller(t *testing.T) {
	cases := []struct {
		name, caller, want string // want "" for an error
	}{
		// The usual case: gdexport runs under a role (EKS, ECS, EC2, SSO).
		{"assumed role", "arn:aws:sts::111122223333:assumed-role/gdexport/i-0abc", "arn:aws:iam::111122223333:role/gdexport"},
		{"gov partition", "arn:aws-us-gov:sts::111122223333:assumed-role/gdexport/s", "arn:aws-us-gov:iam::111122223333:role/gdexport"},
		{"iam user", "arn:aws:iam::111122223333:user/ci", "arn:aws:iam::111122223333:user/ci"},
		// Federated users and garbage cannot be named in a policy this way.
		{"federated", "arn:aws:sts::111122223333:federated-user/bob", ""},
		{"not an arn", "gdexport", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PrincipalFromCaller(tc.caller)
			if tc.want == "" {
				if !errors.Is(err, ErrPrincipal) {
					t.Fatalf("got %q, %v; want ErrPrincipal", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
