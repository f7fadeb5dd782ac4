// Package pipeline is gdexport's small, stable core: the Finding envelope that
// flows through the stages, the sealed Batch that crosses JetStream as
// references, the Destination a batch is exported to, and the Stage and Sink
// contracts that stages/<name> and sinks/<name> implement.
//
// Concrete stages and sinks import this package; it never imports them. The
// wiring of concrete parts lives in pipeline/assemble.
package pipeline
