// Package server is modgate's HTTP face. NewProxy serves the store over the
// GOPROXY protocol (https://go.dev/ref/mod#goproxy-protocol), together with
// the signed documents of each admitted version, so that the go command on
// any machine fetches exactly the bytes that modgate verified.
package server
