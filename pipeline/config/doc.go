// Package config is gdexport's configuration file: its YAML shape (DESIGN.md
// §3, field names fixed), defaults, and validation that reports every
// problem with its YAML path without connecting anywhere.
package config
