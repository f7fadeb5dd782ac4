// Package encrypt is the encrypt stage: it turns a compressed batch into the
// object a sink writes, either with instructions for the store to encrypt it
// (SSE-KMS, mode "sse-kms": the body stays gzip) or sealed client-side in a
// self-contained envelope (mode "envelope": the body becomes a .enc file).
//
// # Envelope encryption
//
// Each object gets a fresh random 256-bit data key. The body (the gzip bytes)
// is encrypted with AES-256-GCM under the data key; the data key is wrapped by
// a KeyProvider (the local master key file, or AWS KMS through package
// encrypt/kms) bound to an encryption context, {"destination": <destination
// id>, "key": <object key without .enc>} and, for S3 destinations,
// "bucket": <bucket name>, so an object cannot be passed off as another one. Plaintext
// data keys live only in memory for one Seal or Open and are never logged.
// One provider call is made per object, never per finding.
//
// # Envelope format, version 1
//
// All integers are big-endian. The header is every byte before the
// ciphertext; it is the additional data of the body's AES-GCM, so no header
// byte can be altered without Open failing.
//
//	offset  size      field
//	0       6         magic "GDXENV"
//	6       1         format version, 1
//	7       1         n = length of the key provider name (1..255)
//	8       n         key provider name, e.g. "local" or "kms"
//	        2         k = length of the key id (1..65535)
//	        k         key id, e.g. "local:0123456789abcdef" or a KMS key ARN
//	        2         c = number of encryption context pairs (0..65535)
//	        c times   2-byte key length, key, 2-byte value length, value;
//	                  pairs sorted by key, keys unique
//	        2         w = length of the wrapped data key (1..65535)
//	        w         wrapped data key, as the key provider produced it
//	        1         nonce length, 12
//	        12        nonce of the body's AES-256-GCM
//	        8         b = length of the ciphertext, tag included (>= 16)
//	        b         AES-256-GCM ciphertext of the gzip bytes, then its
//	                  16-byte tag (additional data: the header above)
//
// The local provider's wrapped data key (60 bytes) is a 12-byte nonce, then
// the AES-256-GCM ciphertext and tag of the 32-byte data key under the master
// key, with the encryption context encoded as above (the 2-byte count and the
// pairs) as additional data. Its key id is "local:" followed by the first 16
// hex digits of SHA-256 of the master key, so a wrong key file is named as
// such rather than reported as damage.
//
// # Local master key
//
// The local master key file (default <data>/keys/local-master.key) holds
// exactly 32 random bytes, mode 0600, in a 0700 directory. EnsureLocal creates
// it on first use so that workers starting together end with one key: the key
// is written to a temporary file and hard-linked into place, which fails for
// all but the first. A key file of the wrong size, or readable or writable by
// group or others, is refused. A key file is read once per process.
package encrypt
