// Package fanin routes a finding to every destination that receives it: the
// destinations of its own (account, Region), its administrator's, or the
// default destination acting for the account.
package fanin
