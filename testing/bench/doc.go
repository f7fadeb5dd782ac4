// Package bench measures gdexport end to end on this machine, against its
// own limits measured in the same run: JetStream publish and one-hop
// rates, gzip throughput, worker throughput in both durability modes,
// new-finding latency, memory with a million pending updates, and the
// storage and sink calls a finding costs. nats-server and the workers run
// as separate processes, so each is measured on its own.
//
// `make bench` runs cmd/gdexport-bench, which prints one table and writes
// it as JSON under testing/bench/results/.
package bench
