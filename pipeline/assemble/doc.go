// Package assemble is the one place where concrete stages and sinks are
// wired into a running worker: JetStream topology, shared state, the ingest
// path (decode → filter → fan-in → lanes), and the export path (sealed
// batches → compress → encrypt → object sinks; → event sinks).
package assemble
