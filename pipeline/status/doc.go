// Package status answers "is my export healthy?": a Report of every
// destination (status as GuardDuty names it, failure start, last export,
// backlog, next window flush) and of the shared consumers, rendered as a
// table for `gdexport status`, as JSON for scripts, and as the worker's
// self-refreshing HTML page.
package status
