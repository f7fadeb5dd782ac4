// Package window is the lanes stage: it forms batches of findings per
// destination and seals them.
//
// The new-findings lane collects findings per destination and seals a batch
// when it is newFindingDelay old or reaches its size bounds. Sealing persists
// the batch's composition (references into the FINDINGS stream) to the
// BATCHES stream before any sink writes it, and records in the exported KV
// bucket which version of each finding id the destination has sealed. Only
// then are the source messages acked: a crash before the seal redelivers
// them, a crash after it finds them already sealed.
//
// The seal protocol, per destination and batch id B:
//
//  1. read the exported record of every finding in the batch (one batched
//     read); drop versions that are older than, or the same as, one already
//     sealed;
//  2. write each kept finding's record {version, B} with compare-and-set on
//     the revision read, so concurrent workers cannot both claim one version;
//  3. create the batch record gdexport.batches.<destination>.<B> with
//     "expected last subject sequence 0": the seal;
//  4. ack the source messages.
//
// A record naming a batch that was never sealed (a crash between 2 and 3) is
// resolved by whoever sees it through a redelivered message: it creates the
// batch record as abandoned, and whichever create wins decides: a sealed
// batch keeps its findings, an abandoned one gives them back.
package window
