package main

import "fmt"

func runServe(s stdio, args []string) int {
	fmt.Fprintln(s.err, "relayq: runServe: not built yet")
	return exSoftware
}
