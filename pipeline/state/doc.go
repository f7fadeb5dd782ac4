// Package state keeps the configuration every worker shares in JetStream KV
// (destinations and detector settings per account and Region, saved filters,
// member accounts' administrators) and serves routing and filter lookups
// from an in-memory snapshot that KV watchers keep current, so every worker
// applies the same state and sees changes within moments, without a
// restart.
//
// Routing (Store.RouteFinding) follows DESIGN.md B3 and B4: a finding goes
// to its account's own destinations for its Region and, for an ENABLED
// member, to its administrator's for that Region (or the default destination
// acting for the administrator when it has none of its own). An account with
// neither a destination nor an administrator is served by the default
// destination acting for it; a DISASSOCIATED member is not.
//
// Filters and Members are the control operations behind `gdexport filter`
// and `gdexport members`; Destinations behind `gdexport destination`.
//
// Statuses keeps each destination's publishing status (DESIGN.md B9, B10)
// in the status bucket: HealthPolicy.Next is the status machine, applied
// with compare-and-set so that concurrent workers change a status once and
// the winner sends the one notification of the change.
package state
