// Package natsbus is the NATS event-bus sink: one GuardDuty Finding event per
// exported finding on guardduty.events.<region>.<account> (stream EVENTS), in
// EventBridge's envelope, with an id that is the same every time the same
// finding version is exported to the same destination (DESIGN.md B11).
package natsbus
