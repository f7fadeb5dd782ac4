// Package process runs gdexport workers as separate OS processes against one
// NATS server, so that kill -9 in these tests is real: nothing in the test
// process can help a killed worker finish its work.
package process
