// Package kms is the AWS KMS key provider of envelope encryption: each
// object's data key comes from KMS GenerateDataKey (AES_256) bound to the
// object's encryption context, and is unwrapped by KMS Decrypt when the
// object is read (gdexport decrypt). It lives apart from package encrypt so
// that users of the local master key do not link the AWS SDK.
//
// Clients use the standard AWS credential chain (environment, shared
// profiles, web identity, IMDS), optionally assuming a destination's role
// with its external id, and honour an endpoint override for emulators such
// as local-kms. Errors that mean the key is unusable (disabled, pending
// deletion, missing, access denied, bad credentials) wrap
// pipeline.ErrAccess; the rest (throttling, 5xx, timeouts) are transient.
package kms
