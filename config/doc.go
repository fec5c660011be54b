// Package config loads and validates the pgcrypt-proxy YAML configuration.
//
// Decoding is strict: an unknown key is an error that names its line. Every
// field of the contract in the README is checked, and each problem found is
// reported with its line and what to change, all at once rather than one per
// run. Key material is resolved through cipher key sources at load time, so
// a configuration that loads is one the proxy can start with.
package config
