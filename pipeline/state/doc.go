// Package state keeps the configuration every worker shares (destinations and
// detector settings per account and Region) in JetStream KV, and serves
// routing lookups from an in-memory snapshot that KV watchers keep current,
// so every worker applies the same state and sees changes within moments.
package state
