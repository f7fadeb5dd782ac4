// Package filter drops findings that must never be exported: archived ones
// (service.archived == true) and, through Rules, those a suppression rule
// archives.
package filter
