package kms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/awsarn"
	"github.com/gdexport/gdexport/stages/encrypt"
)

// ProviderName is the name envelopes record for AWS KMS.
const ProviderName = "kms"

// API is the part of the KMS client a Provider calls.
type API interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Provider is the encrypt.KeyProvider of one KMS key. It is safe for
// concurrent use.
type Provider struct {
	api   API
	keyID string
	calls *atomic.Int64
}

var _ encrypt.KeyProvider = (*Provider)(nil)

// New returns the provider of the key keyID (a key or alias ARN, or a bare
// key id behind an endpoint override) called through api.
func New(api API, keyID string) *Provider {
	return &Provider{api: api, keyID: keyID, calls: new(atomic.Int64)}
}

// Name returns ProviderName.
func (p *Provider) Name() string { return ProviderName }

// KeyID returns the key reference as configured; envelopes record it and
// Decrypt sends it back to KMS.
func (p *Provider) KeyID() string { return p.keyID }

// GenerateDataKey calls KMS GenerateDataKey with KeySpec AES_256 and encCtx
// as the encryption context: the plaintext key and its KMS ciphertext blob.
func (p *Provider) GenerateDataKey(ctx context.Context, encCtx map[string]string) (plaintext, wrapped []byte, err error) {
	p.calls.Add(1)
	out, err := p.api.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(p.keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encCtx,
	})
	if err != nil {
		return nil, nil, Classify(fmt.Errorf("kms GenerateDataKey with %s: %w", p.keyID, err))
	}
	if len(out.Plaintext) != encrypt.DataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return nil, nil, fmt.Errorf("kms GenerateDataKey with %s returned a %d-byte key and a %d-byte blob, want %d and more than 0", p.keyID, len(out.Plaintext), len(out.CiphertextBlob), encrypt.DataKeySize)
	}
	return out.Plaintext, out.CiphertextBlob, nil
}

// Decrypt calls KMS Decrypt for a data key wrapped under keyID with encCtx.
// KMS's IncorrectKeyException wraps encrypt.ErrWrongKey and
// InvalidCiphertextException (also an altered encryption context)
// encrypt.ErrTampered; a keyID other than KeyID fails with ErrWrongKey
// before any call.
func (p *Provider) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	if keyID != p.keyID {
		return nil, fmt.Errorf("object was encrypted with %s, provider holds %s: %w", keyID, p.keyID, encrypt.ErrWrongKey)
	}
	p.calls.Add(1)
	out, err := p.api.Decrypt(ctx, &kms.DecryptInput{
		KeyId:             aws.String(keyID),
		CiphertextBlob:    wrapped,
		EncryptionContext: encCtx,
	})
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) {
			switch apiErr.ErrorCode() {
			case "IncorrectKeyException":
				return nil, fmt.Errorf("kms Decrypt with %s: %w: %w", keyID, encrypt.ErrWrongKey, err)
			case "InvalidCiphertextException":
				return nil, fmt.Errorf("kms Decrypt with %s: wrapped key or encryption context altered: %w: %w", keyID, encrypt.ErrTampered, err)
			}
		}
		return nil, Classify(fmt.Errorf("kms Decrypt with %s: %w", keyID, err))
	}
	return out.Plaintext, nil
}

// accessCodes are the KMS error codes that mean the key or the caller's
// access to it must be fixed (DESIGN.md §2, Errors).
var accessCodes = map[string]bool{
	"DisabledException":           true,
	"KMSInvalidStateException":    true,
	"NotFoundException":           true,
	"AccessDeniedException":       true,
	"InvalidKeyUsageException":    true,
	"UnrecognizedClientException": true, // unknown access key id
	"InvalidSignatureException":   true, // wrong secret key
	"IncompleteSignature":         true,
	"InvalidClientTokenId":        true,
	"ValidationException":         true, // a malformed key id
	"InvalidArnException":         true,
}

// Classify wraps err with pipeline.ErrAccess when KMS said the key is
// unusable (DisabledException, KMSInvalidStateException, NotFoundException,
// AccessDeniedException, unknown or bad credentials, a malformed key id) and
// returns it unchanged otherwise: throttling, 5xx, timeouts and connection
// errors are transient.
func Classify(err error) error {
	if err == nil || pipeline.IsAccess(err) {
		return err
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && accessCodes[apiErr.ErrorCode()] {
		return fmt.Errorf("%w: %w", pipeline.ErrAccess, err)
	}
	return err
}

// Option configures Keys.
type Option func(*Keys) error

// ErrOption is wrapped by every invalid option.
var ErrOption = errors.New("invalid kms option")

// WithEndpoint sends every KMS call to endpoint (an emulator such as
// local-kms) unless a destination names its own kmsEndpoint.
func WithEndpoint(endpoint string) Option {
	return func(k *Keys) error {
		if endpoint == "" {
			return fmt.Errorf("%w: empty endpoint", ErrOption)
		}
		k.endpoint = endpoint
		return nil
	}
}

// WithRegion is the Region for bare key ids and destinations without one
// (default: the standard chain's, AWS_REGION or the profile).
func WithRegion(region string) Option {
	return func(k *Keys) error {
		if !pipeline.ValidRegion(region) {
			return fmt.Errorf("%w: %q is not an AWS Region name", ErrOption, region)
		}
		k.region = region
		return nil
	}
}

// WithCredentials replaces the standard credential chain (tests, emulators).
func WithCredentials(c aws.CredentialsProvider) Option {
	return func(k *Keys) error {
		if c == nil {
			return fmt.Errorf("%w: nil credentials provider", ErrOption)
		}
		k.creds = c
		return nil
	}
}

// WithHTTPClient sets the HTTP client of every KMS client.
func WithHTTPClient(c *http.Client) Option {
	return func(k *Keys) error {
		if c == nil {
			return fmt.Errorf("%w: nil HTTP client", ErrOption)
		}
		k.httpClient = c
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(k *Keys) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrOption)
		}
		k.log = l
		return nil
	}
}

// Keys hands out KMS key providers, one KMS client per (Region, endpoint,
// role) shared by every destination that needs it. It is safe for
// concurrent use. Its clients load the standard AWS configuration on first
// use.
type Keys struct {
	endpoint   string
	region     string
	creds      aws.CredentialsProvider
	httpClient *http.Client
	log        *slog.Logger

	calls, verifyCalls atomic.Int64

	mu      sync.Mutex
	base    *aws.Config
	clients map[clientKey]*kms.Client
}

type clientKey struct{ region, endpoint, role, externalID string }

// NewKeys returns Keys with opts applied.
func NewKeys(opts ...Option) (*Keys, error) {
	k := &Keys{log: slog.Default(), clients: map[clientKey]*kms.Client{}}
	for _, o := range opts {
		if err := o(k); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Calls returns how many KMS calls (GenerateDataKey and Decrypt) the
// providers of k made for objects, for the benchmark's KMS calls per
// object; CheckKey's are VerifyCalls.
func (k *Keys) Calls() int64 { return k.calls.Load() }

// VerifyCalls returns how many KMS calls CheckKey made.
func (k *Keys) VerifyCalls() int64 { return k.verifyCalls.Load() }

// ForDestination is an encrypt.ProviderFor: the KMS provider of the
// destination's kmsKeyArn, in the key ARN's Region (else the destination's,
// else the default), through the destination's kmsEndpoint (else the
// WithEndpoint one) and role. A key reference that does not parse wraps
// pipeline.ErrAccess.
func (k *Keys) ForDestination(dest *pipeline.Destination) (encrypt.KeyProvider, error) {
	return k.forDestination(dest, &k.calls)
}

// forDestination is ForDestination's provider, counting its calls in calls.
func (k *Keys) forDestination(dest *pipeline.Destination, calls *atomic.Int64) (*Provider, error) {
	endpoint := dest.KmsEndpoint
	if endpoint == "" {
		endpoint = k.endpoint
	}
	key, err := awsarn.ParseKMSKey(dest.KmsKeyArn, endpoint != "" || dest.Endpoint != "")
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w: %w", dest.ID, pipeline.ErrAccess, err)
	}
	region := key.Region
	if region == "" {
		region = dest.Region
	}
	return k.provider(context.Background(), key.Raw, clientKey{region: region, endpoint: endpoint, role: dest.RoleArn, externalID: dest.ExternalID}, calls)
}

// Provider returns the provider of keyRef (a key or alias ARN, or a bare id
// with an endpoint) for tools such as gdexport decrypt: Region from the ARN,
// else region, else the default.
func (k *Keys) Provider(ctx context.Context, keyRef, region string) (*Provider, error) {
	key, err := awsarn.ParseKMSKey(keyRef, k.endpoint != "")
	if err != nil {
		return nil, err
	}
	if key.Region != "" {
		region = key.Region
	}
	return k.provider(ctx, key.Raw, clientKey{region: region, endpoint: k.endpoint}, &k.calls)
}

func (k *Keys) provider(ctx context.Context, keyID string, ck clientKey, calls *atomic.Int64) (*Provider, error) {
	c, err := k.client(ctx, ck)
	if err != nil {
		return nil, err
	}
	return &Provider{api: c, keyID: keyID, calls: calls}, nil
}

func (k *Keys) client(ctx context.Context, ck clientKey) (*kms.Client, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.clients[ck]; ok {
		return c, nil
	}
	if k.base == nil {
		var lo []func(*awsconfig.LoadOptions) error
		if k.region != "" {
			lo = append(lo, awsconfig.WithRegion(k.region))
		}
		if k.creds != nil {
			lo = append(lo, awsconfig.WithCredentialsProvider(k.creds))
		}
		if k.httpClient != nil {
			lo = append(lo, awsconfig.WithHTTPClient(k.httpClient))
		}
		cfg, err := awsconfig.LoadDefaultConfig(ctx, lo...)
		if err != nil {
			return nil, fmt.Errorf("load AWS configuration: %w", err)
		}
		k.base = &cfg
	}
	cfg := k.base.Copy()
	if ck.region != "" {
		cfg.Region = ck.region
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("%w: no Region for KMS: use a key ARN, set the destination's Region or AWS_REGION", pipeline.ErrAccess)
	}
	if ck.role != "" {
		stsClient := sts.NewFromConfig(cfg)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, ck.role, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "gdexport"
			if ck.externalID != "" {
				o.ExternalID = aws.String(ck.externalID)
			}
		}))
	}
	c := kms.NewFromConfig(cfg, func(o *kms.Options) {
		if ck.endpoint != "" {
			o.BaseEndpoint = aws.String(ck.endpoint)
		}
	})
	k.clients[ck] = c
	return c, nil
}

// CheckKey checks that dest's key is usable with one GenerateDataKey call
// (the key is discarded): the verification of DESIGN.md B12. Its signature
// is the S3 sink's KeyChecker. An unusable key wraps pipeline.ErrAccess.
func (k *Keys) CheckKey(ctx context.Context, dest *pipeline.Destination) error {
	p, err := k.forDestination(dest, &k.verifyCalls)
	if err != nil {
		return err
	}
	key, _, err := p.GenerateDataKey(ctx, map[string]string{encrypt.ContextDestination: dest.ID, "purpose": "gdexport-verification"})
	clear(key)
	return err
}
