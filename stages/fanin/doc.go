// Package fanin routes a finding to every destination that receives it
// (DESIGN.md B3, B4): the destinations of its own (account, Region), its
// administrator's for that Region when it is an enabled member, or the
// default destination acting for the account. A finding no destination
// receives is dropped with the router's reason (no destination, or a
// disassociated member without a destination of its own).
package fanin
