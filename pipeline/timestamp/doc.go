// Package timestamp reads the timestamp forms of DESIGN.md §4 (ISO-8601,
// epoch seconds with a fraction, epoch milliseconds) as epoch milliseconds,
// without allocating. The decode stage judges updatedAt and createdAt with it
// and the filter stage compares timestamp attributes with it.
package timestamp
